"""Repair of over-merged customers, on hand-made id graphs: one step per component a round.

The graphs are given as evidence rows with node ids, as ``resolve_graph`` hands them over, so
each case states exactly which identifiers and kinds of evidence a customer stands on.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crossdata.identity.engine import ComponentsOptions, connected_components
from crossdata.identity.repair import CUT_REASON, RepairOutcome, repair

PRIORITY = ["crm_record", "order", "login", "email_signup", "email_click", "ad_match"]
LIMITS = {"user_id": 1}
OPTIONS = ComponentsOptions(engine="native")

# Three customers, each over the limit of one user_id, each for its own reason:
# - 1..3: a tablet (3) used by two accounts (1, 2): a bridge, shared;
# - 11..14: accounts 11 and 14 joined by an ad match between two cookies that each hold one
#   login: no bridge; the ad match is its weakest evidence;
# - 21..24: accounts 21 and 24 joined by an order and by a kind of evidence the priority does
#   not name: that kind counts as the weakest of all, so it goes first and the order next.
TYPES = {
    1: "user_id", 2: "user_id", 3: "device_id",
    11: "user_id", 12: "cookie_id", 13: "cookie_id", 14: "user_id",
    21: "user_id", 22: "email", 23: "email", 24: "user_id",
}  # fmt: skip
EDGES = [
    (1, 3, "login"),
    (2, 3, "login"),
    (11, 12, "login"),
    (12, 13, "ad_match"),
    (13, 14, "login"),
    (21, 22, "crm_record"),
    (22, 23, "order"),
    (22, 23, "lookalike"),
    (23, 24, "crm_record"),
]


def _graph(spark: SparkSession) -> tuple[DataFrame, DataFrame, DataFrame]:
    edges = spark.createDataFrame(
        [(a, b, s, True) for a, b, s in EDGES],
        "src_id BIGINT, dst_id BIGINT, source STRING, merges BOOLEAN",
    )
    types = spark.createDataFrame(list(TYPES.items()), "node_id BIGINT, id_type STRING")
    components = connected_components(
        edges.select(F.col("src_id").alias("src"), F.col("dst_id").alias("dst")),
        None,
        OPTIONS,
    ).select(F.col("id").alias("node_id"), "component")
    return components, edges, types


def _repair(spark: SparkSession, rounds: int) -> RepairOutcome:
    components, edges, types = _graph(spark)
    shared = spark.createDataFrame([], "node_id BIGINT, id_type STRING, reason STRING")
    return repair(components, edges, types, shared, LIMITS, PRIORITY, rounds, OPTIONS)


def _groups(outcome: RepairOutcome) -> set[frozenset[int]]:
    rows = outcome.components.groupBy("component").agg(F.collect_set("node_id")).collect()
    return {frozenset(r[1]) for r in rows}  # eleven nodes


def test_every_offending_customer_takes_its_own_step_in_the_same_round(spark) -> None:
    outcome = _repair(spark, rounds=1)

    assert outcome.rounds == 1
    assert outcome.remaining_violations == 1  # 21..24, which needs a second cut
    shared = {(r.node_id, r.reason) for r in outcome.shared.collect()}
    assert shared == {(3, "bridges 2 user_id in one customer")}
    cut = {(r.src_id, r.dst_id, r.source, r.reason) for r in outcome.cut.collect()}
    assert cut == {(12, 13, "ad_match", CUT_REASON), (22, 23, "lookalike", CUT_REASON)}
    assert _groups(outcome) == {
        frozenset({1}),
        frozenset({2}),
        frozenset({11, 12}),
        frozenset({13, 14}),
        # The order still merges these: the next round cuts it.
        frozenset({21, 22, 23, 24}),
    }


def test_rounds_go_on_until_no_customer_is_over_its_limits(spark) -> None:
    outcome = _repair(spark, rounds=4)

    assert outcome.rounds == 2
    assert outcome.remaining_violations == 0
    cut = {(r.src_id, r.dst_id, r.source) for r in outcome.cut.collect()}
    assert cut == {(12, 13, "ad_match"), (22, 23, "order"), (22, 23, "lookalike")}
    assert {frozenset({21, 22}), frozenset({23, 24})} <= _groups(outcome)
    # The strong evidence inside each part is never cut.
    assert not {s for _, _, s in cut} & {"login", "crm_record"}


def test_a_customer_within_its_limits_is_left_as_it_is(spark) -> None:
    components, edges, types = _graph(spark)
    shared = spark.createDataFrame([], "node_id BIGINT, id_type STRING, reason STRING")
    outcome = repair(components, edges, types, shared, {"user_id": 2}, PRIORITY, 4, OPTIONS)
    assert (outcome.rounds, outcome.remaining_violations) == (0, 0)
    assert outcome.cut.isEmpty() and outcome.shared.isEmpty()
    assert len(_groups(outcome)) == 3
