"""What each bronze source becomes in silver: one ``Flow`` per source, shapes kept pure.

``events`` and ``access_log`` both feed ``silver.events`` (one event model, ``origin`` tells
them apart); server hits that duplicate a tag page view are not inserted. Every other source
feeds its own table. Sessions follow from the events inserted since the last run (the change
feed of silver.events): the actors they touch are re-sessionised over the days around them, so
late events join the visit they belong to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from crossdata.collect.bots import flag_bots
from crossdata.collect.channels import with_channel, with_url_parts
from crossdata.collect.identifiers import (
    is_placeholder,
    normalize_email,
    normalize_phone,
    null_placeholders,
)
from crossdata.collect.sessions import LANDING_FIELDS, sessions_table, with_sessions
from crossdata.collect.silver import Flow, SilverBatch
from crossdata.collect.user_agents import with_user_agent_fields
from crossdata.config.schema import CollectSettings
from crossdata.contracts import IDENTIFIER_TYPES

LINEAGE = ("_source_file", "_line", "_delivery_date", "_ingested_at", "_run_id")
FIRST_SEEN = ("_ingested_at", "_source_file", "_line")

EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "string"),
    ("event_type", "string"),
    ("event_ts", "timestamp"),
    ("event_date", "date"),
    ("platform", "string"),
    ("origin", "string"),
    ("actor_id", "string"),
    ("cookie_id", "string"),
    ("device_id", "string"),
    ("user_id", "string"),
    ("email", "string"),
    ("ip", "string"),
    ("page_url", "string"),
    ("url_host", "string"),
    ("url_path", "string"),
    ("referrer", "string"),
    ("referrer_host", "string"),
    ("utm_source", "string"),
    ("utm_medium", "string"),
    ("utm_campaign", "string"),
    ("utm_content", "string"),
    ("utm_term", "string"),
    ("gclid", "string"),
    ("fbclid", "string"),
    ("msclkid", "string"),
    ("channel", "string"),
    ("channel_group", "string"),
    ("user_agent", "string"),
    ("device_type", "string"),
    ("os_family", "string"),
    ("browser_family", "string"),
    ("is_bot", "boolean"),
    ("bot_reason", "string"),
    ("product_id", "string"),
    ("price", "double"),
    ("quantity", "bigint"),
    ("cart_value", "double"),
    ("order_id", "string"),
    ("revenue", "double"),
    ("currency", "string"),
    ("search_query", "string"),
    ("app_version", "string"),
    ("http_status", "bigint"),
    ("placeholder_fields", "array<string>"),
    ("attributes", "map<string,string>"),
    ("session_id", "string"),
    ("session_start", "timestamp"),
    ("session_seq", "bigint"),
)
SESSION_COLUMNS = ("session_id", "session_start", "session_seq")
# A stored row is updated when one of these differs from the recomputed value (session_start
# follows from session_id, which hashes the actor and the start).
CHANGED_WHEN = ("session_id", "session_seq")
# The silver.events columns re-sessionising reads: with_sessions' keys and order, the days,
# and what sessions_table takes from the events (others are left out of the sort and cache).
SESSION_INPUTS = frozenset(
    {
        "actor_id",
        "event_ts",
        "event_id",
        "event_date",
        "utm_campaign",
        *(src for src, _ in LANDING_FIELDS),
        "user_id",
        "is_bot",
        "event_type",
        "revenue",
    }
)
_STATIC = r"(?i)\.(css|js|mjs|map|png|jpe?g|gif|svg|webp|ico|woff2?|ttf|eot|txt|xml)$"
_MATCH_SECONDS = 5


def _select_typed(df: DataFrame, columns: Sequence[tuple[str, str]]) -> DataFrame:
    """Exactly these columns in this order (missing ones as typed NULLs), then lineage."""
    have = set(df.columns)
    return df.select(
        *[
            (F.col(name) if name in have else F.lit(None)).cast(dtype).alias(name)
            for name, dtype in columns
        ],
        *LINEAGE,
    )


def _identifiers(df: DataFrame, columns: Mapping[str, str], s: CollectSettings) -> DataFrame:
    """Placeholders nulled (and listed), emails canonical, phones E.164, cards upper-cased."""
    out = null_placeholders(df, columns, s)
    for column, id_type in columns.items():
        if id_type == "email":
            out = out.withColumn(column, normalize_email(F.col(column)))
        elif id_type == "phone":
            out = normalize_phone(out, column, s.default_region)
        elif id_type in ("loyalty_card", "customer_number"):
            out = out.withColumn(column, F.upper(F.trim(column)))
        else:
            out = out.withColumn(column, F.trim(column))
    return out


def _web_context(df: DataFrame, s: CollectSettings, url: str) -> DataFrame:
    out = with_user_agent_fields(df, "user_agent")
    out = with_url_parts(out, url, "referrer", s.site_hosts)
    out = with_channel(out, s.channels)
    out = out.withColumn("actor_id", F.coalesce("cookie_id", "device_id"))
    return flag_bots(out, s.bots, ("cookie_id", "device_id", "ip"), "event_ts", "user_agent")


# -- events ------------------------------------------------------------------------------------
def shape_events(bronze: DataFrame, batch: SilverBatch) -> DataFrame:
    s = batch.settings
    df = bronze.select(
        "*",
        F.col("ts").alias("event_ts"),
        F.to_date("ts").alias("event_date"),
        F.lit("events").alias("origin"),
        F.col("_rescued").alias("attributes"),
    )
    ids = {
        "cookie_id": "cookie_id",
        "device_id": "device_id",
        "user_id": "user_id",
        "email": "email",
    }
    df = _web_context(_identifiers(df, ids, s), s, "page_url")
    return _drop_removed_bots(_select_typed(df, EVENT_COLUMNS), s)


def shape_access_log(bronze: DataFrame, batch: SilverBatch) -> DataFrame:
    """Server hits that are page views (GET, < 400, not an asset) in the event model."""
    s = batch.settings
    pages = bronze.where(
        (F.col("method") == "GET")
        & (F.col("status") < 400)
        & ~F.regexp_extract("url", r"^[^?#]*", 0).rlike(_STATIC)
    )
    hit_id = F.sha2(
        F.concat_ws("|", "ip", F.col("ts").cast("string"), "url", "user_agent", "cookie_id"), 256
    )
    df = pages.select(
        "*",
        F.concat(F.lit("al_"), F.substring(hit_id, 1, 32)).alias("event_id"),
        F.lit("page_view").alias("event_type"),
        F.col("ts").alias("event_ts"),
        F.to_date("ts").alias("event_date"),
        F.lit("web").alias("platform"),
        F.lit("access_log").alias("origin"),
        F.col("url").alias("page_url"),
        F.col("status").alias("http_status"),
        F.lit(None).cast("string").alias("device_id"),
        F.col("_rescued").alias("attributes"),
    )
    df = _web_context(_identifiers(df, {"cookie_id": "cookie_id"}, s), s, "page_url")
    return _drop_removed_bots(_select_typed(df, EVENT_COLUMNS), s)


def _drop_removed_bots(df: DataFrame, s: CollectSettings) -> DataFrame:
    # bots.action=remove keeps bot rows out of silver; the is_bot counter still counts them.
    return df if s.bots.action == "flag" else df.where(~F.col("is_bot"))


def without_tag_duplicates(hits: DataFrame, batch: SilverBatch) -> DataFrame:
    """Drop server hits the tag recorded too (same cookie and path within a few seconds)."""
    lake = batch.lake
    if not lake.exists("silver.events"):
        return hits
    days = [r[0] for r in hits.select("event_date").distinct().collect()]  # a few days
    if not days:
        return hits
    tagged = (
        lake.read("silver.events")
        .where(
            F.col("event_date").isin(days)
            & (F.col("origin") == "events")
            & (F.col("event_type") == "page_view")
            & F.col("cookie_id").isNotNull()
        )
        .select("cookie_id", "url_path", "event_date", F.col("event_ts").alias("_tag_ts"))
    )
    matched = (
        hits.alias("h")
        .join(tagged.alias("g"), ["cookie_id", "url_path", "event_date"])
        .where(
            F.abs(F.unix_timestamp("h.event_ts") - F.unix_timestamp("g._tag_ts")) <= _MATCH_SECONDS
        )
        .select("h.event_id")
        .distinct()
    )
    return hits.join(matched, "event_id", "left_anti")


def resessionize(rows: DataFrame, batch: SilverBatch) -> None:
    """Recompute sessions of the actors in ``rows`` (new events) over their days, with one
    day of context before, and update silver.events and silver.sessions where they changed."""
    bounds = (
        rows.where(F.col("actor_id").isNotNull())
        .agg(F.min("event_date").alias("lo"), F.max("event_date").alias("hi"))
        .first()
    )
    if bounds is None or bounds["lo"] is None:
        return
    first_day: dt.date = bounds["lo"]
    last_day: dt.date = bounds["hi"] + dt.timedelta(days=1)
    context_day = first_day - dt.timedelta(days=1)
    lake = batch.lake
    actors = rows.where(F.col("actor_id").isNotNull()).select("actor_id").distinct()
    window = (F.col("event_date") >= F.lit(context_day)) & (F.col("event_date") <= F.lit(last_day))
    stored = lake.read("silver.events")
    # Only what sessions and the sessions table read: the sort and the cache stay narrow.
    needed = [c for c in stored.columns if c in SESSION_INPUTS]
    events = (
        stored.where(window & F.col("actor_id").isNotNull())
        .join(actors, "actor_id", "left_semi")
        .select(*needed, *[F.col(c).alias(f"_old_{c}") for c in CHANGED_WHEN])
    )
    sessioned = with_sessions(events, batch.settings.sessions).persist()
    try:
        days = _date_list(first_day, last_day)
        # Only rows whose session changed are merged: most of a later run's rows keep theirs.
        changed = F.lit(False)
        for c in CHANGED_WHEN:
            changed = changed | ~F.col(c).eqNullSafe(F.col(f"_old_{c}"))
        updates = sessioned.where((F.col("event_date") >= F.lit(first_day)) & changed).select(
            "event_date", "event_id", *SESSION_COLUMNS
        )
        if not updates.isEmpty():
            lake.merge_sql(
                updates,
                "silver.events",
                f"t.event_date = s.event_date AND t.event_id = s.event_id "
                f"AND t.event_date IN ({days})",
                [
                    "WHEN MATCHED AND (t.session_id IS DISTINCT FROM s.session_id OR "
                    "t.session_seq IS DISTINCT FROM s.session_seq) THEN UPDATE SET "
                    + ", ".join(f"t.{c} = s.{c}" for c in SESSION_COLUMNS)
                ],
            )
        fresh = (
            sessions_table(sessioned)
            .withColumn("session_date", F.to_date("session_start"))
            .where(F.col("session_date") >= F.lit(first_day))
        )
        _replace_sessions(fresh, actors, first_day, last_day, batch)
    finally:
        sessioned.unpersist()


def _replace_sessions(
    fresh: DataFrame, actors: DataFrame, first_day: dt.date, last_day: dt.date, batch: SilverBatch
) -> None:
    lake = batch.lake
    days = _date_list(first_day, last_day)
    columns = fresh.columns
    upserts = fresh.withColumn("_op", F.lit("upsert"))
    if lake.exists("silver.sessions"):
        stale = (
            lake.read("silver.sessions")
            .where(F.col("session_date").between(F.lit(first_day), F.lit(last_day)))
            .join(actors, "actor_id", "left_semi")
            .join(fresh.select("session_id"), "session_id", "left_anti")
            .select(*columns)
            .withColumn("_op", F.lit("delete"))
        )
        source = upserts.unionByName(stale)
    else:
        lake.create_if_missing("silver.sessions", fresh)
        source = upserts
    sets = ", ".join(f"t.`{c}` = s.`{c}`" for c in columns)
    cols = ", ".join(f"`{c}`" for c in columns)
    vals = ", ".join(f"s.`{c}`" for c in columns)
    lake.merge_sql(
        source,
        "silver.sessions",
        f"t.session_id = s.session_id AND t.session_date IN ({days})",
        [
            "WHEN MATCHED AND s._op = 'delete' THEN DELETE",
            f"WHEN MATCHED THEN UPDATE SET {sets}",
            f"WHEN NOT MATCHED AND s._op = 'upsert' THEN INSERT ({cols}) VALUES ({vals})",
        ],
    )


def _date_list(first: dt.date, last: dt.date) -> str:
    n = (last - first).days
    return ", ".join(f"DATE'{first + dt.timedelta(days=i)}'" for i in range(n + 1))


# -- ads, email ------------------------------------------------------------------------------
def _timed(bronze: DataFrame, ts: str = "ts") -> DataFrame:
    return bronze.select(
        "*",
        F.col(ts).alias("event_ts"),
        F.to_date(ts).alias("event_date"),
        F.col("_rescued").alias("attributes"),
    )


def shape_ad_impressions(bronze: DataFrame, batch: SilverBatch) -> DataFrame:
    df = _identifiers(
        _timed(bronze), {"cookie_id": "cookie_id", "device_id": "device_id"}, batch.settings
    )
    return df.select(
        "impression_id",
        "event_ts",
        "event_date",
        "campaign_id",
        "channel",
        "creative_id",
        "placement",
        "cookie_id",
        "device_id",
        "cost",
        "currency",
        "placeholder_fields",
        "attributes",
        *LINEAGE,
    )


def shape_ad_clicks(bronze: DataFrame, batch: SilverBatch) -> DataFrame:
    df = _identifiers(
        _timed(bronze), {"cookie_id": "cookie_id", "device_id": "device_id"}, batch.settings
    )
    return df.select(
        "click_id",
        "event_ts",
        "event_date",
        "impression_id",
        "campaign_id",
        "channel",
        "creative_id",
        "cookie_id",
        "device_id",
        "cost",
        "currency",
        "landing_url",
        "placeholder_fields",
        "attributes",
        *LINEAGE,
    )


def shape_email_events(bronze: DataFrame, batch: SilverBatch) -> DataFrame:
    df = _identifiers(
        _timed(bronze), {"email": "email", "landing_cookie_id": "cookie_id"}, batch.settings
    )
    return df.select(
        "event_id",
        "event_ts",
        "event_date",
        "event_type",
        "email",
        "campaign_id",
        "message_id",
        "link_url",
        "landing_cookie_id",
        "placeholder_fields",
        "attributes",
        *LINEAGE,
    )


# -- orders ----------------------------------------------------------------------------------
_LINE_RAW = "array<struct<sku:string,quantity:string,unit_price:string>>"


# Identifier type -> column, for every identifier an order carries.
ORDER_IDENTIFIERS = {
    t: t for t in ("user_id", "cookie_id", "device_id", "email", "phone", "loyalty_card")
}


def shape_orders(bronze: DataFrame, batch: SilverBatch) -> DataFrame:
    ids = ORDER_IDENTIFIERS
    lines = F.transform(
        F.from_json("lines", _LINE_RAW),
        lambda x: F.struct(
            x["sku"].alias("sku"),
            x["quantity"].try_cast("bigint").alias("quantity"),
            x["unit_price"].try_cast("double").alias("unit_price"),
        ),
    )
    df = bronze.select(
        "*",
        F.col("ts").alias("order_ts"),
        F.to_date("ts").alias("order_date"),
        F.coalesce(F.col("status"), F.lit("placed")).alias("order_status"),
        lines.alias("order_lines"),
        F.col("_rescued").alias("attributes"),
    )
    df = _identifiers(df, ids, batch.settings)
    return df.select(
        "order_id",
        "order_ts",
        "order_date",
        "channel",
        "user_id",
        "cookie_id",
        "device_id",
        "email",
        "phone",
        "loyalty_card",
        "store_id",
        "currency",
        "amount",
        F.col("order_lines").alias("lines"),
        F.col("order_status").alias("status"),
        "placeholder_fields",
        "attributes",
        *LINEAGE,
    )


# -- CRM ---------------------------------------------------------------------------------------
CRM_ATTRIBUTES = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "mobile_phone",
    "address_line1",
    "postal_code",
    "city",
    "country",
    "birth_date",
    "store_id",
    "loyalty_card",
)


def _priority(system: Column, order: Sequence[str]) -> Column:
    """Higher is better: the first system listed gets len(order), unknown systems 0."""
    rank = F.lit(0)
    for i, name in enumerate(order):
        rank = F.when(system == name, F.lit(len(order) - i)).otherwise(rank)
    return rank


def best_attributes(
    priority: Mapping[str, Sequence[str]], attributes: Sequence[str] = CRM_ATTRIBUTES
) -> list[Column]:
    """Aggregations: each attribute from the best source system that has it
    (crm_source_priority), the most recent update breaking ties."""
    default = priority["*"]
    aggs = []
    for a in attributes:
        order = priority.get(a, default)
        rank = F.struct(_priority(F.col("source_system"), order), F.col("updated_at"))
        aggs.append(F.max_by(F.col(a), F.when(F.col(a).isNotNull(), rank)).alias(a))
    return aggs


def crm_golden(versions: DataFrame, priority: Mapping[str, Sequence[str]]) -> DataFrame:
    """All versions of each customer_number -> one row of best attributes."""
    aggs = best_attributes(priority)
    return (
        versions.groupBy("customer_number")
        .agg(
            *aggs,
            F.max_by("source_system", "updated_at").alias("source_system"),
            F.array_sort(F.collect_set("source_system")).alias("source_systems"),
            F.max("updated_at").alias("updated_at"),
            F.count(F.lit(1)).alias("versions"),
            F.max_by(F.struct(*LINEAGE), "updated_at").alias("_lineage"),
        )
        .select("*", *[F.col(f"_lineage.{c}").alias(c) for c in LINEAGE])
        .drop("_lineage")
    )


def shape_crm(bronze: DataFrame, batch: SilverBatch) -> DataFrame:
    s = batch.settings
    touched = bronze.select(F.upper(F.trim("customer_number")).alias("customer_number")).distinct()
    versions = (
        batch.lake.read("bronze.crm_customers")
        .withColumn("customer_number", F.upper(F.trim("customer_number")))
        .join(touched, "customer_number", "left_semi")
    )
    ids = {
        "email": "email",
        "phone": "phone",
        "mobile_phone": "phone",
        "loyalty_card": "loyalty_card",
    }
    cleaned = _identifiers(versions, ids, s).withColumns(
        {
            "first_name": F.trim("first_name"),
            "last_name": F.trim("last_name"),
            "country": F.upper(F.trim("country")),
            "postal_code": F.trim("postal_code"),
        }
    )
    golden = crm_golden(cleaned, s.crm_source_priority)
    flags = cleaned.groupBy("customer_number").agg(
        F.array_sort(F.array_distinct(F.flatten(F.collect_list("placeholder_fields")))).alias(
            "placeholder_fields"
        )
    )
    # A name starting with = + - @ is a spreadsheet formula: kept as text, flagged for exports.
    formula = r"^\s*[=+\-@]"
    return golden.join(flags, "customer_number", "left").withColumn(
        "has_formula_text",
        F.coalesce(F.col("first_name").rlike(formula), F.lit(False))
        | F.coalesce(F.col("last_name").rlike(formula), F.lit(False)),
    )


# -- consent, spend ------------------------------------------------------------------------------
def shape_consent(bronze: DataFrame, batch: SilverBatch) -> DataFrame:
    s = batch.settings
    df = _timed(bronze)
    placeholder = F.lit(False)
    for id_type in IDENTIFIER_TYPES:
        placeholder = placeholder | (
            (F.col("id_type") == id_type) & is_placeholder(F.col("id_value"), id_type, s)
        )
    df = df.withColumn("_placeholder", F.coalesce(placeholder, F.lit(False)))
    df = df.withColumn("_phone", F.when(F.col("id_type") == "phone", F.col("id_value")))
    df = normalize_phone(df, "_phone", s.default_region)
    value = (
        F.when(F.col("_placeholder"), F.lit(None))
        .when(F.col("id_type") == "email", normalize_email(F.col("id_value")))
        .when(F.col("id_type") == "phone", F.col("_phone"))
        .when(F.col("id_type").isin("loyalty_card", "customer_number"), F.upper(F.trim("id_value")))
        .otherwise(F.trim("id_value"))
    )
    return df.select(
        "consent_id",
        "event_ts",
        "event_date",
        "id_type",
        value.alias("id_value"),
        "purpose",
        "status",
        "channel",
        F.when(F.col("_placeholder"), F.array(F.lit("id_value")))
        .otherwise(F.array().cast("array<string>"))
        .alias("placeholder_fields"),
        "attributes",
        *LINEAGE,
    )


def shape_spend(bronze: DataFrame, batch: SilverBatch) -> DataFrame:
    return bronze.select(
        "date",
        "channel",
        "campaign_id",
        "campaign_name",
        "cost",
        "currency",
        "impressions",
        "clicks",
        F.col("_rescued").alias("attributes"),
        *LINEAGE,
    )


_CRM_COMPARE = (*CRM_ATTRIBUTES, "source_system", "updated_at")

FLOWS: dict[str, Flow] = {
    f.source: f
    for f in (
        Flow(
            "events",
            "silver.events",
            shape_events,
            FIRST_SEEN,
            counters=("is_bot", "placeholder_fields"),
        ),
        Flow(
            "access_log",
            "silver.events",
            shape_access_log,
            FIRST_SEEN,
            counters=("is_bot", "placeholder_fields"),
            pre_merge=without_tag_duplicates,
        ),
        Flow(
            "ad_impressions",
            "silver.ad_impressions",
            shape_ad_impressions,
            FIRST_SEEN,
            counters=("placeholder_fields",),
        ),
        Flow(
            "ad_clicks",
            "silver.ad_clicks",
            shape_ad_clicks,
            FIRST_SEEN,
            counters=("placeholder_fields",),
        ),
        Flow(
            "email_events",
            "silver.email_events",
            shape_email_events,
            FIRST_SEEN,
            counters=("placeholder_fields",),
        ),
        Flow(
            "crm_customers",
            "silver.crm_customers",
            shape_crm,
            ("customer_number",),
            when_matched="update",
            compare=_CRM_COMPARE,
            counters=("has_formula_text",),
        ),
        Flow(
            "orders",
            "silver.orders",
            shape_orders,
            FIRST_SEEN,
            when_matched="update",
            newer="_ingested_at",
            compare=("status", "amount", "lines"),
            counters=("placeholder_fields",),
        ),
        Flow(
            "consent", "silver.consent", shape_consent, FIRST_SEEN, counters=("placeholder_fields",)
        ),
        Flow(
            "spend",
            "silver.spend",
            shape_spend,
            FIRST_SEEN,
            when_matched="update",
            newer="_ingested_at",
            compare=("cost", "impressions", "clicks", "campaign_name"),
        ),
    )
}
