"""Delta for real: write, read, MERGE, time travel, change data feed, constraints, catalog."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import threading
import time
import types

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crossdata.errors import ConcurrentWriteError, CrossdataError, InvariantViolation
from crossdata.lakehouse import Lakehouse, store, table
from crossdata.lakehouse.tables import EXPECTATION_TABLES, TABLES, Table

from .conftest import make_settings

RUNS = "ops.job_runs"
SCHEMA = T.StructType(
    [
        T.StructField("alert_id", T.StringType(), False),
        T.StructField("run_id", T.StringType(), True),
        T.StructField("job", T.StringType(), True),
        T.StructField("raised_at", T.TimestampType(), False),
        T.StructField("severity", T.StringType(), False),
        T.StructField("kind", T.StringType(), False),
        T.StructField("message", T.StringType(), False),
        T.StructField("details", T.MapType(T.StringType(), T.StringType()), True),
    ]
)


@pytest.fixture
def people_table(monkeypatch):
    spec = Table(
        "silver.test_people",
        "test table",
        mode="merge",
        keys=("person_id",),
        change_data_feed=True,
        constraints={"positive_age": "age > 0"},
    )
    monkeypatch.setitem(TABLES, spec.name, spec)
    return spec


def _people(spark, rows):
    return spark.createDataFrame(rows, "person_id STRING, name STRING, age INT")


def test_path_is_root_layer_noun(lake: Lakehouse):
    assert lake.path(RUNS) == f"{lake.root}/ops/job_runs"
    assert lake.root.startswith("file:/")


@pytest.mark.parametrize("folder", ["a b", "it's", "tick`ed"])
def test_a_root_is_the_folder_it_names_whatever_its_characters(
    spark, tmp_path, people_table, folder
):
    # Path.as_uri() would write %20: Hadoop reads a location's text as the path itself. A
    # quote or a backtick must not break the SQL that names the table or its location.
    lake = Lakehouse(spark, str(tmp_path / folder / "lake"), register_tables=True)
    lake.append(_people(spark, [("p1", "Ann", 30)]), people_table.name)
    assert (tmp_path / folder / "lake" / "silver" / "test_people" / "_delta_log").is_dir()
    assert [p.name for p in tmp_path.iterdir()] == [folder]
    assert lake.read(people_table.name).count() == 1
    assert lake.version(people_table.name) == 1


def test_unknown_table_lists_known_ones():
    with pytest.raises(CrossdataError, match=r"unknown table 'silver.nope'; known tables: .*"):
        table("silver.nope")


def test_expectations_may_name_exactly_the_silver_tables_the_flows_write():
    from crossdata.collect.flows import FLOWS

    assert set(EXPECTATION_TABLES) == {flow.table for flow in FLOWS.values()}
    assert all(table(name).layer == "silver" for name in EXPECTATION_TABLES)


def test_write_read_and_sql_by_name(spark, lake, people_table):
    rows = [("p1", "Ann", 30), ("p2", "Bo", 41)]
    lake.merge(_people(spark, rows), people_table.name)
    assert_df_equality(
        lake.read(people_table.name),
        _people(spark, rows),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    by_sql = spark.sql(f"SELECT person_id, age FROM {lake.ident(people_table.name)} WHERE age > 35")
    assert [tuple(r) for r in by_sql.collect()] == [("p2", 41)]


def test_idempotent_append_is_found_again_by_its_txn(spark, lake, people_table):
    txn = ("test-app", 7)
    lake.append(_people(spark, [("p1", "Ann", 30), ("p2", "Bo", 41)]), people_table.name, txn=txn)
    lake.append(_people(spark, [("p3", "Cy", 52)]), people_table.name, txn=("test-app", 8))
    # A replay of version 7: Delta skips the write, and its first commit is still found.
    lake.append(_people(spark, [("p1", "Ann", 30), ("p2", "Bo", 41)]), people_table.name, txn=txn)
    assert lake.read(people_table.name).count() == 3
    assert lake.txn_rows(people_table.name, txn) == 2
    assert lake.txn_rows(people_table.name, ("test-app", 8)) == 1
    assert lake.txn_rows(people_table.name, ("test-app", 9)) is None


def test_merge_updates_matches_and_inserts_new_keys(spark, lake, people_table):
    lake.merge(_people(spark, [("p1", "Ann", 30), ("p2", "Bo", 41)]), people_table.name)
    lake.merge(_people(spark, [("p2", "Bo", 42), ("p3", "Cy", 25)]), people_table.name)
    expected = _people(spark, [("p1", "Ann", 30), ("p2", "Bo", 42), ("p3", "Cy", 25)])
    assert_df_equality(
        lake.read(people_table.name), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_a_table_keeps_its_id_through_writes_and_a_new_table_gets_another(
    spark, tmp_path, people_table
):
    # The identity stage salts new customer keys with the id and version of the map it read.
    lake = Lakehouse(spark, str(tmp_path / "one"))
    assert lake.table_id(people_table.name) is None
    lake.append(_people(spark, [("p1", "Ann", 30)]), people_table.name)
    first = lake.table_id(people_table.name)
    lake.overwrite(_people(spark, [("p2", "Bob", 40)]), people_table.name)
    lake.merge(_people(spark, [("p2", "Bob", 41)]), people_table.name)
    assert first is not None and lake.table_id(people_table.name) == first
    other = Lakehouse(spark, str(tmp_path / "two"))
    other.append(_people(spark, [("p1", "Ann", 30)]), people_table.name)
    assert other.table_id(people_table.name) not in (None, first)


def test_time_travel_reads_an_old_version(spark, lake, people_table):
    lake.merge(_people(spark, [("p1", "Ann", 30)]), people_table.name)
    first = lake.version(people_table.name)
    lake.merge(_people(spark, [("p1", "Ann", 31)]), people_table.name)
    old = lake.read(people_table.name, version=first).collect()
    assert [r["age"] for r in old] == [30]
    assert lake.version(people_table.name) == first + 1


def test_change_data_feed_shows_update_pre_and_post_images(spark, lake, people_table):
    lake.merge(_people(spark, [("p1", "Ann", 30)]), people_table.name)
    start = lake.version(people_table.name)
    lake.merge(_people(spark, [("p1", "Ann", 31), ("p9", "Zed", 50)]), people_table.name)
    changes = lake.read_changes(people_table.name, start + 1).select(
        "person_id", "age", "_change_type"
    )
    expected = spark.createDataFrame(
        [("p1", 30, "update_preimage"), ("p1", 31, "update_postimage"), ("p9", 50, "insert")],
        "person_id STRING, age INT, _change_type STRING",
    )
    assert_df_equality(changes, expected, ignore_row_order=True, ignore_nullable=True)


def test_check_constraint_rejects_bad_rows_without_naming_their_values(
    spark, lake, people_table, monkeypatch
):
    # a constraint over a name: Delta's own error would print the offending name
    monkeypatch.setitem(people_table.constraints, "capitalised", "name = initcap(name)")
    lake.merge(_people(spark, [("p1", "Ann", 30)]), people_table.name)
    for write in (lake.append, lake.merge):
        with pytest.raises(InvariantViolation) as caught:
            write(_people(spark, [("p2", "zoé secret", 41)]), people_table.name)
        message = str(caught.value)
        assert message.startswith(
            f"table {people_table.name}: a row breaks CHECK constraint capitalised "
        )
        assert "zoé" not in message and "41" not in message
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert lake.read(people_table.name).count() == 1


def test_fixed_schema_table_is_created_empty_and_registered(spark, lake):
    lake.create_if_missing("ops.alerts")
    assert lake.exists("ops.alerts")
    assert spark.table("ops.alerts").schema.names == SCHEMA.names
    assert lake.read("ops.alerts").count() == 0


def test_a_new_session_catalog_finds_tables_again(spark, lake, people_table):
    lake.merge(_people(spark, [("p1", "Ann", 30)]), people_table.name)
    spark.sql(f"DROP TABLE IF EXISTS {people_table.name}")  # as a new session would start
    fresh = Lakehouse(spark, lake.root)
    assert people_table.name in fresh.register_all()
    assert spark.table(people_table.name).count() == 1


def test_exists_is_false_for_a_missing_table(lake):
    assert not lake.exists(RUNS)
    assert lake.version(RUNS) is None


def test_a_name_registered_at_another_root_is_re_pointed_and_its_files_kept(spark, tmp_path):
    first = Lakehouse(spark, str(tmp_path / "first"))
    first.create_if_missing("ops.alerts")
    second = Lakehouse(spark, str(tmp_path / "second"))
    second.create_if_missing("ops.alerts")
    location = spark.sql("DESCRIBE DETAIL ops.alerts").first()["location"]
    assert location.rstrip("/").endswith("/second/ops/alerts")
    assert first.read("ops.alerts").count() == 0  # the other root's table is still there
    # A registration whose files are gone is stale too: the next root takes the name.
    shutil.rmtree(tmp_path / "second")
    third = Lakehouse(spark, str(tmp_path / "third"))
    third.create_if_missing("ops.alerts")
    location = spark.sql("DESCRIBE DETAIL ops.alerts").first()["location"]
    assert location.rstrip("/").endswith("/third/ops/alerts")
    assert third.register("ops.alerts")


def test_a_lakehouse_deleted_under_a_live_process_is_seen_gone_and_created_again(
    spark, lake, tmp_path
):
    lake.create_if_missing("ops.alerts")
    assert lake.exists("ops.alerts")
    shutil.rmtree(lake.root.removeprefix("file:"))  # `demo --fresh` from the same notebook
    assert not lake.exists("ops.alerts")
    again = Lakehouse(spark, lake.root)
    assert not again.exists("ops.alerts")
    again.create_if_missing("ops.alerts")  # created with its layout and properties, not skipped
    assert again.read("ops.alerts").schema.names == SCHEMA.names
    twin = Lakehouse(spark, str(tmp_path / "twin"))
    twin.create_if_missing("ops.alerts")

    def properties(lakehouse: Lakehouse) -> dict:
        return spark.sql(f"DESCRIBE DETAIL {lakehouse.ident('ops.alerts')}").first()["properties"]

    assert properties(again) and properties(again) == properties(twin)


def test_registering_again_takes_the_name_back_from_another_root(spark, tmp_path):
    first = Lakehouse(spark, str(tmp_path / "first"))
    first.create_if_missing("ops.alerts")
    assert first.register("ops.alerts")
    second = Lakehouse(spark, str(tmp_path / "second"))
    second.create_if_missing("ops.alerts")  # re-points the name at the second root
    assert first.register("ops.alerts")
    location = spark.sql("DESCRIBE DETAIL ops.alerts").first()["location"]
    assert location.rstrip("/").endswith("/first/ops/alerts")


def _merge_while_another_job_deletes(spark, lake: Lakehouse, name: str, tmp_path) -> None:
    """MERGE into ``name`` while another writer deletes a row of it: a real Delta conflict.

    The merge's source holds its first evaluation (a Python UDF waits on a file) until the
    other thread has committed its DELETE, so the merge's first commit finds a file it read
    removed (ConcurrentDeleteReadException). Later evaluations (a retry) run straight through.
    """
    lake.merge(_people(spark, [("p1", "Ann", 30), ("p2", "Bo", 41)]), name)
    started, go = str(tmp_path / "started"), str(tmp_path / "go")

    def hold(age):
        import os
        import time

        if not os.path.exists(go):
            open(started, "w").close()
            deadline = time.monotonic() + 120
            while not os.path.exists(go) and time.monotonic() < deadline:
                time.sleep(0.05)
        return age

    held = F.udf(hold, "int")
    source = _people(spark, [("p2", "Bo", 42), ("p3", "Cy", 25)]).coalesce(1)
    source = source.withColumn("age", held("age"))

    failed: list[BaseException] = []

    def delete_when_the_merge_has_started() -> None:
        try:
            deadline = time.monotonic() + 120
            while not os.path.exists(started) and time.monotonic() < deadline:
                time.sleep(0.05)
            spark.sql(f"DELETE FROM {lake.ident(name)} WHERE person_id = 'p1'")
        except BaseException as exc:  # handed to the test below, not lost with the thread
            failed.append(exc)
        finally:
            open(go, "w").close()  # never leave the merge waiting

    other = threading.Thread(target=delete_when_the_merge_has_started)
    other.start()
    try:
        lake.merge(source, name)
    finally:
        other.join()
        if failed:
            raise AssertionError("the concurrent DELETE failed") from failed[0]


def test_a_conflicting_write_is_retried_with_back_off(spark, tmp_path, people_table, caplog):
    lake = Lakehouse(spark, str(tmp_path / "lake"), max_retries=2, backoff_seconds=0.01)
    with caplog.at_level(logging.WARNING, logger="crossdata.lakehouse.store"):
        _merge_while_another_job_deletes(spark, lake, people_table.name, tmp_path)
    conflicts = [r.getMessage() for r in caplog.records if "write conflict" in r.getMessage()]
    assert len(conflicts) == 1, conflicts
    assert conflicts[0].startswith(
        f"lakehouse: write conflict table={people_table.name} attempt=1 retry_in="
    )
    # Both writes are in: the other job's delete, then the merge, applied once.
    expected = _people(spark, [("p2", "Bo", 42), ("p3", "Cy", 25)])
    assert_df_equality(
        lake.read(people_table.name), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_a_write_still_conflicting_after_its_retries_fails_clearly(spark, tmp_path, people_table):
    lake = Lakehouse(spark, str(tmp_path / "lake"), max_retries=0, backoff_seconds=0.01)
    with pytest.raises(ConcurrentWriteError, match=r"silver.test_people: write still conflicted"):
        _merge_while_another_job_deletes(spark, lake, people_table.name, tmp_path)
    # The other job's delete stands; the merge left nothing behind.
    expected = _people(spark, [("p2", "Bo", 41)])
    assert_df_equality(
        lake.read(people_table.name), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_retry_settings_reach_the_lakehouse_and_its_batches(spark, tmp_path) -> None:
    settings = make_settings(
        tmp_path, "lakehouse.write_retries=1", "lakehouse.retry_backoff_seconds=2.5"
    ).settings
    lake = Lakehouse.from_settings(spark, settings)
    reopened = lake.location.open(spark)
    assert (reopened.max_retries, reopened.backoff_seconds) == (1, 2.5)


def _stats_kept(spark, lake: Lakehouse, name: str) -> list[set[str]]:
    """Per data file added to the table's log: the columns its statistics hold min/max for."""
    log = spark.read.json(f"{lake.path(name)}/_delta_log/*.json").where("add IS NOT NULL")
    stats = [json.loads(r[0]) for r in log.select("add.stats").collect()]  # one per file
    return [set(s.get("minValues", {})) for s in stats]


def test_statistics_are_kept_on_the_declared_columns_only(spark, lake):
    """silver.sessions declares actor_id, session_start and session_end: a write collects
    statistics on those and on no other column (strings included), and the table says so."""
    spec = table("silver.sessions")
    assert spec.stats_columns == ("actor_id", "session_start", "session_end")
    rows = spark.createDataFrame(
        [("s1", "a1", dt.datetime(2026, 3, 2, 10), dt.datetime(2026, 3, 2, 11), 3, "/home")],
        "session_id STRING, actor_id STRING, session_start TIMESTAMP, session_end TIMESTAMP, "
        "n_events BIGINT, landing_path STRING",
    ).withColumn("session_date", F.to_date("session_start"))
    lake.append(rows, "silver.sessions")
    lake.append(rows.withColumn("session_id", F.lit("s2")), "silver.sessions")
    assert _stats_kept(spark, lake, "silver.sessions") == [set(spec.stats_columns)] * 2
    props = {
        r["key"]: r["value"]
        for r in spark.sql(f"SHOW TBLPROPERTIES {lake.ident('silver.sessions')}").collect()
    }
    assert props["delta.dataSkippingStatsColumns"] == "actor_id,session_start,session_end"


def test_a_table_gets_the_declared_statistics_columns_it_has(spark, lake):
    """A frame without some declared column (a test's, an older version's) still creates the
    table, with statistics on the declared columns it has; Delta would refuse the others."""
    rows = spark.createDataFrame(
        [("e1", dt.datetime(2026, 3, 2, 10), dt.date(2026, 3, 2), "web", "events", "a1")],
        "event_id STRING, event_ts TIMESTAMP, event_date DATE, platform STRING, origin STRING, "
        "actor_id STRING",
    )
    lake.append(rows, "silver.events")
    assert _stats_kept(spark, lake, "silver.events") == [{"event_ts", "actor_id"}]
    assert not lake.declare_stats_columns("silver.events")  # nothing more it can have


def test_declared_statistics_columns_are_checked_against_the_layout():
    with pytest.raises(ValueError, match="partition columns take no statistics"):
        Table("silver.t", "t", mode="append", partition_by=("d",), stats_columns=("d", "x"))
    with pytest.raises(ValueError, match="need statistics: actor_id"):
        Table("silver.t", "t", mode="append", zorder_by=("actor_id",), stats_columns=("x",))


def test_a_creation_that_fails_for_its_own_reason_fails_at_once(spark, lake, monkeypatch):
    # Only an error a concurrent creation gives is waited on (for the other writer's table
    # to appear); a plain mistake surfaces without the wait.
    spec = Table(
        "gold.broken", "a layout naming a column it lacks", "append", partition_by=("missing",)
    )
    monkeypatch.setitem(TABLES, "gold.broken", spec)
    # The store's own clock only: py4j's threads sleep through the same module's function.
    monkeypatch.setattr(store, "time", types.SimpleNamespace(sleep=_no_sleep))
    with pytest.raises(Exception, match="missing"):
        lake.append(spark.createDataFrame([(1,)], "id INT"), "gold.broken")


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"waited {seconds}s for a table no other writer was creating")
