"""What each bronze source becomes in silver: one ``Flow`` per source, shapes kept pure.

``events`` and ``access_log`` both feed ``silver.events`` (one event model, ``origin`` tells
them apart); server hits that duplicate a tag page view are not inserted. Every other source
feeds its own table. Sessions are set in the same batch: the batch's new events are
sessioned together with the stored events of their actors on the days around them, so each
event is written once with its session, late events join the visit they belong to, stored
events are updated only when a late one moves their session, and silver.sessions follows.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from crossdata.collect.bots import rate_keys, rates_over, with_bot_flags, with_bot_rates
from crossdata.collect.channels import with_channel, with_url_parts
from crossdata.collect.identifiers import (
    PLACEHOLDER_FIELDS,
    UNKNOWN_REGION,
    UNUSABLE_FIELDS,
    country_code,
    is_placeholder,
    listed_fields,
    normalize_identifier,
    normalize_phone,
    null_placeholders,
    phone_placeholders_e164,
    postal_code,
    present,
    record_key,
)
from crossdata.collect.records import order_lines, parse_double, parse_long
from crossdata.collect.sessions import (
    LANDING_FIELDS,
    session_changes,
    sessions_table,
    with_sessions,
)
from crossdata.collect.silver import Flow, SilverBatch, transient_columns, widened
from crossdata.collect.user_agents import with_user_agent_fields
from crossdata.config.schema import CollectSettings, SessionSettings
from crossdata.contracts import IDENTIFIER_TYPES

if TYPE_CHECKING:
    from crossdata.lakehouse import Lakehouse

log = logging.getLogger(__name__)

EVENTS = "silver.events"
SESSIONS = "silver.sessions"

LINEAGE = ("_source_file", "_line", "_delivery_date", "_ingested_at", "_run_id")
FIRST_SEEN = ("_ingested_at", "_source_file", "_line")
# Flows whose later deliveries correct a record (an order's status, a day's spend): within a
# batch, the last delivered version wins: the later bronze batch, then the later delivery
# day, then the later file and line (a file that corrects a line further down).
LAST_DELIVERED = ("-_ingested_at", "-_delivery_date", "-_source_file", "-_line")

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
        *transient_columns(df),
    )


def currency_code() -> Column:
    """The contract's currency as silver stores it: the ISO 4217 code, trimmed and upper-cased
    (bronze accepted any case)."""
    return F.upper(F.trim("currency")).alias("currency")


def clean_identifiers(
    df: DataFrame,
    columns: Mapping[str, str],
    s: CollectSettings,
    phone_region: Column | None = None,
) -> DataFrame:
    """Placeholders nulled (and listed), emails canonical, phones E.164, cards upper-cased.

    Phones without a country code are read in ``phone_region`` (a record's country) when it
    is a region phonenumbers knows, else in ``collect.default_region``. Identifiers that were
    given (not blank, not a placeholder) but that their normalisation refused (an email
    without a dotted domain, an invalid number, a control character in any of them) are
    listed in the transient ``UNUSABLE_FIELDS``.
    """
    out = null_placeholders(df, columns, s)
    if not columns:
        return out
    given = {c: f"_given_{c}" for c in columns}
    out = out.withColumns({flag: F.col(c).isNotNull() for c, flag in given.items()})
    phones = [c for c, id_type in columns.items() if id_type == "phone"]
    for column, id_type in columns.items():
        if id_type == "phone":
            out = normalize_phone(
                out,
                column,
                s.default_region,
                region_column=phone_region,
                fallbacks=s.phone_fallback_regions,
            )
        else:
            out = out.withColumn(column, normalize_identifier(F.col(column), id_type))
    # A listed phone placeholder written another way ("+33 6 00 00 00 00" for 0600000000) is
    # only recognisable once normalised: nulled then, and listed with the placeholders.
    listed = phone_placeholders_e164(s)
    late = {c: f"_late_{c}" for c in phones} if listed else {}
    if late:
        out = out.withColumns(
            {flag: F.coalesce(F.col(c).isin(listed), F.lit(False)) for c, flag in late.items()}
        ).withColumns(
            {
                **{c: F.when(~F.col(flag), F.col(c)) for c, flag in late.items()},
                PLACEHOLDER_FIELDS: F.array_union(
                    F.col(PLACEHOLDER_FIELDS),
                    listed_fields({c: F.col(flag) for c, flag in late.items()}),
                ),
            }
        )
    refused = {
        c: F.col(flag) & F.col(c).isNull() & (~F.col(late[c]) if c in late else F.lit(True))
        for c, flag in given.items()
    }
    return out.withColumn(UNUSABLE_FIELDS, listed_fields(refused)).drop(
        *given.values(), *late.values()
    )


# The actors whose event rates make a bot, in the order their keys are numbered.
BOT_ACTORS = ("cookie_id", "device_id", "ip")
# What the rates read of stored events.
_RATE_INPUTS = ("event_id", "event_date", "event_ts", "actor_id", *BOT_ACTORS, "bot_reason")


def stored_on_days(hits: DataFrame, batch: SilverBatch) -> DataFrame | None:
    """The silver.events rows of the hits' origin (narrow: what bot rates read) on their UTC
    days, or None before the table exists. A day either side too: ``event_date`` is the day
    in the session's time zone, the rates count UTC days.

    One origin at a time: a server hit the tag recorded too is the same visit seen twice, so
    tag events and server hits are counted apart, as each batch counts its own.
    """
    lake = batch.lake
    if lake is None or not lake.exists(EVENTS):  # a shape tried on its own has no lakehouse
        return None
    seen = hits.select("origin", F.to_date("event_ts").alias("d")).distinct().collect()  # a few
    days = [r["d"] for r in seen if r["d"] is not None]
    if not days:
        return None
    return _stored_of(lake, sorted({r["origin"] for r in seen}), widened(days, 1))


def _stored_of(lake: Lakehouse, origins: list[str], days: Sequence[dt.date]) -> DataFrame:
    return (
        lake.read(EVENTS)
        .where(F.col("event_date").isin(list(days)) & F.col("origin").isin(origins))
        .select(*_RATE_INPUTS)
    )


def web_context(
    df: DataFrame, s: CollectSettings, url: str, stored: DataFrame | None = None
) -> DataFrame:
    """User agent fields, URL parts, channel, actor and bot flags of web and app hits.

    ``flag_bots`` in two halves: the rate rules are joined first, onto rows not yet widened
    by the user agent and URL columns; the bot patterns are searched with the user agent's
    parse, once per distinct agent, and come back in ua_is_bot. ``stored``: the events
    already in silver on the hits' days (``stored_on_days``), counted in the rates too.
    """
    out = df.withColumn("actor_id", F.coalesce("cookie_id", "device_id"))
    out = with_bot_rates(out, s.bots, BOT_ACTORS, "event_ts", "event_id", earlier=stored)
    out = with_user_agent_fields(out, "user_agent", s.bots.user_agent_patterns)
    out = with_url_parts(out, url, "referrer", s.site_hosts)
    out = with_channel(out, s.channels)
    return with_bot_flags(out, F.col("ua_is_bot"))


# -- events ------------------------------------------------------------------------------------
def shape_events(bronze: DataFrame, batch: SilverBatch) -> DataFrame:
    s = batch.settings
    df = bronze.select(
        "*",
        F.col("ts").alias("event_ts"),
        F.to_date("ts").alias("event_date"),
        F.lit("events").alias("origin"),
        F.col("_rescued").alias("attributes"),
    ).withColumn("currency", currency_code())
    ids = {
        "cookie_id": "cookie_id",
        "device_id": "device_id",
        "user_id": "user_id",
        "email": "email",
    }
    df = clean_identifiers(df, ids, s)
    df = web_context(df, s, "page_url", stored_on_days(df, batch))
    return _select_typed(df, EVENT_COLUMNS)


def _page_view() -> Column:
    """A server hit that is a page view: GET, status below 400, not an asset."""
    return (
        (F.col("method") == "GET")
        & (F.col("status") < 400)
        & ~F.regexp_extract("url", r"^[^?#]*", 0).rlike(_STATIC)
    )


def not_page_views() -> tuple[str, Column]:
    """The access log's hits silver leaves in bronze, counted as ``access_log:not_page_views``."""
    return ("not_page_views", ~_page_view())


def shape_access_log(bronze: DataFrame, batch: SilverBatch) -> DataFrame:
    """Server hits that are page views (GET, < 400, not an asset) in the event model."""
    s = batch.settings
    pages = bronze.where(_page_view())
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
    df = clean_identifiers(df, {"cookie_id": "cookie_id"}, s)
    df = web_context(df, s, "page_url", stored_on_days(df, batch))
    return _select_typed(df, EVENT_COLUMNS)


def bot_removal(s: CollectSettings) -> tuple[str, Column] | None:
    """collect.bots.action=remove: bot hits are counted, then kept out of silver.events."""
    return ("bots_removed", F.col("is_bot")) if s.bots.action == "remove" else None


def without_tag_duplicates(hits: DataFrame, batch: SilverBatch) -> DataFrame:
    """Drop server hits the tag recorded too (same cookie and path within a few seconds)."""
    lake = batch.lake
    if not lake.exists(EVENTS):
        return hits
    days = [r[0] for r in hits.select("event_date").distinct().collect()]  # a few days
    if not days:
        return hits
    # The days either side too: a hit a few seconds after midnight matches the page view the
    # tag recorded just before it.
    tagged = (
        lake.read(EVENTS)
        .where(
            F.col("event_date").isin(widened(days, 1))
            & (F.col("origin") == "events")
            & (F.col("event_type") == "page_view")
            & F.col("cookie_id").isNotNull()
        )
        .select("cookie_id", "url_path", F.col("event_ts").alias("_tag_ts"))
    )
    matched = (
        hits.alias("h")
        .join(tagged.alias("g"), ["cookie_id", "url_path"])
        .where(
            F.abs(F.unix_timestamp("h.event_ts") - F.unix_timestamp("g._tag_ts")) <= _MATCH_SECONDS
        )
        .select("h.event_id")
        .distinct()
    )
    return hits.join(matched, "event_id", "left_anti")


@dataclass(frozen=True)
class SessionDays:
    """The days around a batch's events that sessions read and may rewrite.

    A new event can only change sessions at or after it, and a session is cut after
    ``inactivity_minutes`` without an event, so (visits shorter than a day) events of day ``d``
    move only rows of ``d`` and ``d + 1``, and only visits that start on ``d - 1`` (one that
    the event continues past midnight) to ``d + 1``. A visit or row is recomputed right when
    the day before it is read too (nothing earlier can belong to it), and a visit is counted
    whole when the day after it is read as well.
    """

    read: tuple[dt.date, ...]  # the stored events read as context: d - 2 .. d + 2
    events: tuple[dt.date, ...]  # stored events whose session may be rewritten: d, d + 1
    sessions: tuple[dt.date, ...]  # silver.sessions days replaced: d - 1 .. d + 1

    @classmethod
    def around(cls, days: Sequence[dt.date]) -> SessionDays:
        return cls(
            read=tuple(widened(days, 2)),
            events=tuple(widened(days, 0, after=1)),
            sessions=tuple(widened(days, 1)),
        )


def session_context(stored: DataFrame, touched: DataFrame, days: SessionDays) -> DataFrame:
    """The stored events of the actors in ``touched`` on the days read, narrowed to what
    sessions need, with their current session as ``_old_<column>``."""
    actors = touched.where(F.col("actor_id").isNotNull()).select("actor_id").distinct()
    needed = [c for c in stored.columns if c in SESSION_INPUTS]
    return (
        stored.where(F.col("event_date").isin(list(days.read)) & F.col("actor_id").isNotNull())
        .join(actors, "actor_id", "left_semi")
        .select(*needed, *[F.col(c).alias(f"_old_{c}") for c in CHANGED_WHEN])
    )


def with_batch_sessions(
    new: DataFrame | None, context: DataFrame | None, days: SessionDays, settings: SessionSettings
) -> DataFrame:
    """New events (all their columns) and stored context events, sessioned together.

    ``_new`` marks the new events; ``_changed`` marks stored events on a day that may be
    rewritten whose session (id or position) is no longer the stored one. Other stored rows
    are context: they shape the sessions and the sessions table, and are never written.
    """
    parts = []
    if new is not None:
        parts.append(new.withColumn("_new", F.lit(True)))
    if context is not None:
        parts.append(context.withColumn("_new", F.lit(False)))
    if not parts:
        raise ValueError("with_batch_sessions needs new events or context")
    rows = parts[0]
    for part in parts[1:]:
        rows = rows.unionByName(part, allowMissingColumns=True)
    for c in CHANGED_WHEN:
        if f"_old_{c}" not in rows.columns:
            rows = rows.withColumn(f"_old_{c}", F.lit(None).cast(dict(EVENT_COLUMNS)[c]))
    moved = F.lit(False)
    for c in CHANGED_WHEN:
        moved = moved | ~F.col(c).eqNullSafe(F.col(f"_old_{c}"))
    sessioned = with_sessions(rows, settings)
    return sessioned.withColumn(
        "_changed", ~F.col("_new") & F.col("event_date").isin(list(days.events)) & moved
    )


def merge_events_with_sessions(
    rows: DataFrame, batch: SilverBatch, days: list[dt.date]
) -> dict[str, int]:
    """The silver.events write of the events and access_log flows: new events once, with
    their session; stored events only where a new one moved their session; silver.sessions
    for the visits around them.

    One job dedupes, sessions and appends the new events (sessioned with the stored events of
    their actors around them; the append is idempotent per batch); then, with bots flagged
    rather than removed, the stored events this batch pushed over a rate limit are flagged
    (``stored_rate_checks``); then ``resessionize`` reads back the narrow columns of those
    actors' events and writes only what differs. Replays are safe in any state a crash
    leaves: events already stored are not new, and the later steps depend only on what is
    stored.
    """
    lake = batch.lake
    around = SessionDays.around(days)
    existed = lake.exists(EVENTS)
    if existed:
        stored = lake.read(EVENTS)
        # New: not stored on the batch's days, nor on the days either side where an event
        # sent again with its time moved (a time zone fixed) would be.
        window = widened(days, batch.settings.duplicate_window_days)
        known = stored.where(F.col("event_date").isin(window)).select("event_id")
        new = rows.join(known, "event_id", "left_anti")
        context = session_context(stored, rows, around)
    else:
        new, context = rows, None
    sessioned = with_batch_sessions(new, context, around, batch.settings.sessions)
    types = dict(EVENT_COLUMNS)
    inserts = sessioned.where("_new").select(
        *[F.col(c).cast(types[c]).alias(c) if c in types else F.col(c) for c in rows.columns]
    )
    txn = batch.txn(EVENTS)
    if txn is None:  # outside a stream (no idempotent write id): count, then append
        inserted = inserts.count()
        lake.append(inserts, EVENTS)
    else:
        lake.append(inserts, EVENTS, txn=txn)
        # The rows of this batch's commit (of its first attempt, when Delta skipped a replay).
        inserted = lake.txn_rows(EVENTS, txn) or 0
    metrics = {"inserted": inserted, "updated": 0}
    flag = batch.settings.bots.action == "flag"  # removed bots are not stored to recount
    # A stored event needs a flag only when this batch pushed one of its actor's minutes or
    # days over a limit, and then this batch's events of that minute or day are bots too: a
    # batch without bots (or the first, when nothing was stored) has nothing to check. (A
    # server hit left out as a tag page view's duplicate is not looked at.)
    has_bots = flag and existed and not rows.where(F.col("is_bot")).isEmpty()
    checked = stored_rate_checks(rows, batch, days) if has_bots else None
    if checked is None:
        if flag:
            metrics |= {"stored_checked": 0, "stored_bots_flagged": 0}
        return metrics | {"session_updates": resessionize(rows, batch, days)}
    checked = checked.persist()
    try:
        counts = checked.agg(
            F.count(F.lit(1)).alias("checked"), F.count_if("_flag").alias("flagged")
        ).first()
        assert counts is not None  # a global aggregate has one row
        flagged = checked.where("_flag")
        if counts["flagged"]:
            _flag_stored_bots(flagged, batch, days)
        # Their sessions are bots' now too (silver.sessions.is_bot).
        touched = (
            rows.select("actor_id").unionByName(flagged.select("actor_id"))
            if counts["flagged"]
            else rows
        )
        moved = resessionize(touched, batch, days)
    finally:
        checked.unpersist()
    return metrics | {
        "session_updates": moved,
        "stored_checked": int(counts["checked"]),
        "stored_bots_flagged": int(counts["flagged"]),
    }


def stored_rate_checks(
    rows: DataFrame, batch: SilverBatch, days: Sequence[dt.date]
) -> DataFrame | None:
    """With ``collect.bots.action: flag``, the stored events of the actors in ``rows`` on
    ``days`` (the batch's, already appended), their rates counted again over everything
    stored from the same origin: ``event_date``, ``event_id``, ``actor_id``, ``bot_reason``
    (the rate reason they now have, or NULL) and ``_flag`` (stored without it, or with
    rate_day where rate_minute now applies: a batch that came later pushed their minute or
    day over a limit).

    Only the keys of ``rows``' actors are counted, each over all its stored events, so a
    count is exact; a flag is only ever added. None without days, or with action remove
    (removed events are not stored to be counted again).
    """
    if batch.settings.bots.action != "flag" or not days:
        return None
    origins = [r[0] for r in rows.select("origin").distinct().collect()]  # one: the flow's
    stored = _stored_of(batch.lake, origins, widened(days, 1))
    mine = rate_keys(stored, BOT_ACTORS, "event_ts", "event_id").join(
        rate_keys(rows, BOT_ACTORS, "event_ts").select("k").distinct(), "k", "left_semi"
    )
    over = rates_over(mine, batch.settings.bots, distinct=True)
    reasons = (
        mine.join(over, ["k", "m"])
        .groupBy(F.col("r").alias("event_id"))
        .agg(F.max("bad_minute").alias("_bm"), F.max("bad_day").alias("_bd"))
    )
    ours = stored.join(
        mine.select(F.col("r").alias("event_id")).distinct(), "event_id", "left_semi"
    )
    rate = F.when(F.col("_bm"), F.lit("rate_minute")).when(F.col("_bd"), F.lit("rate_day"))
    return (
        ours.join(reasons, "event_id", "left")
        .select(
            "event_date",
            "event_id",
            "actor_id",
            rate.alias("_rate"),
            F.col("bot_reason").alias("_stored_reason"),
        )
        .select(
            "event_date",
            "event_id",
            "actor_id",
            F.col("_rate").alias("bot_reason"),
            (
                F.col("_rate").isNotNull()
                & (
                    F.col("_stored_reason").isNull()
                    | ((F.col("_stored_reason") == "rate_day") & (F.col("_rate") == "rate_minute"))
                )
            ).alias("_flag"),
        )
    )


def _flag_stored_bots(flagged: DataFrame, batch: SilverBatch, days: Sequence[dt.date]) -> None:
    """Mark the stored events of ``flagged`` (``stored_rate_checks``) as bots by rate."""
    batch.lake.merge_sql(
        flagged.select("event_date", "event_id", "bot_reason"),
        EVENTS,
        "t.event_date = s.event_date AND t.event_id = s.event_id "
        f"AND t.event_date IN ({_date_list(widened(days, 1))})",
        [
            "WHEN MATCHED AND (t.bot_reason IS NULL OR (t.bot_reason = 'rate_day' AND "
            "s.bot_reason = 'rate_minute')) THEN UPDATE SET t.is_bot = true, "
            "t.bot_reason = s.bot_reason"
        ],
    )


def resessionize(
    touched: DataFrame, batch: SilverBatch, days: Sequence[dt.date] | None = None
) -> int:
    """Recompute, from what silver.events holds, the sessions of the actors in ``touched``
    around ``days`` (the days of ``touched`` by default); write the stored events whose
    session moved and the silver.sessions rows that differ. Returns the events moved."""
    if days is None:
        found = [r[0] for r in touched.select("event_date").distinct().collect()]  # a few days
        days = sorted(d for d in found if d is not None)
    if not days:
        return 0
    around = SessionDays.around(days)
    context = session_context(batch.lake.read(EVENTS), touched, around)
    sessioned = with_batch_sessions(None, context, around, batch.settings.sessions).persist()
    try:
        moved = sessioned.where("_changed")
        n_moved = moved.count()
        if n_moved:
            _update_event_sessions(moved, around, batch)
        written = _write_sessions(sessioned, around, batch)
    finally:
        sessioned.unpersist()
    log.info(
        "sessions batch=%d days=%d moved_events=%d sessions_written=%d",
        batch.batch_id,
        len(days),
        n_moved,
        written,
    )
    return n_moved


def _update_event_sessions(moved: DataFrame, days: SessionDays, batch: SilverBatch) -> None:
    """Set the recomputed session of stored events (only those whose session moved)."""
    updates = moved.select(
        "event_date",
        "event_id",
        *[F.col(c).cast(dict(EVENT_COLUMNS)[c]).alias(c) for c in SESSION_COLUMNS],
    )
    batch.lake.merge_sql(
        updates,
        EVENTS,
        "t.event_date = s.event_date AND t.event_id = s.event_id "
        f"AND t.event_date IN ({_date_list(days.events)})",
        [
            "WHEN MATCHED AND (t.session_id IS DISTINCT FROM s.session_id OR "
            "t.session_seq IS DISTINCT FROM s.session_seq) THEN UPDATE SET "
            + ", ".join(f"t.{c} = s.{c}" for c in SESSION_COLUMNS)
        ],
    )


def _write_sessions(sessioned: DataFrame, days: SessionDays, batch: SilverBatch) -> int:
    """Bring silver.sessions in line with the recomputed visits of the batch's actors on the
    days whose visits are whole; only rows that differ are written. Returns rows written."""
    lake = batch.lake
    fresh = (
        sessions_table(sessioned)
        .withColumn("session_date", F.to_date("session_start"))
        .where(F.col("session_date").isin(list(days.sessions)))
    )
    if not lake.exists(SESSIONS):
        # The first visits: appended once (a replay finds the table and writes no difference).
        txn = batch.txn(SESSIONS)
        if txn is None:
            n = fresh.count()
            lake.append(fresh, SESSIONS)
            return n
        lake.append(fresh, SESSIONS, txn=txn)
        return lake.txn_rows(SESSIONS, txn) or 0
    actors = sessioned.where(F.col("actor_id").isNotNull()).select("actor_id").distinct()
    stored = (
        lake.read(SESSIONS)
        .where(F.col("session_date").isin(list(days.sessions)))
        .join(actors, "actor_id", "left_semi")
    )
    changes = session_changes(fresh, stored).persist()
    try:
        n = changes.count()
        if n:
            columns = fresh.columns
            sets = ", ".join(f"t.`{c}` = s.`{c}`" for c in columns)
            cols = ", ".join(f"`{c}`" for c in columns)
            vals = ", ".join(f"s.`{c}`" for c in columns)
            lake.merge_sql(
                changes,
                SESSIONS,
                f"t.session_id = s.session_id AND t.session_date IN ({_date_list(days.sessions)})",
                [
                    "WHEN MATCHED AND s._op = 'delete' THEN DELETE",
                    f"WHEN MATCHED AND s._op = 'upsert' THEN UPDATE SET {sets}",
                    f"WHEN NOT MATCHED AND s._op = 'upsert' THEN INSERT ({cols}) VALUES ({vals})",
                ],
            )
        return n
    finally:
        changes.unpersist()


def _date_list(days: Sequence[dt.date]) -> str:
    return ", ".join(f"DATE'{d.isoformat()}'" for d in days)


# -- ads, email ------------------------------------------------------------------------------
def _timed(bronze: DataFrame, ts: str = "ts") -> DataFrame:
    return bronze.select(
        "*",
        F.col(ts).alias("event_ts"),
        F.to_date(ts).alias("event_date"),
        F.col("_rescued").alias("attributes"),
    )


def shape_ad_impressions(bronze: DataFrame, batch: SilverBatch) -> DataFrame:
    df = clean_identifiers(
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
        currency_code(),
        "placeholder_fields",
        "attributes",
        *LINEAGE,
        UNUSABLE_FIELDS,
    )


def shape_ad_clicks(bronze: DataFrame, batch: SilverBatch) -> DataFrame:
    df = clean_identifiers(
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
        currency_code(),
        "landing_url",
        "placeholder_fields",
        "attributes",
        *LINEAGE,
        UNUSABLE_FIELDS,
    )


def shape_email_events(bronze: DataFrame, batch: SilverBatch) -> DataFrame:
    df = clean_identifiers(
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
        *transient_columns(df),
    )


# -- orders ----------------------------------------------------------------------------------
# Identifier type -> column, for every identifier an order carries.
ORDER_IDENTIFIERS = {
    t: t for t in ("user_id", "cookie_id", "device_id", "email", "phone", "loyalty_card")
}


def shape_orders(bronze: DataFrame, batch: SilverBatch) -> DataFrame:
    ids = ORDER_IDENTIFIERS
    lines = F.transform(
        order_lines(F.col("lines")),
        lambda x: F.struct(
            x["sku"].alias("sku"),
            parse_long(x["quantity"]).alias("quantity"),
            parse_double(x["unit_price"]).alias("unit_price"),
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
    df = clean_identifiers(df, ids, batch.settings)
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
        currency_code(),
        "amount",
        F.col("order_lines").alias("lines"),
        F.col("order_status").alias("status"),
        "placeholder_fields",
        "attributes",
        *LINEAGE,
        *transient_columns(df),
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
    # "C00000001" and the same with a pasted no-break space after it are one customer.
    key = record_key(F.col("customer_number"))
    touched = bronze.select(key.alias("customer_number")).distinct()
    versions = (
        batch.lake.read("bronze.crm_customers")
        .withColumn("customer_number", key)
        .join(touched, "customer_number", "left_semi")
    )
    ids = {
        "email": "email",
        "phone": "phone",
        "mobile_phone": "phone",
        "loyalty_card": "loyalty_card",
    }
    # The country as an ISO 3166 alpha-2 code; a record's phones are read in it when it has
    # one. A country given but unknown is nulled and listed among the unusable fields. Postal
    # codes get back the leading zeros a spreadsheet dropped (collect.postal_code_digits).
    # A birth date that stands for "unknown" is nulled and listed among the placeholders; one
    # before collect.min_birth_date or after the record's update among the unusable fields.
    birth = F.col("birth_date")
    birth_placeholder = birth.isin(list(s.placeholder_birth_dates))
    birth_implausible = (birth < F.lit(s.min_birth_date)) | (birth > F.to_date("updated_at"))
    versions = versions.withColumn(
        "_country_code",
        country_code(F.col("country"), s.country_name_languages, s.country_aliases),
    )
    # Postal codes are read in the record's country, in the default region when it gives
    # none, and only cleaned when it gives one crossdata does not know.
    country_given = present(F.col("country"))
    region = F.when(country_given, F.col("_country_code")).otherwise(F.lit(s.default_region))
    postal, postal_refused = postal_code(F.col("postal_code"), region, s.postal_code_digits)
    checks = {
        "_country_refused": country_given & F.col("_country_code").isNull(),
        "_postal_refused": postal_refused,
        "_birth_placeholder": F.coalesce(birth_placeholder, F.lit(False)),
        "_birth_refused": F.coalesce(~birth_placeholder & birth_implausible, F.lit(False)),
    }
    versions = versions.withColumns(checks).withColumns(
        {
            "country": F.col("_country_code"),
            "postal_code": postal,
            "birth_date": F.when(~F.col("_birth_placeholder") & ~F.col("_birth_refused"), birth),
        }
    )
    # A country given but unknown ("Holland") is no licence to read its phones as French ones.
    phone_region = F.when(F.col("_country_refused"), F.lit(UNKNOWN_REGION)).otherwise(
        F.col("country")
    )
    cleaned = clean_identifiers(versions, ids, s, phone_region=phone_region)
    refused = listed_fields(
        {
            "country": F.col("_country_refused"),
            "postal_code": F.col("_postal_refused"),
            "birth_date": F.col("_birth_refused"),
        }
    )
    cleaned = cleaned.withColumns(
        {
            "first_name": F.trim("first_name"),
            "last_name": F.trim("last_name"),
            PLACEHOLDER_FIELDS: F.when(
                F.col("_birth_placeholder"),
                F.array_union(F.col(PLACEHOLDER_FIELDS), F.array(F.lit("birth_date"))),
            ).otherwise(F.col(PLACEHOLDER_FIELDS)),
            UNUSABLE_FIELDS: F.array_union(F.col(UNUSABLE_FIELDS), refused),
        }
    ).drop("_country_code", *checks)
    golden = crm_golden(cleaned, s.crm_source_priority)
    flags = cleaned.groupBy("customer_number").agg(
        *[
            F.array_sort(F.array_distinct(F.flatten(F.collect_list(c)))).alias(c)
            for c in ("placeholder_fields", UNUSABLE_FIELDS)
        ]
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
    df = normalize_phone(df, "_phone", s.default_region, fallbacks=s.phone_fallback_regions)
    value = (
        F.when(F.col("_placeholder"), F.lit(None))
        .when(F.col("id_type") == "phone", F.col("_phone"))
        .otherwise(normalize_identifier(F.col("id_value"), F.col("id_type")))
    )
    # computed once: written, and tested for an identifier its normalisation refused
    df = df.withColumn("_value", value)
    return df.select(
        "consent_id",
        "event_ts",
        "event_date",
        "id_type",
        F.col("_value").alias("id_value"),
        "purpose",
        "status",
        "channel",
        F.when(F.col("_placeholder"), F.array(F.lit("id_value")))
        .otherwise(F.array().cast("array<string>"))
        .alias("placeholder_fields"),
        "attributes",
        *LINEAGE,
        # an identifier given, not a placeholder, that its normalisation refused
        listed_fields(
            {
                "id_value": ~F.col("_placeholder")
                & present(F.col("id_value"))
                & F.col("_value").isNull()
            }
        ).alias(UNUSABLE_FIELDS),
    )


def shape_spend(bronze: DataFrame, batch: SilverBatch) -> DataFrame:
    return bronze.select(
        "date",
        "channel",
        "campaign_id",
        "campaign_name",
        "cost",
        currency_code(),
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
            EVENTS,
            shape_events,
            FIRST_SEEN,
            counters=("is_bot", "placeholder_fields"),
            write=merge_events_with_sessions,
            removal=bot_removal,
        ),
        Flow(
            "access_log",
            EVENTS,
            shape_access_log,
            FIRST_SEEN,
            counters=("is_bot", "placeholder_fields"),
            pre_merge=without_tag_duplicates,
            write=merge_events_with_sessions,
            removal=bot_removal,
            skipped=not_page_views,
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
            counters=("has_formula_text", "placeholder_fields"),
        ),
        Flow(
            "orders",
            "silver.orders",
            shape_orders,
            LAST_DELIVERED,
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
            LAST_DELIVERED,
            when_matched="update",
            newer="_ingested_at",
            compare=("cost", "impressions", "clicks", "campaign_name"),
        ),
    )
}
