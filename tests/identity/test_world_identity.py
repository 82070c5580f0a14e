"""Stage test: the identity stage on a generated world with faults, scored against its truth."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from crossdata.contracts import EVIDENCE_KINDS


@pytest.fixture(scope="module")
def resolved(resolved_world):
    # The identity job and score_identity, run once for the identity tests (conftest.py).
    world, ctx, accuracy = resolved_world
    truth = ctx.spark.read.option("header", True).csv(str(world.root / "_truth" / "identifiers"))
    return ctx, accuracy.summary, accuracy.score, truth


def test_pairwise_precision_and_recall_reach_the_floor(resolved) -> None:
    _, _, score, _ = resolved
    assert score.true_pairs > 300 and score.reachable_pairs > 150, score.describe()
    assert score.precision >= 0.995, score.describe()
    assert score.reachable_recall >= 0.98, score.describe()
    # Raw recall counts pairs no evidence connects (an anonymous cookie never logged in):
    # it is bounded by the data, not the resolver, and only reported.
    assert score.recall <= score.reachable_recall


def test_no_giant_component(resolved) -> None:
    ctx, summary, score, _ = resolved
    assert summary.giant_components == []
    assert score.largest_customer <= 40
    alerts = ctx.lake.read("ops.alerts") if ctx.lake.exists("ops.alerts") else None
    if alerts is not None:
        assert alerts.where(F.col("kind") == "giant_identity_component").count() == 0


def test_kiosk_devices_in_the_world_merge_nobody(resolved) -> None:
    ctx, _, _, truth = resolved
    kiosks = truth.where(F.col("shared_kind") == "kiosk").select("id_type", "id_value").distinct()
    seen = kiosks.join(ctx.lake.read("gold.identity_map"), ["id_type", "id_value"])
    assert seen.count() > 0, "the world has kiosk devices with evidence"
    assert seen.where(F.col("customer_id").isNotNull()).count() == 0


def test_identity_map_is_complete_and_keys_are_unique_per_identifier(resolved) -> None:
    ctx, summary, _, _ = resolved
    mapped = ctx.lake.read("gold.identity_map")
    assert mapped.count() == summary.identifiers
    assert mapped.groupBy("id_type", "id_value").count().where("count > 1").count() == 0
    assert mapped.where(F.col("customer_id").isNull() & ~F.col("is_shared")).count() == 0
    golden = ctx.lake.read("gold.customer_golden")
    assert golden.count() == summary.customers


def test_every_kind_of_evidence_drawn_is_one_the_repair_ranks(resolved) -> None:
    ctx, _, _, _ = resolved
    edges = ctx.lake.read("silver.identity_edges")
    kinds = {r["source"] for r in edges.select("source").distinct().collect()}  # a few kinds
    assert kinds <= set(EVIDENCE_KINDS)
    assert {"login", "order", "crm_record", "email_click"} <= kinds  # the world has them all
    assert set(ctx.settings.identity.evidence_priority) == set(EVIDENCE_KINDS)
