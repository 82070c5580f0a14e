"""bronze.<source> -> silver: typed, deduplicated, normalised, checked; incremental and idempotent.

Each bronze table is read as a Delta stream (``availableNow``, own checkpoint). A micro-batch
is shaped by the source's flow (``flows``), deduplicated within itself, checked against the
configured expectations, and merged on the table's keys, so a record seen again (in a later
batch, a replayed batch or a copy of a file) is never inserted twice. What each step removed
or changed is counted in ``ops.data_quality``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from crossdata.config.schema import CollectSettings, Expectation
from crossdata.errors import DataQualityError
from crossdata.lakehouse.tables import table as table_spec

if TYPE_CHECKING:
    from crossdata.lakehouse import Lakehouse

log = logging.getLogger(__name__)

QUALITY = "ops.data_quality"
QUARANTINE = "bronze.quarantine"


@dataclass(frozen=True)
class SilverBatch:
    """What a flow knows about the batch it shapes."""

    settings: CollectSettings
    lake: Lakehouse
    run_id: str
    batch_id: int
    checked_at: dt.datetime


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
    quality: list[QualityRow] = field(default_factory=list)


Shape = Callable[[DataFrame, SilverBatch], DataFrame]
AfterMerge = Callable[[DataFrame, SilverBatch], None]


@dataclass(frozen=True)
class Flow:
    """How one bronze source becomes (part of) one silver table."""

    source: str
    table: str
    shape: Shape  # bronze batch -> silver rows (pure)
    prefer: tuple[str, ...]  # among duplicates keep the first by these columns
    when_matched: str = "ignore"  # "ignore": first seen wins; "update": replace when changed
    newer: str | None = None  # with "update": only a newer row may replace the stored one
    compare: tuple[str, ...] = ()  # with "update": replace only when one of these differs
    counters: tuple[str, ...] = ()  # boolean/array columns counted into ops.data_quality
    after_merge: AfterMerge | None = None  # e.g. re-sessionise the actors a batch touched
    pre_merge: Callable[[DataFrame, SilverBatch], DataFrame] | None = None


def deduplicate(rows: DataFrame, keys: tuple[str, ...], prefer: tuple[str, ...]) -> DataFrame:
    """Keep one row per key: the first by ``prefer`` (deterministic, so replays agree)."""
    order = [F.col(c).asc_nulls_last() for c in prefer]
    w = Window.partitionBy(*keys).orderBy(*order)
    return rows.withColumn("_rank", F.row_number().over(w)).where("_rank = 1").drop("_rank")


def expectation_flags(rows: DataFrame, expectations: list[Expectation]) -> DataFrame:
    """One boolean column per expectation: ``_exp_<name>`` is true when the row fails it."""
    return rows.select(
        "*",
        *[
            (~F.coalesce(F.expr(e.expr), F.lit(False))).alias(f"_exp_{e.name}")
            for e in expectations
        ],
    )


class SilverBatchWriter:
    """The foreachBatch body for one flow."""

    def __init__(
        self, lake: Lakehouse, flow: Flow, settings: CollectSettings, run_id: str, app_id
    ) -> None:
        self.lake = lake
        self.flow = flow
        self.settings = settings
        self.run_id = run_id
        self._app_id = app_id
        self.total = SilverOutcome()

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        ctx = SilverBatch(self.settings, self.lake, self.run_id, batch_id, dt.datetime.now(dt.UTC))
        outcome = self.process(batch, ctx)
        t = self.total
        t.rows_in += outcome.rows_in
        t.inserted += outcome.inserted
        t.updated += outcome.updated
        t.duplicates += outcome.duplicates
        t.quarantined += outcome.quarantined
        t.quality += outcome.quality
        log.info(
            "silver batch table=%s source=%s batch=%d in=%d inserted=%d updated=%d "
            "duplicates=%d quarantined=%d",
            self.flow.table,
            self.flow.source,
            batch_id,
            outcome.rows_in,
            outcome.inserted,
            outcome.updated,
            outcome.duplicates,
            outcome.quarantined,
        )

    def process(self, batch: DataFrame, ctx: SilverBatch) -> SilverOutcome:
        flow = self.flow
        spec = table_spec(flow.table)
        expectations = [e for e in self.settings.expectations if e.table == flow.table]
        shaped = flow.shape(batch, ctx)
        flagged = expectation_flags(shaped, expectations).persist()
        try:
            outcome = SilverOutcome()
            exp_cols = [f"_exp_{e.name}" for e in expectations]
            counts = flagged.agg(
                F.count(F.lit(1)).alias("rows"),
                *[F.sum(F.col(c).cast("int")).alias(c) for c in exp_cols],
                *[_counter(flagged, c).alias(f"_cnt_{c}") for c in flow.counters],
            ).collect()[0]  # a global aggregate: exactly one row
            outcome.rows_in = int(counts["rows"])
            if outcome.rows_in == 0:
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
            for c in flow.counters:
                hit = int(counts[f"_cnt_{c}"] or 0)
                outcome.quality.append(
                    QualityRow(
                        flow.table, f"{flow.source}:{c}", outcome.rows_in - hit, hit, "count"
                    )
                )
            failing = [
                e
                for e in expectations
                if e.action == "fail" and int(counts[f"_exp_{e.name}"] or 0) > 0
            ]
            to_quarantine = [e for e in expectations if e.action == "quarantine"]
            if to_quarantine:
                bad = F.lit(False)
                for e in to_quarantine:
                    bad = bad | F.col(f"_exp_{e.name}")
                rejected = flagged.where(bad)
                outcome.quarantined = self._quarantine(rejected, to_quarantine, ctx)
                kept = flagged.where(~bad)
            else:
                kept = flagged
            if failing:
                self._record_quality(outcome.quality, ctx)
                names = ", ".join(e.name for e in failing)
                raise DataQualityError(
                    f"{flow.table}: expectation(s) {names} failed with action=fail; "
                    f"see {QUALITY} for run {self.run_id}"
                )
            rows = deduplicate(kept.drop(*exp_cols), spec.keys, flow.prefer)
            if flow.pre_merge is not None:
                rows = flow.pre_merge(rows, ctx)
            metrics = self._merge(rows, ctx)
            outcome.inserted = metrics["inserted"]
            outcome.updated = metrics["updated"]
            outcome.duplicates = (
                outcome.rows_in - outcome.quarantined - outcome.inserted - outcome.updated
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
            if flow.after_merge is not None:
                flow.after_merge(rows, ctx)
            self._record_quality(outcome.quality, ctx)
            return outcome
        finally:
            flagged.unpersist()

    def _merge(self, rows: DataFrame, ctx: SilverBatch) -> dict[str, int]:
        flow = self.flow
        spec = table_spec(flow.table)
        parts = []
        if flow.newer:
            parts.append(f"s.`{flow.newer}` > t.`{flow.newer}`")
        if flow.compare:
            parts.append(
                "(" + " OR ".join(f"NOT (s.`{c}` <=> t.`{c}`)" for c in flow.compare) + ")"
            )
        condition = " AND ".join(parts) if parts else None
        prune = _partition_prune(rows, spec.partition_by)
        result = self.lake.merge(
            rows,
            flow.table,
            when_matched="update" if flow.when_matched == "update" else "ignore",
            matched_condition=condition,
            source_condition=prune,
        )
        return result

    def _quarantine(self, rejected: DataFrame, exps: list[Expectation], ctx: SilverBatch) -> int:
        reason_detail = F.coalesce(*[F.when(F.col(f"_exp_{e.name}"), F.lit(e.name)) for e in exps])
        payload = [c for c in rejected.columns if not c.startswith("_exp_")]
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
            self.lake.append(rows, QUARANTINE, txn=(f"{self._app_id()}/{QUARANTINE}", ctx.batch_id))
        return n

    def _record_quality(self, rows: list[QualityRow], ctx: SilverBatch) -> None:
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
        spark = self.lake.spark
        self.lake.append(
            spark.createDataFrame(data, schema),
            QUALITY,
            txn=(f"{self._app_id()}/{QUALITY}", ctx.batch_id),
        )


def _counter(df: DataFrame, column: str):
    dtype = dict(df.dtypes).get(column, "")
    if dtype.startswith("array"):
        return F.sum((F.size(column) > 0).cast("int"))
    return F.sum(F.col(column).cast("int"))


def _partition_prune(rows: DataFrame, partition_by: tuple[str, ...]) -> str | None:
    """A literal filter on the target's partitions, so MERGE reads only the days it touches."""
    if len(partition_by) != 1:
        return None
    col = partition_by[0]
    values = [r[0] for r in rows.select(col).distinct().collect()]  # distinct days: small
    if not values or any(v is None for v in values):
        return None
    listed = ", ".join(f"DATE'{v.isoformat()}'" for v in sorted(values))
    return f"t.`{col}` IN ({listed})"
