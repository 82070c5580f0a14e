"""Where identity evidence comes from: which silver tables link which identifiers, and how.

Every source gives node observations (an identifier was seen) and, when a record carries two
identifiers, evidence edges with the kind of evidence (the names ranked by
``identity.evidence_priority``). Bot traffic links nothing and is nobody.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crossdata.collect.flows import ORDER_IDENTIFIERS
from crossdata.identity.graph import (
    EVIDENCE_COLUMNS,
    NODE_COLUMNS,
    Usable,
    record_evidence,
    record_nodes,
)
from crossdata.lakehouse import Lakehouse

EVENT_IDS = {
    "cookie_id": "cookie_id",
    "device_id": "device_id",
    "user_id": "user_id",
    "email": "email",
}
CRM_IDS = {
    "customer_number": "customer_number",
    "email": "email",
    "phone": "phone",
    "mobile_phone": "phone",
    "loyalty_card": "loyalty_card",
}
AD_IDS = {"cookie_id": "cookie_id", "device_id": "device_id"}


@dataclass(frozen=True)
class Evidence:
    edges: DataFrame  # EVIDENCE_COLUMNS
    nodes: DataFrame  # NODE_COLUMNS


def events_evidence(events: DataFrame, usable: Usable | None = None) -> Evidence:
    humans = events.where(~F.coalesce(F.col("is_bot"), F.lit(False)))
    signup = humans.where(F.col("event_type") == "email_signup")
    logged_in = humans.where(F.col("user_id").isNotNull() & (F.col("event_type") != "email_signup"))
    edges = record_evidence(logged_in, EVENT_IDS, "login", "event_ts", usable).unionByName(
        record_evidence(signup, EVENT_IDS, "email_signup", "event_ts", usable)
    )
    return Evidence(edges, record_nodes(humans, EVENT_IDS, "event_ts"))


def orders_evidence(orders: DataFrame, usable: Usable | None = None) -> Evidence:
    return Evidence(
        record_evidence(orders, ORDER_IDENTIFIERS, "order", "order_ts", usable),
        record_nodes(orders, ORDER_IDENTIFIERS, "order_ts"),
    )


def crm_evidence(crm: DataFrame, usable: Usable | None = None) -> Evidence:
    return Evidence(
        record_evidence(crm, CRM_IDS, "crm_record", "updated_at", usable),
        record_nodes(crm, CRM_IDS, "updated_at"),
    )


def email_evidence(email_events: DataFrame, usable: Usable | None = None) -> Evidence:
    clicks = email_events.where(F.col("event_type") == "click")
    ids = {"email": "email", "landing_cookie_id": "cookie_id"}
    return Evidence(
        record_evidence(clicks, ids, "email_click", "event_ts", usable),
        record_nodes(email_events, {"email": "email"}, "event_ts"),
    )


def ads_evidence(ads: DataFrame, usable: Usable | None = None) -> Evidence:
    return Evidence(
        record_evidence(ads, AD_IDS, "ad_match", "event_ts", usable),
        record_nodes(ads, AD_IDS, "event_ts"),
    )


def consent_nodes(consent: DataFrame) -> DataFrame:
    return consent.where(F.col("id_value").isNotNull()).select(
        "id_type", "id_value", F.col("event_ts").alias("ts")
    )


_SOURCES = (
    ("silver.events", events_evidence),
    ("silver.orders", orders_evidence),
    ("silver.crm_customers", crm_evidence),
    ("silver.email_events", email_evidence),
    ("silver.ad_clicks", ads_evidence),
    ("silver.ad_impressions", ads_evidence),
)


def collect_evidence(
    lake: Lakehouse, extra_edges: DataFrame | None = None, usable: Usable | None = None
) -> Evidence:
    """All evidence and node observations in the lakehouse's silver tables; a record links
    its ``usable`` identifiers only."""
    spark = lake.spark
    edges = spark.createDataFrame(
        [],
        "src_type STRING, src_value STRING, dst_type STRING, dst_value STRING, "
        "source STRING, ts TIMESTAMP",
    )
    nodes = spark.createDataFrame([], "id_type STRING, id_value STRING, ts TIMESTAMP")
    for table, extract in _SOURCES:
        if lake.exists(table):
            found = extract(lake.read(table), usable)
            edges = edges.unionByName(found.edges.select(*EVIDENCE_COLUMNS))
            nodes = nodes.unionByName(found.nodes.select(*NODE_COLUMNS))
    if lake.exists("silver.consent"):
        nodes = nodes.unionByName(consent_nodes(lake.read("silver.consent")))
    if extra_edges is not None:
        edges = edges.unionByName(extra_edges.select(*EVIDENCE_COLUMNS))
    return Evidence(edges, nodes)
