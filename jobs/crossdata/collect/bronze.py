"""Raw files -> bronze.<source> + bronze.quarantine, exactly once, every record accounted for.

Each source is one Structured Streaming query over its landing folder (``binaryFile`` source,
``availableNow`` trigger, its own checkpoint): a file is handed to exactly one micro-batch,
and a batch that crashed is replayed. Every table write in a batch carries Delta's
``txnAppId``/``txnVersion``, so a replayed batch skips what it already committed: nothing is
lost or written twice, even after a kill.

Per batch: files whose content was already ingested under another name are counted as
duplicates; the lines of the rest are read (Spark's text reader, one task per file), parsed,
checked against the contract (once, cached: the per-file counts and both writes reuse it); good
records go to bronze, bad ones to quarantine with a reason; then the reconciliation is written,
one row per file (its content hash, the original it copies if any, and read = loaded +
quarantined + duplicates), and a mismatch fails the job. The reconciliation doubles as the file
ledger: the next batches look up content hashes in it. The loaded and quarantined counts are
confirmed by the rows Delta reports in the batch's own commits (found by their userMetadata);
when a commit does not confirm them, they are counted back from the tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from crossdata.collect.encodings import with_fallback
from crossdata.collect.file_changes import hadoop_path, record_gone_files
from crossdata.collect.formats import (
    file_lines,
    parse_lines,
    raw_text,
    readable_by_path,
    text_lines,
    whole_file_tasks,
)
from crossdata.collect.ledgers import FILE_CHANGES, QUARANTINE, RECONCILIATION
from crossdata.collect.records import RecordRules, validate
from crossdata.collect.streams import query_app_id
from crossdata.config.schema import CollectSettings
from crossdata.contracts import COMPRESSED_SUFFIXES, Source
from crossdata.errors import CrossdataError, InputContractError, ReconciliationError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from crossdata.lakehouse import Lakehouse, LakeLocation

log = logging.getLogger(__name__)

# What F.sha2(content, 256) gives a file of no bytes.
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
META_COLUMNS = ("_source_file", "_line", "_delivery_date", "_ingested_at", "_run_id", "_batch_id")


@dataclass(frozen=True)
class BatchInfo:
    """Who is writing this micro-batch (constant over the batch)."""

    source: Source
    run_id: str
    batch_id: int
    app_id: str  # stable per streaming checkpoint: the key of Delta's idempotent writes
    ingested_at: dt.datetime


@dataclass
class BatchOutcome:
    files: int = 0
    duplicate_files: int = 0
    read: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicates: int = 0
    fallback_lines: int = 0  # read in the source's fallback encoding (loaded or quarantined)
    mismatches: list[str] = field(default_factory=list)


# -- pure transforms -----------------------------------------------------------------------------
def batch_lines(spark: SparkSession, files: DataFrame, paths: list[str]) -> DataFrame:
    """The lines of the files at ``paths`` (``files``: the batch's binaryFile rows).

    Spark's text reader reads them (``text_lines``: plan it inside ``whole_file_tasks``);
    a path it cannot be given (glob characters) is split from its binaryFile row instead
    (``file_lines``, whole file in memory), its ``_task`` NULL.
    """
    by_reader = [p for p in paths if readable_by_path(p)]
    by_split = [p for p in paths if not readable_by_path(p)]
    compressed = [p for p in by_split if p.endswith(COMPRESSED_SUFFIXES)]
    if compressed:  # its binaryFile row holds the compressed bytes, not lines
        raise InputContractError(
            f"bronze: landing file {compressed[0]} is compressed and its name holds a glob "
            "character (* ? [ ] { } \\), so no reader can open it; nothing of this batch was "
            "written. Rename it (the old name is then recorded as gone) and run again"
        )
    parts = [text_lines(spark, by_reader)] if by_reader else []
    if by_split or not parts:
        split = file_lines(files.where(F.col("path").isin(by_split)))
        parts.append(split.withColumn("_task", F.lit(None).cast("int")))
    return parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])


def check_line_numbers(per_file: list) -> None:
    """Fail when a file's lines were not all read by one task of their own (rows of
    ``per_file``: ``_source_file``, ``first_task``, ``last_task``): their numbers would be
    wrong. ``whole_file_tasks`` makes that impossible; this is the proof, per batch."""
    owners: dict[int, str] = {}
    for r in per_file:
        first, last = r["first_task"], r["last_task"]
        if first is None:  # split from its binaryFile row, numbered there
            continue
        if first != last or owners.setdefault(first, r["_source_file"]) != r["_source_file"]:
            raise CrossdataError(
                "bronze: a file's lines were not read by one task of their own, so their line "
                "numbers cannot be trusted; nothing of this batch was written (was "
                "spark.sql.files.maxPartitionBytes or openCostInBytes changed during the batch?)"
            )


def validated_records(lines: DataFrame, source: Source, settings: CollectSettings) -> DataFrame:
    """Lines (``batch_lines`` or ``file_lines``) -> one validated row per record (good and bad).

    Lines that are not UTF-8 are first read in the source's fallback encoding, if it has one.
    """
    lines = with_fallback(lines, settings.fallback_encodings.get(source.name))
    parsed = parse_lines(lines, source, log_with_cookie=settings.access_log_format == "extended")
    rules = RecordRules(
        settings.max_field_chars,
        settings.future_tolerance_hours,
        settings.min_timestamp_utc,
        settings.local_time_zones.get(source.name),
    )
    return validate(parsed, source, rules)


def kept_for_writes(validated: DataFrame, source: Source) -> DataFrame:
    """The columns bronze and quarantine rows are made of; a line's text only when it is bad.

    The batch caches this (one validation feeds the per-file counts and both writes): without
    the parsed text struct and the lines of good records it is about half as wide.
    """
    bad = F.col("_reason").isNotNull()
    return validated.select(
        "_source_file",
        "_line",
        "_delivery_date",
        *source.field_names,
        "_rescued",
        "_reason",
        "_detail",
        F.when(bad, F.col("_text")).alias("_text"),
        F.when(bad, F.col("_raw_bytes")).alias("_raw_bytes"),
        "_fallback",
        "_task",
    )


def _meta(info: BatchInfo) -> list:
    return [
        F.col("_source_file"),
        F.col("_line").cast("bigint").alias("_line"),
        F.col("_delivery_date"),
        F.lit(info.ingested_at).cast("timestamp").alias("_ingested_at"),
        F.lit(info.run_id).alias("_run_id"),
        F.lit(info.batch_id).cast("bigint").alias("_batch_id"),
    ]


def bronze_rows(validated: DataFrame, info: BatchInfo) -> DataFrame:
    """Good records: metadata first (so Delta keeps statistics on it), typed fields, _rescued.

    Give it the cached ``validated`` frame, as the batch does (``quarantine_rows`` too). Over
    an uncached validation, the optimizer pushes the filter on ``_reason`` below the
    projections and inlines every check into it, each re-parsing the line: written to Delta
    that way, the 1M-event world's bronze took 335 s; cached, counted, then written, 43 s.
    """
    return validated.where(F.col("_reason").isNull()).select(
        *_meta(info), *info.source.field_names, "_rescued"
    )


def quarantine_rows(validated: DataFrame, info: BatchInfo) -> DataFrame:
    """Bad records with their raw text (exact bytes too when not UTF-8) and a reason."""
    return validated.where(F.col("_reason").isNotNull()).select(
        F.lit(info.source.name).alias("source"),
        F.col("_reason").alias("reason"),
        F.col("_detail").alias("detail"),
        raw_text(validated).alias("raw"),
        F.col("_raw_bytes").alias("raw_bytes"),
        F.col("_source_file").alias("file"),
        F.col("_line").cast("bigint").alias("line"),
        F.col("_delivery_date").alias("delivery_date"),
        F.lit(info.run_id).alias("run_id"),
        F.lit(info.batch_id).cast("bigint").alias("batch_id"),
        F.lit(info.ingested_at).cast("timestamp").alias("ingested_at"),
    )


def mark_duplicate_files(files: DataFrame, loaded_before: DataFrame | None) -> DataFrame:
    """Add ``duplicate_of``: the path of an earlier file with the same content, else NULL,
    and ``original_read``: the records of that earlier file when an earlier batch loaded it
    (its ledger's count; NULL for a file of this batch, which the batch counts itself).

    ``loaded_before``: the files loaded by earlier batches (``path``, ``sha256``, ``read``).
    Earlier means among them under another path (the same path is a replay of this very file,
    not a copy), or in this batch with a smaller path.
    """
    first_in_batch = F.first("path").over(Window.partitionBy("sha256").orderBy("path"))
    marked = files.withColumn(
        "_batch_original", F.when(first_in_batch != F.col("path"), first_in_batch)
    )
    if loaded_before is None:
        return marked.withColumnRenamed("_batch_original", "duplicate_of").withColumn(
            "original_read", F.lit(None).cast("bigint")
        )
    earlier = loaded_before.select(
        "sha256", F.col("path").alias("_ledger_path"), F.col("read").alias("_ledger_read")
    ).dropDuplicates(["sha256"])
    from_ledger = F.col("_ledger_path") != F.col("path")
    return (
        marked.join(F.broadcast(earlier), "sha256", "left")
        .withColumns(
            {
                "duplicate_of": F.coalesce(
                    F.when(from_ledger, F.col("_ledger_path")), F.col("_batch_original")
                ),
                "original_read": F.when(from_ledger, F.col("_ledger_read")),
            }
        )
        .drop("_ledger_path", "_ledger_read", "_batch_original")
    )


def duplicate_counts(
    meta: list[tuple[str, str, int, str | None]],
    read_counts: dict[str, int],
    earlier_counts: dict[str, int],
) -> dict[str, int]:
    """Records per copy of a file: a copy has its original's content (same SHA-256), so it has
    the count this batch read in its original, or the one the ledger keeps for an original an
    earlier batch loaded. Counting the copy's own lines again would need the batch's readers
    (decompression, encodings, CSV records over several lines) for no other answer."""
    counts = {}
    for path, _sha, _size, dup_of in meta:
        if not dup_of:
            continue
        count = read_counts.get(dup_of, earlier_counts.get(path))
        if count is None:  # the ledger row of every loaded file has its count
            raise RuntimeError(f"no record count for the original {dup_of} of a copy")
        counts[path] = count
    return counts


def rescued_keys(bronze: DataFrame) -> DataFrame:
    """The distinct unknown field names in a batch (small: one row per name)."""
    return bronze.select(F.explode(F.map_keys("_rescued")).alias("key")).distinct()


def promote_rescued(bronze: DataFrame, keys: list[str], existing: Sequence[str] = ()) -> DataFrame:
    """Schema drift 'add': unknown fields become string columns, leaving _rescued empty.

    Spark and Delta resolve column names whatever their case, so a field that differs from a
    column (``Platform`` beside ``platform``) or from another new field only by case stays in
    ``_rescued``: of such new fields the first in ``keys``' order becomes the column.
    ``existing``: the columns the table already has (a field an earlier batch added is
    promoted under the same name only).
    """
    added = {c for c in existing if c not in bronze.columns}  # by earlier batches
    taken = {c.lower() for c in (*bronze.columns, *added)}
    usable: list[str] = []
    promoted: set[str] = set()  # lower-cased
    for k in sorted(keys, key=lambda k: k not in added):  # a column's own name first
        if k.lower() not in promoted and (
            k in added or (k.isidentifier() and k.lower() not in taken)
        ):
            usable.append(k)
            promoted.add(k.lower())
    out = bronze.select("*", *[F.col("_rescued")[k].alias(k) for k in usable])
    keep = F.array(*[F.lit(k) for k in usable]) if usable else F.array().cast("array<string>")
    return out.withColumn(
        "_rescued", F.map_filter("_rescued", lambda k, _v: ~F.array_contains(keep, k))
    )


# The file ledger's columns come last: content hash, size, the earlier file a copy repeats
# (NULL: the file was loaded), and the file's modification time when it was read (a later
# change is found by crossdata.collect.file_changes).
RECONCILIATION_SCHEMA = (
    "run_id STRING, batch_id BIGINT, source STRING, file STRING, read BIGINT, loaded BIGINT, "
    "quarantined BIGINT, duplicates BIGINT, status STRING, checked_at TIMESTAMP, "
    "sha256 STRING, bytes BIGINT, duplicate_of STRING, modified_at TIMESTAMP, "
    "fallback_lines BIGINT"
)


def loaded_files(reconciliation: DataFrame, source: str) -> DataFrame:
    """The files of ``source`` whose records were loaded (not copies): ``path``, ``sha256``
    and ``read``, the records the batch that loaded them read."""
    return reconciliation.where(
        (F.col("source") == source) & F.col("duplicate_of").isNull() & F.col("sha256").isNotNull()
    ).select(F.col("file").alias("path"), "sha256", "read")


# -- the micro-batch -----------------------------------------------------------------------------
# Spark's error when a scan fails on one file (FAILED_READ_FILE), which it names as a URI
_FAILED_FILE = re.compile(r"FAILED_READ_FILE.*?reading file (\S+)\.(?:\s|$)")


# How Spark's binaryFile reader says it cannot hash a file, and what the landing team can do.
_TOO_LONG = re.compile(r"The length of (\S+) is (\d+), which exceeds the max length allowed")
_NAME_HADOOP_REFUSES = re.compile(r"Relative path in absolute URI: (\S+)")


def unhashable_file(exc: BaseException, source: str) -> InputContractError | None:
    """The error to raise when ``exc`` is a landing file the batch cannot hash: over 2 GiB
    (what one binaryFile row holds) or a name Hadoop's local checksums cannot hold (a ':')."""
    text = str(exc)
    if found := _TOO_LONG.search(text):
        return InputContractError(
            f"bronze: landing file {hadoop_path(found.group(1))} of source {source} is "
            f"{int(found.group(2)):,} bytes, more than the 2 GiB a file is hashed in at once; "
            "split or compress it under a new name and move this one out of the landing "
            "folder, then run again (the batch's other files are loaded, this one is recorded "
            "as gone)"
        )
    if "URISyntaxException" in text and (found := _NAME_HADOOP_REFUSES.search(text)):
        # The name of its checksum file: ".<name>.crc".
        name = found.group(1).rstrip(".,;")
        name = name.removeprefix(".").removesuffix(".crc") if name.endswith(".crc") else name
        return InputContractError(
            f"bronze: a landing file of source {source} is named {name!r}, which "
            "Hadoop's local file system cannot open (a ':' in a file name); rename it "
            "without one, then run again (the renamed file is a new delivery, the old name "
            "is recorded as gone)"
        )
    return None


def unreadable_file(exc: BaseException, paths: list[str]) -> str | None:
    """The file of ``paths`` a scan could not read, when ``exc`` is that failure."""
    found = _FAILED_FILE.search(str(exc))
    if found is None:
        return None
    path = hadoop_path(found.group(1))
    return path if path in paths else None


def counts_per_file(validated: DataFrame, paths: list[str]) -> list:
    """Lines, bad lines, lines read in the fallback encoding and scan tasks per file (one row
    per file of the batch): the first read of the lines, where a file no reader can open
    fails the batch."""
    try:
        return (
            validated.groupBy("_source_file")
            .agg(
                F.count(F.lit(1)).alias("n"),
                F.count("_reason").alias("bad"),
                F.count_if("_fallback").alias("fallback"),
                F.min("_task").alias("first_task"),
                F.max("_task").alias("last_task"),
            )
            .collect()
        )
    except Exception as exc:
        path = unreadable_file(exc, paths)
        if path is None:
            raise
        raise InputContractError(
            f"bronze: landing file {path} could not be read to its end (a compressed "
            "file cut short or damaged, or one the job may not read); nothing of this "
            "batch was written. Replace it under a new name, or move it out of the "
            "landing folder (it is then recorded as gone), and run again"
        ) from exc


class BronzeBatchWriter:
    """The foreachBatch body for one source.

    It holds no session: each batch opens the lakehouse on the batch's own session, so the
    same object works in a classic driver and, pickled, on a Spark Connect server.
    """

    def __init__(
        self,
        location: LakeLocation,
        source: Source,
        settings: CollectSettings,
        run_id: str,
        checkpoint: str,
    ) -> None:
        self.location = location
        self.source = source
        self.settings = settings
        self.run_id = run_id
        self.checkpoint = checkpoint
        self._app_id: str | None = None
        self.lake: Lakehouse | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "lake": None}

    @property
    def table(self) -> str:
        return f"bronze.{self.source.name}"

    def bind(self, spark: SparkSession, app_id: str | None = None) -> Lakehouse:
        """Open the lakehouse on ``spark``; learn the stream's id from its checkpoint."""
        self.lake = self.location.open(spark)
        self._app_id = app_id or self._app_id or query_app_id(spark, self.checkpoint)
        return self.lake

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        self.bind(batch.sparkSession)
        assert self._app_id is not None
        info = BatchInfo(self.source, self.run_id, batch_id, self._app_id, dt.datetime.now(dt.UTC))
        outcome = self.process(batch, info)
        log.info(
            "bronze batch source=%s batch=%d files=%d read=%d loaded=%d quarantined=%d "
            "duplicates=%d fallback_lines=%d",
            self.source.name,
            batch_id,
            outcome.files,
            outcome.read,
            outcome.loaded,
            outcome.quarantined,
            outcome.duplicates,
            outcome.fallback_lines,
        )

    def _lake(self) -> Lakehouse:
        if self.lake is None:
            raise RuntimeError("bind() the writer to a session first")
        return self.lake

    def _txn(self, table: str, info: BatchInfo) -> tuple[str, int]:
        return (f"{info.app_id}/{table}", info.batch_id)

    def process(self, batch: DataFrame, info: BatchInfo) -> BatchOutcome:
        # The files' bytes are read twice (hashed, then split), never cached: a batch of
        # large files held in memory ran the JVM out of heap at 10M events (20 files of
        # ~90 MB), and a second read mostly comes from the OS page cache.
        files = batch.select("path", "length", "modificationTime", "content")
        return self._process(batch.sparkSession, files, info)

    def _process(self, spark, files: DataFrame, info: BatchInfo) -> BatchOutcome:
        lake = self._lake()
        before = (
            loaded_files(lake.read(RECONCILIATION), self.source.name)
            if lake.exists(RECONCILIATION)
            else None
        )
        # Duplicates are found on one narrow row per file: the files' content is never shuffled.
        # Modification times travel as microseconds: a Python datetime is naive local time,
        # and one in the hour a clock turns back would come back an hour off.
        hashed = files.select(
            "path",
            F.sha2("content", 256).alias("sha256"),
            "length",
            F.unix_micros("modificationTime").alias("modified_us"),
        )
        try:
            marked = mark_duplicate_files(hashed, before).collect()
        except Exception as exc:
            refused = unhashable_file(exc, self.source.name)
            if refused is None:
                raise
            raise refused from exc
        # one row per file of this micro-batch: bounded by the stream's trigger limit
        meta = [(r["path"], r["sha256"], r["length"], r["duplicate_of"]) for r in marked]
        earlier_counts = {
            r["path"]: r["original_read"] for r in marked if r["original_read"] is not None
        }
        modified = {r["path"]: r["modified_us"] for r in marked}
        fresh_paths = [path for path, _sha, _size, dup_of in meta if dup_of is None]
        # Empty files have no row in the batch: each is reconciled as a file of no records
        # (never a copy of another), so a later rewrite with records is seen as one.
        empty = self._record_gone(spark, set(modified), info)
        meta += [(path, EMPTY_SHA256, 0, None) for path in sorted(empty)]
        modified |= empty

        # Lines are numbered by their place in their scan task: the scan is planned and run
        # (persist, then the per-file counts, which prove it) inside whole_file_tasks. The
        # writes then read the cached rows, whose partitions are fixed by that first run.
        validated: DataFrame | None = None
        try:
            with whole_file_tasks(spark):
                lines = batch_lines(spark, files, fresh_paths)
                validated = kept_for_writes(
                    validated_records(lines, self.source, self.settings), self.source
                ).persist()
                per_file = counts_per_file(validated, fresh_paths)
            check_line_numbers(per_file)
            read_counts = {r["_source_file"]: r["n"] for r in per_file} | dict.fromkeys(empty, 0)
            bad_counts = {r["_source_file"]: r["bad"] for r in per_file if r["bad"]}
            fallback = {r["_source_file"]: r["fallback"] for r in per_file}
            good = self._apply_drift(bronze_rows(validated, info))
            lake.append(
                good,
                self.table,
                merge_schema=self.settings.schema_drift == "add",
                txn=self._txn(self.table, info),
            )
            if bad_counts:  # most batches have no bad record
                lake.append(
                    quarantine_rows(validated, info),
                    QUARANTINE,
                    txn=self._txn(QUARANTINE, info),
                )
        finally:
            if validated is not None:
                validated.unpersist()
        dup_counts = duplicate_counts(meta, read_counts, earlier_counts)
        stored = self._committed_counts(read_counts, bad_counts, info)
        return self._reconcile(
            spark, meta, read_counts, dup_counts, info, stored, modified, fallback
        )

    def _record_gone(self, spark, read: set[str], info: BatchInfo) -> dict[str, int]:
        """Record the files the source's log gave this batch that it could not read; return
        those it did not read because they are empty (path -> modification time, µs)."""
        return record_gone_files(
            spark,
            self._lake(),
            self.checkpoint,
            self.source.name,
            info.run_id,
            info.batch_id,
            read,
            self._txn(FILE_CHANGES, info),
        )

    def _committed_counts(
        self, read_counts: dict[str, int], bad_counts: dict[str, int], info: BatchInfo
    ) -> tuple[dict[str, int], dict[str, int]] | None:
        """Per-file loaded and quarantined counts, when the tables' commits confirm them.

        The rows Delta reports it wrote in this batch's commit (``numOutputRows``, found by
        the commit's userMetadata, also when a replay skipped an already committed write) must
        equal the rows counted per file before writing, table by table. Anything else (a
        commit not found, other counts) returns None: the caller then counts the rows back
        from the tables, file by file, as the reconciliation always did.
        """
        good = {path: n - bad_counts.get(path, 0) for path, n in read_counts.items()}
        expected = [(self.table, sum(good.values()))]
        if bad_counts:
            expected.append((QUARANTINE, sum(bad_counts.values())))
        for table, rows in expected:
            if self._lake().txn_rows(table, self._txn(table, info)) != rows:
                log.info(
                    "bronze batch source=%s batch=%d: %s commit does not confirm %d rows; "
                    "counting back from the tables",
                    self.source.name,
                    info.batch_id,
                    table,
                    rows,
                )
                return None
        return good, dict(bad_counts)

    def _apply_drift(self, good: DataFrame) -> DataFrame:
        policy = self.settings.schema_drift
        if policy == "rescue":
            return good
        keys = sorted(r["key"] for r in rescued_keys(good).collect())  # distinct field names
        if not keys:
            return good
        if policy == "fail":
            raise InputContractError(
                f"source {self.source.name}: fields not in the contract: {', '.join(keys)} "
                "(collect.schema_drift=fail; set it to rescue or add to accept them)"
            )
        lake = self._lake()
        existing = lake.read(self.table).columns if lake.exists(self.table) else []
        return promote_rescued(good, keys, existing)

    def _stored_counts(self, paths: list[str]) -> tuple[dict[str, int], dict[str, int]]:
        """Rows the tables now hold per file: bronze and quarantine, counted in one job."""
        parts = [
            _counts_by_file(self._lake().read(self.table), "_source_file", paths).withColumn(
                "kind", F.lit("loaded")
            )
        ]
        if self._lake().exists(QUARANTINE):
            held = self._lake().read(QUARANTINE).where(F.col("source") == self.source.name)
            parts.append(_counts_by_file(held, "file", paths).withColumn("kind", F.lit("bad")))
        union = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
        loaded: dict[str, int] = {}
        quarantined: dict[str, int] = {}
        for r in union.collect():  # at most two rows per file of the batch
            (loaded if r["kind"] == "loaded" else quarantined)[r["file"]] = r["count"]
        return loaded, quarantined

    def _reconcile(
        self,
        spark,
        meta: list[tuple[str, str, int, str | None]],
        read_counts: dict[str, int],
        dup_counts: dict[str, int],
        info: BatchInfo,
        stored: tuple[dict[str, int], dict[str, int]] | None = None,
        modified: dict[str, int] | None = None,
        fallback: dict[str, int] | None = None,
    ) -> BatchOutcome:
        """Check read = loaded + quarantined + duplicates for every file of the batch.

        ``stored``: the per-file loaded and quarantined counts the batch's commits confirmed
        (see ``_committed_counts``); without them the tables are counted back for these files.
        ``modified``: each file's modification time as the stream listed it (microseconds).
        ``fallback``: lines per file read in the source's fallback encoding (none in copies).
        """
        paths = [m[0] for m in meta]
        outcome = BatchOutcome(files=len(paths))
        if not paths:
            return outcome
        loaded, quarantined = stored if stored is not None else self._stored_counts(paths)
        rows = []
        for path, sha, size, dup_of in meta:
            dups = dup_counts.get(path, 0) if dup_of else 0
            read = dups if dup_of else read_counts.get(path, 0)
            got_loaded = loaded.get(path, 0)
            got_quarantined = quarantined.get(path, 0)
            ok = read == got_loaded + got_quarantined + dups
            if not ok:
                outcome.mismatches.append(path)
            outcome.read += read
            outcome.loaded += got_loaded
            outcome.quarantined += got_quarantined
            outcome.duplicates += dups
            outcome.duplicate_files += 1 if dup_of else 0
            decoded = 0 if dup_of else (fallback or {}).get(path, 0)
            outcome.fallback_lines += decoded
            rows.append(
                (
                    info.run_id,
                    info.batch_id,
                    self.source.name,
                    path,
                    read,
                    got_loaded,
                    got_quarantined,
                    dups,
                    "ok" if ok else "mismatch",
                    info.ingested_at,
                    sha,
                    size,
                    dup_of,
                    (modified or {}).get(path),
                    decoded,
                )
            )
        # mergeSchema: a reconciliation table from before it held the ledger gains its columns
        ledger = spark.createDataFrame(
            rows, RECONCILIATION_SCHEMA.replace("modified_at TIMESTAMP", "modified_at BIGINT")
        ).withColumn("modified_at", F.timestamp_micros("modified_at"))
        self._lake().append(
            ledger,
            RECONCILIATION,
            merge_schema=True,
            txn=self._txn(RECONCILIATION, info),
        )
        if outcome.mismatches:
            raise ReconciliationError(
                f"source {self.source.name}: {len(outcome.mismatches)} file(s) do not reconcile "
                f"(read != loaded + quarantined + duplicates), e.g. {outcome.mismatches[0]}; "
                f"see {RECONCILIATION} for run {info.run_id}"
            )
        return outcome


def _counts_by_file(df: DataFrame, column: str, paths: list[str]) -> DataFrame:
    return df.where(F.col(column).isin(paths)).groupBy(F.col(column).alias("file")).count()
