"""Keep resolved customers plausible: at most k user_ids, CRM numbers, cards per person.

A component that breaks ``identity.max_per_person`` is repaired in rounds, each touching only
the offending components:

1. an identifier directly linked to more strong identifiers of the offending type than one
   person may hold (a family tablet used by two accounts, a household email) becomes shared:
   its edges stay as evidence but stop merging;
2. if no such identifier explains the violation, the weakest kind of evidence present in the
   component is cut, by the fixed order of ``identity.evidence_priority`` (last = weakest);

then the components are recomputed on what remains. Both choices are deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crossdata.identity.engine import ComponentsOptions, connected_components

log = logging.getLogger(__name__)


@dataclass
class RepairOutcome:
    components: DataFrame  # node_id, component
    shared: DataFrame  # node_id, id_type, reason (all shared nodes, old and new)
    cut: DataFrame  # src_id, dst_id, source, reason (evidence rows cut)
    rounds: int
    remaining_violations: int


def violations(components: DataFrame, types: DataFrame, limits: Mapping[str, int]) -> DataFrame:
    """Components holding more strong identifiers of a type than one person may:
    ``(component, id_type, n, max_per_person)``."""
    rows = [(t, n) for t, n in limits.items()]
    limit_df = components.sparkSession.createDataFrame(rows, "id_type STRING, max_n INT")
    return (
        components.join(types, "node_id")
        .join(F.broadcast(limit_df), "id_type")
        .groupBy("component", "id_type", "max_n")
        .agg(F.count(F.lit(1)).alias("n"))
        .where(F.col("n") > F.col("max_n"))
    )


def over_linked(edges: DataFrame, types: DataFrame, offending_types: DataFrame) -> DataFrame:
    """Identifiers directly linked to more strong identifiers of an offending type than one
    person may hold: ``(node_id, id_type, reason)``.

    ``offending_types``: ``nbr_type, max_n`` (the strong types some component holds too many
    of); ``edges`` are the live edges of the offending components.
    """
    both = edges.select(F.col("src_id").alias("node_id"), F.col("dst_id").alias("nbr")).unionByName(
        edges.select(F.col("dst_id").alias("node_id"), F.col("src_id").alias("nbr"))
    )
    nbr_types = types.select(F.col("node_id").alias("nbr"), F.col("id_type").alias("nbr_type"))
    own_types = types.select("node_id", F.col("id_type").alias("own_type"))
    per_node = (
        both.join(nbr_types, "nbr")
        .join(F.broadcast(offending_types.distinct()), "nbr_type")
        .groupBy("node_id", "nbr_type", "max_n")
        .agg(F.countDistinct("nbr").alias("links"))
        .where(F.col("links") > F.col("max_n"))
        .join(own_types, "node_id")
        .where(F.col("own_type") != F.col("nbr_type"))
    )
    return per_node.groupBy("node_id", F.col("own_type").alias("id_type")).agg(
        F.concat(
            F.lit("bridges "),
            F.max("links").cast("string"),
            F.lit(" "),
            F.min("nbr_type"),
            F.lit(" in one customer"),
        ).alias("reason")
    )


def repair(
    components: DataFrame,
    edges: DataFrame,
    types: DataFrame,
    shared: DataFrame,
    limits: Mapping[str, int],
    evidence_priority: Sequence[str],
    rounds: int,
    options: ComponentsOptions,
    cut: DataFrame | None = None,
) -> RepairOutcome:
    """Repair offending components in rounds (see module doc). Triggers Spark jobs.

    ``edges``: ``src_id, dst_id, source, merges`` (one row per pair and kind of evidence);
    ``types``: ``node_id, id_type``; ``shared``: nodes already shared by the degree limits;
    ``cut``: evidence rows already refused (``src_id, dst_id, source, reason``), reported with
    the rows the rounds cut.
    """
    spark = components.sparkSession
    if cut is None:
        cut = spark.createDataFrame(
            [], "src_id BIGINT, dst_id BIGINT, source STRING, reason STRING"
        )
    done = 0
    for done in range(1, rounds + 1):
        bad = violations(components, types, limits).persist()
        offending = bad.select("component").distinct()
        if offending.isEmpty():
            bad.unpersist()
            return RepairOutcome(components, shared, cut, done - 1, 0)
        members = components.join(offending, "component").select("node_id", "component")
        live = (
            _live_edges(edges, shared, cut)
            .join(members.withColumnRenamed("node_id", "src_id"), "src_id")
            .drop("component")
        )
        offending_types = bad.select(F.col("id_type").alias("nbr_type"), "max_n")
        newly = (
            over_linked(live, types, offending_types)
            .join(shared.select("node_id"), "node_id", "left_anti")
            .persist()
        )
        if not newly.isEmpty():
            log.info("identity repair: round=%d sharing bridge identifiers", done)
            shared = shared.unionByName(newly)
        else:
            weakest = _weakest_present(live, evidence_priority)
            if weakest is None:
                log.warning("identity repair: round=%d nothing left to cut", done)
                newly.unpersist()
                bad.unpersist()
                break
            log.info("identity repair: round=%d cutting evidence=%s", done, weakest)
            cut = cut.unionByName(
                live.where(F.col("source") == weakest).select(
                    "src_id",
                    "dst_id",
                    "source",
                    F.lit("weakest evidence in a customer over max_per_person").alias("reason"),
                )
            )
        # Recompute only the offending components, on the evidence that still merges.
        sub = (
            _live_edges(edges, shared, cut)
            .join(members.withColumnRenamed("node_id", "src_id"), "src_id")
            .select(F.col("src_id").alias("src"), F.col("dst_id").alias("dst"))
        )
        vertices = members.join(shared.select("node_id"), "node_id", "left_anti").select(
            F.col("node_id").alias("id")
        )
        fresh = connected_components(sub, vertices, options).select(
            F.col("id").alias("node_id"), "component"
        )
        components = (
            components.join(offending, "component", "left_anti")
            .unionByName(fresh)
            .localCheckpoint()
        )
        newly.unpersist()
        bad.unpersist()
    remaining = violations(components, types, limits).select("component").distinct().count()
    return RepairOutcome(components, shared, cut, done, remaining)


def _live_edges(edges: DataFrame, shared: DataFrame, cut: DataFrame) -> DataFrame:
    """Evidence rows that still merge: not touching a shared node, not cut."""
    s = shared.select("node_id")
    return (
        edges.where(F.col("merges"))
        .join(s.withColumnRenamed("node_id", "src_id"), "src_id", "left_anti")
        .join(s.withColumnRenamed("node_id", "dst_id"), "dst_id", "left_anti")
        .join(cut.select("src_id", "dst_id", "source"), ["src_id", "dst_id", "source"], "left_anti")
    )


def _weakest_present(live: DataFrame, priority: Sequence[str]) -> str | None:
    present = {r[0] for r in live.select("source").distinct().collect()}  # a few kinds
    for source in reversed(priority):
        if source in present:
            return source
    unknown = sorted(present - set(priority))
    return unknown[0] if unknown else None
