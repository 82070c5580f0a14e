"""Sessions cut by inactivity and campaign, the one-row-per-session table, and sessions set
in the silver batch: once per event, late events, replays, the catch-up of older tables."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from crossdata.collect import flows
from crossdata.collect.flows import (
    EVENT_COLUMNS,
    FLOWS,
    SESSION_COLUMNS,
    SessionDays,
    with_batch_sessions,
)
from crossdata.collect.ingest import build_sessions, run_ingest, start_bronze
from crossdata.collect.sessions import session_changes, sessions_table, with_sessions
from crossdata.collect.silver import SilverBatch, SilverBatchWriter, SilverOutcome
from crossdata.config.schema import SessionSettings
from crossdata.contracts import SOURCES
from crossdata.ops import Context, job_run

from ..conftest import make_settings
from ..helpers import deliver, event

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


def test_other_columns_pass_through_in_order_and_old_sessions_are_replaced(spark):
    # Columns the cuts do not read (a dotted name, a map, a struct) come back unchanged and
    # in place; a stale session_id is overwritten where it stands, the missing fields added.
    schema = (
        "`page.url` string, event_id string, attributes map<string,string>, "
        "session_id string, actor_id string, geo struct<city:string>, event_ts timestamp"
    )
    df = spark.createDataFrame(
        [
            ("/a", "e1", {"k": "v"}, "stale", "a", ("Lyon",), at(10, 0)),
            ("/b", "e2", None, None, "a", None, at(10, 5)),
        ],
        schema,
    )
    actual = with_sessions(df, SETTINGS)
    assert actual.columns == [*df.columns, "session_start", "session_seq"]
    rows = {r["event_id"]: r for r in actual.collect()}  # two rows
    assert rows["e1"]["page.url"] == "/a" and rows["e2"]["page.url"] == "/b"
    assert rows["e1"]["attributes"] == {"k": "v"} and rows["e2"]["attributes"] is None
    assert rows["e1"]["geo"]["city"] == "Lyon" and rows["e2"]["geo"] is None
    assert rows["e1"]["session_id"] == rows["e2"]["session_id"] == sid("a", at(10, 0))
    assert [rows["e1"]["session_seq"], rows["e2"]["session_seq"]] == [1, 2]
    # The window operators carry the columns they read and one packed struct, not every column.
    windows = [n for n in _plan_nodes(actual) if n.nodeName() == "Window"]
    assert windows
    for node in windows:
        out = node.output()
        names = {out.apply(i).name() for i in range(out.size())}
        assert names.isdisjoint({"page.url", "attributes", "geo"}), names


def _plan_nodes(df):
    """Every node of ``df``'s optimized logical plan (through py4j: small plans only)."""
    stack = [df._jdf.queryExecution().optimizedPlan()]
    while stack:
        node = stack.pop()
        yield node
        children = node.children()
        stack.extend(children.apply(i) for i in range(children.size()))


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


# -- sessions in the silver batch ---------------------------------------------------------------
def day(n: int) -> dt.date:
    return dt.date(2026, 3, n)


def test_session_days_reach_the_visits_a_batch_day_can_move():
    around = SessionDays.around([day(5), day(9)])
    assert around.read == tuple(day(n) for n in (3, 4, 5, 6, 7, 8, 9, 10, 11))
    assert around.events == (day(5), day(6), day(9), day(10))
    assert around.sessions == (day(4), day(5), day(6), day(8), day(9), day(10))


CHANGES = "session_id string, n_events long, revenue double"


def test_session_changes_upsert_new_and_changed_visits_and_delete_stale_ones(spark):
    fresh = spark.createDataFrame([("same", 2, 0.0), ("more", 3, 0.0), ("new", 1, None)], CHANGES)
    stored = spark.createDataFrame([("same", 2, 0.0), ("more", 2, 0.0), ("gone", 1, 5.0)], CHANGES)
    expected = spark.createDataFrame(
        [("more", 3, 0.0, "upsert"), ("new", 1, None, "upsert"), ("gone", 1, 5.0, "delete")],
        CHANGES + ", _op string",
    )
    _check(session_changes(fresh, stored), expected, key="session_id")


BATCH = "event_id string, actor_id string, event_ts timestamp, event_date date, utm_campaign string"
CONTEXT = BATCH + ", _old_session_id string, _old_session_seq bigint"


def test_a_late_event_moves_only_the_stored_events_whose_session_changes(spark):
    # Stored: visits at 10:00 and 10:50, and one at 12:00; e2 at 10:25 bridges the first two.
    stored = [
        ("e1", "a", at(10, 0), day(5), None, sid("a", at(10, 0)), 1),
        ("e3", "a", at(10, 50), day(5), None, sid("a", at(10, 50)), 1),
        ("e6", "a", at(12, 0), day(5), None, sid("a", at(12, 0)), 1),
    ]
    new = spark.createDataFrame([("e2", "a", at(10, 25), day(5), None)], BATCH)
    context = spark.createDataFrame(stored, CONTEXT)
    out = with_batch_sessions(new, context, SessionDays.around([day(5)]), SETTINGS)
    actual = out.select("event_id", "session_id", "session_seq", "_new", "_changed")
    expected = spark.createDataFrame(
        [
            ("e1", sid("a", at(10, 0)), 1, False, False),
            ("e2", sid("a", at(10, 0)), 2, True, False),
            ("e3", sid("a", at(10, 0)), 3, False, True),
            ("e6", sid("a", at(12, 0)), 1, False, False),
        ],
        "event_id string, session_id string, session_seq int, _new boolean, _changed boolean",
    )
    _check(actual, expected)


def test_stored_events_outside_the_days_a_batch_can_move_are_context_only(spark):
    # Read two days back, e0's visit seems to start at its first event read: it is context,
    # never rewritten, even though its recomputed session differs from the stored one.
    stored = [("e0", "a", at(10, 0) - dt.timedelta(days=2), day(3), None, "older", 7)]
    new = spark.createDataFrame([("e1", "a", at(10, 0), day(5), None)], BATCH)
    context = spark.createDataFrame(stored, CONTEXT)
    out = with_batch_sessions(new, context, SessionDays.around([day(5)]), SETTINGS)
    assert out.where("_changed").count() == 0


SILVER_EVENTS = flows.EVENTS
SILVER_SESSIONS = flows.SESSIONS


@dataclass
class Batches:
    """Three silver batches of events written through the events flow, then replays."""

    ctx: Context
    versions: dict[str, int]  # silver.events / silver.sessions version after each step
    outcomes: list[SilverOutcome]
    replay: SilverOutcome


def _versions(ctx: Context, step: str, into: dict[str, int]) -> None:
    for name in (SILVER_EVENTS, SILVER_SESSIONS):
        into[f"{name}@{step}"] = ctx.lake.version(name) or -1


def _process(ctx: Context, bronze, batch_id: int, app: str = "test-query") -> SilverOutcome:
    writer = SilverBatchWriter(
        ctx.lake.location, FLOWS["events"], ctx.settings.collect, "run-test", "unused"
    )
    now = dt.datetime.now(dt.UTC)
    batch = SilverBatch(ctx.settings.collect, ctx.lake, "run-test", batch_id, now, app)
    return writer.process(bronze, batch)


@pytest.fixture(scope="module")
def batches(spark, tmp_path_factory) -> Batches:
    tmp = tmp_path_factory.mktemp("sessions")
    landing = tmp / "landing"
    ctx = Context.create(make_settings(tmp, f"collect.landing={landing}"), spark=spark)
    deliver(
        landing,
        "2026-03-05",
        "a.jsonl",
        [
            event("e1", "2026-03-05T10:00:00Z"),
            event("e3", "2026-03-05T10:50:00Z"),
            event("e6", "2026-03-05T12:00:00Z"),
            event("m1", "2026-03-05T23:50:00Z", cookie="ck_m"),
        ],
    )
    deliver(landing, "2026-03-06", "b.jsonl", [event("m2", "2026-03-06T00:10:00Z", cookie="ck_m")])
    # Two days late, the event between e1 and e3, and e1 again.
    deliver(
        landing,
        "2026-03-07",
        "late.jsonl",
        [event("e2", "2026-03-05T10:25:00Z"), event("e1", "2026-03-05T10:00:00Z")],
    )
    with job_run(ctx, "ingest") as run:
        start_bronze(ctx, run, SOURCES["events"], str(landing)).wait()
    bronze = ctx.lake.read("bronze.events")
    files = [bronze.where(F.col("_source_file").endswith(n)) for n in ("/a.jsonl", "/b.jsonl")]
    files.append(bronze.where(F.col("_source_file").endswith("/late.jsonl")))
    versions: dict[str, int] = {}
    outcomes = []
    for batch_id, rows in enumerate(files):
        outcomes.append(_process(ctx, rows, batch_id))
        _versions(ctx, f"batch{batch_id}", versions)
    # The last batch again, as a restarted stream replays it.
    replay = _process(ctx, files[2], 2)
    _versions(ctx, "replay", versions)
    # A crash after the events were written, before silver.sessions: the batch replayed.
    ctx.spark.sql(
        f"RESTORE TABLE delta.`{ctx.lake.path(SILVER_SESSIONS)}` "
        f"TO VERSION AS OF {versions[f'{SILVER_SESSIONS}@batch1']}"
    )
    _versions(ctx, "crashed", versions)
    _process(ctx, files[2], 2)
    _versions(ctx, "recovered", versions)
    # A crash after the late event was appended, before the stored event it moves was
    # updated: both tables back to that moment, then the batch replayed.
    crash_at = {
        SILVER_EVENTS: versions[f"{SILVER_EVENTS}@batch1"] + 1,
        SILVER_SESSIONS: versions[f"{SILVER_SESSIONS}@batch1"],
    }
    for name, version in crash_at.items():
        ctx.spark.sql(f"RESTORE TABLE delta.`{ctx.lake.path(name)}` TO VERSION AS OF {version}")
    _versions(ctx, "crashed_after_append", versions)
    _process(ctx, files[2], 2)
    _versions(ctx, "recovered_after_append", versions)
    return Batches(ctx, versions, outcomes, replay)


def _changes(b: Batches, after: str, upto: str) -> list[tuple[str, str]]:
    """(change type, event_id) of silver.events between two steps."""
    lo, hi = b.versions[f"{SILVER_EVENTS}@{after}"] + 1, b.versions[f"{SILVER_EVENTS}@{upto}"]
    if hi < lo:
        return []
    rows = (
        b.ctx.lake.read_changes(SILVER_EVENTS, lo, hi).select("_change_type", "event_id").collect()
    )
    return sorted((r[0], r[1]) for r in rows)


def _visits(b: Batches, actor: str, version: int | None = None) -> list[tuple]:
    """(start, end, events, day) of an actor's visits, times as UTC text."""
    rows = b.ctx.lake.read(SILVER_SESSIONS, version=version).where(F.col("actor_id") == actor)
    cols = ("session_start", "session_end", "n_events", "session_date")
    return sorted(tuple(r) for r in rows.select(*[F.col(c).cast("string") for c in cols]).collect())


def test_new_events_are_written_once_with_their_session(batches):
    first = batches.ctx.lake.read_changes(
        SILVER_EVENTS, 0, batches.versions[f"{SILVER_EVENTS}@batch0"]
    )
    assert sorted(r[0] for r in first.select("_change_type").collect()) == ["insert"] * 4
    silver = batches.ctx.lake.read(
        SILVER_EVENTS, version=batches.versions[f"{SILVER_EVENTS}@batch0"]
    )
    rows = {r["event_id"]: (r["session_id"], r["session_seq"]) for r in silver.collect()}
    assert rows["e1"] == (sid("ck_a", at(10, 0)), 1)
    assert rows["e6"] == (sid("ck_a", at(12, 0)), 1)


def test_a_visit_across_midnight_is_completed_by_the_next_days_events(batches):
    assert _changes(batches, "batch0", "batch1") == [("insert", "m2")]
    started = dt.datetime(2026, 3, 5, 23, 50, tzinfo=dt.UTC)
    silver = batches.ctx.lake.read(SILVER_EVENTS).where("actor_id = 'ck_m'")
    assert {(r["session_id"], r["session_seq"]) for r in silver.collect()} == {
        (sid("ck_m", started), 1),
        (sid("ck_m", started), 2),
    }
    assert _visits(batches, "ck_m") == [
        ("2026-03-05 23:50:00", "2026-03-06 00:10:00", "2", "2026-03-05")
    ]


def test_a_late_event_is_inserted_and_only_the_event_it_moves_is_updated(batches):
    assert _changes(batches, "batch1", "batch2") == [
        ("insert", "e2"),
        ("update_postimage", "e3"),
        ("update_preimage", "e3"),
    ]
    assert _visits(batches, "ck_a") == [
        ("2026-03-05 10:00:00", "2026-03-05 10:50:00", "3", "2026-03-05"),
        ("2026-03-05 12:00:00", "2026-03-05 12:00:00", "1", "2026-03-05"),
    ]


def test_batch_counts_leave_session_updates_out_of_updated(batches):
    late = batches.outcomes[2]
    assert (late.rows_in, late.inserted, late.updated, late.duplicates) == (2, 1, 0, 1)


def test_a_replayed_batch_writes_nothing_again_and_counts_the_same(batches):
    v = batches.versions
    assert v[f"{SILVER_EVENTS}@replay"] == v[f"{SILVER_EVENTS}@batch2"]
    assert v[f"{SILVER_SESSIONS}@replay"] == v[f"{SILVER_SESSIONS}@batch2"]
    # Its counts are those of the first attempt (found in the commit Delta kept).
    assert batches.replay == batches.outcomes[2]


def test_a_replay_after_a_crash_before_the_sessions_write_completes_them(batches):
    v = batches.versions
    # Read at this replay's own versions: the fixture goes on to another crash after it.
    after = v[f"{SILVER_SESSIONS}@recovered"]
    assert _visits(batches, "ck_a", v[f"{SILVER_SESSIONS}@crashed"]) != _visits(
        batches, "ck_a", after
    )
    assert v[f"{SILVER_EVENTS}@recovered"] == v[f"{SILVER_EVENTS}@batch2"]  # events were complete
    recovered = batches.ctx.lake.read(SILVER_SESSIONS, version=after)
    clean = batches.ctx.lake.read(SILVER_SESSIONS, version=v[f"{SILVER_SESSIONS}@batch2"])
    assert_df_equality(recovered, clean, ignore_row_order=True, ignore_nullable=True)


def test_a_replay_after_a_crash_before_the_moved_events_are_updated_completes_them(batches):
    v = batches.versions
    # batch 2 wrote silver.events twice: the late event, then the stored event it moved.
    assert v[f"{SILVER_EVENTS}@batch2"] == v[f"{SILVER_EVENTS}@batch1"] + 2
    crashed = batches.ctx.lake.read(
        SILVER_EVENTS, version=v[f"{SILVER_EVENTS}@crashed_after_append"]
    )
    clean = batches.ctx.lake.read(SILVER_EVENTS, version=v[f"{SILVER_EVENTS}@batch2"])
    columns = ("event_id", *SESSION_COLUMNS)
    assert crashed.select(*columns).exceptAll(clean.select(*columns)).count() == 1  # e3
    # The replay appends nothing (the late event is stored) and moves e3 as the first try did.
    recovered = v[f"{SILVER_EVENTS}@recovered_after_append"]
    changes = batches.ctx.lake.read_changes(
        SILVER_EVENTS, v[f"{SILVER_EVENTS}@crashed_after_append"] + 1, recovered
    )
    assert sorted(r[0] for r in changes.select("event_id").distinct().collect()) == ["e3"]
    assert_df_equality(
        batches.ctx.lake.read(SILVER_EVENTS, version=recovered).select(*columns),
        clean.select(*columns),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert_df_equality(
        batches.ctx.lake.read(
            SILVER_SESSIONS, version=v[f"{SILVER_SESSIONS}@recovered_after_append"]
        ),
        batches.ctx.lake.read(SILVER_SESSIONS, version=v[f"{SILVER_SESSIONS}@batch2"]),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_catch_up_sessions_the_events_an_older_version_inserted_without_one(batches, tmp_path):
    # An older version's state: silver.events rows inserted without their session.
    ctx = Context.create(make_settings(tmp_path), spark=batches.ctx.spark)
    done = batches.ctx.lake.read(SILVER_EVENTS)
    bare = done.withColumns(
        {c: F.lit(None).cast(t) for c, t in EVENT_COLUMNS if c in SESSION_COLUMNS}
    )
    ctx.lake.append(bare, SILVER_EVENTS)
    with job_run(ctx, "ingest") as run:
        build_sessions(ctx, run)
    assert_df_equality(
        ctx.lake.read(SILVER_EVENTS).select("event_id", *SESSION_COLUMNS),
        done.select("event_id", *SESSION_COLUMNS),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert_df_equality(
        ctx.lake.read(SILVER_SESSIONS),
        batches.ctx.lake.read(SILVER_SESSIONS),
        ignore_row_order=True,
    )
    version = ctx.lake.version(SILVER_EVENTS)
    with job_run(ctx, "ingest") as run:
        build_sessions(ctx, run)  # nothing left without a session: nothing written
    assert ctx.lake.version(SILVER_EVENTS) == version


def _hit(ts: str, path: str, cookie: str, method: str = "GET", status: int = 200) -> str:
    return (
        f'203.0.113.9 - - [{ts}] "{method} {path} HTTP/1.1" {status} 512 "-" "Mozilla/5.0 (X11)" '
        f'"{cookie}"'
    )


def test_server_hits_join_sessions_and_tag_duplicates_are_left_out(ctx, tmp_path):
    landing = tmp_path / "landing"
    tag = [event("e1", "2026-03-05T10:00:00Z"), event("e2", "2026-03-05T23:59:58Z")]
    deliver(landing, "2026-03-05", "a.jsonl", tag)
    hits = [
        _hit("05/Mar/2026:10:00:02 +0000", "/p/1", "ck_a"),  # the tag's e1 again
        _hit("06/Mar/2026:00:00:01 +0000", "/p/1", "ck_a"),  # e2 again, past midnight
        _hit("05/Mar/2026:10:20:00 +0000", "/p/2", "ck_a"),  # a page the tag missed
        # not page views: left in bronze, and counted
        _hit("05/Mar/2026:10:20:01 +0000", "/static/app.JS?v=3", "ck_a"),
        _hit("05/Mar/2026:10:20:02 +0000", "/cart", "ck_a", method="POST", status=302),
        _hit("05/Mar/2026:10:21:00 +0000", "/p/404", "ck_a", status=404),
    ]
    deliver(landing, "2026-03-05", "a.log", hits, source="access_log")
    with job_run(ctx, "ingest") as run:
        summary = run_ingest(ctx, run, ["events", "access_log"], str(landing))
    assert (summary.silver["access_log"].inserted, summary.silver["access_log"].duplicates) == (
        1,
        2,
    )
    rows = ctx.lake.read(SILVER_EVENTS).orderBy("event_ts").collect()
    assert [(r["origin"], r["session_id"], r["session_seq"]) for r in rows] == [
        ("events", sid("ck_a", at(10, 0)), 1),
        ("access_log", sid("ck_a", at(10, 0)), 2),
        ("events", sid("ck_a", at(23, 59, 58)), 1),
    ]
    sessions = ctx.lake.read(SILVER_SESSIONS).collect()
    assert sorted(r["n_events"] for r in sessions) == [1, 2]
    assert ctx.lake.read("bronze.access_log").count() == 6
    skipped = ctx.lake.read("ops.data_quality").where("rule = 'access_log:not_page_views'")
    assert [(r["passed"], r["failed"], r["action"]) for r in skipped.collect()] == [(3, 3, "skip")]
