"""Small builders shared by tests: landing files, free ports, test-only Spark settings."""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from pathlib import Path

# Spark's own switch to evaluate expressions interpreted. On a test's few rows, compiling
# generated code costs more than it saves: a small in-process ingest ran 13 % faster, a cold
# single-file `crossdata ingest` 94-95 s instead of 106-112 s. The test session and the jobs the
# crash and deployment tests start use it; `make demo` and the bench test keep generated code.
INTERPRETED = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}


# Adaptive execution off, for the test session only. It plans each shuffle stage as a query of
# its own once the one before has run: on a test's few rows those extra jobs and re-plans cost
# more than the partitions they save: test_ingest.py and test_bots.py took 201.6 s instead of
# 228.5 s. Jobs the tests start in other processes, `make demo` and the benches keep it, as the
# conf sets it, and so does the one test that reads an adaptive plan (test_bots.py).
NOT_ADAPTIVE = {"spark.sql.adaptive.enabled": "false"}


def interpreted_override() -> str:
    """``INTERPRETED`` as one ``--set`` override of the job's ``spark.conf``."""
    return "spark.conf={" + ", ".join(f"{k}: '{v}'" for k, v in INTERPRETED.items()) + "}"


def submit_conf(conf: Mapping[str, str]) -> list[str]:
    """Spark settings as ``spark-submit --conf KEY=VALUE`` arguments."""
    return [arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")]


def is_utf8(raw: bytes) -> bool:
    """Whether ``raw`` is valid UTF-8."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def event(event_id: str, ts: str, cookie: str = "ck_a", **fields: object) -> str:
    """One valid events line (JSON) with overridable fields."""
    return json.dumps(
        {
            "event_id": event_id,
            "event_type": "page_view",
            "ts": ts,
            "platform": "web",
            "cookie_id": cookie,
            "page_url": "https://shop.example/p/1",
            **fields,
        }
    )


def deliver(landing: Path, day: str, name: str, lines: list[str], source: str = "events") -> Path:
    """Write a landing file ``<landing>/<source>/<day>/<name>``."""
    folder = landing / source / day
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def daily_events(landing: Path, days: int, per_day: int) -> Path:
    """One ``events.jsonl`` of ``per_day`` valid events per day from 2026-03-01, on 7 cookies."""
    for d in range(days):
        day = f"2026-03-{d + 1:02d}"
        lines = [
            event(f"e{d}-{i}", f"{day}T{8 + i % 10:02d}:{i % 60:02d}:00Z", cookie=f"ck{i % 7}")
            for i in range(per_day)
        ]
        deliver(landing, day, "events.jsonl", lines)
    return landing


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
