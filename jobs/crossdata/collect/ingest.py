"""``crossdata ingest``: every source's new files to bronze, then bronze to silver.

Sources run one after the other in the order of ``collect.sources`` (events before
access_log, so server hits can be matched to the tag's page views); sessions are set by the
silver batches of both, and a catch-up on the change feed completes events an older version
inserted without one. Each step is an ``availableNow`` stream with its own checkpoint, and the
batch bodies carry no session, so the job runs the same on a classic driver and over Spark
Connect. The run's summary is read back from the ops tables the batches wrote.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crossdata.collect.bronze import BatchOutcome, BronzeBatchWriter
from crossdata.collect.file_changes import (
    BINARY_FILE_SCHEMA,
    audit_landing,
    describe_changes,
)
from crossdata.collect.flows import FLOWS, resessionize
from crossdata.collect.ledgers import FILE_CHANGES, RECONCILIATION, SILVER_BATCHES
from crossdata.collect.silver import SilverBatch, SilverBatchWriter, SilverOutcome
from crossdata.collect.streams import RunningStream, query_app_id, run_available_now
from crossdata.config.schema import CollectSettings, Settings
from crossdata.contracts import SOURCES, Source
from crossdata.errors import ConfigError, CrossdataError
from crossdata.lakehouse import Lakehouse, LakeLocation
from crossdata.lakehouse.store import path_exists
from crossdata.ops import Context, JobRun
from crossdata.spark.session import local_path, to_uri

log = logging.getLogger(__name__)

# Spark's file source ignores a file whose modification time is more than ``maxFileAge``
# (default 7 days) older than the newest file it has seen, without a word. A file restored
# from an archive or copied with its times kept would be lost that way, so no file is ever
# too old: files are told apart by path in the checkpoint's log and by content hash in the
# reconciliation, never by age. (1,000,000 days in milliseconds still fits a long.)
NEVER_TOO_OLD = "1000000d"


@dataclass
class IngestSummary:
    bronze: dict[str, BatchOutcome] = field(default_factory=dict)
    silver: dict[str, SilverOutcome] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    # (source, change) -> landing files rewritten after they were read, or gone before it
    file_changes: dict[tuple[str, str], int] = field(default_factory=dict)

    def describe(self) -> str:
        head = (
            "source",
            "files",
            "read",
            "loaded",
            "quarantined",
            "duplicates",
            "silver in",
            "inserted",
            "updated",
            "removed dup",
            "removed by rule",
        )
        rows: list[tuple[object, ...]] = [head]
        for name in sorted(set(self.bronze) | set(self.silver), key=list(SOURCES).index):
            o = self.bronze.get(name, BatchOutcome())
            sv = self.silver.get(name, SilverOutcome())
            rows.append(
                (
                    name,
                    o.files,
                    o.read,
                    o.loaded,
                    o.quarantined,
                    o.duplicates,
                    sv.rows_in,
                    sv.inserted,
                    sv.updated,
                    sv.duplicates,
                    sv.removed,
                )
            )
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        decoded = [f"{s} {o.fallback_lines}" for s, o in self.bronze.items() if o.fallback_lines]
        if decoded:
            lines.append(
                "lines read in a fallback encoding (collect.fallback_encodings): "
                + ", ".join(decoded)
            )
        if self.skipped:
            lines.append("no landing folder: " + ", ".join(self.skipped))
        if self.file_changes:
            lines.append(
                f"landing files not loaded (see {FILE_CHANGES}): "
                + describe_changes(self.file_changes)
            )
        return "\n".join(line.rstrip() for line in lines)


def checkpoint_root(settings: Settings) -> str:
    base = settings.collect.checkpoint_dir or f"{to_uri(settings.lakehouse.root)}/_checkpoints"
    return to_uri(base).rstrip("/")


def resolve_sources(names: list[str] | None, settings: Settings) -> list[Source]:
    chosen = names or list(settings.collect.sources)
    unknown = [n for n in chosen if n not in SOURCES]
    if unknown:
        raise CrossdataError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}")
    order = list(settings.collect.sources) + [
        n for n in SOURCES if n not in settings.collect.sources
    ]
    return [SOURCES[n] for n in sorted(chosen, key=order.index)]


def check_landing(root: str) -> None:
    """Refuse a landing root that is not a folder, before any session or stream starts.

    A source without its folder is normal (nothing delivered yet: it is skipped and named in
    the summary), but a root that is missing altogether is a wrong ``--input`` or
    ``collect.landing``: ingesting nothing and exiting 0 would hide it. Roots on other file
    systems are left to the streams, which see them through Hadoop.
    """
    folder = local_path(root)
    if folder is not None and not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ConfigError(
            f"landing folder {root} {what} (collect.landing, or ingest --input): "
            "point it at the folder holding <source>/<YYYY-MM-DD>/ deliveries"
        )


def preflight(settings: Settings) -> None:
    """The ingest stage's check before a session starts (see ``crossdata.pipeline``)."""
    check_landing(settings.collect.landing)


def _landing_exists(path: str) -> bool:
    folder = local_path(path)
    return folder is None or folder.is_dir()  # remote storage: let the stream find out


def trigger_limit(s: CollectSettings) -> dict[str, int]:
    """How much of the landing one bronze micro-batch takes: a byte budget when one is set
    (the memory a batch needs follows bytes, not files), else a number of files."""
    if s.max_bytes_per_trigger is not None:
        return {"maxBytesPerTrigger": s.max_bytes_per_trigger}
    return {"maxFilesPerTrigger": s.max_files_per_trigger}


def _has_commits(ctx: Context, checkpoint: str) -> bool:
    """Whether the stream checkpoint has committed a batch (read through Spark, so on any file
    system the checkpoint lives on). A missing folder is asked first where the session can:
    Spark's reader logs a warning with a stack trace for a path that is not there."""
    if path_exists(ctx.spark, f"{checkpoint}/commits") is False:
        return False
    try:
        return not ctx.spark.read.text(f"{checkpoint}/commits").isEmpty()
    except Exception as exc:
        if "PATH_NOT_FOUND" in str(exc):  # Spark's error for a missing path, on any file system
            return False
        raise


def start_bronze(ctx: Context, run: JobRun, source: Source, landing: str) -> RunningStream:
    """Start the stream of one source's new files -> bronze, quarantine, ledger, reconciliation."""
    folder = f"{to_uri(landing).rstrip('/')}/{source.name}"
    checkpoint = f"{checkpoint_root(ctx.settings)}/bronze/{source.name}"
    # Every bronze batch reconciles its files: a checkpoint that has committed batches beside
    # a lakehouse without a reconciliation table belongs to a lakehouse that is gone. Its
    # files count as read, so the run would load nothing and succeed.
    if not ctx.lake.exists(RECONCILIATION) and _has_commits(ctx, checkpoint):
        raise CrossdataError(
            f"the stream checkpoint {checkpoint} has already read {source.name}'s files, but "
            f"{ctx.lake.root} has no {RECONCILIATION}: the checkpoint belongs to a lakehouse "
            "that is gone. Delete the checkpoints (collect.checkpoint_dir) to ingest the "
            "landing again, or point lakehouse.root at their lakehouse"
        )
    writer = BronzeBatchWriter(
        ctx.lake.location, source, ctx.settings.collect, run.run_id, checkpoint
    )
    stream = (
        ctx.spark.readStream.format("binaryFile")
        .schema(BINARY_FILE_SCHEMA)
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", source.file_glob)
        .option("maxFileAge", NEVER_TOO_OLD)
        .options(**trigger_limit(ctx.settings.collect))
        .load(folder)
    )
    return RunningStream(stream, writer, checkpoint, f"bronze_{source.name}")


def start_silver(ctx: Context, run: JobRun, source: Source) -> RunningStream | None:
    """Start the stream of one source's new bronze rows -> its silver table."""
    bronze = f"bronze.{source.name}"
    if not ctx.lake.exists(bronze):
        return None
    checkpoint = f"{checkpoint_root(ctx.settings)}/silver/{source.name}"
    writer = SilverBatchWriter(
        ctx.lake.location, FLOWS[source.name], ctx.settings.collect, run.run_id, checkpoint
    )
    stream = (
        ctx.spark.readStream.format("delta")
        .option("maxBytesPerTrigger", ctx.settings.collect.silver_max_bytes_per_trigger)
        .load(ctx.lake.path(bronze))
    )
    return RunningStream(stream, writer, checkpoint, f"silver_{source.name}")


@dataclass(frozen=True)
class SessionWriter:
    """foreachBatch body of the sessions catch-up: events inserted without a session.

    Since sessions are set in the silver batch itself, only rows an older version inserted
    (before its own sessions step ran) lack one, so a batch normally finds nothing: one
    filtered read of four columns of the change feed (2 s for 200k new events), then it
    returns.
    """

    location: LakeLocation
    settings: CollectSettings
    run_id: str
    checkpoint: str

    def __call__(self, changes: DataFrame, batch_id: int) -> None:
        missing = changes.where(
            (F.col("_change_type") == "insert")
            & F.col("session_id").isNull()
            & F.col("actor_id").isNotNull()
            & F.col("event_ts").isNotNull()
        ).select("event_id", "event_date", "actor_id")
        if missing.isEmpty():
            return
        spark = changes.sparkSession
        batch = SilverBatch(
            self.settings,
            self.location.open(spark),
            self.run_id,
            batch_id,
            dt.datetime.now(dt.UTC),
            query_app_id(spark, self.checkpoint),
        )
        moved = resessionize(missing, batch)
        log.info("sessions catch-up batch=%d events_given_a_session=%d", batch_id, moved)


def build_sessions(ctx: Context, run: JobRun) -> None:
    """Sessions for events inserted without one since the last run (by an older version).

    Kept as a catch-up on the change feed of silver.events, with the checkpoint the former
    sessions step used, so a lakehouse an older version left half-sessioned (its run stopped
    between silver and sessions) is completed, and a checkpoint of that layout goes on where
    it stopped. Events the silver batches insert carry their session and are skipped.
    """
    if not ctx.lake.exists("silver.events"):
        return
    checkpoint = f"{checkpoint_root(ctx.settings)}/silver/sessions"
    stream = (
        ctx.spark.readStream.format("delta")
        .option("readChangeFeed", "true")
        .load(ctx.lake.path("silver.events"))
    )
    writer = SessionWriter(ctx.lake.location, ctx.settings.collect, run.run_id, checkpoint)
    run_available_now(stream, writer, checkpoint, "silver_sessions")


def summarize(lake: Lakehouse, run_id: str) -> IngestSummary:
    """What this run did, from the rows its batches wrote (works whoever ran the batches)."""
    summary = IngestSummary()
    if lake.exists(RECONCILIATION):
        ledger = lake.read(RECONCILIATION)
        if "fallback_lines" not in ledger.columns:  # written before fallback encodings
            ledger = ledger.withColumn("fallback_lines", F.lit(0).cast("bigint"))
        rows = (
            ledger.where(F.col("run_id") == run_id)
            .groupBy("source")
            .agg(
                F.count(F.lit(1)).alias("files"),
                *[F.sum(c).alias(c) for c in ("read", "loaded", "quarantined", "duplicates")],
                F.sum(F.coalesce("fallback_lines", F.lit(0))).alias("fallback_lines"),
            )
            .collect()
        )  # one row per source
        for r in rows:
            summary.bronze[r["source"]] = BatchOutcome(
                files=r["files"],
                read=r["read"],
                loaded=r["loaded"],
                quarantined=r["quarantined"],
                duplicates=r["duplicates"],
                fallback_lines=r["fallback_lines"],
            )
    if lake.exists(SILVER_BATCHES):
        batches = lake.read(SILVER_BATCHES)
        if "removed" not in batches.columns:  # written before removal was counted
            batches = batches.withColumn("removed", F.lit(0).cast("bigint"))
        rows = (
            batches.where(F.col("run_id") == run_id)
            .groupBy("source")
            .agg(
                *[
                    F.sum(c).alias(c)
                    for c in ("rows_in", "inserted", "updated", "duplicates", "quarantined")
                ],
                F.sum(F.coalesce("removed", F.lit(0))).alias("removed"),
            )
            .collect()
        )
        for r in rows:
            summary.silver[r["source"]] = SilverOutcome(
                rows_in=r["rows_in"],
                inserted=r["inserted"],
                updated=r["updated"],
                duplicates=r["duplicates"],
                quarantined=r["quarantined"],
                removed=r["removed"],
            )
    return summary


def run_ingest(
    ctx: Context,
    run: JobRun,
    sources: list[str] | None = None,
    landing: str | None = None,
) -> IngestSummary:
    """Ingest the chosen sources (all by default) from ``landing`` (collect.landing)."""
    chosen = resolve_sources(sources, ctx.settings)
    root = landing or ctx.settings.collect.landing
    check_landing(root)
    # Records are read as JSON maps: a record with a key twice must not fail the whole job.
    ctx.spark.conf.set("spark.sql.mapKeyDedupPolicy", "LAST_WIN")
    present = []
    skipped = []
    for source in chosen:
        if _landing_exists(f"{to_uri(root).rstrip('/')}/{source.name}"):
            present.append(source)
        else:
            log.warning("ingest: no landing folder source=%s", source.name)
            skipped.append(source.name)
    # One source after the other: on a small driver, side-by-side streams only contend for
    # the same cores and race on the shared ops tables (measured slower on 2 cores). Server
    # hits are matched to the tag's page views, so events come before access_log (sources are
    # in collect.sources order); the sessions catch-up comes last.
    steps = len(present) + 1
    for i, source in enumerate(present, 1):
        run.progress(i, steps, f"{source.name}: raw -> bronze")
        start_bronze(ctx, run, source, root).wait()
        run.progress(i, steps, f"{source.name}: bronze -> silver")
        silver = start_silver(ctx, run, source)
        if silver is not None:
            silver.wait()
    if {"events", "access_log"} & {s.name for s in present}:
        run.progress(steps, steps, "sessions catch-up")
        build_sessions(ctx, run)
    # Last, so that with collect.file_changes=fail everything else is loaded first.
    changes = audit_landing(ctx.lake, run.run_id, present, root, ctx.settings.collect.file_changes)
    summary = summarize(ctx.lake, run.run_id)
    summary.skipped = skipped
    summary.file_changes = changes
    for (name, change), n in changes.items():
        run.details[f"{name}.{change}"] = str(n)
    for name, o in summary.bronze.items():
        run.count(input_rows=o.read, output_rows=o.loaded + o.quarantined)
        run.details[f"{name}.read"] = str(o.read)
        run.details[f"{name}.quarantined"] = str(o.quarantined)
    return summary


def ingest_stage(ctx: Context, run: JobRun) -> None:
    """The pipeline's collect stage: every source, from collect.landing."""
    log.info("%s", run_ingest(ctx, run).describe())
