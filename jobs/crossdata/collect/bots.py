"""Bot traffic: a crawler's user agent, or more events per minute or per day than a person makes."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from crossdata.collect.user_agents import bot_pattern_found
from crossdata.config.schema import BotSettings

BOT_REASONS: tuple[str, ...] = ("user_agent", "rate_minute", "rate_day")

_SECONDS_PER_DAY = 86_400


def _actor_key(index: int, column: str) -> Column:
    """An actor as one join key: the column's place in ``actor_cols`` and its value."""
    return F.concat(F.lit(f"{index}:"), F.col(column).cast("string"))


def _any(tests: Sequence[Column]) -> Column:
    return F.coalesce(reduce(lambda a, b: a | b, tests), F.lit(False)) if tests else F.lit(False)


RATE_REASON = "_bot_rate_reason"


def flag_bots(
    df: DataFrame,
    settings: BotSettings,
    actor_cols: Sequence[str] = ("cookie_id", "device_id", "ip"),
    ts: str = "event_ts",
    ua: str = "user_agent",
) -> DataFrame:
    """Add is_bot and bot_reason (user_agent, rate_minute or rate_day, the first that applies).

    ``user_agent``: one of ``settings.user_agent_patterns`` (Python regexes, case-insensitive)
    is found in the user agent, or ``ua_is_bot`` (from ``with_user_agent_fields``) is true.
    ``rate_minute`` / ``rate_day``: see ``with_bot_rates``. A pipeline that parses user agents
    anyway calls the two halves itself (``with_bot_rates``, then ``with_user_agent_fields``
    given the patterns, then ``with_bot_flags``), as the silver flows do.
    """
    by_agent = []
    if ua in df.columns and settings.user_agent_patterns:
        by_agent.append(bot_pattern_found(ua, settings.user_agent_patterns))
    if "ua_is_bot" in df.columns:
        by_agent.append(F.col("ua_is_bot"))
    return with_bot_flags(with_bot_rates(df, settings, actor_cols, ts), _any(by_agent))


def with_bot_flags(df: DataFrame, by_agent: Column) -> DataFrame:
    """is_bot and bot_reason from the user-agent test ``by_agent`` and the rate reason that
    ``with_bot_rates`` added (then dropped): the user agent comes first, then the rates."""
    reason = F.when(F.coalesce(by_agent, F.lit(False)), F.lit("user_agent")).otherwise(
        F.col(RATE_REASON)
    )
    return df.withColumns({"is_bot": reason.isNotNull(), "bot_reason": reason}).drop(RATE_REASON)


def rate_keys(
    df: DataFrame, actors: Sequence[str], ts: str = "event_ts", record_id: str | None = None
) -> DataFrame:
    """One narrow row per row and actor column with a value: ``k`` (the actor as one key),
    ``d`` (UTC day), ``m`` (minute since the epoch) and ``r`` (the record id, or NULL)."""
    time = F.col(ts)
    seconds = F.unix_seconds(time)
    minute = F.floor(seconds / 60)
    day = F.floor(seconds / _SECONDS_PER_DAY)
    # A NULL actor value is nobody: it is never counted (nor joined back).
    return (
        df.select(
            F.explode(
                F.array(
                    *[
                        F.when(
                            F.col(name).isNotNull() & time.isNotNull(),
                            F.struct(
                                _actor_key(i, name).alias("k"),
                                day.alias("d"),
                                minute.alias("m"),
                                (F.col(record_id) if record_id else F.lit(None))
                                .cast("string")
                                .alias("r"),
                            ),
                        )
                        for i, name in enumerate(actors)
                    ]
                )
            ).alias("_x")
        )
        .where(F.col("_x").isNotNull())
        .select("_x.*")
    )


def rates_over(keys: DataFrame, settings: BotSettings, distinct: bool) -> DataFrame:
    """The (actor key, minute) pairs of ``keys`` (``rate_keys``) over a limit: ``k``, ``m``,
    ``bad_minute`` (that minute is over) and ``bad_day`` (the minute's UTC day is over).
    ``distinct``: rows with the same record id count once."""
    if distinct:
        keys = keys.dropDuplicates(["k", "d", "m", "r"])
    per_minute = keys.groupBy("k", "d", "m").agg(F.count(F.lit(1)).alias("n_minute"))
    per_minute = per_minute.withColumn(
        "n_day", F.sum("n_minute").over(Window.partitionBy("k", "d"))
    )
    over_minute = F.col("n_minute") > settings.max_events_per_minute
    over_day = F.col("n_day") > settings.max_events_per_day
    return per_minute.where(over_minute | over_day).select(
        "k", "m", over_minute.alias("bad_minute"), over_day.alias("bad_day")
    )


def with_bot_rates(
    df: DataFrame,
    settings: BotSettings,
    actor_cols: Sequence[str] = ("cookie_id", "device_id", "ip"),
    ts: str = "event_ts",
    record_id: str | None = None,
    earlier: DataFrame | None = None,
) -> DataFrame:
    """Add ``RATE_REASON``: rate_minute or rate_day (the first that applies), else NULL.

    ``rate_minute`` / ``rate_day``: some value of one of ``actor_cols`` has more than
    ``max_events_per_minute`` rows in that minute, or ``max_events_per_day`` in that UTC day.
    A NULL actor value is nobody: it is never counted as one actor. Actor columns the frame
    lacks are skipped. With ``record_id``, rows that share its value count once: a file
    delivered twice (or a record sent again) is not twice the traffic, and deduplication
    comes after this step. Join it before widening the rows: the same joins onto rows carrying
    the user agent and URL columns cost twice as much (10 s against 5 s per million rows).

    ``earlier``: rows seen before ``df`` (the stored events of its days), with the same
    columns: those of ``df``'s actors count too, so a day delivered in several batches is
    counted whole. Only ``df``'s rows are flagged.

    Trade-off of ``ip``: it catches bots that drop their cookies, but one address can be
    shared by many people (a store's wifi, a carrier's NAT, a corporate proxy), whose
    combined traffic may exceed the limits and flag them all. Pass ``actor_cols`` without
    ``ip`` where that matters more than cookie-less bots.
    """
    # Rates are counted on a narrow copy (actor column, value, UTC day and minute) and only
    # the keys over a limit (bots: a few) are joined back; adaptive execution broadcasts them
    # when they are few (no hint: a misconfigured limit must not broadcast millions of keys),
    # so the wide rows are not shuffled (windows over them cost a shuffle and two sorts of
    # every column per actor column). Minutes are counted from epoch seconds, so the day is
    # the UTC day whatever the session time zone.
    actors = [c for c in actor_cols if c in df.columns]
    out = df
    too_many_minute: list[Column] = []
    too_many_day: list[Column] = []
    if actors:
        minute = F.floor(F.unix_seconds(F.col(ts)) / 60)
        keys = rate_keys(df, actors, ts, record_id)
        if earlier is not None:
            # The stored rows of this batch's actors only; an actor column the stored rows
            # lack has no stored traffic.
            known = earlier.select(
                F.col(ts),
                *[
                    (F.col(c) if c in earlier.columns else F.lit(None).cast("string")).alias(c)
                    for c in actors
                ],
                (F.col(record_id) if record_id else F.lit(None)).alias("_rate_record"),
            )
            before = rate_keys(known, actors, ts, "_rate_record" if record_id else None)
            keys = keys.unionByName(before.join(keys.select("k").distinct(), "k", "left_semi"))
        over = rates_over(keys, settings, distinct=record_id is not None)
        out = out.withColumn("_bot_minute", minute)
        # Every actor column joins the same ``over`` (the key carries the column's index, no
        # filter on it), so the plans of the joins' right sides are identical and the counts
        # are computed once and reused; a filter per column was pushed below the aggregate,
        # and each of its joins scanned and counted the whole batch again.
        for i, name in enumerate(actors):
            k, m, bm, bd = (f"_bot_k_{i}", f"_bot_m_{i}", f"_bot_bm_{i}", f"_bot_bd_{i}")
            flagged = over.select(
                F.col("k").alias(k),
                F.col("m").alias(m),
                F.col("bad_minute").alias(bm),
                F.col("bad_day").alias(bd),
            )
            out = out.join(
                flagged,
                (_actor_key(i, name) == F.col(k)) & (F.col("_bot_minute") == F.col(m)),
                "left",
            )
            too_many_minute.append(F.col(bm))
            too_many_day.append(F.col(bd))

    reason = F.when(_any(too_many_minute), F.lit("rate_minute")).when(
        _any(too_many_day), F.lit("rate_day")
    )
    return out.select(*[F.col(c) for c in df.columns], reason.alias(RATE_REASON))
