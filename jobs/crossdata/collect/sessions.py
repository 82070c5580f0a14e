"""Sessions: an actor's events cut by inactivity and by a change of campaign.

All window functions share one window (partitioned by actor, ordered by time then
``event_id`` when the frame has one), so the rows are shuffled and sorted once.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from crossdata.config.schema import SessionSettings

SESSION_FIELDS: tuple[str, ...] = ("session_id", "session_start", "session_seq")
# Taken from a session's first event into the sessions table, when the events have them.
LANDING_FIELDS: tuple[tuple[str, str], ...] = (
    ("channel", "channel"),
    ("channel_group", "channel_group"),
    ("utm_source", "utm_source"),
    ("utm_medium", "utm_medium"),
    ("utm_campaign", "utm_campaign"),
    ("utm_content", "utm_content"),
    ("utm_term", "utm_term"),
    ("referrer_host", "referrer_host"),
    ("url_path", "landing_path"),
)
TIEBREAK = "event_id"
PURCHASE = "purchase"

_MICROS_PER_MINUTE = 60_000_000
PAYLOAD = "_s_payload"


def with_sessions(
    df: DataFrame,
    settings: SessionSettings,
    actor: str = "actor_id",
    ts: str = "event_ts",
    campaign: str = "utm_campaign",
) -> DataFrame:
    """Add session_id, session_start and session_seq; NULL for rows without actor or time.

    A session starts at an actor's first event, after more than ``inactivity_minutes`` without
    one, and (with ``new_on_campaign_change``) at an event whose non-null campaign differs from
    the last campaign seen in the session, or is the first one seen there (a visit from a
    campaign link in the middle of a direct visit is a new visit). A campaign change at the
    very instant of the previous event is the same hit, not a new session; this also keeps
    (actor, session_start) unique, so ``session_id`` = sha2(actor | start in microseconds)
    names one session and is stable when later events arrive. A frame without the
    ``campaign`` column is cut by inactivity only.
    """
    columns = df.columns
    # The cuts take four dependent Window operators, and each one projects every column of
    # every row. The columns they do not read ride along in one struct, so an operator copies
    # one value per row instead of dozens (the 50 columns of 1M silver events: 12-17 s ->
    # 8-11 s for the sessions alone). Session fields the frame already has are replaced.
    keys = [c for c in (actor, ts, TIEBREAK, campaign) if c in columns]
    riders = [c for c in columns if c not in keys and c not in SESSION_FIELDS]
    packed = df.select(
        *[F.col(_quoted(c)) for c in keys],
        F.struct(*[F.col(_quoted(c)) for c in riders]).alias(PAYLOAD),
    )
    who, when = F.col(actor), F.col(ts)
    usable = who.isNotNull() & when.isNotNull()
    order = [when] + ([F.col(TIEBREAK)] if TIEBREAK in columns else [])
    # Rows left out would all share one NULL partition; spreading them by a hash keeps that
    # partition from becoming one huge task. Their results are discarded. The key is a real
    # column: a partition expression is re-derived per window and costs a shuffle each time.
    spread = F.col("_s_spread")
    w = Window.partitionBy(who, spread).orderBy(*order)
    so_far = w.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    before = w.rowsBetween(Window.unboundedPreceding, -1)

    prev_ts = F.lag(when).over(w)
    gap = F.unix_micros(when) - F.unix_micros(prev_ts)
    out = packed.withColumn("_s_spread", F.when(~usable, F.xxhash64(*order))).withColumns(
        {
            "_s_new_visit": prev_ts.isNull()
            | (gap > settings.inactivity_minutes * _MICROS_PER_MINUTE),
            "_s_gap": gap,
            "_s_rn": F.row_number().over(w),
        }
    )
    new_session: Column = F.col("_s_new_visit")
    if settings.new_on_campaign_change and campaign in columns:
        # The last campaign of the session so far is the last non-null one since the last
        # inactivity cut: a session cut by a campaign starts with that (non-null) campaign.
        tagged = F.when(
            F.col(campaign).isNotNull(),
            F.struct(F.col("_s_visit").alias("v"), F.col(campaign).alias("c")),
        )
        out = out.withColumn("_s_visit", F.sum(F.col("_s_new_visit").cast("int")).over(so_far))
        out = out.withColumn("_s_last", F.last(tagged, ignorenulls=True).over(before))
        current = F.when(F.col("_s_last.v") == F.col("_s_visit"), F.col("_s_last.c"))
        changed = (
            F.col(campaign).isNotNull()
            & F.coalesce(F.col(campaign) != current, F.lit(True))
            & (F.col("_s_gap") > 0)
        )
        new_session = new_session | changed
    out = out.withColumn("_s_new", new_session)
    start = F.last(F.when(F.col("_s_new"), when), ignorenulls=True).over(so_far)
    start_rn = F.last(F.when(F.col("_s_new"), F.col("_s_rn")), ignorenulls=True).over(so_far)
    out = out.withColumns({"_s_start": start, "_s_start_rn": start_rn})
    session_id = F.sha2(
        F.concat_ws("|", who.cast("string"), F.unix_micros(F.col("_s_start")).cast("string")), 256
    )
    computed = {
        "session_id": F.when(usable, session_id),
        "session_start": F.when(usable, F.col("_s_start")),
        "session_seq": F.when(usable, F.col("_s_rn") - F.col("_s_start_rn") + 1),
    }
    payload = F.col(PAYLOAD)

    def restored(c: str) -> Column:
        if c in computed:
            return computed[c].alias(c)
        return F.col(_quoted(c)) if c in keys else payload.getField(c).alias(c)

    # The frame's columns in their order (session fields in place), then new session fields.
    return out.select(
        *[restored(c) for c in columns], *[restored(c) for c in SESSION_FIELDS if c not in columns]
    )


def _quoted(name: str) -> str:
    """A column name as one identifier, dots and backticks included."""
    return "`" + name.replace("`", "``") + "`"


def sessions_table(
    events_with_sessions: DataFrame, actor: str = "actor_id", ts: str = "event_ts"
) -> DataFrame:
    """One row per session: actor, start, end, n_events, landing fields, user, bot, conversion.

    Landing fields (channel, channel_group, utm_*, referrer_host, url_path as landing_path)
    come from the session's first event and are present when the events have them. A column
    the events lack (user_id, is_bot, event_type, revenue) gives a typed NULL; a session
    without purchase has revenue 0.
    """
    events = events_with_sessions.where(F.col("session_id").isNotNull())
    cols = set(events.columns)
    seq = F.col("session_seq")
    landing = [(src, name) for src, name in LANDING_FIELDS if src in cols]
    aggs: list[Column] = [
        F.any_value(actor).alias(actor),
        F.min("session_start").alias("session_start"),
        F.max(ts).alias("session_end"),
        F.count(F.lit(1)).alias("n_events"),
    ]
    if landing:
        first = F.struct(*[F.col(src).alias(name) for src, name in landing])
        aggs.append(F.min_by(first, seq).alias("_landing"))
    if "user_id" in cols:
        # min_by skips rows whose ordering is NULL: the first event that has a user_id.
        user = F.min_by("user_id", F.when(F.col("user_id").isNotNull(), seq))
    else:
        user = F.lit(None).cast("string")
    aggs.append(user.alias("user_id"))
    is_bot = (
        F.bool_or(F.coalesce(F.col("is_bot"), F.lit(False)))
        if "is_bot" in cols
        else F.lit(None).cast("boolean")
    )
    aggs.append(is_bot.alias("is_bot"))
    purchase = F.col("event_type") == PURCHASE if "event_type" in cols else None
    if purchase is not None:
        aggs.append(F.bool_or(F.coalesce(purchase, F.lit(False))).alias("converted"))
    else:
        aggs.append(F.lit(None).cast("boolean").alias("converted"))
    if purchase is not None and "revenue" in cols:
        paid = F.sum(F.when(purchase, F.col("revenue").cast("double")))
        aggs.append(F.coalesce(paid, F.lit(0.0)).alias("revenue"))
    else:
        aggs.append(F.lit(None).cast("double").alias("revenue"))
    table = events.groupBy("session_id").agg(*aggs)
    if landing:
        table = table.select(
            "session_id",
            actor,
            "session_start",
            "session_end",
            "n_events",
            *[F.col(f"_landing.{name}").alias(name) for _, name in landing],
            "user_id",
            "is_bot",
            "converted",
            "revenue",
        )
    return table


def session_changes(fresh: DataFrame, stored: DataFrame, key: str = "session_id") -> DataFrame:
    """What turns ``stored`` into ``fresh`` (two sets of rows with ``fresh``'s columns).

    Rows of ``fresh`` that ``stored`` lacks or holds with another value get ``_op`` =
    ``upsert``; rows of ``stored`` that ``fresh`` lacks get ``_op`` = ``delete``; rows equal in
    both are left out, so writing the result changes nothing when nothing changed.
    """
    columns = fresh.columns
    f = fresh.withColumn("_in_fresh", F.lit(True)).alias("f")
    s = stored.select(*columns).withColumn("_in_stored", F.lit(True)).alias("s")
    same: Column = F.lit(True)
    for c in columns:
        same = same & F.col(f"f.{c}").eqNullSafe(F.col(f"s.{c}"))
    op = (
        F.when(F.col("s._in_stored").isNull(), F.lit("upsert"))
        .when(F.col("f._in_fresh").isNull(), F.lit("delete"))
        .when(~same, F.lit("upsert"))
    )
    deleted = op == "delete"
    values = [F.when(deleted, F.col(f"s.{c}")).otherwise(F.col(f"f.{c}")).alias(c) for c in columns]
    return (
        f.join(s, F.col(f"f.{key}") == F.col(f"s.{key}"), "full_outer")
        .select(*values, op.alias("_op"))
        .where(F.col("_op").isNotNull())
    )
