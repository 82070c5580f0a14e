"""Landing files whose records a run did not load: rewritten after they were read, gone
first, or misnamed.

Spark's file source knows a landing file by its path, and trusts it to stay as it was listed.
Two changes would lose records without a word:

- **rewritten**: once a path is in the checkpoint's log, the file is never read again. A
  partner who corrects a delivery in place (the same name, new content), or an upload still
  being written when a run listed its folder (the run read the first part; the rest came
  later), is not seen. So after its streams, ``crossdata ingest`` lists the landing folders of
  the sources it took (names, sizes and times only: no file is opened) and compares each file
  with the size and modification time the file ledger (``ops.ingest_reconciliation``) recorded
  when it was read. A file now larger, smaller or newer is recorded once per state.
- **gone**: a micro-batch reads the files the source's log assigned to it. A file deleted or
  moved between that listing and the read (a clean-up job on the landing zone, or a job
  killed, then the file removed before the next run replays the batch) is skipped by Spark
  with a log line only. Each bronze batch compares the files it read with its entry in the
  checkpoint's log and records the missing ones.

And one file is never read at all: **misnamed**, a file in a source's folder whose name does
not end as the source's files do (``Source.file_suffixes``: ``events.json`` beside the
``*.jsonl`` files, a ``.zip``), or any file in a folder of a local landing root that names
no source (``evnets/``; recorded under that folder's name). The same listing records it,
once per state. Names starting with ``.`` or ``_`` are not listed: Spark leaves them out, as
uploads in progress and markers (``_SUCCESS``) are named.

All three go to ``ops.ingest_file_changes``; ``collect.file_changes`` decides what else happens:
``warn`` (log them and name them on the summary), ``fail`` (the run that finds them fails,
after everything else is loaded), or ``ignore`` (no landing listing, as Spark's file source
alone; gone files, found at no cost, are still recorded). The new content is not loaded: a
corrected file is a new delivery, under a new name.
"""

from __future__ import annotations

import datetime as dt
import logging
import operator
from collections.abc import Iterable, Sequence
from functools import reduce
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from crossdata.collect.formats import readable_by_path
from crossdata.collect.ledgers import FILE_CHANGES, RECONCILIATION
from crossdata.contracts import SOURCES, Source
from crossdata.errors import InputContractError
from crossdata.lakehouse import Lakehouse
from crossdata.spark.session import local_path, to_uri

log = logging.getLogger(__name__)

REWRITTEN, GONE, MISNAMED = "rewritten", "gone", "misnamed"
# The file as it is now (gone: as the log listed it), then what the ledger recorded when it
# was read (rewritten only); batch_id: the bronze batch a gone file was assigned to.
FILE_CHANGES_SCHEMA = (
    "run_id STRING, found_at TIMESTAMP, source STRING, file STRING, change STRING, "
    "batch_id BIGINT, bytes BIGINT, modified_at TIMESTAMP, read_bytes BIGINT, "
    "read_modified_at TIMESTAMP, read_run_id STRING"
)
_TIMES = ("modified_at", "read_modified_at")
# The same with the two file times in microseconds, as the driver builds the rows: a Python
# datetime is naive local time, an hour off in the hour a clock turns back.
_ROWS = ", ".join(
    f"{column.split()[0]} BIGINT" if column.split()[0] in _TIMES else column
    for column in FILE_CHANGES_SCHEMA.split(", ")
)
# The landing listing: a binaryFile read whose content column is never selected, so Spark
# stats each file and opens none.
BINARY_FILE_SCHEMA = "path STRING, modificationTime TIMESTAMP, length BIGINT, content BINARY"
_LOG_ENTRY = "path STRING, timestamp BIGINT, batchId BIGINT"


def change_rows(spark: SparkSession, rows: Iterable[tuple]) -> DataFrame:
    """Rows of ``ops.ingest_file_changes`` from tuples in ``_ROWS`` order (times in µs)."""
    return spark.createDataFrame(list(rows), _ROWS).withColumns(
        {name: F.timestamp_micros(name) for name in _TIMES}
    )


# -- gone before their batch read them ---------------------------------------------------------
def hadoop_path(uri: str) -> str:
    """A path as the file source's log writes it (an escaped URI, ``file:///x%20y``) in the
    form binaryFile rows give it (``file:/x y``)."""
    parts = urlsplit(uri)
    path = unquote(parts.path)
    return f"{parts.scheme}://{parts.netloc}{path}" if parts.netloc else f"{parts.scheme}:{path}"


def planned_files(spark: SparkSession, checkpoint: str, batch_id: int) -> list[tuple[str, int]]:
    """The files the file source's log assigned to ``batch_id``: (path as binaryFile gives
    it, modification time in µs). The log is ``sources/0/<batch>`` (or ``<batch>.compact``
    every tenth batch, which holds all earlier entries too), one JSON entry per line after a
    version line. Raises ``AnalysisException`` when the log's folder is not there."""
    folder = f"{checkpoint.rstrip('/')}/sources/0"
    entries = (
        # The folder and a name filter, not a glob path: Spark looks for a sink's metadata
        # under a glob path and logs a stack trace when there is none.
        spark.read.option("pathGlobFilter", f"{{{batch_id},{batch_id}.compact}}")
        .text(folder)
        .select(F.from_json("value", _LOG_ENTRY).alias("e"))
        .where(F.col("e.batchId") == batch_id)
        .select("e.path", "e.timestamp")
        .collect()
    )  # one row per file of the batch
    return [(hadoop_path(r["path"]), r["timestamp"] * 1000) for r in entries]


def empty_files(spark: SparkSession, paths: Iterable[str]) -> set[str]:
    """Those of ``paths`` (as binaryFile gives them) that are there and empty.

    Spark's file scans skip a file of 0 bytes, so an empty delivery (an export of a day
    without records) gives its batch no row at all, as a file gone would. A local file is
    looked at; another is listed, and being listed but not read means empty. A remote path
    with a glob character cannot be listed alone: it counts as gone.
    """
    found = set()
    for path in paths:
        if path.startswith("file:"):
            # binaryFile's form is unescaped already: local_path's unquote would turn a
            # literal "%20" in a name into a space.
            local = Path(path.removeprefix("file:"))
            if local.is_file() and local.stat().st_size == 0:
                found.add(path)
        elif readable_by_path(path):
            try:
                if spark.read.format("binaryFile").load(path).inputFiles():
                    found.add(path)
            except AnalysisException:  # not there
                pass
    return found


def record_gone_files(
    spark: SparkSession,
    lake: Lakehouse,
    checkpoint: str,
    source: str,
    run_id: str,
    batch_id: int,
    read: set[str],
    txn: tuple[str, int],
) -> dict[str, int]:
    """Record the files of this batch's log entry that were not read (``read``: the paths
    the batch got) and are gone; the append is idempotent through ``txn``. Returns the
    others, empty files: path -> modification time (µs) as the stream listed it."""
    try:
        planned = planned_files(spark, checkpoint, batch_id)
    except AnalysisException:
        log.warning(
            "bronze batch source=%s batch=%d: the file source's log was not found, so files "
            "gone before the batch read them cannot be told",
            source,
            batch_id,
        )
        return {}
    unread = [(path, at) for path, at in planned if path not in read]
    empties = empty_files(spark, [path for path, _ in unread])
    empty = {path: at for path, at in unread if path in empties}
    gone = [(path, at) for path, at in unread if path not in empties]
    if gone and lake.exists(RECONCILIATION):
        # A replayed batch whose first run got as far as its ledger read these files then:
        # their records are in, only the file is gone since.
        ledger = lake.read(RECONCILIATION).where(
            (F.col("source") == source) & F.col("file").isin([path for path, _ in gone])
        )
        known = {r["file"] for r in ledger.select("file").distinct().collect()}
        gone = [(path, at) for path, at in gone if path not in known]
    if not gone:
        return empty
    now = dt.datetime.now(dt.UTC)
    lake.append(
        change_rows(
            spark,
            (
                (run_id, now, source, path, GONE, batch_id, None, at, None, None, None)
                for path, at in gone
            ),
        ),
        FILE_CHANGES,
        txn=txn,
    )
    log.warning(
        "bronze batch source=%s batch=%d: %d listed file(s) were gone when the batch read "
        "them; see %s",
        source,
        batch_id,
        len(gone),
        FILE_CHANGES,
    )
    return empty


# -- rewritten after they were read, or misnamed ------------------------------------------------
def landing_files(
    spark: SparkSession, root: str, sources: Sequence[Source], strays: Sequence[str] = ()
) -> DataFrame:
    """The files in the landing folders of ``sources`` and in the ``strays`` folders, as the
    bronze streams list them but whatever their names: ``source`` (the folder's name),
    ``file`` (the path as the stream writes it), ``bytes``, ``modified_at``, and ``readable``:
    whether a source's stream reads the file (never, in a stray folder)."""
    folders = [(s.name, s.file_suffixes) for s in sources] + [(name, ()) for name in strays]
    frames = [
        spark.read.format("binaryFile")
        .schema(BINARY_FILE_SCHEMA)
        .option("recursiveFileLookup", "true")
        .load(f"{to_uri(root).rstrip('/')}/{name}")
        .select(
            F.lit(name).alias("source"),
            F.col("path").alias("file"),
            F.col("length").alias("bytes"),
            F.col("modificationTime").alias("modified_at"),
            # pathGlobFilter's test (Source.file_glob), on the name's end
            reduce(operator.or_, [F.col("path").endswith(s) for s in suffixes], F.lit(False)).alias(
                "readable"
            ),
        )
        for name, suffixes in folders
    ]
    return reduce(DataFrame.unionByName, frames)


def stray_folders(root: str, lakehouse: str) -> list[str]:
    """The folders of a local landing root that name no source (``evnets``), hidden names
    and a folder holding the lakehouse aside; none for a root on another file system, which
    is not listed from the driver."""
    folder = local_path(root)
    if folder is None or not folder.is_dir():
        return []
    lake = local_path(lakehouse)
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.is_dir()
        and p.name not in SOURCES
        and not p.name.startswith((".", "_"))
        and not (lake is not None and lake.resolve().is_relative_to(p.resolve()))
    )


def _ledger_column(ledger: DataFrame, name: str, kind: str):
    # A ledger written by an older version may lack the column: then nothing is compared on it.
    return F.col(name) if name in ledger.columns else F.lit(None).cast(kind)


def rewritten_since_read(listing: DataFrame, reconciliation: DataFrame) -> DataFrame:
    """The files of ``listing`` whose size differs from, or whose modification time is later
    than, what the ledger recorded the last time each was read: ``source``, ``file``,
    ``bytes``, ``modified_at``, ``read_bytes``, ``read_modified_at``, ``read_run_id``. Files
    the ledger has never seen are the streams' business, not this."""
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


def misnamed_files(listing: DataFrame) -> DataFrame:
    """The files of ``listing`` no stream reads, in ``rewritten_since_read``'s columns."""
    return listing.where(~F.col("readable")).select(
        "source",
        "file",
        "bytes",
        "modified_at",
        F.lit(None).cast("bigint").alias("read_bytes"),
        F.lit(None).cast("timestamp").alias("read_modified_at"),
        F.lit(None).cast("string").alias("read_run_id"),
    )


_STATE = ["source", "file", "change", "bytes", "modified_at"]


def _record_listed(
    lake: Lakehouse, run_id: str, sources: Sequence[Source], root: str
) -> dict[tuple[str, str], int]:
    """Record the landing files misnamed, or rewritten since they were read (each state once);
    count them per (source, change)."""
    strays = stray_folders(root, lake.root)
    if not sources and not strays:
        return {}
    listing = landing_files(lake.spark, root, sources, strays)
    found = misnamed_files(listing).withColumn("change", F.lit(MISNAMED))
    if lake.exists(RECONCILIATION):
        rewritten = rewritten_since_read(
            listing.where("readable").drop("readable"), lake.read(RECONCILIATION)
        )
        found = found.unionByName(rewritten.withColumn("change", F.lit(REWRITTEN)))
    if lake.exists(FILE_CHANGES):
        known = lake.read(FILE_CHANGES).where(F.col("change").isin(REWRITTEN, MISNAMED))
        found = found.join(known.select(*_STATE), _STATE, "left_anti")
    # One row per such file not yet recorded: a subset of the landing listing, which the
    # file source holds on the driver anyway. Collected once, so the rows written and the
    # counts reported come from the same listing.
    rows = found.select(
        "source",
        "file",
        "change",
        "bytes",
        F.unix_micros("modified_at").alias("modified_at"),
        "read_bytes",
        F.unix_micros("read_modified_at").alias("read_modified_at"),
        "read_run_id",
    ).collect()
    if not rows:
        return {}
    now = dt.datetime.now(dt.UTC)
    lake.append(
        change_rows(
            lake.spark,
            (
                (
                    run_id,
                    now,
                    r["source"],
                    r["file"],
                    r["change"],
                    None,
                    r["bytes"],
                    r["modified_at"],
                    r["read_bytes"],
                    r["read_modified_at"],
                    r["read_run_id"],
                )
                for r in rows
            ),
        ),
        FILE_CHANGES,
    )
    counts: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r["source"], r["change"])
        counts[key] = counts.get(key, 0) + 1
    return counts


def audit_landing(
    lake: Lakehouse,
    run_id: str,
    sources: Sequence[Source],
    root: str,
    policy: str,
) -> dict[tuple[str, str], int]:
    """After a run's streams: record the landing files of ``sources`` misnamed or rewritten
    since they were read (unless ``policy`` is ``ignore``), then report them with the files
    this run's batches found gone, per (source, change), and apply ``policy``."""
    counts: dict[tuple[str, str], int] = {}
    if policy != "ignore":
        counts.update(_record_listed(lake, run_id, sources, root))
    if lake.exists(FILE_CHANGES):
        gone = (
            lake.read(FILE_CHANGES)
            .where((F.col("run_id") == run_id) & (F.col("change") == GONE))
            .groupBy("source")
            .count()
            .collect()
        )  # one row per source
        for r in gone:
            counts[(r["source"], GONE)] = r["count"]
    if not counts:
        return {}
    message = (
        f"landing files not loaded by the run ({describe_changes(counts)}): see {FILE_CHANGES} "
        f"for run {run_id}; deliver corrected files whole, under new names ending as the "
        "source's files do (docs/inputs.md)"
    )
    if policy == "fail":
        raise InputContractError(message + " (collect.file_changes=fail)")
    log.warning("ingest: %s", message)
    return dict(sorted(counts.items()))


def describe_changes(counts: dict[tuple[str, str], int]) -> str:
    """``events rewritten 2, orders gone 1``."""
    return ", ".join(f"{source} {change} {n}" for (source, change), n in sorted(counts.items()))
