"""Bot flags from user agents and from event rates per cookie, device or IP."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from crossdata.collect.bots import RATE_REASON, flag_bots, with_bot_rates
from crossdata.collect.flows import EVENTS as SILVER_EVENTS
from crossdata.collect.flows import FLOWS
from crossdata.collect.flows import SESSIONS as SILVER_SESSIONS
from crossdata.collect.ingest import start_bronze
from crossdata.collect.ledgers import QUALITY
from crossdata.collect.silver import SilverBatch, SilverBatchWriter, SilverOutcome
from crossdata.config import load_settings
from crossdata.config.schema import BotSettings
from crossdata.contracts import SOURCES
from crossdata.ops import Context, job_run
from crossdata.spark import conf_set

from ..conftest import make_settings
from ..helpers import deliver, event

REPO = Path(__file__).resolve().parents[2]
HITS = "cookie_id string, ip string, event_ts timestamp, user_agent string"
FLAGGED = HITS + ", is_bot boolean, bot_reason string"
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/122.0.0.0"


@pytest.fixture(scope="module")
def bots() -> BotSettings:
    """The configured patterns with small limits: 3 a minute, 5 a day."""
    real = load_settings(conf_dir=REPO / "conf").settings.collect.bots
    return dataclasses.replace(real, max_events_per_minute=3, max_events_per_day=5)


def at(day: int, hour: int, minute: int, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, second, tzinfo=dt.UTC)


def _flag(spark, rows, settings, **kw):
    return flag_bots(spark.createDataFrame(rows, HITS), settings, **kw)


def _expected(spark, rows, reasons):
    flags = [(*r, reason is not None, reason) for r, reason in zip(rows, reasons, strict=True)]
    return spark.createDataFrame(flags, FLAGGED)


def _check(actual, expected):
    # Both frames sorted in one partition: a deterministic order for a few rows, cheaper than
    # ignore_row_order's sort of each frame across partitions.
    def ordered(df):
        return df.coalesce(1).sortWithinPartitions("cookie_id", "event_ts")

    assert_df_equality(ordered(actual), ordered(expected), ignore_nullable=True)


def test_configured_pattern_anywhere_in_the_user_agent_flags_a_bot(spark, bots):
    rows = [
        ("c1", "1.1.1.1", at(5, 10, 0), "Mozilla/5.0 (compatible; AhrefsBot/7.0)"),
        ("c2", "1.1.1.2", at(5, 10, 0), "my-CRAWLER 1.0"),
        ("c3", "1.1.1.3", at(5, 10, 0), BROWSER),
        ("c4", "1.1.1.4", at(5, 10, 0), None),
    ]
    expected = _expected(spark, rows, ["user_agent", "user_agent", None, None])
    _check(_flag(spark, rows, bots), expected)


def test_ua_is_bot_column_flags_a_bot(spark, bots):
    df = spark.createDataFrame(
        [("c1", at(5, 10, 0), True), ("c2", at(5, 10, 0), False), ("c3", at(5, 10, 0), None)],
        "cookie_id string, event_ts timestamp, ua_is_bot boolean",
    )
    expected = spark.createDataFrame(
        [
            ("c1", at(5, 10, 0), True, True, "user_agent"),
            ("c2", at(5, 10, 0), False, False, None),
            ("c3", at(5, 10, 0), None, False, None),
        ],
        "cookie_id string, event_ts timestamp, ua_is_bot boolean, is_bot boolean, "
        "bot_reason string",
    )
    _check(flag_bots(df, bots), expected)


def test_more_than_the_minute_limit_flags_rate_minute(spark, bots):
    busy = [("c1", None, at(5, 10, 0, s), BROWSER) for s in (0, 10, 20, 59)]
    calm = [("c2", None, at(5, 10, 0, s), BROWSER) for s in (0, 10, 20)]
    expected = _expected(spark, busy + calm, ["rate_minute"] * 4 + [None] * 3)
    _check(_flag(spark, busy + calm, bots), expected)


def test_minute_limit_counts_calendar_minutes(spark, bots):
    rows = [("c1", None, at(5, 10, 0, s), BROWSER) for s in (40, 50)]
    rows += [("c1", None, at(5, 10, 1, s), BROWSER) for s in (0, 10)]
    expected = _expected(spark, rows, [None] * 4)
    _check(_flag(spark, rows, bots), expected)


def test_more_than_the_day_limit_in_one_utc_day_flags_rate_day(spark, bots):
    busy = [("c1", None, at(5, h, 0), BROWSER) for h in (0, 4, 8, 12, 16, 23)]
    # Six events too, but across UTC midnight: five and one.
    calm = [("c2", None, at(5, h, 0), BROWSER) for h in (19, 20, 21, 22, 23)]
    calm += [("c2", None, at(6, 0, 30), BROWSER)]
    expected = _expected(spark, busy + calm, ["rate_day"] * 6 + [None] * 6)
    _check(_flag(spark, busy + calm, bots), expected)


def test_null_actor_values_are_not_one_actor(spark, bots):
    rows = [(None, None, at(5, 10, 0, s), BROWSER) for s in range(5)]
    expected = _expected(spark, rows, [None] * 5)
    _check(_flag(spark, rows, bots), expected)


def test_shared_ip_over_the_limit_flags_every_cookie_behind_it(spark, bots):
    rows = [(f"c{s}", "9.9.9.9", at(5, 10, 0, s), BROWSER) for s in range(4)]
    expected = _expected(spark, rows, ["rate_minute"] * 4)
    _check(_flag(spark, rows, bots), expected)


def test_ip_left_out_of_actor_columns_is_not_counted(spark, bots):
    rows = [(f"c{s}", "9.9.9.9", at(5, 10, 0, s), BROWSER) for s in range(4)]
    expected = _expected(spark, rows, [None] * 4)
    _check(_flag(spark, rows, bots, actor_cols=("cookie_id",)), expected)


def test_user_agent_reason_comes_before_rate(spark, bots):
    rows = [("c1", None, at(5, 10, 0, s), "Googlebot/2.1") for s in range(4)]
    expected = _expected(spark, rows, ["user_agent"] * 4)
    _check(_flag(spark, rows, bots), expected)


def test_rates_are_counted_in_one_pass_over_the_rows(spark, bots, tmp_path):
    # Three actor columns share one count of the rows: the joins' right sides are the same
    # plan, so the source is scanned once for the counts (and once for the rows themselves),
    # not once per actor column.
    rows = [(f"ck_{i % 4}", f"10.0.0.{i % 3}", at(2, 10, i % 5), BROWSER) for i in range(40)]
    source = tmp_path / "hits"
    spark.createDataFrame(rows, HITS).withColumn(
        "device_id", F.concat(F.lit("dev_"), F.col("ip"))
    ).write.parquet(str(source))
    # With adaptive execution, as the jobs run (the test session turns it off, helpers.py).
    with conf_set(spark, {"spark.sql.adaptive.enabled": "true"}):
        flagged = flag_bots(spark.read.parquet(str(source)), bots)
        got = flagged.collect()
        final = flagged._jdf.queryExecution().executedPlan().executedPlan().toString()
    # Every cookie makes 10 events on the day (the limit is 5).
    assert len(got) == 40 and all(r["is_bot"] for r in got)
    assert final.count("FileScan parquet") == 2


def test_silver_web_context_flags_agents_first_then_rates(spark, bots):
    # The silver flows join the rate counts before parsing user agents and put the
    # user-agent reason back in front: same precedence as flag_bots.
    from crossdata.collect.flows import web_context

    base = load_settings(conf_dir=REPO / "conf").settings.collect
    s = dataclasses.replace(base, bots=bots)
    busy = [("busy", "2.2.2.2", at(5, 10, 0, k), BROWSER) for k in range(4)]  # 4 in a minute
    crawler = [("crawl", "3.3.3.3", at(5, 10, 0), "Mozilla/5.0 (compatible; AhrefsBot/7.0)")]
    noisy_crawler = [("robot", "4.4.4.4", at(5, 11, 0, k), "my-CRAWLER 1.0") for k in range(4)]
    calm = [("calm", "5.5.5.5", at(5, 12, 0), BROWSER)]
    # three events in a minute, each delivered twice (a file and its copy): three, not six
    twice = [("twice", "6.6.6.6", at(5, 13, 0, k), BROWSER) for k in range(3)] * 2
    rows = busy + crawler + noisy_crawler + calm + twice
    ids = [f"e{i}" for i in range(len(rows) - len(twice))] + [f"t{i % 3}" for i in range(6)]
    hits = spark.createDataFrame(
        [(*r, i) for r, i in zip(rows, ids, strict=True)], HITS + ", event_id string"
    ).select(
        "*",
        F.lit(None).cast("string").alias("device_id"),
        F.lit("https://shop.example/p?utm_source=x").alias("page_url"),
        F.lit(None).cast("string").alias("referrer"),
    )
    got = {
        (r["cookie_id"], r["is_bot"], r["bot_reason"])
        for r in web_context(hits, s, "page_url").collect()
    }
    assert got == {
        ("busy", True, "rate_minute"),
        ("crawl", True, "user_agent"),
        ("robot", True, "user_agent"),
        ("calm", False, None),
        ("twice", False, None),
    }


def test_stored_events_of_the_day_count_toward_a_new_batchs_rates(spark, bots):
    # The limit is 5 a day. c1: 3 events in this batch, 4 stored by earlier batches, one of
    # them (s3) sent again in this batch and counted once: 6 distinct events, over. c2: 2 + 2,
    # under. c3: 5 distinct with its copy counted once, under (6 if counted twice). c9's
    # stored traffic is heavy but c9 is not in the batch: nothing of it is flagged.
    schema = "event_id string, cookie_id string, ip string, event_ts timestamp"
    batch = [
        ("b1", "c1", None, at(5, 9, 0)),
        ("b2", "c1", None, at(5, 9, 30)),
        ("s3", "c1", None, at(5, 7, 0)),  # also stored
        ("b3", "c2", None, at(5, 9, 0)),
        ("b4", "c2", None, at(5, 9, 30)),
        ("b5", "c3", None, at(5, 9, 0)),
        ("s8", "c3", None, at(5, 7, 0)),  # also stored
    ]
    stored = [
        ("s1", "c1", None, at(5, 6, 0)),
        ("s2", "c1", None, at(5, 6, 30)),
        ("s3", "c1", None, at(5, 7, 0)),
        ("s4", "c1", None, at(5, 8, 0)),
        ("s5", "c2", None, at(5, 6, 0)),
        ("s6", "c2", None, at(5, 6, 30)),
        ("s7", "c1", None, at(4, 8, 0)),  # the day before: another day's count
        # c3: 5 distinct events, at the limit; 6 if its copy counted twice
        ("s8", "c3", None, at(5, 7, 0)),
        ("s9", "c3", None, at(5, 7, 30)),
        ("s10", "c3", None, at(5, 8, 0)),
        ("s11", "c3", None, at(5, 8, 30)),
    ] + [(f"x{i}", "c9", None, at(5, 6, i)) for i in range(10)]
    hits = spark.createDataFrame(batch, schema)
    earlier = spark.createDataFrame(stored, schema)
    flagged = with_bot_rates(hits, bots, ("cookie_id", "ip"), "event_ts", "event_id", earlier)
    got = {r["event_id"]: r[RATE_REASON] for r in flagged.collect()}
    assert got == {
        "b1": "rate_day",
        "b2": "rate_day",
        "s3": "rate_day",
        "b3": None,
        "b4": None,
        "b5": None,
        "s8": None,
    }
    # Without the stored events, c1 has 3 events: under the limit.
    alone = with_bot_rates(hits, bots, ("cookie_id", "ip"), "event_ts", "event_id")
    assert {r[RATE_REASON] for r in alone.collect()} == {None}


@dataclasses.dataclass
class SplitDay:
    ctx: Context
    versions: list[int]  # silver.events after each batch, then after the replay
    outcomes: list[SilverOutcome]


def _silver_batch(ctx: Context, bronze, batch_id: int) -> SilverOutcome:
    writer = SilverBatchWriter(
        ctx.lake.location, FLOWS["events"], ctx.settings.collect, "run-bots", "unused"
    )
    now = dt.datetime.now(dt.UTC)
    batch = SilverBatch(ctx.settings.collect, ctx.lake, "run-bots", batch_id, now, "bots-query")
    return writer.process(bronze, batch)


@pytest.fixture(scope="module")
def split_day(spark, tmp_path_factory) -> SplitDay:
    """One day of a busy cookie delivered in two files, read by two silver batches (a day
    limit of 5): 3 events, then 3 more; a calm cookie sends 2 and 2."""
    tmp = tmp_path_factory.mktemp("bots")
    landing = tmp / "landing"
    ctx = Context.create(
        make_settings(tmp, f"collect.landing={landing}", "collect.bots.max_events_per_day=5"),
        spark=spark,
    )

    def visit(cookie: str, hour: int, n: int) -> list[str]:
        """``n`` events ten minutes apart: one visit."""
        return [
            event(f"{cookie}-{hour}-{m}", f"2026-03-05T{hour:02d}:{m:02d}:00Z", cookie=cookie)
            for m in range(0, 10 * n, 10)
        ]

    deliver(landing, "2026-03-05", "a.jsonl", visit("ck_busy", 10, 3) + visit("ck_calm", 9, 2))
    deliver(landing, "2026-03-05", "b.jsonl", visit("ck_busy", 14, 3) + visit("ck_calm", 15, 2))
    with job_run(ctx, "ingest") as run:
        start_bronze(ctx, run, SOURCES["events"], str(landing)).wait()
    bronze = ctx.lake.read("bronze.events")
    files = [bronze.where(F.col("_source_file").endswith(n)) for n in ("/a.jsonl", "/b.jsonl")]
    outcomes, versions = [], []
    for batch_id, rows in enumerate(files):
        outcomes.append(_silver_batch(ctx, rows, batch_id))
        versions.append(ctx.lake.version(SILVER_EVENTS) or -1)
    _silver_batch(ctx, files[1], 1)  # replayed, as a restarted stream does
    versions.append(ctx.lake.version(SILVER_EVENTS) or -1)
    return SplitDay(ctx, versions, outcomes)


def test_a_day_delivered_in_two_batches_is_counted_whole(split_day):
    rows = split_day.ctx.lake.read(SILVER_EVENTS).select("cookie_id", "is_bot", "bot_reason")
    got = sorted(tuple(r) for r in rows.groupBy(*rows.columns).count().collect())
    # Each batch alone has 3 busy events; together 6, over the day's 5.
    assert got == [("ck_busy", True, "rate_day", 6), ("ck_calm", False, None, 4)]


def test_the_stored_events_a_later_batch_makes_bots_are_updated_and_counted(split_day):
    lake = split_day.ctx.lake
    first, second = split_day.versions[0], split_day.versions[1]
    changes = lake.read_changes(SILVER_EVENTS, first + 1, second)
    kinds = sorted(
        (r["_change_type"], r["cookie_id"], r["bot_reason"])
        for r in changes.select("_change_type", "cookie_id", "bot_reason").collect()
    )
    # The second batch inserts its 5 events (the busy ones already flagged) and updates the
    # busy cookie's 3 stored events: nothing else is rewritten.
    assert kinds == sorted(
        [("insert", "ck_busy", "rate_day")] * 3
        + [("insert", "ck_calm", None)] * 2
        + [("update_preimage", "ck_busy", None)] * 3
        + [("update_postimage", "ck_busy", "rate_day")] * 3
    )
    quality = lake.read(QUALITY).where(F.col("rule") == "events:stored_bots_flagged")
    assert sorted((r["batch_id"], r["passed"], r["failed"]) for r in quality.collect()) == [
        (0, 0, 0),  # nothing stored before the first batch
        (1, 7, 3),
    ]


def test_a_bots_earlier_visit_becomes_a_bots_visit(split_day):
    visits = split_day.ctx.lake.read(SILVER_SESSIONS).where("actor_id = 'ck_busy'")
    assert sorted((r["n_events"], r["is_bot"]) for r in visits.collect()) == [(3, True), (3, True)]


def test_replaying_the_later_batch_flags_nothing_again(split_day):
    assert split_day.versions[2] == split_day.versions[1]
