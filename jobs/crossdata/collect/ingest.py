"""``crossdata ingest``: every source's new files to bronze, then bronze to silver.

Sources run one after the other in the order of ``collect.sources`` (events before
access_log, so server hits can be matched to the tag's page views).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from crossdata.collect.bronze import BatchOutcome, BronzeBatchWriter
from crossdata.collect.flows import FLOWS
from crossdata.collect.silver import SilverBatchWriter, SilverOutcome
from crossdata.collect.streams import query_app_id, run_available_now
from crossdata.config.schema import Settings
from crossdata.contracts import SOURCES, Source
from crossdata.errors import CrossdataError
from crossdata.ops import Context, JobRun
from crossdata.spark.session import to_uri

log = logging.getLogger(__name__)

BINARY_FILE_SCHEMA = "path STRING, modificationTime TIMESTAMP, length BIGINT, content BINARY"


@dataclass
class IngestSummary:
    bronze: dict[str, BatchOutcome] = field(default_factory=dict)
    silver: dict[str, SilverOutcome] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def describe(self) -> str:
        head = (
            "source",
            "files",
            "read",
            "loaded",
            "quarantined",
            "dup files",
            "silver in",
            "inserted",
            "updated",
            "dup records",
        )
        rows: list[tuple[object, ...]] = [head]
        for name, o in self.bronze.items():
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
                )
            )
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        if self.skipped:
            lines.append("no landing folder: " + ", ".join(self.skipped))
        return "\n".join(lines)


def checkpoint_root(settings: Settings) -> str:
    base = settings.collect.checkpoint_dir or f"{to_uri(settings.lakehouse.root)}/_checkpoints"
    return to_uri(base).rstrip("/")


def resolve_sources(names: list[str] | None, settings: Settings) -> list[Source]:
    chosen = names or list(settings.collect.sources)
    unknown = [n for n in chosen if n not in SOURCES]
    if unknown:
        raise CrossdataError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}")
    return [SOURCES[n] for n in chosen]


def _landing_exists(path: str) -> bool:
    if "://" in path and not path.startswith("file:"):
        return True  # remote storage: let the stream find out
    return Path(path.removeprefix("file:")).is_dir()


def ingest_bronze(ctx: Context, run: JobRun, source: Source, landing: str) -> BatchOutcome:
    """New files of one source -> bronze, quarantine, ledger and reconciliation."""
    spark = ctx.spark
    settings = ctx.settings.collect
    folder = f"{to_uri(landing).rstrip('/')}/{source.name}"
    checkpoint = f"{checkpoint_root(ctx.settings)}/bronze/{source.name}"
    app_id: list[str] = []

    def stream_app_id() -> str:
        if not app_id:
            app_id.append(query_app_id(spark, checkpoint))
        return app_id[0]

    writer = BronzeBatchWriter(ctx.lake, source, settings, run.run_id, stream_app_id)
    stream = (
        spark.readStream.format("binaryFile")
        .schema(BINARY_FILE_SCHEMA)
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", f"*{source.extension}")
        .option("maxFilesPerTrigger", settings.max_files_per_trigger)
        .load(folder)
    )
    run_available_now(stream, writer, checkpoint, f"bronze_{source.name}")
    return writer.total


def build_silver(ctx: Context, run: JobRun, source: Source) -> SilverOutcome:
    """New bronze rows of one source -> its silver table (a Delta stream over bronze)."""
    flow = FLOWS[source.name]
    bronze = f"bronze.{source.name}"
    if not ctx.lake.exists(bronze):
        return SilverOutcome()
    spark = ctx.spark
    checkpoint = f"{checkpoint_root(ctx.settings)}/silver/{source.name}"
    app_id: list[str] = []

    def stream_app_id() -> str:
        if not app_id:
            app_id.append(query_app_id(spark, checkpoint))
        return app_id[0]

    writer = SilverBatchWriter(ctx.lake, flow, ctx.settings.collect, run.run_id, stream_app_id)
    stream = (
        spark.readStream.format("delta")
        .option("maxFilesPerTrigger", 1000)
        .load(ctx.lake.path(bronze))
    )
    run_available_now(stream, writer, checkpoint, f"silver_{source.name}")
    return writer.total


def run_ingest(
    ctx: Context,
    run: JobRun,
    sources: list[str] | None = None,
    landing: str | None = None,
) -> IngestSummary:
    """Ingest the chosen sources (all by default) from ``landing`` (collect.landing)."""
    chosen = resolve_sources(sources, ctx.settings)
    root = landing or ctx.settings.collect.landing
    summary = IngestSummary()
    # The session reads JSON as maps: a record with a key twice must not fail the job.
    ctx.spark.conf.set("spark.sql.mapKeyDedupPolicy", "LAST_WIN")
    for i, source in enumerate(chosen, 1):
        if not _landing_exists(f"{to_uri(root).rstrip('/')}/{source.name}"):
            log.warning("ingest: no landing folder source=%s", source.name)
            summary.skipped.append(source.name)
            continue
        run.progress(i, len(chosen), f"bronze {source.name}")
        outcome = ingest_bronze(ctx, run, source, root)
        summary.bronze[source.name] = outcome
        run.count(input_rows=outcome.read, output_rows=outcome.loaded + outcome.quarantined)
        run.progress(i, len(chosen), f"silver {source.name}")
        summary.silver[source.name] = build_silver(ctx, run, source)
    for name, o in summary.bronze.items():
        run.details[f"{name}.read"] = str(o.read)
        run.details[f"{name}.quarantined"] = str(o.quarantined)
    return summary
