"""gold.customer_golden: one row per customer, the best value of each attribute.

CRM attributes come from the customer's CRM records by ``collect.crm_source_priority`` and
recency. Contact points fall back to what the other sources saw: a customer without a CRM
email still gets the email of their latest order or sign-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crossdata.collect.flows import CRM_ATTRIBUTES, best_attributes
from crossdata.contracts import IDENTIFIER_TYPES

COUNTED_TYPES = IDENTIFIER_TYPES


def golden_records(
    identity_map: DataFrame, crm: DataFrame | None, priority: Mapping[str, Sequence[str]]
) -> DataFrame:
    """``identity_map`` (id_type, id_value, customer_id, first_seen, last_seen) and
    silver.crm_customers -> one row per customer_id."""
    owned = identity_map.where(F.col("customer_id").isNotNull())
    latest = {
        # Seen last; between values last seen at the same time (a CRM load's one timestamp)
        # the greatest, so the choice does not follow the rows' order.
        t: F.max_by(
            F.when(F.col("id_type") == t, F.col("id_value")),
            F.when(F.col("id_type") == t, F.struct("last_seen", "id_value")),
        ).alias(f"latest_{t}")
        for t in ("email", "phone", "user_id", "loyalty_card")
    }
    counts = [F.count(F.when(F.col("id_type") == t, 1)).alias(f"n_{t}s") for t in COUNTED_TYPES]
    profile = owned.groupBy("customer_id").agg(
        F.min("first_seen").alias("first_seen"),
        F.max("last_seen").alias("last_seen"),
        *latest.values(),
        *counts,
        F.array_sort(
            F.collect_set(F.when(F.col("id_type") == "customer_number", F.col("id_value")))
        ).alias("customer_numbers"),
    )
    if crm is None:
        crm_best = None
    else:
        numbers = owned.where(F.col("id_type") == "customer_number").select(
            "customer_id", F.col("id_value").alias("customer_number")
        )
        crm_best = (
            crm.join(numbers, "customer_number")
            .groupBy("customer_id")
            .agg(
                *best_attributes(priority),
                F.bool_or("has_formula_text").alias("has_formula_text"),
            )
        )
    out = profile if crm_best is None else profile.join(crm_best, "customer_id", "left")
    if crm_best is None:
        out = out.select(
            "*",
            *[F.lit(None).cast("string").alias(a) for a in CRM_ATTRIBUTES],
            F.lit(False).alias("has_formula_text"),
        ).withColumn("birth_date", F.col("birth_date").cast("date"))
    return out.select(
        "customer_id",
        "first_name",
        "last_name",
        F.coalesce("email", "latest_email").alias("email"),
        F.coalesce("mobile_phone", "phone", "latest_phone").alias("phone"),
        "address_line1",
        "postal_code",
        "city",
        "country",
        "birth_date",
        "store_id",
        F.coalesce("loyalty_card", "latest_loyalty_card").alias("loyalty_card"),
        F.col("latest_user_id").alias("user_id"),
        "customer_numbers",
        *[f"n_{t}s" for t in COUNTED_TYPES],
        "first_seen",
        "last_seen",
        F.coalesce("has_formula_text", F.lit(False)).alias("has_formula_text"),
    )
