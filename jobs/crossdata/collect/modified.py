"""Landing files changed after they were read: found, recorded once, and reported.

Spark's file source knows a landing file by its path. Once a path is in the checkpoint's log,
the file is never read again, whatever happens to it afterwards. A partner who corrects a
delivery in place (the same name, new content), or an upload still being written when a run
listed its folder (the run read the first part; the rest arrived later), would otherwise lose
records without a word.

So after its streams, ``crossdata ingest`` lists the landing folders of the sources it took
(names, sizes and times only: no file is opened) and compares each file with the size and
modification time the file ledger (``ops.ingest_reconciliation``) recorded when the file was
read. A file now larger, smaller or newer is recorded once per state (size and time) in
``ops.ingest_modified_files``, and ``collect.modified_files`` decides what else happens:
``warn`` (log it and name it on the summary), ``fail`` (the run that finds it fails, after
everything else is loaded), or ``ignore`` (no listing at all, as Spark's file source alone).
The new content is not loaded: a corrected file is a new delivery, under a new name.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from functools import reduce

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from crossdata.collect.bronze import RECONCILIATION
from crossdata.contracts import Source
from crossdata.errors import InputContractError
from crossdata.lakehouse import Lakehouse
from crossdata.spark.session import to_uri

log = logging.getLogger(__name__)

MODIFIED_FILES = "ops.ingest_modified_files"
# Where the file is now, then what the ledger holds from when it was read.
MODIFIED_SCHEMA = (
    "run_id STRING, found_at TIMESTAMP, source STRING, file STRING, bytes BIGINT, "
    "modified_at TIMESTAMP, read_bytes BIGINT, read_modified_at TIMESTAMP, read_run_id STRING"
)
# MODIFIED_SCHEMA with the two file times in microseconds, as the driver builds the rows.
_MODIFIED_ROWS = (
    "run_id STRING, found_at TIMESTAMP, source STRING, file STRING, bytes BIGINT, "
    "modified_at BIGINT, read_bytes BIGINT, read_modified_at BIGINT, read_run_id STRING"
)
# The landing listing: a binaryFile read whose content column is never selected, so Spark
# stats each file and opens none.
BINARY_FILE_SCHEMA = "path STRING, modificationTime TIMESTAMP, length BIGINT, content BINARY"


def landing_files(spark: SparkSession, root: str, sources: Sequence[Source]) -> DataFrame:
    """The files in the landing folders of ``sources`` as the bronze streams see them:
    ``source``, ``file`` (the path as the stream writes it), ``bytes``, ``modified_at``."""
    frames = [
        spark.read.format("binaryFile")
        .schema(BINARY_FILE_SCHEMA)
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", f"*{source.extension}")
        .load(f"{to_uri(root).rstrip('/')}/{source.name}")
        .select(
            F.lit(source.name).alias("source"),
            F.col("path").alias("file"),
            F.col("length").alias("bytes"),
            F.col("modificationTime").alias("modified_at"),
        )
        for source in sources
    ]
    return reduce(DataFrame.unionByName, frames)


def _ledger_column(ledger: DataFrame, name: str, kind: str):
    # A ledger written by an older version may lack the column: then nothing is compared on it.
    return F.col(name) if name in ledger.columns else F.lit(None).cast(kind)


def modified_since_read(listing: DataFrame, reconciliation: DataFrame) -> DataFrame:
    """The files of ``listing`` whose size differs from, or whose modification time is later
    than, what the ledger recorded the last time each was read (``MODIFIED_SCHEMA`` less the
    run's columns). Files the ledger has never seen are the streams' business, not this."""
    last_read = Window.partitionBy("source", "file").orderBy(
        F.col("checked_at").desc(), F.col("batch_id").desc()
    )
    ledger = (
        reconciliation.select(
            "source",
            "file",
            "checked_at",
            "batch_id",
            _ledger_column(reconciliation, "bytes", "bigint").alias("read_bytes"),
            _ledger_column(reconciliation, "modified_at", "timestamp").alias("read_modified_at"),
            F.col("run_id").alias("read_run_id"),
        )
        .withColumn("_last", F.row_number().over(last_read))
        .where(F.col("_last") == 1)
        .drop("_last", "checked_at", "batch_id")
    )
    changed = (F.col("bytes") != F.col("read_bytes")) | (
        F.col("modified_at") > F.col("read_modified_at")
    )
    return listing.join(ledger, ["source", "file"]).where(F.coalesce(changed, F.lit(False)))


def audit_landing(
    lake: Lakehouse,
    run_id: str,
    sources: Sequence[Source],
    root: str,
    policy: str,
) -> dict[str, int]:
    """Record the landing files of ``sources`` changed since they were read (each state once)
    and apply ``policy``; return the newly recorded files per source."""
    if policy == "ignore" or not sources or not lake.exists(RECONCILIATION):
        return {}
    found = modified_since_read(landing_files(lake.spark, root, sources), lake.read(RECONCILIATION))
    if lake.exists(MODIFIED_FILES):
        known = lake.read(MODIFIED_FILES).select("source", "file", "bytes", "modified_at")
        found = found.join(known, ["source", "file", "bytes", "modified_at"], "left_anti")
    # One row per changed file not yet recorded: a subset of the landing listing, which the
    # file source holds on the driver anyway. Collected once so the rows written and the
    # counts reported come from the same listing. Times travel as microseconds (a Python
    # datetime is naive local time, an hour off in the hour a clock turns back).
    times = ("modified_at", "read_modified_at")
    rows = found.select(
        "source",
        "file",
        "bytes",
        F.unix_micros("modified_at").alias("modified_at"),
        "read_bytes",
        F.unix_micros("read_modified_at").alias("read_modified_at"),
        "read_run_id",
    ).collect()
    if not rows:
        return {}
    now = dt.datetime.now(dt.UTC)
    written = lake.spark.createDataFrame(
        [
            (
                run_id,
                now,
                r["source"],
                r["file"],
                r["bytes"],
                r["modified_at"],
                r["read_bytes"],
                r["read_modified_at"],
                r["read_run_id"],
            )
            for r in rows
        ],
        _MODIFIED_ROWS,
    ).withColumns({name: F.timestamp_micros(name) for name in times})
    lake.append(written, MODIFIED_FILES)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["source"]] = counts.get(r["source"], 0) + 1
    described = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
    message = (
        f"landing files changed after they were read ({described}); their new content was not "
        f"loaded: see {MODIFIED_FILES} for run {run_id}, and deliver corrected files under "
        "new names"
    )
    if policy == "fail":
        raise InputContractError(message + " (collect.modified_files=fail)")
    log.warning("ingest: %s", message)
    return counts
