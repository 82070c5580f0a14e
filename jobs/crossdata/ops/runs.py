"""What every job shares: its context, its row in ``ops.job_runs``, progress and alerts.

A job is a function ``(ctx, run) -> None`` wrapped by ``job_run``: the wrapper records start,
end, status, counts, package version, git commit and config hash, records failures too, then
lets the error propagate.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import re
import subprocess
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from crossdata import __version__
from crossdata.config import Loaded
from crossdata.config.schema import Settings
from crossdata.errors import CrossdataError
from crossdata.lakehouse import Lakehouse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 4000


@dataclass
class Context:
    """The session, settings and lakehouse a job runs against."""

    spark: SparkSession
    loaded: Loaded
    lake: Lakehouse

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    @classmethod
    def create(cls, loaded: Loaded, spark: SparkSession | None = None) -> Context:
        from crossdata.spark import get_spark

        session = spark or get_spark(loaded.settings)
        return cls(session, loaded, Lakehouse.from_settings(session, loaded.settings))


@dataclass
class JobRun:
    """The running job's identity and counters; the job fills in rows and details."""

    run_id: str
    job: str
    started_at: dt.datetime
    input_rows: int | None = None
    output_rows: int | None = None
    details: dict[str, str] = field(default_factory=dict)
    _t0: float = field(default_factory=time.monotonic)

    def count(self, input_rows: int = 0, output_rows: int = 0) -> None:
        """Add to the run's input and output row counts."""
        self.input_rows = (self.input_rows or 0) + input_rows
        self.output_rows = (self.output_rows or 0) + output_rows

    def progress(self, step: int, total: int, what: str, rows: int | None = None) -> None:
        """Log ``stage i/n`` with rows and elapsed time (for long jobs)."""
        elapsed = time.monotonic() - self._t0
        rows_part = f" rows={rows}" if rows is not None else ""
        log.info(
            "progress job=%s stage=%d/%d step=%s%s elapsed=%.1fs",
            self.job,
            step,
            total,
            what,
            rows_part,
            elapsed,
        )


@functools.cache
def git_commit() -> str:
    """The commit crossdata runs from: $CROSSDATA_GIT_COMMIT, else git, else 'unknown'."""
    env = os.environ.get("CROSSDATA_GIT_COMMIT")
    if env:
        return env
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def new_run_id(job: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{job.replace(' ', '-')}-{stamp}-{uuid.uuid4().hex[:8]}"


@contextmanager
def job_run(ctx: Context, job: str, run_id: str | None = None) -> Iterator[JobRun]:
    """Run a job body, then append its row to ``ops.job_runs``, whether it succeeded or not."""
    run = JobRun(run_id or new_run_id(job), job, dt.datetime.now(dt.UTC))
    log.info("job start job=%s run_id=%s", job, run.run_id)
    try:
        yield run
    except BaseException as exc:
        message = _error_text(exc)
        _record(ctx, run, "failed", message)
        log.error("job failed job=%s run_id=%s error=%s", job, run.run_id, message.splitlines()[0])
        raise
    _record(ctx, run, "succeeded", None)
    log.info(
        "job done job=%s run_id=%s input_rows=%s output_rows=%s elapsed=%.1fs",
        job,
        run.run_id,
        run.input_rows,
        run.output_rows,
        time.monotonic() - run._t0,
    )


def _error_text(exc: BaseException) -> str:
    """The error as ops.job_runs and the log keep it. Spark's own messages quote the row
    values they failed on (``The value 'alice@example.com' ... cannot be cast``): every
    quoted literal in them is withheld. crossdata's messages quote no row values."""
    detail = str(exc)
    if not isinstance(exc, CrossdataError):
        detail = re.sub(r"'[^'\n]*'", "'<withheld>'", detail)
    text = f"{type(exc).__name__}: {detail}"
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS] + "...(truncated)"
    return text or "".join(traceback.format_exception_only(type(exc), exc))


def _record(ctx: Context, run: JobRun, status: str, error: str | None) -> None:
    from pyspark.sql import types as T

    ended = dt.datetime.now(dt.UTC)
    schema = T.StructType(
        [
            T.StructField("run_id", T.StringType(), False),
            T.StructField("job", T.StringType(), False),
            T.StructField("started_at", T.TimestampType(), False),
            T.StructField("ended_at", T.TimestampType(), True),
            T.StructField("status", T.StringType(), False),
            T.StructField("error_message", T.StringType(), True),
            T.StructField("package_version", T.StringType(), True),
            T.StructField("git_commit", T.StringType(), True),
            T.StructField("config_hash", T.StringType(), True),
            T.StructField("profile", T.StringType(), True),
            T.StructField("input_rows", T.LongType(), True),
            T.StructField("output_rows", T.LongType(), True),
            T.StructField("details", T.MapType(T.StringType(), T.StringType()), True),
        ]
    )
    row = (
        run.run_id,
        run.job,
        run.started_at,
        ended,
        status,
        error,
        __version__,
        git_commit(),
        ctx.loaded.fingerprint(),
        ctx.loaded.profile,
        run.input_rows,
        run.output_rows,
        {k: str(v) for k, v in run.details.items()},
    )
    try:
        ctx.lake.append(ctx.spark.createDataFrame([row], schema), "ops.job_runs")
    except Exception:
        # Never hide the job's own error behind a bookkeeping failure.
        log.exception("could not record job run job=%s run_id=%s", run.job, run.run_id)
        if status == "succeeded":
            raise


def raise_alert(
    ctx: Context,
    run: JobRun | None,
    severity: str,
    kind: str,
    message: str,
    details: Mapping[str, object] | None = None,
) -> None:
    """Append a row to ``ops.alerts`` and log it as a warning (no personal data in message)."""
    from pyspark.sql import types as T

    schema = T.StructType(
        [
            T.StructField("alert_id", T.StringType(), False),
            T.StructField("run_id", T.StringType(), True),
            T.StructField("job", T.StringType(), True),
            T.StructField("raised_at", T.TimestampType(), False),
            T.StructField("severity", T.StringType(), False),
            T.StructField("kind", T.StringType(), False),
            T.StructField("message", T.StringType(), False),
            T.StructField("details", T.MapType(T.StringType(), T.StringType()), True),
        ]
    )
    row = (
        uuid.uuid4().hex,
        run.run_id if run else None,
        run.job if run else None,
        dt.datetime.now(dt.UTC),
        severity,
        kind,
        message,
        {k: str(v) for k, v in (details or {}).items()},
    )
    log.warning("alert severity=%s kind=%s message=%s", severity, kind, message)
    ctx.lake.append(ctx.spark.createDataFrame([row], schema), "ops.alerts")
