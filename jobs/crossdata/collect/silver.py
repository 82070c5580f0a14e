"""bronze.<source> -> silver: typed, deduplicated, normalised, checked; incremental and idempotent.

Each bronze table is read as a Delta stream (``availableNow``, own checkpoint). A micro-batch
is shaped by the source's flow (``flows``), deduplicated within itself, checked against the
configured expectations, and merged on the table's keys, so a record seen again (in a later
batch, a replayed batch or a copy of a file) is never inserted twice. A flow may write its rows
itself with the same guarantee (``Flow.write``: silver.events appends its new events with
their sessions). What each step removed or changed is counted in ``ops.data_quality``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType

from crossdata.collect.identifiers import UNUSABLE_FIELDS
from crossdata.collect.ledgers import QUALITY, QUARANTINE, SILVER_BATCHES
from crossdata.collect.streams import query_app_id
from crossdata.config.schema import CollectSettings, Expectation
from crossdata.errors import ConfigError, DataQualityError
from crossdata.lakehouse.tables import table as table_spec

if TYPE_CHECKING:
    from crossdata.lakehouse import Lakehouse, LakeLocation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SilverBatch:
    """What a flow knows about the batch it shapes."""

    settings: CollectSettings
    lake: Lakehouse
    run_id: str
    batch_id: int
    checked_at: dt.datetime
    app_id: str | None = None  # the stream's query id: idempotent appends are keyed by it

    def txn(self, table: str) -> tuple[str, int] | None:
        """The idempotent-write id of this batch's append to ``table`` (None without a query)."""
        return None if self.app_id is None else (f"{self.app_id}/{table}", self.batch_id)


@dataclass(frozen=True)
class QualityRow:
    table: str
    rule: str
    passed: int
    failed: int
    action: str


@dataclass
class SilverOutcome:
    rows_in: int = 0
    inserted: int = 0
    updated: int = 0
    duplicates: int = 0
    quarantined: int = 0
    removed: int = 0  # kept out of silver by the flow's removal rule, after being counted
    quality: list[QualityRow] = field(default_factory=list)


Shape = Callable[[DataFrame, SilverBatch], DataFrame]
# Writes a batch's deduplicated rows in place of the MERGE on keys; gets the days the batch
# touches and returns Delta-style counts (inserted, updated: records replaced, not derived
# columns such as sessions). With ``stored_bots_flagged`` and ``stored_checked``, the stored
# rows it re-checked and those it flagged as bots are recorded in ops.data_quality.
Write = Callable[[DataFrame, SilverBatch, list[dt.date]], dict[str, int]]
# Rows a setting keeps out of silver (bots with collect.bots.action=remove): the rule's name
# in ops.data_quality and the condition, or None when nothing is removed. They are counted
# first, so they are never silently gone.
Removal = Callable[[CollectSettings], tuple[str, Column] | None]
# Bronze rows a flow's shape leaves out by design (server hits that are not page views): the
# rule's name in ops.data_quality and the condition on the bronze batch's rows. They stay in
# bronze, outside the silver batch's rows in; the count says how many each batch left there.
Skipped = Callable[[], tuple[str, Column]]


@dataclass(frozen=True)
class Flow:
    """How one bronze source becomes (part of) one silver table."""

    source: str
    table: str
    shape: Shape  # bronze batch -> silver rows (pure)
    prefer: tuple[str, ...]  # among duplicates keep the first by these ("-name": descending)
    when_matched: str = "ignore"  # "ignore": first seen wins; "update": replace when changed
    newer: str | None = None  # with "update": only a newer row may replace the stored one
    compare: tuple[str, ...] = ()  # with "update": replace only when one of these differs
    counters: tuple[str, ...] = ()  # boolean/array columns counted into ops.data_quality
    pre_merge: Callable[[DataFrame, SilverBatch], DataFrame] | None = None
    write: Write | None = None  # instead of the MERGE on keys (silver.events: with sessions)
    removal: Removal | None = None
    skipped: Skipped | None = None


# Columns a shape may add for counting only: counted like ``Flow.counters`` (under their name
# without the leading underscore), then dropped before anything is written.
TRANSIENT = (UNUSABLE_FIELDS,)


def transient_columns(df: DataFrame) -> list[str]:
    """The ``TRANSIENT`` columns ``df`` carries."""
    return [c for c in TRANSIENT if c in df.columns]


def deduplicate(rows: DataFrame, keys: tuple[str, ...], prefer: tuple[str, ...]) -> DataFrame:
    """Keep one row per key: the first by ``prefer``, columns ascending or, named with a
    leading "-", descending (deterministic, so replays agree)."""
    order = [
        F.col(c[1:]).desc_nulls_last() if c.startswith("-") else F.col(c).asc_nulls_last()
        for c in prefer
    ]
    w = Window.partitionBy(*keys).orderBy(*order)
    return rows.withColumn("_rank", F.row_number().over(w)).where("_rank = 1").drop("_rank")


def expectation_flags(rows: DataFrame, expectations: list[Expectation]) -> DataFrame:
    """One boolean column per expectation: ``_exp_<name>`` is true when the row fails it."""
    check_expectations(rows, expectations)
    return rows.select(
        "*",
        *[
            (~F.coalesce(F.expr(e.expr), F.lit(False))).alias(f"_exp_{e.name}")
            for e in expectations
        ],
    )


def check_expectations(rows: DataFrame, expectations: list[Expectation]) -> None:
    """ConfigError naming the first expectation that is not a boolean over ``rows``' columns.

    conf checks an expectation's table and name before Spark starts; its columns and type can
    only be checked against the table's rows. Analysis only, no Spark job: one analysis for
    all of them, and one each only when that one fails.
    """
    if not expectations:
        return
    try:
        kinds = [f.dataType for f in rows.select(*[F.expr(e.expr) for e in expectations]).schema]
    except (AnalysisException, ParseException):
        for e in expectations:
            try:
                rows.select(F.expr(e.expr)).schema  # noqa: B018 (analysed to be checked)
            except (AnalysisException, ParseException) as exc:
                first = str(exc).strip().splitlines()[0]
                raise ConfigError(
                    f"collect.expectations: {e.name} on {e.table}: {e.expr!r} cannot be "
                    f"evaluated on its rows: {first}"
                ) from None
        raise  # only together: should not happen, keep Spark's error
    for e, kind in zip(expectations, kinds, strict=True):
        if not isinstance(kind, BooleanType):
            raise ConfigError(
                f"collect.expectations: {e.name} on {e.table}: {e.expr!r} is "
                f"{kind.simpleString()}, not a boolean"
            )


class SilverBatchWriter:
    """The foreachBatch body for one flow; like the bronze writer it holds no session."""

    def __init__(
        self,
        location: LakeLocation,
        flow: Flow,
        settings: CollectSettings,
        run_id: str,
        checkpoint: str,
    ) -> None:
        self.location = location
        self.flow = flow
        self.settings = settings
        self.run_id = run_id
        self.checkpoint = checkpoint
        self._app_id: str | None = None

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        spark = batch.sparkSession
        self._app_id = self._app_id or query_app_id(spark, self.checkpoint)
        ctx = SilverBatch(
            self.settings,
            self.location.open(spark),
            self.run_id,
            batch_id,
            dt.datetime.now(dt.UTC),
            self._app_id,
        )
        outcome = self.process(batch, ctx)
        log.info(
            "silver batch table=%s source=%s batch=%d in=%d inserted=%d updated=%d "
            "duplicates=%d quarantined=%d removed=%d",
            self.flow.table,
            self.flow.source,
            batch_id,
            outcome.rows_in,
            outcome.inserted,
            outcome.updated,
            outcome.duplicates,
            outcome.quarantined,
            outcome.removed,
        )

    def _txn(self, table: str, ctx: SilverBatch) -> tuple[str, int]:
        return (f"{ctx.app_id or self._app_id}/{table}", ctx.batch_id)

    def process(self, batch: DataFrame, ctx: SilverBatch) -> SilverOutcome:
        flow = self.flow
        spec = table_spec(flow.table)
        expectations = [e for e in self.settings.expectations if e.table == flow.table]
        shaped = flow.shape(batch, ctx)
        flagged = expectation_flags(shaped, expectations).persist()
        try:
            outcome = SilverOutcome()
            exp_cols = [f"_exp_{e.name}" for e in expectations]
            transient = transient_columns(shaped)
            counters = {c: c for c in flow.counters} | {c: c.lstrip("_") for c in transient}
            part = spec.partition_by[0] if len(spec.partition_by) == 1 else None
            to_quarantine = [e for e in expectations if e.action == "quarantine"]
            bad = F.lit(False)
            for e in to_quarantine:
                bad = bad | F.col(f"_exp_{e.name}")
            removal = flow.removal(self.settings) if flow.removal is not None else None
            rule, removal_hit = (
                (removal[0], F.coalesce(removal[1], F.lit(False))) if removal else (None, None)
            )
            counts = flagged.agg(
                F.count(F.lit(1)).alias("rows"),
                *[F.sum(F.col(c).cast("int")).alias(c) for c in exp_cols],
                *[_counter(flagged, c).alias(f"_cnt_{c}") for c in counters],
                # a quarantined row is not also counted as removed
                *(
                    [F.sum((removal_hit & ~bad).cast("int")).alias("_removed")]
                    if removal_hit is not None
                    else []
                ),
                # the days a batch touches (a handful), to prune the MERGE target
                (F.collect_set(part) if part else F.lit(None)).alias("_parts"),
            ).collect()[0]  # a global aggregate: exactly one row
            outcome.rows_in = int(counts["rows"])
            if flow.skipped is not None:
                name, condition = flow.skipped()
                left = batch.where(F.coalesce(condition, F.lit(True))).count()
                if left:
                    outcome.quality.append(
                        QualityRow(
                            flow.table, f"{flow.source}:{name}", outcome.rows_in, left, "skip"
                        )
                    )
            if outcome.rows_in == 0:
                self._record_quality(outcome.quality, ctx)
                return outcome
            for e in expectations:
                failed = int(counts[f"_exp_{e.name}"] or 0)
                outcome.quality.append(
                    QualityRow(
                        flow.table, f"expect:{e.name}", outcome.rows_in - failed, failed, e.action
                    )
                )
                if failed:
                    log.warning(
                        "expectation failed table=%s rule=%s failed=%d action=%s",
                        flow.table,
                        e.name,
                        failed,
                        e.action,
                    )
            for c, name in counters.items():
                hit = int(counts[f"_cnt_{c}"] or 0)
                outcome.quality.append(
                    QualityRow(
                        flow.table, f"{flow.source}:{name}", outcome.rows_in - hit, hit, "count"
                    )
                )
            failing = [
                e
                for e in expectations
                if e.action == "fail" and int(counts[f"_exp_{e.name}"] or 0) > 0
            ]
            if failing:  # before anything of the batch is written, quarantine included
                # Under a transaction of its own: the run that passes this batch later (the
                # rule fixed or relaxed) must still record its own quality rows.
                self._record_quality(outcome.quality, ctx, stopped=True)
                names = ", ".join(e.name for e in failing)
                raise DataQualityError(
                    f"{flow.table}: expectation(s) {names} failed with action=fail; "
                    f"see {QUALITY} for run {self.run_id}"
                )
            if to_quarantine:
                rejected = flagged.where(bad)
                outcome.quarantined = self._quarantine(rejected, to_quarantine, ctx)
                kept = flagged.where(~bad)
            else:
                kept = flagged
            if removal_hit is not None:
                outcome.removed = int(counts["_removed"] or 0)
                outcome.quality.append(
                    QualityRow(
                        flow.table,
                        f"{flow.source}:{rule}",
                        outcome.rows_in - outcome.removed,
                        outcome.removed,
                        "remove",
                    )
                )
                kept = kept.where(~removal_hit)
            rows = deduplicate(kept.drop(*exp_cols, *transient), spec.keys, flow.prefer)
            if flow.pre_merge is not None:
                rows = flow.pre_merge(rows, ctx)
            if flow.write is not None:
                days = sorted(d for d in (counts["_parts"] or []) if d is not None)
                metrics = flow.write(rows, ctx, days)
            else:
                metrics = self._merge(ctx, rows, part, counts["_parts"])
            outcome.inserted = metrics["inserted"]
            outcome.updated = metrics["updated"]
            if "stored_bots_flagged" in metrics:  # stored events a later batch made bots
                flagged_later = metrics["stored_bots_flagged"]
                outcome.quality.append(
                    QualityRow(
                        flow.table,
                        f"{flow.source}:stored_bots_flagged",
                        metrics["stored_checked"] - flagged_later,
                        flagged_later,
                        "count",
                    )
                )
            outcome.duplicates = (
                outcome.rows_in
                - outcome.quarantined
                - outcome.removed
                - outcome.inserted
                - outcome.updated
            )
            outcome.quality.append(
                QualityRow(
                    flow.table,
                    f"{flow.source}:deduplicated",
                    outcome.rows_in - outcome.duplicates,
                    outcome.duplicates,
                    "remove",
                )
            )
            self._record_quality(outcome.quality, ctx)
            self._record_outcome(outcome, ctx)
            return outcome
        finally:
            flagged.unpersist()

    def _merge(
        self, ctx: SilverBatch, rows: DataFrame, part: str | None, values: list | None
    ) -> dict[str, int]:
        flow = self.flow
        parts = []
        if flow.newer:
            parts.append(f"s.`{flow.newer}` > t.`{flow.newer}`")
        if flow.compare:
            parts.append(
                "(" + " OR ".join(f"NOT (s.`{c}` <=> t.`{c}`)" for c in flow.compare) + ")"
            )
        condition = " AND ".join(parts) if parts else None
        prune = _partition_prune(part, values, self.settings.duplicate_window_days)
        result = ctx.lake.merge(
            rows,
            flow.table,
            when_matched="update" if flow.when_matched == "update" else "ignore",
            matched_condition=condition,
            source_condition=prune,
        )
        return result

    def _quarantine(self, rejected: DataFrame, exps: list[Expectation], ctx: SilverBatch) -> int:
        reason_detail = F.coalesce(*[F.when(F.col(f"_exp_{e.name}"), F.lit(e.name)) for e in exps])
        payload = [c for c in rejected.columns if not c.startswith("_exp_") and c not in TRANSIENT]
        rows = rejected.select(
            F.lit(self.flow.source).alias("source"),
            F.lit("expectation_failed").alias("reason"),
            reason_detail.alias("detail"),
            F.to_json(F.struct(*payload)).alias("raw"),
            F.lit(None).cast("binary").alias("raw_bytes"),
            F.col("_source_file").alias("file"),
            F.col("_line").cast("bigint").alias("line"),
            F.col("_delivery_date").alias("delivery_date"),
            F.lit(self.run_id).alias("run_id"),
            F.lit(ctx.batch_id).cast("bigint").alias("batch_id"),
            F.lit(ctx.checked_at).cast("timestamp").alias("ingested_at"),
        )
        n = rows.count()
        if n:
            ctx.lake.append(rows, QUARANTINE, txn=self._txn(QUARANTINE, ctx))
        return n

    def _record_outcome(self, o: SilverOutcome, ctx: SilverBatch) -> None:
        row = (
            self.run_id,
            ctx.batch_id,
            self.flow.table,
            self.flow.source,
            o.rows_in,
            o.inserted,
            o.updated,
            o.duplicates,
            o.quarantined,
            ctx.checked_at,
            o.removed,
        )
        # removed comes last: a table made before it existed gains it by schema merge.
        schema = (
            "run_id STRING, batch_id BIGINT, table STRING, source STRING, rows_in BIGINT, "
            "inserted BIGINT, updated BIGINT, duplicates BIGINT, quarantined BIGINT, "
            "checked_at TIMESTAMP, removed BIGINT"
        )
        ctx.lake.append(
            ctx.lake.spark.createDataFrame([row], schema),
            SILVER_BATCHES,
            merge_schema=True,
            txn=self._txn(SILVER_BATCHES, ctx),
        )

    def _record_quality(
        self, rows: list[QualityRow], ctx: SilverBatch, stopped: bool = False
    ) -> None:
        if not rows:
            return
        data = [
            (
                self.run_id,
                ctx.batch_id,
                r.table,
                r.rule,
                r.passed,
                r.failed,
                r.action,
                ctx.checked_at,
            )
            for r in rows
        ]
        schema = (
            "run_id STRING, batch_id BIGINT, table STRING, rule STRING, passed BIGINT, "
            "failed BIGINT, action STRING, checked_at TIMESTAMP"
        )
        spark = ctx.lake.spark
        ctx.lake.append(
            spark.createDataFrame(data, schema),
            QUALITY,
            txn=self._txn(f"{QUALITY}/stopped" if stopped else QUALITY, ctx),
        )


def _counter(df: DataFrame, column: str):
    dtype = dict(df.dtypes).get(column, "")
    if dtype.startswith("array"):
        return F.sum((F.size(column) > 0).cast("int"))
    return F.sum(F.col(column).cast("int"))


def widened(days: Iterable[dt.date], window: int, after: int | None = None) -> list[dt.date]:
    """``days`` and the ``window`` days before each and ``after`` (default: ``window``) days
    after it, sorted."""
    later = window if after is None else after
    return sorted({d + dt.timedelta(days=k) for d in days for k in range(-window, later + 1)})


def _partition_prune(column: str | None, values: list | None, window: int = 0) -> str | None:
    """A literal filter on the target's partitions, so MERGE reads only the days it touches
    (and ``window`` days either side, where a key may already be stored under another day).

    Rows without a partition value are never merged against (a NULL key matches nothing), so
    leaving them out of the list is safe.
    """
    days = widened((v for v in (values or []) if v is not None), window)
    if column is None or not days:
        return None
    listed = ", ".join(f"DATE'{v.isoformat()}'" for v in days)
    return f"t.`{column}` IN ({listed})"
