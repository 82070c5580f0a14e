"""``crossdata maintain``: compact (OPTIMIZE, Z-order where declared), bring a table's
constraints and statistics columns up to what is declared now, and VACUUM old files with the
retention from conf (set on each table as ``delta.deletedFileRetentionDuration``, which Delta 4
honours where it ignores VACUUM's own RETAIN clause; see ``Lakehouse.vacuum``).

Each of those is a Delta commit and may meet another job's write (an ingest merging late events
into silver while OPTIMIZE rewrites the same files): like every lakehouse write, it is retried
with bounded back-off (``lakehouse.write_retries``), then fails with ConcurrentWriteError."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from crossdata.errors import CrossdataError
from crossdata.lakehouse import TABLES, table
from crossdata.lakehouse.store import DELTA_DEFAULT_FILE_RETENTION_HOURS
from crossdata.ops import Context, JobRun

log = logging.getLogger(__name__)

# Delta's own guard: VACUUM refuses a retention under the default 7 days while it is on.
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"


def retention_problem(hours: int, retention_check: str | None) -> str | None:
    """Why VACUUM may not run with a retention of ``hours``, or None.

    The retention is written on each table (``Lakehouse.vacuum``), and a plain VACUUM honours
    a table's own retention without Delta's guard. Below 7 days that can delete the files a job
    writing at the same time has written and not yet committed; its commit then names files
    that are gone. So crossdata keeps Delta's rule: a shorter retention needs Delta's guard
    turned off (``retention_check``: the session's value of ``RETENTION_CHECK``, None when
    unset), which says that no other job writes while VACUUM runs."""
    if hours >= DELTA_DEFAULT_FILE_RETENTION_HOURS:
        return None
    if (retention_check or "true").strip().lower() == "false":
        return None
    return (
        f"collect.maintenance.vacuum_retention_hours={hours} is below Delta's "
        f"{DELTA_DEFAULT_FILE_RETENTION_HOURS}-hour floor: VACUUM could delete files that a job "
        "writing at the same time has not committed yet, and corrupt the table. Raise it, run "
        f"maintain with --no-vacuum, or, when no other job writes meanwhile, set {RETENTION_CHECK} "
        "to false in spark.conf, as Delta itself asks"
    )


def run_maintenance(
    ctx: Context, run: JobRun, only: Sequence[str] | None = None, vacuum: bool = True
) -> str:
    """Maintain every existing crossdata table (or those named); return a small report."""
    lake = ctx.lake
    spark = ctx.spark
    settings = ctx.settings.collect.maintenance
    if vacuum:  # before anything is written: the session's own value decides
        problem = retention_problem(
            settings.vacuum_retention_hours, spark.conf.get(RETENTION_CHECK, None)
        )
        if problem is not None:
            raise CrossdataError(problem)
    names = list(dict.fromkeys(table(n).name for n in only)) if only else sorted(TABLES)
    existing = [n for n in names if lake.exists(n)]
    lines = [
        f"{'table':<30} {'files before':<13} {'after':<6} {'optimize':<27} "
        "constraints added or changed"
    ]
    for i, name in enumerate(existing, 1):
        run.progress(i, len(existing), f"maintain {name}")
        ident = lake.ident(name)
        before = _num_files(spark, ident)
        if lake.declare_stats_columns(name):
            log.info("maintain: statistics columns set table=%s", name)
        optimized = "-"
        if settings.optimize:
            optimized = lake.optimize(name)
            log.info("maintain: optimize table=%s done=%s", name, optimized)
        changed = lake.sync_constraints(name)
        if vacuum:
            hours = settings.vacuum_retention_hours
            if hours < DELTA_DEFAULT_FILE_RETENTION_HOURS:
                log.warning(
                    "maintain: vacuum below Delta's default %dh retention table=%s hours=%d; "
                    "a reader or stream behind by more than that loses the files it reads",
                    DELTA_DEFAULT_FILE_RETENTION_HOURS,
                    name,
                    hours,
                )
            lake.vacuum(name, hours)
        after = _num_files(spark, ident)
        run.count(output_rows=1)
        constraints = ", ".join(changed) or "-"
        lines.append(f"{name:<30} {before:<13} {after:<6} {optimized:<27} {constraints}")
    if only:  # a table asked for by name and not there is said, not passed over in silence
        lines += [f"{n:<30} not created yet: skipped" for n in names if n not in existing]
    return "\n".join(lines)


def _num_files(spark, ident: str) -> int:
    row = spark.sql(f"DESCRIBE DETAIL {ident}").select("numFiles").first()
    return int(row[0]) if row is not None and row[0] is not None else 0
