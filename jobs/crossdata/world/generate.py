"""``crossdata generate``: simulate the sample world on Spark and write it with its truth.

Data flows one way. People (``spark.range`` -> ``mapInPandas``) and bots become landing lines
and truth rows; one ``groupBy(...).applyInPandas`` writes every landing file and truth part
from the executors and returns small result rows; the driver aggregates those (manifest,
placeholders, statistics) and writes the small truth files. Nothing per event ever reaches
the driver.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crossdata import contracts
from crossdata.config.schema import WorldSettings
from crossdata.world import files, sources, truth
from crossdata.world.model import WorldParams, build_params

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from crossdata.ops import JobRun

log = logging.getLogger(__name__)

# How much one task simulates (people x days); it bounds a task's memory, never the output.
PERSON_DAYS_PER_PARTITION = 12_000
STAGES = 4


def packed_schema():
    """One row per (file group, task): the group's lines packed as an Arrow IPC blob."""
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("kind", T.StringType(), False),
            T.StructField("source", T.StringType(), False),
            T.StructField("day", T.IntegerType(), False),
            T.StructField("shard", T.IntegerType(), False),
            T.StructField("rows", T.LongType(), False),
            T.StructField("payload", T.BinaryType(), False),
        ]
    )


def result_schema():
    """What the file writers return: one small row per fact."""
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("table", T.StringType(), False),
            T.StructField("bucket", T.IntegerType(), False),
            T.StructField("line", T.StringType(), False),
            T.StructField("n", T.LongType(), False),
        ]
    )


@dataclass
class Summary:
    """What a generation wrote, for the command line and the benchmark."""

    out: str
    persons: int
    days: int
    seed: int
    fault_rate: float
    seconds: float = 0.0
    lines: dict[str, int] = field(default_factory=dict)  # source -> lines (originals)
    files: dict[str, int] = field(default_factory=dict)
    bytes_written: int = 0
    bad_records: int = 0
    duplicates: int = 0
    late_records: int = 0
    redelivered_files: int = 0

    @property
    def total_lines(self) -> int:
        """Landing lines written (originals, copies excluded)."""
        return sum(self.lines.values())

    def describe(self) -> str:
        """A short report for the command line."""
        head = (
            f"sample world: {self.persons} persons x {self.days} days "
            f"(seed {self.seed}, fault rate {self.fault_rate}) in {self.seconds:.1f}s"
        )
        body = [
            f"  written to {self.out}: {sum(self.files.values())} files, "
            f"{self.total_lines:,} lines, {self.bytes_written / 1e6:,.1f} MB"
        ]
        for source in contracts.SOURCES:
            if source in self.lines:
                body.append(
                    f"  {source:<15}{self.lines[source]:>12,} lines in "
                    f"{self.files.get(source, 0)} files"
                )
        body.append(
            f"  bad records {self.bad_records:,}, duplicate records {self.duplicates:,}, "
            f"late records {self.late_records:,}, redelivered files {self.redelivered_files}"
        )
        body.append(f"  truth: {self.out.rstrip('/')}/{truth.TRUTH_DIR}/ (world.json and tables)")
        return "\n".join([head, *body])


# -- read: the simulated records ------------------------------------------------------------
def people_frame(spark: SparkSession, P: WorldParams) -> DataFrame:
    """Every person's landing lines and truth rows, simulated on the executors."""
    per_task = max(1, PERSON_DAYS_PER_PARTITION // P.days)
    parts = max(2, math.ceil(P.persons / per_task))
    return spark.range(0, P.persons, 1, parts).mapInPandas(
        lambda it: sources.simulate_partition(P, it), packed_schema()
    )


def bot_frame(spark: SparkSession, P: WorldParams) -> DataFrame:
    """The bots' requests and tag events."""
    indexes = [b.index for b in P.bots]
    return spark.createDataFrame([(i,) for i in indexes], "id long").mapInPandas(
        lambda it: sources.simulate_bots(P, it), packed_schema()
    )


def spend_frame(spark: SparkSession, P: WorldParams) -> DataFrame:
    """The spend export (small: built on the driver)."""
    return spark.createDataFrame(sources.spend_records(P), packed_schema())


# -- transform/write: one group per file ----------------------------------------------------
def written(packed: DataFrame, P: WorldParams, sink: files.Sink) -> DataFrame:
    """Write each group (landing file, truth part, statistic); returns the small result rows."""
    return packed.groupBy(*sources.GROUP_KEYS).applyInPandas(
        lambda pdf: files.write_group(P, sink, pdf), result_schema()
    )


def truth_written(results: DataFrame, sink: files.Sink) -> DataFrame:
    """Write the truth the file writers reported (bad records, duplicates, late records)."""
    from pyspark.sql import functions as F

    return (
        results.where(F.col("table").isin(*truth.WRITER_TABLES))
        .groupBy("table", "bucket")
        .applyInPandas(lambda pdf: files.write_truth_rows(sink, pdf), result_schema())
    )


# -- the job ----------------------------------------------------------------------------------
def generate_world(spark: SparkSession, settings: WorldSettings, run: JobRun) -> Summary:
    """Generate the world described by ``settings`` under ``settings.out``."""
    from pyspark.sql import functions as F

    started = time.monotonic()
    P = build_params(settings)
    sink = files.Sink(settings.out)
    log.info(
        "generate start persons=%d days=%d seed=%d fault_rate=%s out=%s",
        P.persons,
        P.days,
        P.seed,
        P.fault_rate,
        settings.out,
    )
    # The generator owns these folders: a previous world in them would mix with this one.
    for folder in (*contracts.SOURCES, truth.TRUTH_DIR):
        sink.remove(folder)

    run.progress(1, STAGES, "simulate people and bots, write landing files and truth parts")
    records = people_frame(spark, P).unionByName(bot_frame(spark, P))
    records = records.unionByName(spend_frame(spark, P))
    results = written(records, P, sink).localCheckpoint(eager=True)

    run.progress(2, STAGES, "write the writers' truth (bad records, duplicates, late records)")
    second = truth_written(results, sink).collect()

    run.progress(3, STAGES, "aggregate the manifest, placeholders and statistics")
    small = (
        results.where(~F.col("table").isin(*truth.WRITER_TABLES))
        .where(F.col("table") != "placeholders")
        .collect()
    )
    placeholder_counts = (
        results.where(F.col("table") == "placeholders")
        .groupBy("line")
        .agg(F.sum("n").alias("n"))
        .collect()
    )
    writer_counts: dict[str, int] = dict(
        results.where(F.col("table").isin(*truth.WRITER_TABLES)).groupBy("table").count().collect()
    )

    run.progress(4, STAGES, "write the small truth files")
    summary = _finish(P, sink, small, second, placeholder_counts, writer_counts)
    summary.seconds = time.monotonic() - started
    run.count(output_rows=summary.total_lines)
    run.details.update(
        {"persons": str(P.persons), "days": str(P.days), "files": str(sum(summary.files.values()))}
    )
    log.info(
        "generate done files=%d lines=%d bad=%d seconds=%.1f",
        sum(summary.files.values()),
        summary.total_lines,
        summary.bad_records,
        summary.seconds,
    )
    return summary


def _finish(P: WorldParams, sink, small, second, placeholder_counts, writer_counts) -> Summary:
    """Write manifest, placeholders, bots, channel effects, redeliveries and world.json."""
    import csv

    manifest_rows, redelivered_rows = [], []
    stats: Counter[str] = Counter()
    parts_written: set[str] = set()
    for row in [*small, *second]:
        if row["table"] == "manifest":
            manifest_rows.append(next(csv.reader([row["line"]])))
        elif row["table"] == "redelivered_files":
            redelivered_rows.append(next(csv.reader([row["line"]])))
        elif row["table"] == "stat":
            stats[row["line"]] += int(row["n"])
        elif row["table"] == "truth_part":
            parts_written.add(row["line"])
    # Every part of every table exists, even when no row fell into it.
    for table in truth.PART_TABLES:
        for part in range(P.truth_parts[table]):
            path = truth.part_path(table, part)
            if path not in parts_written:
                sink.write(path, (truth.header_line(table) + "\n").encode())
    placeholders = []
    for row in placeholder_counts:
        source, field_name, value = next(csv.reader([row["line"]]))
        placeholders.append((source, field_name, value, int(row["n"])))
    spend: dict[str, float] = {}
    for _day, channel, _cid, _name, cost, _imp, _clicks in sources.spend_rows(P):
        spend[channel] = spend.get(channel, 0.0) + cost
    summary = Summary(sink.root, P.persons, P.days, P.seed, P.fault_rate)
    for _file, source, _date, lines, size, _sha, kind, _records in manifest_rows:
        summary.files[source] = summary.files.get(source, 0) + 1
        summary.bytes_written += int(size)
        if kind == "original":
            summary.lines[source] = summary.lines.get(source, 0) + int(lines)
    summary.bad_records = int(writer_counts.get("bad_records", 0))
    summary.duplicates = int(writer_counts.get("duplicates", 0))
    summary.late_records = int(writer_counts.get("late_records", 0))
    summary.redelivered_files = len(redelivered_rows)
    d = truth.TRUTH_DIR
    sink.write(f"{d}/manifest.csv", truth.csv_text("manifest", manifest_rows))
    sink.write(f"{d}/redelivered_files.csv", truth.csv_text("redelivered_files", redelivered_rows))
    sink.write(f"{d}/placeholders.csv", truth.csv_text("placeholders", placeholders))
    sink.write(f"{d}/bots.csv", truth.csv_text("bots", truth.bots_rows(P)))
    sink.write(
        f"{d}/channel_effects.csv",
        truth.csv_text("channel_effects", truth.channel_rows(P, stats, spend)),
    )
    counts = {
        "landing_files": sum(summary.files.values()),
        "landing_lines": summary.total_lines,
        "bad_records": summary.bad_records,
        "duplicates": summary.duplicates,
        "late_records": summary.late_records,
        "redelivered_files": summary.redelivered_files,
        **{f"lines:{k}": v for k, v in summary.lines.items()},
    }
    sink.write(f"{d}/world.json", truth.world_json(P, stats, counts))
    return summary
