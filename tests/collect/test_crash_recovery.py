"""A real kill of a running ingest, and two ingests at once: nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import REPO
from ..helpers import deliver, event

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
DAYS = 4  # one file per day and per micro-batch: the kill lands after two, before the last
EVENTS_PER_DAY = 30


def _landing(tmp: Path) -> Path:
    landing = tmp / "landing"
    for d in range(DAYS):
        day = f"2026-03-{d + 1:02d}"
        lines = [
            event(f"e{d}-{i}", f"{day}T{8 + i % 10:02d}:{i:02d}:00Z", cookie=f"ck{i % 7}")
            for i in range(EVENTS_PER_DAY)
        ]
        deliver(landing, day, "events.jsonl", lines)
    return landing


def _command(tmp: Path, landing: Path) -> list[str]:
    return [
        str(BIN / "crossdata"),
        "ingest",
        "--source",
        "events",
        "--input",
        str(landing),
        "--set",
        f"lakehouse.root={tmp / 'lakehouse'}",
        "--set",
        f"spark.checkpoint_dir={tmp / 'checkpoints'}",
        "--set",
        "spark.shuffle_partitions=2",
        "--set",
        "collect.max_bytes_per_trigger=null",  # count files instead of bytes:
        "--set",
        "collect.max_files_per_trigger=1",  # one file per batch: many commits
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "PYSPARK_PYTHON": sys.executable}


def _commits(table: Path) -> int:
    log = table / "_delta_log"
    return len(list(log.glob("*.json"))) if log.is_dir() else 0


def _assert_everything_once(spark, tmp: Path) -> None:
    lake = tmp / "lakehouse"
    bronze = spark.read.format("delta").load(str(lake / "bronze" / "events"))
    silver = spark.read.format("delta").load(str(lake / "silver" / "events"))
    recon = spark.read.format("delta").load(str(lake / "ops" / "ingest_reconciliation"))
    expected = DAYS * EVENTS_PER_DAY
    assert bronze.count() == expected
    assert bronze.select("event_id").distinct().count() == expected
    assert silver.count() == expected
    assert recon.where("status <> 'ok'").count() == 0
    per_file = recon.groupBy("file").sum("read", "loaded").collect()
    assert len(per_file) == DAYS
    assert all(r["sum(read)"] == r["sum(loaded)"] == EVENTS_PER_DAY for r in per_file)


def test_killed_ingest_resumes_without_loss_or_duplicates(spark, tmp_path):
    landing = _landing(tmp_path)
    bronze_table = tmp_path / "lakehouse" / "bronze" / "events"
    job = subprocess.Popen(
        _command(tmp_path, landing),
        cwd=REPO,
        env=_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    # Wait until a few batches are committed, then kill the job and its JVM at once.
    while _commits(bronze_table) < 3:
        assert job.poll() is None, "the job ended before it could be killed"
        assert time.monotonic() < deadline, "no progress to interrupt"
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait(timeout=60)
    partial = _commits(bronze_table)
    assert 3 <= partial < DAYS + 1, "the kill must land mid-run"

    rerun = subprocess.run(
        _command(tmp_path, landing),
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    _assert_everything_once(spark, tmp_path)


def test_two_ingests_at_once_corrupt_nothing(spark, tmp_path):
    landing = _landing(tmp_path)
    # Output goes to files: two jobs writing into pipes that are read only after wait() can
    # fill a pipe and block each other.
    logs = [tmp_path / f"job{i}.err" for i in range(2)]
    jobs = []
    for log_file in logs:
        with log_file.open("w") as err:
            jobs.append(
                subprocess.Popen(
                    _command(tmp_path, landing),
                    cwd=REPO,
                    env=_env(),
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    text=True,
                )
            )
    results = [(j.wait(timeout=1200), f.read_text()) for j, f in zip(jobs, logs, strict=True)]
    for code, err in results:
        # Each either finishes or stops with one clear line saying another job holds the stream.
        assert code == 0 or "another job is using its checkpoint" in err, err[-3000:]
    assert any(code == 0 for code, _ in results)
    # Whatever the race left undone, one more run completes it, still exactly once.
    final = subprocess.run(
        _command(tmp_path, landing),
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert final.returncode == 0, final.stderr[-3000:]
    _assert_everything_once(spark, tmp_path)
