"""The same job, deployed three ways: a real spark-submit, and a Spark Connect server.

Each test starts what it needs on loopback and stops it at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossdata import stack
from crossdata.spark.session import DELTA_SESSION_CONF, cached_jars

from .conftest import REPO
from .helpers import INTERPRETED, deliver, event, free_port, submit_conf

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _landing(tmp: Path) -> Path:
    landing = tmp / "landing"
    deliver(
        landing,
        "2026-03-05",
        "a.jsonl",
        [
            event("e1", "2026-03-05T10:00:00Z"),
            event("e2", "2026-03-05T10:05:00Z"),
            '{"event_id": "broken"',
        ],
    )
    return landing


def _jars() -> str:
    return ",".join(str(j) for j in cached_jars(str(REPO / ".cache" / "jars")))


def _env() -> dict[str, str]:
    return {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}


def _job_settings(tmp: Path) -> list[str]:
    return [
        "--set",
        f"lakehouse.root={tmp / 'lakehouse'}",
        "--set",
        f"spark.checkpoint_dir={tmp / 'checkpoints'}",
        "--set",
        "spark.shuffle_partitions=2",
    ]


def _check_ingested(spark, tmp: Path) -> None:
    lake = str(tmp / "lakehouse")
    bronze = spark.read.format("delta").load(f"{lake}/bronze/events")
    quarantine = spark.read.format("delta").load(f"{lake}/bronze/quarantine")
    runs = spark.read.format("delta").load(f"{lake}/ops/job_runs").collect()
    assert sorted(r["event_id"] for r in bronze.collect()) == ["e1", "e2"]
    assert [r["reason"] for r in quarantine.collect()] == ["malformed_record"]
    assert [(r["job"], r["status"], r["input_rows"]) for r in runs] == [("ingest", "succeeded", 3)]


def test_ingest_runs_under_spark_submit(spark, tmp_path):
    # Run from a folder without crossdata's jar cache: under spark-submit the job takes the
    # jars the submitter gave, and needs no cache of its own.
    landing = _landing(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    conf = submit_conf({**DELTA_SESSION_CONF, **INTERPRETED, "spark.ui.enabled": "false"})
    out = subprocess.run(
        [
            str(BIN / "spark-submit"),
            "--master",
            "local[2]",
            "--jars",
            _jars(),
            *conf,
            str(REPO / "jobs" / "main.py"),
            "ingest",
            "--source",
            "events",
            "--input",
            str(landing),
            *_job_settings(tmp_path),
            "--set",
            f"spark.jars.cache_dir={elsewhere / 'no-jars'}",
        ],
        cwd=elsewhere,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    # spark-submit's Python runner merges the job's stderr into stdout
    assert "spark session: building master=spark-submit" in out.stdout + out.stderr
    # A first run's streams have no checkpoint yet: asked without Spark's warning and trace.
    assert "FileNotFoundException" not in out.stdout + out.stderr
    _check_ingested(spark, tmp_path)


@pytest.fixture
def connect_server(tmp_path) -> Iterator[str]:
    """A Spark Connect server from the pinned pyspark, with Delta, on a free loopback port."""
    port = free_port()
    conf = submit_conf(
        {
            "spark.connect.grpc.binding.port": str(port),
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.ui.enabled": "false",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": "2",
            **INTERPRETED,
            **DELTA_SESSION_CONF,
        }
    )
    log = (tmp_path / "connect.log").open("w")
    server = subprocess.Popen(
        [
            str(BIN / "spark-submit"),
            "--class",
            "org.apache.spark.sql.connect.service.SparkConnectServer",
            "--master",
            "local[2]",
            "--jars",
            _jars(),
            *conf,
            "spark-internal",
        ],
        cwd=tmp_path,
        env=_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while "Spark Connect server started" not in (tmp_path / "connect.log").read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "Spark Connect server did not start:\n"
                    + (tmp_path / "connect.log").read_text()[-3000:]
                )
            time.sleep(1)
        yield f"sc://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_ingest_runs_over_spark_connect(spark, tmp_path, connect_server):
    landing = _landing(tmp_path)
    out = subprocess.run(
        [
            str(BIN / "crossdata"),
            "ingest",
            "--source",
            "events",
            "--input",
            str(landing),
            "--set",
            f"spark.remote={connect_server}",
            *_job_settings(tmp_path),
        ],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"connecting remote={connect_server}" in out.stderr
    _check_ingested(spark, tmp_path)
    assert stack.SPARK_VERSION in (tmp_path / "connect.log").read_text()
