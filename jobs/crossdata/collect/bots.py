"""Bot traffic: a crawler's user agent, or more events per minute or per day than a person makes."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from crossdata.config.schema import BotSettings

BOT_REASONS: tuple[str, ...] = ("user_agent", "rate_minute", "rate_day")

_SECONDS_PER_DAY = 86_400


def _any(tests: Sequence[Column]) -> Column:
    return F.coalesce(reduce(lambda a, b: a | b, tests), F.lit(False)) if tests else F.lit(False)


def flag_bots(
    df: DataFrame,
    settings: BotSettings,
    actor_cols: Sequence[str] = ("cookie_id", "device_id", "ip"),
    ts: str = "event_ts",
    ua: str = "user_agent",
) -> DataFrame:
    """Add is_bot and bot_reason (user_agent, rate_minute or rate_day, the first that applies).

    ``user_agent``: the user agent contains one of ``settings.user_agent_patterns``
    (case-insensitive), or ``ua_is_bot`` (from ``with_user_agent_fields``) is true.
    ``rate_minute`` / ``rate_day``: some value of one of ``actor_cols`` has more than
    ``max_events_per_minute`` rows in that minute, or ``max_events_per_day`` in that UTC day.
    A NULL actor value is nobody: it is never counted as one actor. Actor columns the frame
    lacks are skipped.

    Trade-off of ``ip``: it catches bots that drop their cookies, but one address can be
    shared by many people (a store's wifi, a carrier's NAT, a corporate proxy), whose
    combined traffic may exceed the limits and flag them all. Pass ``actor_cols`` without
    ``ip`` where that matters more than cookie-less bots.
    """
    time = F.col(ts)
    # Counted from epoch seconds, so the day is the UTC day whatever the session time zone.
    day = F.floor(F.unix_seconds(time) / _SECONDS_PER_DAY)
    minute = F.floor(F.unix_seconds(time) / 60)
    by_agent = []
    if ua in df.columns and settings.user_agent_patterns:
        found = "(?i)" + "|".join(f"(?:{p})" for p in settings.user_agent_patterns)
        by_agent.append(F.col(ua).rlike(found))
    if "ua_is_bot" in df.columns:
        by_agent.append(F.col("ua_is_bot"))

    # Window keys are real columns: a partition expression is re-derived for every window
    # and then no longer matches the previous shuffle, costing one more.
    out = df.withColumns({"_bot_day": day, "_bot_minute": minute})
    too_many_minute: list[Column] = []
    too_many_day: list[Column] = []
    for i, name in enumerate(c for c in actor_cols if c in df.columns):
        actor = F.col(name)
        counted = actor.isNotNull() & time.isNotNull()
        # Uncounted rows would share one (NULL) partition; a hash spreads them over tasks.
        spread = f"_bot_spread_{i}"
        out = out.withColumn(spread, F.when(~counted, F.xxhash64(time, actor)))
        # The minute window refines the day window's partitioning, so both share one shuffle.
        day_key = [actor, F.col("_bot_day"), F.col(spread)]
        per_day = Window.partitionBy(*day_key)
        per_minute = Window.partitionBy(*day_key, F.col("_bot_minute"))
        day_n, minute_n = f"_bot_day_n_{i}", f"_bot_minute_n_{i}"
        out = out.withColumn(day_n, F.when(counted, F.count(F.lit(1)).over(per_day)))
        out = out.withColumn(minute_n, F.when(counted, F.count(F.lit(1)).over(per_minute)))
        too_many_day.append(F.col(day_n) > settings.max_events_per_day)
        too_many_minute.append(F.col(minute_n) > settings.max_events_per_minute)

    reason = (
        F.when(_any(by_agent), F.lit("user_agent"))
        .when(_any(too_many_minute), F.lit("rate_minute"))
        .when(_any(too_many_day), F.lit("rate_day"))
    )
    temp = [c for c in out.columns if c.startswith("_bot_") and c not in df.columns]
    return out.withColumns({"is_bot": reason.isNotNull(), "bot_reason": reason}).drop(*temp)
