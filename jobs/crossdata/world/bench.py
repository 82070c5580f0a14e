"""``crossdata bench generate``: how fast the sample world is written, beside plain Spark.

For each size (events in the ``events`` source) a world of 28 days is generated with enough
people to reach it. In the same run, the reference writes as many lines of the same average
length with Spark's own text writer (``spark.range`` formatted to strings) to the same disk,
so the ratio says what the simulation, the faults and the truth cost on top of writing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import os
import shutil
from pathlib import Path

from crossdata.bench import Table, driver_peak_rss_mb, human, parse_sizes, timed
from crossdata.config import Loaded
from crossdata.world.model import LINES_PER_PERSON_DAY

log = logging.getLogger(__name__)

DEFAULT_SIZES = ("1M", "10M")
DAYS = 28


def persons_for(events: int, days: int = DAYS) -> int:
    """How many people make about ``events`` site/app events in ``days`` days."""
    return max(100, round(events / (LINES_PER_PERSON_DAY["events"] * days)))


def folder_bytes(path: Path) -> int:
    """Bytes of every file under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def reference_seconds(spark, lines: int, width: int, path: Path) -> float:
    """Plain Spark writing ``lines`` text lines of ``width`` characters to ``path``."""
    from pyspark.sql import functions as F

    frame = spark.range(lines).select(
        F.rpad(F.col("id").cast("string"), max(width, 1), "x").alias("value")
    )
    with timed() as t:
        frame.write.mode("overwrite").text(str(path))
    return t.seconds


def run(args: argparse.Namespace, loaded: Loaded) -> int:
    """Generate worlds of the requested sizes and print the timing table."""
    from crossdata.ops.runs import JobRun, new_run_id
    from crossdata.spark import get_spark
    from crossdata.world.generate import generate_world

    sizes = parse_sizes(args.sizes, DEFAULT_SIZES)
    spark = get_spark(loaded.settings)
    workdir = Path(args.workdir).expanduser().resolve()
    table = Table(
        "Sample world generation",
        [
            "events",
            "persons x days",
            "lines (all sources)",
            "seconds",
            "events/s",
            "MB written",
            "reference s",
            "ratio",
            "driver peak RSS MB",
        ],
    )
    for size in sizes:
        persons = persons_for(size)
        out = workdir / f"world-{human(size)}"
        settings = dataclasses.replace(
            loaded.settings.world, persons=persons, days=DAYS, out=str(out)
        )
        job = JobRun(new_run_id("bench-generate"), "bench generate", dt.datetime.now(dt.UTC))
        log.info("bench generate size=%d persons=%d days=%d", size, persons, DAYS)
        with timed() as t:
            summary = generate_world(spark, settings, job)
        written = folder_bytes(out)
        width = max(1, round(summary.bytes_written / max(summary.total_lines, 1)) - 1)
        ref = reference_seconds(spark, summary.total_lines, width, workdir / "reference")
        events = summary.lines.get("events", 0)
        table.add(
            human(events),
            f"{persons} x {DAYS}",
            human(summary.total_lines),
            f"{t.seconds:.1f}",
            human(events / t.seconds),
            f"{written / 1e6:,.0f}",
            f"{ref:.1f}",
            f"{t.seconds / ref:.1f}x",
            f"{driver_peak_rss_mb():.0f}",
        )
        # Worlds are large; keep the disk for the next size.
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(workdir / "reference", ignore_errors=True)
    table.emit(args.output)
    print(f"machine: {os.cpu_count()} cores, master={loaded.settings.spark.master}")
    return 0
