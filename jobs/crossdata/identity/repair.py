"""Keep resolved customers plausible: at most k user_ids, CRM numbers, cards per person.

A component that breaks ``identity.max_per_person`` is repaired in rounds. Each round looks
at every offending component on its own and takes one step in each:

1. an identifier directly linked to more strong identifiers of the offending type than one
   person may hold (a family tablet used by two accounts, a household email) becomes shared:
   its edges stay as evidence but stop merging;
2. in a component where no such identifier explains the violation, the weakest kind of
   evidence present in that component is cut, by the fixed order of
   ``identity.evidence_priority`` (last = weakest; a kind it does not name is weaker still);

then the offending components are recomputed on what remains. A component is never held back
by another: sharing a bridge in one and cutting evidence in the next happen in the same
round, so ``identity.repair_rounds`` bounds the steps one customer takes, not the steps all
customers take together. Both choices are deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crossdata.identity.engine import ComponentsOptions, connected_components

log = logging.getLogger(__name__)

CUT_REASON = "weakest evidence in a customer over max_per_person"


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


def over_linked(edges: DataFrame, types: DataFrame, offending: DataFrame) -> DataFrame:
    """Identifiers directly linked to more strong identifiers of a type their component holds
    too many of than one person may hold: ``(node_id, id_type, reason, component)``.

    ``edges``: the live edges of the offending components, with the ``component`` both ends
    belong to; ``offending``: ``component, nbr_type, max_n`` (each component's broken limits).
    """
    ends = [
        edges.select("component", F.col(a).alias("node_id"), F.col(b).alias("nbr"))
        for a, b in (("src_id", "dst_id"), ("dst_id", "src_id"))
    ]
    both = ends[0].unionByName(ends[1])
    nbr_types = types.select(F.col("node_id").alias("nbr"), F.col("id_type").alias("nbr_type"))
    own_types = types.select("node_id", F.col("id_type").alias("own_type"))
    per_node = (
        both.join(nbr_types, "nbr")
        .join(offending.distinct(), ["component", "nbr_type"])
        .groupBy("component", "node_id", "nbr_type", "max_n")
        .agg(F.countDistinct("nbr").alias("links"))
        .where(F.col("links") > F.col("max_n"))
        .join(own_types, "node_id")
        .where(F.col("own_type") != F.col("nbr_type"))
    )
    return per_node.groupBy("node_id", F.col("own_type").alias("id_type"), "component").agg(
        F.concat(
            F.lit("bridges "),
            F.max("links").cast("string"),
            F.lit(" "),
            F.min("nbr_type"),
            F.lit(" in one customer"),
        ).alias("reason")
    )


def weakest_evidence(live: DataFrame, priority: Sequence[str]) -> DataFrame:
    """``(component, source)``: the weakest kind of evidence each component's ``live`` edges
    hold. The later a kind comes in ``priority``, the weaker; a kind it does not name (the
    configuration names them all) counts as weaker than any it names, and among several such
    the first by name goes first."""
    ranks = live.sparkSession.createDataFrame(list(enumerate(priority)), "_rank INT, source STRING")
    present = (
        live.select("component", "source")
        .distinct()
        .join(F.broadcast(ranks), "source", "left")
        .withColumn("_rank", F.coalesce("_rank", F.lit(len(priority))))
    )
    # Highest rank first, then the smallest name: the minimum of (-rank, source).
    first = F.min(F.struct((-F.col("_rank")).alias("k"), F.col("source").alias("source")))
    return present.groupBy("component").agg(first["source"].alias("source"))


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
        bad = violations(components, types, limits).localCheckpoint()
        offending = bad.select("component").distinct()
        if offending.isEmpty():
            return RepairOutcome(components, shared, cut, done - 1, 0)
        members = components.join(offending, "component").select("node_id", "component")
        live = (
            _live_edges(edges, shared, cut)
            .join(members.withColumnRenamed("node_id", "src_id"), "src_id")
            .localCheckpoint()
        )
        # Components with a bridge share it; the others lose their weakest evidence.
        newly = (
            over_linked(
                live, types, bad.select("component", F.col("id_type").alias("nbr_type"), "max_n")
            )
            .join(shared.select("node_id"), "node_id", "left_anti")
            .localCheckpoint()
        )
        bridged = newly.select("component").distinct()
        unbridged = live.join(bridged, "component", "left_anti")
        cut_now = (
            unbridged.join(weakest_evidence(unbridged, evidence_priority), ["component", "source"])
            .select("src_id", "dst_id", "source", F.lit(CUT_REASON).alias("reason"))
            .localCheckpoint()
        )
        n_shared, n_cut = newly.count(), cut_now.count()
        if n_shared == 0 and n_cut == 0:
            log.warning("identity repair: round=%d nothing left to share or cut", done)
            break
        log.info("identity repair: round=%d shared=%d evidence_rows_cut=%d", done, n_shared, n_cut)
        shared = shared.unionByName(newly.drop("component"))
        cut = cut.unionByName(cut_now)
        # Recompute only the offending components, on the evidence that still merges.
        sub = _live_edges(live.drop("component"), shared, cut).select(
            F.col("src_id").alias("src"), F.col("dst_id").alias("dst")
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
