"""``crossdata doctor``: is this machine ready to run crossdata? A table, then a verdict.

Each check yields a row (component, pinned, found, status, note). A failed required check makes
the command exit non-zero with the fix in the note; optional pieces only warn.
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from crossdata import stack
from crossdata.config import Loaded
from crossdata.spark.session import cached_jars, safe_remote, to_uri
from crossdata.tracking import safe_uri

log = logging.getLogger(__name__)
Status = Literal["ok", "warn", "FAIL"]


@dataclass(frozen=True)
class Check:
    component: str
    pinned: str
    found: str
    status: Status
    note: str = ""


def java_version() -> tuple[int | None, str]:
    """(major, text) of the java that Spark will launch."""
    import os

    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        return None, "not found"
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    text = (out.stderr or out.stdout).strip()
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not match:
        return None, text.splitlines()[0] if text else "unknown"
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    return major, text.splitlines()[0]


def static_checks(loaded: Loaded) -> list[Check]:
    """Checks that need no Spark: Python, Java, packages, jar cache."""
    settings = loaded.settings
    checks = []
    py = ".".join(map(str, sys.version_info[:3]))
    checks.append(Check("python", "3.11", py, "ok" if sys.version_info[:2] == (3, 11) else "warn"))
    major, text = java_version()
    if major is None:
        checks.append(Check("java", str(stack.JAVA_MAJOR), text, "FAIL", "install Java 17"))
    else:
        ok = major == stack.JAVA_MAJOR
        checks.append(
            Check(
                "java",
                str(stack.JAVA_MAJOR),
                str(major),
                "ok" if ok else ("warn" if major > stack.JAVA_MAJOR else "FAIL"),
                "" if ok else "Spark 4 needs Java 17 or 21",
            )
        )
    for dist, pinned in stack.PYTHON_PACKAGES.items():
        try:
            found = metadata.version(dist)
        except metadata.PackageNotFoundError:
            checks.append(Check(dist, pinned, "missing", "FAIL", "run `make setup`"))
            continue
        status: Status = "ok" if found == pinned else "warn"
        checks.append(Check(dist, pinned, found, status, "" if found == pinned else "not the pin"))
    mode = settings.spark.jars.mode
    jars = {j.name for j in cached_jars(settings.spark.jars.cache_dir)}
    for art in stack.JVM_ARTIFACTS:
        label = f"jar {art.artifact}"
        if mode != "local_cache":
            checks.append(Check(label, art.version, f"({mode})", "ok", f"jars.mode={mode}"))
        elif art.jar_name in jars:
            checks.append(
                Check(label, art.version, art.version, "ok", settings.spark.jars.cache_dir)
            )
        elif other := sorted(n for n in jars if n.startswith(f"{art.artifact}-")):
            # Another build of the same artifact (an older pin, or one built from source with
            # infra/jars/graphframes-from-source.sh): Spark loads it, so say which it is.
            found = other[0].removeprefix(f"{art.artifact}-").removesuffix(".jar")
            checks.append(Check(label, art.version, found, "warn", f"not the pin: {other[0]}"))
        elif art.required:
            checks.append(Check(label, art.version, "missing", "FAIL", "run `make setup`"))
        else:
            checks.append(Check(label, art.version, "missing", "warn", art.purpose))
    return checks


SPARK_CONNECT_PORT = 15002  # Spark Connect's port when the address names none


def connect_problem(remote: str, timeout_s: float = 5.0) -> str | None:
    """Why nothing answers at the Spark Connect address ``remote`` (``sc://host:port/;...``),
    or None. A TCP connection is tried first: the client itself retries an unreachable server
    with growing back-off for minutes before it gives up."""
    parts = urlsplit(remote)
    host, port = parts.hostname or "localhost", parts.port or SPARK_CONNECT_PORT
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        return f"nothing answers at {host}:{port} ({exc.strerror or type(exc).__name__})"
    return None


def spark_checks(loaded: Loaded) -> list[Check]:
    """Start Spark, write and read a Delta table under the lakehouse root, try GraphFrames."""
    from crossdata.spark import get_spark

    settings = loaded.settings
    checks: list[Check] = []
    remote = settings.spark.remote
    problem = connect_problem(remote) if remote else None
    if problem:
        return [Check("spark session", stack.SPARK_VERSION, "no session", "FAIL", problem)]
    try:
        spark = get_spark(settings)
    except Exception as exc:
        return [Check("spark session", stack.SPARK_VERSION, "no session", "FAIL", _short(exc))]
    checks.append(
        Check(
            "spark session",
            stack.SPARK_VERSION,
            spark.version,
            "ok" if spark.version == stack.SPARK_VERSION else "warn",
            safe_remote(settings.spark.remote) if settings.spark.remote else settings.spark.master,
        )
    )
    probe = f"{to_uri(settings.lakehouse.root).rstrip('/')}/_doctor/probe"
    try:
        token = uuid.uuid4().hex
        spark.createDataFrame([(token,)], "token STRING").write.format("delta").mode(
            "overwrite"
        ).save(probe)
        back = spark.read.format("delta").load(probe).first()
        ok = back is not None and back["token"] == token
        checks.append(
            Check(
                "delta write/read",
                stack.DELTA_VERSION,
                "works" if ok else "wrong data",
                "ok" if ok else "FAIL",
                settings.lakehouse.root,
            )
        )
    except Exception as exc:
        checks.append(
            Check(
                "delta write/read",
                stack.DELTA_VERSION,
                "fails",
                "FAIL",
                f"lakehouse root {settings.lakehouse.root}: {_short(exc)}",
            )
        )
    from crossdata.identity.engine import graphframes_available

    gf_ok, gf_note = graphframes_available(spark)
    checks.append(
        Check(
            "graphframes",
            stack.GRAPHFRAMES_VERSION,
            "works" if gf_ok else "absent",
            "ok" if gf_ok else "warn",
            gf_note,
        )
    )
    return checks


def mlflow_checks(loaded: Loaded) -> list[Check]:
    settings = loaded.settings
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=settings.mlflow.tracking_uri)
        client.search_experiments(max_results=1)
        return [
            Check(
                "mlflow store",
                stack.MLFLOW_VERSION,
                "reachable",
                "ok",
                safe_uri(settings.mlflow.tracking_uri),
            )
        ]
    except Exception as exc:
        return [Check("mlflow store", stack.MLFLOW_VERSION, "unreachable", "FAIL", _short(exc))]


def run_doctor(loaded: Loaded, with_spark: bool = True, out: Callable[[str], None] = print) -> int:
    """Print the matrix and return the exit code (0 when nothing required failed)."""
    checks = static_checks(loaded)
    if with_spark and not any(c.status == "FAIL" for c in checks):
        checks += spark_checks(loaded)
    checks += mlflow_checks(loaded)
    # A note quotes what failed, which may hold a value read from the environment.
    out(loaded.redact(format_table(checks)))
    failed = [c for c in checks if c.status == "FAIL"]
    if failed:
        out(
            loaded.redact(
                "doctor: NOT READY: "
                + "; ".join(f"{c.component}: {c.note or c.found}" for c in failed)
            )
        )
        return 3
    out("doctor: ready")
    return 0


def format_table(checks: list[Check]) -> str:
    head = ("component", "pinned", "found", "status", "note")
    rows = [head] + [(c.component, c.pinned, c.found, c.status, c.note) for c in checks]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(r[j].ljust(widths[j]) for j in range(len(widths))) + "  " + r[-1])
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 4)
    return "\n".join(line.rstrip() for line in lines)


def _short(exc: BaseException) -> str:
    """The first line of an error, without the credentials a URI in it may carry."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return safe_remote(safe_uri(first))[:200]
