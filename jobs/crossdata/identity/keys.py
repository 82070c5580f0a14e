"""Stable customer keys across runs, and the lineage of every change.

Components are recomputed each run; keys are not. Each previous key goes to the component that
holds most of its identifiers (ties: the larger component, then the smaller component id). A
component that receives several keys keeps the oldest one and the others are merged into it; a
component that receives none gets a new key, recorded as a split of every previous key whose
identifiers it holds. So: when customers merge the oldest key survives, and when one splits
the largest part keeps the key and the rest get new ones.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

KEY_PREFIX = "cx_"


@dataclass(frozen=True)
class KeyAssignment:
    assignment: DataFrame  # component, customer_id
    lineage: DataFrame  # old_customer_id, new_customer_id, kind
    created: DataFrame  # customer_id (keys issued this run)
    retired: DataFrame  # customer_id, retired_into


def new_key(salt: str, anchor: str = "_anchor") -> F.Column:
    """A fresh key from the component's smallest identifier (and the run, when salted)."""
    return F.concat(
        F.lit(KEY_PREFIX), F.substring(F.sha2(F.concat(F.lit(salt), F.col(anchor)), 256), 1, 20)
    )


def assign_keys(
    components: DataFrame,
    members: DataFrame,
    previous: DataFrame | None,
    key_ages: DataFrame | None,
    salt: str,
) -> KeyAssignment:
    """Keys for this run's components.

    ``components``: node_id, component; ``members``: node_id, id_type, id_value (to name a new
    key after its smallest identifier); ``previous``: node_id, customer_id from the last run;
    ``key_ages``: customer_id, created_at (older wins a merge); ``salt``: the run id (empty for
    a standalone resolution, whose keys then depend on the members alone). Runs Spark jobs
    (the checkpoints below).
    """
    spark = components.sparkSession
    # The steps that several results share are checkpointed (eagerly, in executor storage):
    # the caller writes the assignment, the lineage and the key rows one after the other, and
    # each would otherwise recompute every join and window before it.
    anchors = (
        components.join(members, "node_id")
        .groupBy("component")
        .agg(
            F.min(F.concat_ws(":", "id_type", "id_value")).alias("_anchor"),
            F.count(F.lit(1)).alias("_size"),
        )
        .localCheckpoint()
    )
    if previous is None:
        assignment = anchors.select("component", new_key(salt).alias("customer_id"))
        empty = spark.createDataFrame(
            [], "old_customer_id STRING, new_customer_id STRING, kind STRING"
        )
        return KeyAssignment(
            assignment,
            empty,
            assignment.select("customer_id"),
            spark.createDataFrame([], "customer_id STRING, retired_into STRING"),
        )

    overlap = (
        components.join(previous.where(F.col("customer_id").isNotNull()), "node_id")
        .groupBy("component", "customer_id")
        .agg(F.count(F.lit(1)).alias("_n"))
        .join(anchors.select("component", "_size"), "component")
        .localCheckpoint()
    )
    by_key = Window.partitionBy("customer_id").orderBy(
        F.col("_n").desc(), F.col("_size").desc(), F.col("component")
    )
    won = (
        overlap.withColumn("_r", F.row_number().over(by_key))
        .where("_r = 1")
        .select("customer_id", "component")
        .localCheckpoint()
    )
    ages = (
        key_ages.select("customer_id", "created_at")
        if key_ages is not None
        else won.select("customer_id", F.lit(None).cast("timestamp").alias("created_at"))
    )
    by_component = Window.partitionBy("component").orderBy(
        F.col("created_at").asc_nulls_first(), F.col("customer_id")
    )
    kept = (
        won.join(ages, "customer_id", "left")
        .withColumn("_r", F.row_number().over(by_component))
        .where("_r = 1")
        .select("component", F.col("customer_id").alias("_kept"))
        .localCheckpoint()
    )
    fresh = anchors.join(kept, "component", "left_anti").select(
        "component", new_key(salt).alias("_kept")
    )
    final = kept.unionByName(fresh)
    assignment = final.select("component", F.col("_kept").alias("customer_id"))

    merges = (
        won.join(kept, "component")
        .where(F.col("customer_id") != F.col("_kept"))
        .select(
            F.col("customer_id").alias("old_customer_id"),
            F.col("_kept").alias("new_customer_id"),
            F.lit("merge").alias("kind"),
        )
    )
    splits = (
        overlap.join(won.withColumnRenamed("component", "_won"), "customer_id")
        .where(F.col("component") != F.col("_won"))
        .join(final, "component")
        .where(F.col("_kept") != F.col("customer_id"))
        .select(
            F.col("customer_id").alias("old_customer_id"),
            F.col("_kept").alias("new_customer_id"),
            F.lit("split").alias("kind"),
        )
        .distinct()
    )
    previous_keys = (
        previous.where(F.col("customer_id").isNotNull()).select("customer_id").distinct()
    )
    retired = previous_keys.join(assignment.select("customer_id"), "customer_id", "left_anti").join(
        merges.select(
            F.col("old_customer_id").alias("customer_id"),
            F.col("new_customer_id").alias("retired_into"),
        ),
        "customer_id",
        "left",
    )
    return KeyAssignment(
        assignment,
        merges.unionByName(splits),
        fresh.select(F.col("_kept").alias("customer_id")),
        retired,
    )


def lineage_rows(assignment: KeyAssignment, run_id: str, at: dt.datetime) -> DataFrame:
    return assignment.lineage.select(
        F.lit(run_id).alias("run_id"),
        "old_customer_id",
        "new_customer_id",
        "kind",
        F.lit(at).cast("timestamp").alias("changed_at"),
    )


def key_rows(assignment: KeyAssignment, run_id: str, at: dt.datetime) -> DataFrame:
    """Rows for gold.customer_keys: keys issued now, and keys retired now."""
    now = F.lit(at).cast("timestamp")
    created = assignment.created.select(
        "customer_id",
        now.alias("created_at"),
        F.lit(run_id).alias("created_run"),
        F.lit(None).cast("timestamp").alias("retired_at"),
        F.lit(None).cast("string").alias("retired_into"),
    )
    retired = assignment.retired.select(
        "customer_id",
        F.lit(None).cast("timestamp").alias("created_at"),
        F.lit(None).cast("string").alias("created_run"),
        now.alias("retired_at"),
        "retired_into",
    )
    return created.unionByName(retired)
