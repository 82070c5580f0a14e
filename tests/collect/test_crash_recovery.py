"""A real kill of a running ingest, and two ingests at once: nothing lost, nothing twice.

The jobs that are killed or race each other are real ``crossdata ingest`` processes. The run
that resumes after them is the same ingest (``run_ingest`` in a job run, as the command does)
in the test's own warm session: it reads only what those processes left on disk, and it
saves a cold JVM start per test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from ..conftest import REPO, make_settings
from ..helpers import daily_events, interpreted_override

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
DAYS = 4  # one file per day and per micro-batch: the kill lands after two, before the last
EVENTS_PER_DAY = 30


def _landing(tmp: Path) -> Path:
    return daily_events(tmp / "landing", DAYS, EVENTS_PER_DAY)


# count files instead of bytes, one file per batch: many commits to land a kill between
ONE_FILE_PER_BATCH = ("collect.max_bytes_per_trigger=null", "collect.max_files_per_trigger=1")


def _command(tmp: Path, landing: Path) -> list[str]:
    settings = [
        f"lakehouse.root={tmp / 'lakehouse'}",
        f"spark.checkpoint_dir={tmp / 'checkpoints'}",
        "spark.shuffle_partitions=2",
        interpreted_override(),
        *ONE_FILE_PER_BATCH,
    ]
    command = [str(BIN / "crossdata"), "ingest", "--source", "events", "--input", str(landing)]
    for setting in settings:
        command += ["--set", setting]
    return command


def _ingest_here(spark, tmp: Path, landing: Path) -> None:
    """The same ingest as ``_command``, in this session, on the same lakehouse and checkpoints
    (make_settings points both under ``tmp`` as the command does)."""
    from crossdata.collect.ingest import run_ingest
    from crossdata.ops import Context, job_run

    loaded = make_settings(tmp, f"collect.landing={landing}", *ONE_FILE_PER_BATCH)
    ctx = Context.create(loaded, spark=spark)
    with job_run(ctx, "ingest") as run:
        run_ingest(ctx, run, ["events"])


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

    _ingest_here(spark, tmp_path, landing)
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
        # Both may stop: when both run batch 0, the one that commits it second is stopped by
        # Spark's checkpoint log, and the other can then be stopped at its next batch.
        assert code == 0 or "another job is using its checkpoint" in err, err[-3000:]
    # What the race wrote is whole: no record twice, every file it read reconciled.
    lake = tmp_path / "lakehouse"
    if (lake / "bronze" / "events" / "_delta_log").is_dir():
        bronze = spark.read.format("delta").load(str(lake / "bronze" / "events"))
        rows, ids = bronze.agg(F.count(F.lit(1)), F.count_distinct("event_id")).first()
        assert rows == ids
    if (lake / "ops" / "ingest_reconciliation" / "_delta_log").is_dir():
        recon = spark.read.format("delta").load(str(lake / "ops" / "ingest_reconciliation"))
        files, distinct_files, mismatches = recon.agg(
            F.count(F.lit(1)),
            F.count_distinct("file"),
            F.count(F.when(F.col("status") != "ok", 1)),
        ).first()
        assert mismatches == 0
        assert files == distinct_files  # no file reconciled twice
    # Whatever the race left undone, one more run completes it, still exactly once.
    _ingest_here(spark, tmp_path, landing)
    _assert_everything_once(spark, tmp_path)
