"""The pinned stack is pinned once: pyproject, pom and stack.py agree, and jars come from disk."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import importlib.util
import os
import re
import subprocess
import sys
import tarfile
import threading
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from crossdata import stack
from crossdata.spark.session import session_conf

from .conftest import REPO

POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def _pom_properties() -> dict[str, str]:
    root = ET.parse(REPO / "infra" / "jars" / "pom.xml").getroot()
    props = root.find("m:properties", POM_NS)
    assert props is not None
    return {el.tag.split("}")[1]: (el.text or "") for el in props}


def test_pom_and_stack_name_the_same_jvm_artifacts():
    props = _pom_properties()
    assert props["delta.version"] == stack.DELTA_VERSION
    assert props["spark.minor"] == stack.SPARK_MINOR
    assert props["scala.binary"] == stack.SCALA_BINARY
    assert props["graphframes.version"] == stack.GRAPHFRAMES_VERSION


def test_pyproject_pins_match_the_stack_table():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dep in deps:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]+\])?==([^;\s]+)", dep)
        assert m, f"{dep!r} is not pinned exactly"
        pins[m.group(1).lower()] = m.group(2)
    for dist, version in stack.PYTHON_PACKAGES.items():
        assert pins[dist] == version, dist
    assert stack.SPARK_VERSION.startswith(stack.SPARK_MINOR + ".")


def test_local_sessions_load_jars_from_the_cache_and_resolve_nothing(loaded):
    conf = session_conf(loaded.settings.spark)
    assert "spark.jars.packages" not in conf
    jars = conf["spark.jars"].split(",")
    assert any(j.endswith(stack.DELTA_JAR.jar_name) for j in jars)
    assert all(j.startswith(str(REPO / ".cache" / "jars")) for j in jars)


_DEBUGGING = "spark.python.sql.dataFrameDebugging.enabled"


def test_sessions_crossdata_builds_do_not_record_a_call_site_per_column_function(spark):
    """PySpark then skips the stack walk and JVM round trips it makes for every Column call."""
    from pyspark.errors.utils import is_debugging_enabled

    assert spark.conf.get(_DEBUGGING) == "false"
    assert is_debugging_enabled() is False


def test_spark_conf_turns_the_call_sites_back_on(loaded):
    settings = dataclasses.replace(loaded.settings.spark, conf={_DEBUGGING: "true"})
    assert session_conf(settings)[_DEBUGGING] == "true"
    assert session_conf(loaded.settings.spark)[_DEBUGGING] == "false"


@functools.cache
def _get_maven():
    """``infra/get-maven.py`` as a module (its file name is a command's, not an import's)."""
    spec = importlib.util.spec_from_file_location("get_maven", REPO / "infra" / "get-maven.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_jar_cache_re_resolves_offline(tmp_path):
    """The second resolution needs no network: the pinned Maven, offline, finds everything."""
    get_maven = _get_maven()
    mvn = get_maven.install(REPO / ".cache" / "maven")  # installed by make setup
    assert mvn.parent.parent.name == f"apache-maven-{get_maven.VERSION}"
    out = subprocess.run(
        [
            str(mvn),
            "-B",
            "-q",
            "-o",
            "-f",
            str(REPO / "infra" / "jars" / "pom.xml"),
            f"-Dmaven.repo.local={REPO / '.cache' / 'm2'}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp_path}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / stack.DELTA_JAR.jar_name).is_file()


def test_readme_names_the_pinned_maven():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"| Apache Maven (set-up only) | {_get_maven().VERSION} |" in readme


class _Mirror:
    """A Maven repository layout served on loopback, counting the requests it answers."""

    def __init__(self, root: Path) -> None:
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):
                mirror.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/maven2"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Mirror:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _publish(root: Path, version: str) -> str:
    """A small archive laid out as Maven's (``apache-maven-<v>/bin/mvn``); its SHA-512."""
    folder = root / "maven2" / "org" / "apache" / "maven" / "apache-maven" / version
    folder.mkdir(parents=True)
    script = root / "mvn"
    script.write_text("#!/bin/sh\necho fake maven\n")
    script.chmod(0o755)
    archive = folder / f"apache-maven-{version}-bin.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(script, arcname=f"apache-maven-{version}/bin/mvn")
    return hashlib.sha512(archive.read_bytes()).hexdigest()


def test_maven_is_installed_once_from_the_repository(tmp_path):
    get_maven = _get_maven()
    sha = _publish(tmp_path / "www", "9.9.1")
    cache = tmp_path / "cache"
    with _Mirror(tmp_path / "www") as mirror:
        mvn = get_maven.install(cache, "9.9.1", sha, repo=mirror.url)
        again = get_maven.install(cache, "9.9.1", sha, repo=mirror.url)
    assert mvn == again == cache / "apache-maven-9.9.1" / "bin" / "mvn"
    assert subprocess.run([str(mvn)], capture_output=True, text=True).stdout == "fake maven\n"
    assert mirror.requests == [
        "/maven2/org/apache/maven/apache-maven/9.9.1/apache-maven-9.9.1-bin.tar.gz"
    ]  # the second call found the installation
    assert sorted(p.name for p in cache.iterdir()) == ["apache-maven-9.9.1"]  # no leftovers


def test_an_archive_other_than_the_pinned_one_is_refused_and_nothing_is_installed(tmp_path):
    get_maven = _get_maven()
    _publish(tmp_path / "www", "9.9.2")
    cache = tmp_path / "cache"
    with _Mirror(tmp_path / "www") as mirror:
        with pytest.raises(get_maven.MavenDownloadError, match="does not match the pinned SHA-512"):
            get_maven.install(cache, "9.9.2", "0" * 128, repo=mirror.url)
        with pytest.raises(get_maven.MavenDownloadError, match=r"cannot download .*9\.9\.3.*404"):
            get_maven.install(cache, "9.9.3", "0" * 128, repo=mirror.url)
    assert list(cache.iterdir()) == []


def test_the_command_prints_the_installed_maven_or_fails_with_one_line(tmp_path):
    _publish(tmp_path / "www", "9.9.4")  # another version than the pinned one
    with _Mirror(tmp_path / "www") as mirror:
        # the pinned version is not on this mirror: one clear line and exit 1
        out = subprocess.run(
            [sys.executable, str(REPO / "infra" / "get-maven.py"), str(tmp_path / "cache")],
            env={**os.environ, "CROSSDATA_MAVEN_REPO": mirror.url},
            capture_output=True,
            text=True,
            check=False,
        )
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("maven: cannot download ") and mirror.url in out.stderr


_FOREIGN_SESSION = """
import sys
from pyspark.sql import SparkSession
from crossdata.config import load_settings
from crossdata.spark import get_spark

# A notebook's or a platform's session: built without crossdata, no checkpoint folder.
own = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
assert own.sparkContext.getCheckpointDir() is None
settings = load_settings(overrides=[f"spark.checkpoint_dir={sys.argv[1]}"]).settings
assert get_spark(settings) is own
print(own.sparkContext.getCheckpointDir())
own.stop()
"""


def test_a_session_crossdata_did_not_build_gets_the_checkpoint_folder(tmp_path):
    # The identity engine's reliable checkpoints need one past its first round.
    out = subprocess.run(
        [sys.executable, "-c", _FOREIGN_SESSION, str(tmp_path / "chk")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1].startswith(f"file:{tmp_path / 'chk'}")
