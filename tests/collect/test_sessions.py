"""Sessions cut by inactivity and campaign, and the one-row-per-session table."""

from __future__ import annotations

import datetime as dt
import hashlib

from chispa import assert_df_equality

from crossdata.collect.sessions import sessions_table, with_sessions
from crossdata.config.schema import SessionSettings

SETTINGS = SessionSettings(inactivity_minutes=30, new_on_campaign_change=True)
EVENTS = "event_id string, actor_id string, event_ts timestamp, utm_campaign string"
SESSIONS = EVENTS + ", session_id string, session_start timestamp, session_seq int"


def at(hour: int, minute: int, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, 5, hour, minute, second, tzinfo=dt.UTC)


def sid(actor: str, start: dt.datetime) -> str:
    micros = int(start.timestamp()) * 1_000_000 + start.microsecond
    return hashlib.sha256(f"{actor}|{micros}".encode()).hexdigest()


def _sessions(spark, rows, settings=SETTINGS):
    return with_sessions(spark.createDataFrame(rows, EVENTS), settings)


def _expected(spark, rows):
    """rows: (event_id, actor, ts, campaign, session start or None, seq or None)."""
    full = [(e, a, t, c, sid(a, s) if s else None, s, n) for e, a, t, c, s, n in rows]
    return spark.createDataFrame(full, SESSIONS)


def _check(actual, expected, key="event_id"):
    # Both frames sorted in one partition: a deterministic order for a few rows, cheaper than
    # ignore_row_order's sort of each frame across partitions.
    def ordered(df):
        return df.coalesce(1).sortWithinPartitions(key)

    assert_df_equality(ordered(actual), ordered(expected), ignore_nullable=True)


def test_gap_longer_than_inactivity_starts_a_new_session(spark):
    rows = [("e1", "a", at(10, 0), None), ("e2", "a", at(10, 20), None)]
    rows += [("e3", "a", at(10, 50, 1), None)]
    expected = _expected(
        spark,
        [
            ("e1", "a", at(10, 0), None, at(10, 0), 1),
            ("e2", "a", at(10, 20), None, at(10, 0), 2),
            ("e3", "a", at(10, 50, 1), None, at(10, 50, 1), 1),
        ],
    )
    _check(_sessions(spark, rows), expected)


def test_gap_of_exactly_the_inactivity_stays_in_the_session(spark):
    rows = [("e1", "a", at(10, 0), None), ("e2", "a", at(10, 30), None)]
    expected = _expected(
        spark,
        [
            ("e1", "a", at(10, 0), None, at(10, 0), 1),
            ("e2", "a", at(10, 30), None, at(10, 0), 2),
        ],
    )
    _check(_sessions(spark, rows), expected)


def test_another_campaign_starts_a_new_session(spark):
    rows = [("e1", "a", at(10, 0), "spring"), ("e2", "a", at(10, 5), None)]
    rows += [("e3", "a", at(10, 10), "summer")]
    expected = _expected(
        spark,
        [
            ("e1", "a", at(10, 0), "spring", at(10, 0), 1),
            ("e2", "a", at(10, 5), None, at(10, 0), 2),
            ("e3", "a", at(10, 10), "summer", at(10, 10), 1),
        ],
    )
    _check(_sessions(spark, rows), expected)


def test_the_same_campaign_again_stays_in_the_session(spark):
    rows = [("e1", "a", at(10, 0), "spring"), ("e2", "a", at(10, 5), None)]
    rows += [("e3", "a", at(10, 10), "spring")]
    expected = _expected(
        spark,
        [
            ("e1", "a", at(10, 0), "spring", at(10, 0), 1),
            ("e2", "a", at(10, 5), None, at(10, 0), 2),
            ("e3", "a", at(10, 10), "spring", at(10, 0), 3),
        ],
    )
    _check(_sessions(spark, rows), expected)


def test_a_campaign_in_a_session_without_one_starts_a_new_session(spark):
    rows = [("e1", "a", at(10, 0), None), ("e2", "a", at(10, 5), "spring")]
    expected = _expected(
        spark,
        [
            ("e1", "a", at(10, 0), None, at(10, 0), 1),
            ("e2", "a", at(10, 5), "spring", at(10, 5), 1),
        ],
    )
    _check(_sessions(spark, rows), expected)


def test_campaign_after_an_inactivity_cut_is_compared_within_the_new_session(spark):
    # spring, 40 min pause (new session, no campaign yet), then spring again: a new campaign
    # for that session, so a third session.
    rows = [("e1", "a", at(10, 0), "spring"), ("e2", "a", at(10, 40), None)]
    rows += [("e3", "a", at(10, 45), "spring")]
    expected = _expected(
        spark,
        [
            ("e1", "a", at(10, 0), "spring", at(10, 0), 1),
            ("e2", "a", at(10, 40), None, at(10, 40), 1),
            ("e3", "a", at(10, 45), "spring", at(10, 45), 1),
        ],
    )
    _check(_sessions(spark, rows), expected)


def test_campaign_change_is_ignored_when_disabled(spark):
    rows = [("e1", "a", at(10, 0), "spring"), ("e2", "a", at(10, 5), "summer")]
    settings = SessionSettings(inactivity_minutes=30, new_on_campaign_change=False)
    expected = _expected(
        spark,
        [
            ("e1", "a", at(10, 0), "spring", at(10, 0), 1),
            ("e2", "a", at(10, 5), "summer", at(10, 0), 2),
        ],
    )
    _check(_sessions(spark, rows, settings), expected)


def test_campaign_change_at_the_same_instant_stays_in_the_session(spark):
    rows = [("e1", "a", at(10, 0), "spring"), ("e2", "a", at(10, 0), "summer")]
    expected = _expected(
        spark,
        [
            ("e1", "a", at(10, 0), "spring", at(10, 0), 1),
            ("e2", "a", at(10, 0), "summer", at(10, 0), 2),
        ],
    )
    _check(_sessions(spark, rows), expected)


def test_events_at_the_same_time_are_ordered_by_event_id(spark):
    rows = [("e2", "a", at(10, 0), None), ("e1", "a", at(10, 0), None)]
    expected = _expected(
        spark,
        [
            ("e1", "a", at(10, 0), None, at(10, 0), 1),
            ("e2", "a", at(10, 0), None, at(10, 0), 2),
        ],
    )
    _check(_sessions(spark, rows), expected)


def test_each_actor_has_its_own_sessions(spark):
    rows = [("e1", "a", at(10, 0), None), ("e2", "b", at(10, 5), None)]
    rows += [("e3", "a", at(10, 10), None)]
    expected = _expected(
        spark,
        [
            ("e1", "a", at(10, 0), None, at(10, 0), 1),
            ("e2", "b", at(10, 5), None, at(10, 5), 1),
            ("e3", "a", at(10, 10), None, at(10, 0), 2),
        ],
    )
    _check(_sessions(spark, rows), expected)


def test_rows_without_actor_or_time_get_no_session(spark):
    rows = [("e1", None, at(10, 0), None), ("e2", None, at(10, 1), None)]
    rows += [("e3", "a", None, None)]
    expected = spark.createDataFrame(
        [(*r, None, None, None) for r in rows],
        SESSIONS,
    )
    _check(_sessions(spark, rows), expected)


def test_named_actor_and_time_columns_are_used(spark):
    df = spark.createDataFrame(
        [("ck_1", at(10, 0)), ("ck_1", at(11, 0))], "cookie_id string, ts timestamp"
    )
    actual = with_sessions(df, SETTINGS, actor="cookie_id", ts="ts")
    expected = spark.createDataFrame(
        [
            ("ck_1", at(10, 0), sid("ck_1", at(10, 0)), at(10, 0), 1),
            ("ck_1", at(11, 0), sid("ck_1", at(11, 0)), at(11, 0), 1),
        ],
        "cookie_id string, ts timestamp, session_id string, session_start timestamp, "
        "session_seq int",
    )
    _check(actual, expected, key="ts")


SESSION_EVENTS = (
    "session_id string, session_seq int, actor_id string, session_start timestamp, "
    "event_ts timestamp, channel string, channel_group string, utm_campaign string, "
    "user_id string, is_bot boolean, event_type string, revenue double"
)
TABLE = (
    "session_id string, actor_id string, session_start timestamp, session_end timestamp, "
    "n_events long, channel string, channel_group string, utm_campaign string, "
    "user_id string, is_bot boolean, converted boolean, revenue double"
)


def _table(spark, rows):
    return sessions_table(spark.createDataFrame(rows, SESSION_EVENTS))


def _one(seq, ts, channel=None, group=None, campaign=None, user=None, bot=False, **kw):
    """An event of session s1 (actor a, started at 10:00)."""
    kind, revenue = kw.get("type", "page_view"), kw.get("revenue")
    return ("s1", seq, "a", at(10, 0), ts, channel, group, campaign, user, bot, kind, revenue)


def test_session_row_has_span_count_and_landing_fields_of_its_first_event(spark):
    rows = [
        _one(2, at(10, 5), channel="direct", group="owned"),
        _one(1, at(10, 0), channel="email", group="owned", campaign="w10"),
        _one(3, at(10, 9), channel="direct", group="owned"),
    ]
    expected = spark.createDataFrame(
        [("s1", "a", at(10, 0), at(10, 9), 3, "email", "owned", "w10", None, False, False, 0.0)],
        TABLE,
    )
    assert_df_equality(_table(spark, rows), expected, ignore_nullable=True)


def test_session_user_is_the_first_known_user_id(spark):
    rows = [_one(1, at(10, 0)), _one(2, at(10, 1), user="u2"), _one(3, at(10, 2), user="u3")]
    expected = spark.createDataFrame(
        [("s1", "a", at(10, 0), at(10, 2), 3, None, None, None, "u2", False, False, 0.0)],
        TABLE,
    )
    assert_df_equality(_table(spark, rows), expected, ignore_nullable=True)


def test_session_converts_with_the_revenue_of_its_purchases(spark):
    rows = [
        _one(1, at(10, 0), type="checkout", revenue=99.0),
        _one(2, at(10, 1), type="purchase", revenue=40.0),
        _one(3, at(10, 2), type="purchase", revenue=2.5),
    ]
    expected = spark.createDataFrame(
        [("s1", "a", at(10, 0), at(10, 2), 3, None, None, None, None, False, True, 42.5)],
        TABLE,
    )
    assert_df_equality(_table(spark, rows), expected, ignore_nullable=True)


def test_session_is_bot_when_any_event_is(spark):
    rows = [_one(1, at(10, 0)), _one(2, at(10, 1), bot=True), _one(3, at(10, 2), bot=None)]
    expected = spark.createDataFrame(
        [("s1", "a", at(10, 0), at(10, 2), 3, None, None, None, None, True, False, 0.0)],
        TABLE,
    )
    assert_df_equality(_table(spark, rows), expected, ignore_nullable=True)


def test_sessions_table_without_optional_columns_has_typed_nulls(spark):
    events = spark.createDataFrame(
        [("s1", 1, "a", at(10, 0), at(10, 0)), (None, None, None, None, at(10, 3))],
        "session_id string, session_seq int, actor_id string, session_start timestamp, "
        "event_ts timestamp",
    )
    expected = spark.createDataFrame(
        [("s1", "a", at(10, 0), at(10, 0), 1, None, None, None, None)],
        "session_id string, actor_id string, session_start timestamp, "
        "session_end timestamp, n_events long, user_id string, is_bot boolean, "
        "converted boolean, revenue double",
    )
    assert_df_equality(sessions_table(events), expected, ignore_nullable=True)
