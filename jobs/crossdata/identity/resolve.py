"""The identity stage: silver evidence -> one stable customer key per person.

Each run rebuilds the graph from all of silver (a full rebuild, not an incremental patch:
connected components are global, so patching them needs component bookkeeping that is easy
to get subtly wrong; a rebuild is linear in the evidence and its result does not depend on
the order runs happened in), then keeps keys stable through ``keys.assign_keys``. Node ids
come from a persisted dictionary, so the graph never runs on strings and ids never change.

Order of work: evidence and nodes (guardrails applied) -> dictionary -> edges with ids ->
shared identifiers, conflicting evidence cut -> connected components -> repair of over-merged
customers -> keys -> gold tables.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crossdata.config.schema import Settings
from crossdata.identity.engine import ComponentsOptions, connected_components
from crossdata.identity.evidence import collect_evidence
from crossdata.identity.golden import golden_records
from crossdata.identity.graph import (
    aggregate_evidence,
    aggregate_nodes,
    blocked,
    bridging_identifiers,
    conflicting_evidence,
    crm_holders,
    endpoint_observations,
    household_identifiers,
    mark_merging,
    new_identifiers,
    shared_nodes,
    with_node_ids,
    without_blocked,
    without_loops,
)
from crossdata.identity.keys import assign_keys, key_rows, lineage_rows
from crossdata.identity.linkage import linkage_edges
from crossdata.identity.repair import RepairOutcome, repair
from crossdata.lakehouse import Lakehouse
from crossdata.ops import Context, JobRun, raise_alert

log = logging.getLogger(__name__)

DICTIONARY = "silver.identity_dictionary"
EDGES = "silver.identity_edges"
IDENTITY_MAP = "gold.identity_map"
KEYS = "gold.customer_keys"
LINEAGE = "gold.identity_lineage"
GOLDEN = "gold.customer_golden"


@dataclass
class IdentitySummary:
    identifiers: int = 0
    new_identifiers: int = 0
    evidence_edges: int = 0
    shared: int = 0
    customers: int = 0
    largest_customer: int = 0
    repair_rounds: int = 0
    cut_edges: int = 0
    remaining_violations: int = 0
    merges: int = 0
    splits: int = 0
    giant_components: list[int] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"identity: {self.identifiers} identifiers ({self.new_identifiers} new), "
            f"{self.evidence_edges} evidence edges, {self.shared} shared identifiers, "
            f"{self.customers} customers (largest {self.largest_customer} identifiers); "
            f"repair rounds {self.repair_rounds}, evidence cut {self.cut_edges}, "
            f"customers still over limits {self.remaining_violations}; "
            f"keys merged {self.merges}, split {self.splits}"
            + (f"; giant components {self.giant_components}" if self.giant_components else "")
        )


@dataclass(frozen=True)
class Resolution:
    components: DataFrame  # node_id, component (shared identifiers excluded)
    edges: DataFrame  # identity edges with final merges flag and cut reason
    shared: DataFrame  # node_id, id_type, reason
    repair: RepairOutcome


@dataclass(frozen=True)
class MapState:
    """What a run builds on: the version of gold.identity_map it reads. The run's writes before
    the map's overwrite are made repeatable from it, so an attempt that failed part way and the
    one after it write the same:

    - New keys are salted with it (not with the run id): the retry issues the keys the failed
      attempt already put in gold.customer_keys, not a second set nobody holds. With no map
      (the first run, or a rebuild after the map was deleted) the salt is empty, so keys depend
      on the members alone, as a standalone resolution's do: a rebuild gives a customer
      anchored as in the first run that run's key again.
    - The lineage is appended as a Delta transaction numbered by it: an attempt after one that
      wrote its lineage writes none (those rows keep the first attempt's run id, as the keys
      it created keep theirs in ``created_run``).
    """

    salt: str
    version: int | None  # of gold.identity_map; None: no map yet
    lineage_txn: tuple[str, int]

    @classmethod
    def of(cls, lake: Lakehouse) -> MapState:
        version = lake.version(IDENTITY_MAP)
        if version is not None:
            table_id = lake.table_id(IDENTITY_MAP)
            txn = (f"identity-lineage:{table_id}", version)
            return cls(f"{IDENTITY_MAP}:{table_id}@{version}", version, txn)
        return cls("", None, ("identity-lineage", -1))  # no map: no lineage to write


def components_options(settings: Settings) -> ComponentsOptions:
    s = settings.identity
    return ComponentsOptions(
        engine=s.engine,
        checkpoint_interval=s.checkpoint_interval,
        max_iterations=s.max_iterations,
        graphframes_algorithm=s.graphframes_algorithm,
        broadcast_threshold=s.broadcast_threshold,
        partition_rows=s.partition_rows,
    )


def anchor_groups(
    live: DataFrame, bridge_types: tuple[str, ...], options: ComponentsOptions
) -> DataFrame:
    """``(node_id, component)``: person-level identifiers (types not in ``bridge_types``)
    grouped by the merging edges ``live`` between them (see ``bridging_identifiers``)."""
    kinds = list(bridge_types)
    anchor_edges = (
        live.where(~F.col("src_type").isin(kinds) & ~F.col("dst_type").isin(kinds))
        .select(F.col("src_id").alias("src"), F.col("dst_id").alias("dst"))
        .distinct()
    )
    return connected_components(anchor_edges, None, options).select(
        F.col("id").alias("node_id"), "component"
    )


def resolve_graph(
    dictionary: DataFrame, edges: DataFrame, settings: Settings, crm: DataFrame | None = None
) -> Resolution:
    """Guardrails, components and repair on an id-mapped graph (triggers Spark jobs).

    ``crm`` (silver.crm_customers) lets household contact points be recognised as shared, and
    evidence that joins different people's contact points be refused (cut, with its reason).
    """
    s = settings.identity
    shared = shared_nodes(edges, s.shared_limits)
    conflicts = None
    if crm is not None:
        holders = crm_holders(edges, crm).localCheckpoint()
        households = household_identifiers(holders).join(shared, "node_id", "left_anti")
        shared = shared.unionByName(households)
        conflicts = conflicting_evidence(edges, holders).localCheckpoint()
    options = components_options(settings)

    def marked_with(shared: DataFrame) -> DataFrame:
        marked = mark_merging(edges, shared)
        if conflicts is None:
            return marked
        flags = conflicts.select("src_id", "dst_id", "source", F.lit(True).alias("_conflict"))
        return (
            marked.join(flags, ["src_id", "dst_id", "source"], "left")
            .withColumn("merges", F.col("merges") & F.col("_conflict").isNull())
            .drop("_conflict")
        )

    if s.bridge_types:
        shared = shared.localCheckpoint()
        live = marked_with(shared).where("merges")
        anchors = anchor_groups(live, s.bridge_types, options)
        acts = live.where(F.col("source").isin(list(s.bridge_evidence)))
        bridges = bridging_identifiers(acts, anchors, s.bridge_types).join(
            shared, "node_id", "left_anti"
        )
        shared = shared.unionByName(bridges)
    shared = shared.persist()
    marked = marked_with(shared).persist()
    vertices = dictionary.select("node_id").join(shared.select("node_id"), "node_id", "left_anti")
    merging = (
        marked.where("merges")
        .select(F.col("src_id").alias("src"), F.col("dst_id").alias("dst"))
        .distinct()
    )
    components = (
        connected_components(merging, vertices.select(F.col("node_id").alias("id")), options)
        .select(F.col("id").alias("node_id"), "component")
        .localCheckpoint()
    )
    types = dictionary.select("node_id", "id_type")
    outcome = repair(
        components,
        marked,
        types,
        shared,
        s.max_per_person,
        s.evidence_priority,
        s.repair_rounds,
        options,
        conflicts,
    )
    shared_ids = outcome.shared.select("node_id").withColumn("_sh", F.lit(True))
    final_edges = (
        marked.join(
            outcome.cut.select("src_id", "dst_id", "source", F.col("reason").alias("cut_reason")),
            ["src_id", "dst_id", "source"],
            "left",
        )
        .join(
            shared_ids.withColumnRenamed("node_id", "src_id").withColumnRenamed("_sh", "_s1"),
            "src_id",
            "left",
        )
        .join(
            shared_ids.withColumnRenamed("node_id", "dst_id").withColumnRenamed("_sh", "_s2"),
            "dst_id",
            "left",
        )
        .withColumn(
            "merges",
            F.col("merges")
            & F.col("cut_reason").isNull()
            & F.col("_s1").isNull()
            & F.col("_s2").isNull(),
        )
        .drop("_s1", "_s2")
    )
    return Resolution(outcome.components, final_edges, outcome.shared, outcome)


def identity_map(
    dictionary: DataFrame, components: DataFrame, assignment: DataFrame, shared: DataFrame
) -> DataFrame:
    """Every identifier with its customer (NULL when shared) and whether it is shared."""
    reasons = shared.select("node_id", F.col("reason").alias("shared_reason"))
    return (
        dictionary.join(components, "node_id", "left")
        .join(assignment, "component", "left")
        .join(reasons, "node_id", "left")
        .select(
            "id_type",
            "id_value",
            "node_id",
            F.when(F.col("shared_reason").isNull(), F.col("customer_id")).alias("customer_id"),
            F.col("shared_reason").isNotNull().alias("is_shared"),
            "shared_reason",
            "first_seen",
            "last_seen",
        )
    )


def _update_dictionary(lake: Lakehouse, nodes: DataFrame) -> tuple[DataFrame, int]:
    before = lake.read(DICTIONARY) if lake.exists(DICTIONARY) else None
    fresh = new_identifiers(nodes, before).localCheckpoint()  # ids fixed before they are written
    added = fresh.count()
    if added:
        lake.append(fresh, DICTIONARY)
    if before is not None:
        lake.merge_sql(
            nodes,
            DICTIONARY,
            "t.id_type = s.id_type AND t.id_value = s.id_value",
            [
                "WHEN MATCHED AND (s.first_seen < t.first_seen OR s.last_seen > t.last_seen) "
                "THEN UPDATE SET t.first_seen = least(t.first_seen, s.first_seen), "
                "t.last_seen = greatest(t.last_seen, s.last_seen)"
            ],
        )
    return lake.read(DICTIONARY), added


def run_identity(ctx: Context, run: JobRun) -> IdentitySummary:
    """Resolve identities over the lakehouse's silver tables and write the identity tables."""
    settings, lake = ctx.settings, ctx.lake
    summary = IdentitySummary()
    at = dt.datetime.now(dt.UTC)
    steps = 6

    run.progress(1, steps, "evidence")
    extra = None
    if settings.identity.linkage.enabled and lake.exists("silver.crm_customers"):
        extra = linkage_edges(lake.read("silver.crm_customers"), settings.identity.linkage).select(
            "src_type",
            "src_value",
            "dst_type",
            "dst_value",
            "source",
            F.lit(None).cast("timestamp").alias("ts"),
        )
    collect, ident = settings.collect, settings.identity
    evidence = collect_evidence(lake, extra, lambda v, t: ~blocked(v, t, collect, ident))
    raw_edges = without_blocked(
        evidence.edges, [("src_type", "src_value"), ("dst_type", "dst_value")], collect, ident
    )
    # The silver tables' evidence is read once: aggregated (a row per pair and source, far
    # fewer than the raw rows) and checkpointed, then both the identifiers and the edges come
    # from it.
    pairs = aggregate_evidence(raw_edges, loops=True).localCheckpoint()
    observed = without_blocked(evidence.nodes, [("id_type", "id_value")], collect, ident)
    nodes = aggregate_nodes(observed.unionByName(endpoint_observations(pairs))).persist()

    run.progress(2, steps, "dictionary")
    every, summary.new_identifiers = _update_dictionary(lake, nodes)
    # The graph holds the identifiers silver still shows. One no longer observed (its rows
    # erased, or past silver's retention) keeps its node id in the dictionary, should it come
    # back, but leaves the graph, gold.identity_map and the golden records.
    dictionary = every.join(
        nodes.select("id_type", "id_value"), ["id_type", "id_value"], "left_semi"
    ).persist()
    summary.identifiers = dictionary.count()
    nodes.unpersist()

    run.progress(3, steps, "graph")
    edges = with_node_ids(without_loops(pairs), dictionary).localCheckpoint()
    summary.evidence_edges = edges.count()
    crm = lake.read("silver.crm_customers") if lake.exists("silver.crm_customers") else None
    resolution = resolve_graph(dictionary, edges, settings, crm)
    summary.repair_rounds = resolution.repair.rounds
    summary.remaining_violations = resolution.repair.remaining_violations
    summary.shared = resolution.shared.count()
    summary.cut_edges = resolution.repair.cut.count()
    lake.overwrite(resolution.edges, EDGES)

    run.progress(4, steps, "components")
    components = resolution.components
    sizes = components.groupBy("component").agg(F.count(F.lit(1)).alias("size"))
    stats = sizes.agg(F.count(F.lit(1)), F.max("size")).collect()[0]
    summary.customers, summary.largest_customer = int(stats[0]), int(stats[1] or 0)
    giants = (
        sizes.where(F.col("size") > ident.giant_component_size)
        .orderBy(F.col("size").desc())
        .limit(20)
        .collect()
    )  # at most twenty rows
    summary.giant_components = [int(r["size"]) for r in giants]
    for r in giants:
        raise_alert(
            ctx,
            run,
            "warning",
            "giant_identity_component",
            f"a resolved customer holds {r['size']} identifiers "
            f"(identity.giant_component_size={ident.giant_component_size}); check "
            "silver.identity_edges around it for a shared identifier",
            {"component": r["component"], "size": r["size"]},
        )

    run.progress(5, steps, "keys")
    base = MapState.of(lake)
    previous = (
        lake.read(IDENTITY_MAP, version=base.version).select("node_id", "customer_id")
        if base.version is not None
        else None
    )
    ages = lake.read(KEYS).select("customer_id", "created_at") if lake.exists(KEYS) else None
    keys = assign_keys(
        components,
        dictionary.select("node_id", "id_type", "id_value"),
        previous,
        ages,
        salt=base.salt,
    )
    assignment = keys.assignment.localCheckpoint()
    lineage = lineage_rows(keys, run.run_id, at).localCheckpoint()
    kinds = {r["kind"]: r["count"] for r in lineage.groupBy("kind").count().collect()}
    summary.merges, summary.splits = kinds.get("merge", 0), kinds.get("split", 0)
    key_changes = key_rows(keys, run.run_id, at).localCheckpoint()
    lake.merge_sql(
        key_changes,
        KEYS,
        "t.customer_id = s.customer_id",
        [
            "WHEN MATCHED AND s.retired_at IS NOT NULL AND t.retired_at IS NULL THEN UPDATE SET "
            "t.retired_at = s.retired_at, t.retired_into = s.retired_into",
            "WHEN NOT MATCHED AND s.created_at IS NOT NULL THEN INSERT *",
        ],
    )
    if summary.merges or summary.splits:
        lake.append(lineage, LINEAGE, txn=base.lineage_txn)
    mapped = identity_map(dictionary, components, assignment, resolution.shared)
    lake.overwrite(mapped, IDENTITY_MAP)

    run.progress(6, steps, "golden records")
    lake.overwrite(
        golden_records(lake.read(IDENTITY_MAP), crm, settings.collect.crm_source_priority),
        GOLDEN,
    )
    dictionary.unpersist()
    run.count(input_rows=summary.evidence_edges, output_rows=summary.identifiers)
    run.details.update({k: str(v) for k, v in summary.__dict__.items() if k != "giant_components"})
    return summary


def resolve_stage(ctx: Context, run: JobRun) -> None:
    """The pipeline's identity stage."""
    log.info("%s", run_identity(ctx, run).describe())
