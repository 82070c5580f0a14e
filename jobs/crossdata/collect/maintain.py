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

from crossdata.lakehouse import TABLES, table
from crossdata.lakehouse.store import DELTA_DEFAULT_FILE_RETENTION_HOURS
from crossdata.ops import Context, JobRun

log = logging.getLogger(__name__)


def run_maintenance(
    ctx: Context, run: JobRun, only: Sequence[str] | None = None, vacuum: bool = True
) -> str:
    """Maintain every existing crossdata table (or those named); return a small report."""
    lake = ctx.lake
    spark = ctx.spark
    settings = ctx.settings.collect.maintenance
    names = [table(n).name for n in only] if only else sorted(TABLES)
    existing = [n for n in names if lake.exists(n)]
    lines = ["table                          files before  after  constraints added or changed"]
    for i, name in enumerate(existing, 1):
        run.progress(i, len(existing), f"maintain {name}")
        spec = table(name)
        ident = lake.ident(name)
        before = _num_files(spark, ident)
        if lake.declare_stats_columns(name):
            log.info("maintain: statistics columns set table=%s", name)
        if settings.optimize:
            log.info("maintain: optimize table=%s zorder_by=%s", name, ",".join(spec.zorder_by))
            lake.optimize(name)
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
        lines.append(f"{name:<30} {before:<13} {after:<6} {', '.join(changed) or '-'}")
    if only:  # a table asked for by name and not there is said, not passed over in silence
        lines += [f"{n:<30} not created yet: skipped" for n in names if n not in existing]
    return "\n".join(lines)


def _num_files(spark, ident: str) -> int:
    row = spark.sql(f"DESCRIBE DETAIL {ident}").select("numFiles").first()
    return int(row[0]) if row is not None and row[0] is not None else 0
