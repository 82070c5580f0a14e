"""``crossdata maintain``: compaction with each table's layout, then VACUUM by conf retention."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from crossdata.cli import main
from crossdata.collect.file_changes import FILE_CHANGES_SCHEMA
from crossdata.collect.maintain import RETENTION_CHECK, run_maintenance
from crossdata.errors import CrossdataError, InvariantViolation
from crossdata.lakehouse.store import _condition_text
from crossdata.ops import Context, job_run

from ..conftest import make_settings

EVENTS = (
    "event_id string, event_ts timestamp, event_date date, platform string, origin string, "
    "actor_id string"
)


@pytest.fixture
def retention_check_off(spark):
    """Delta's guard against a VACUUM retention under 7 days, off for one test (as a user
    who knows no other job writes meanwhile sets it), then back as it was."""
    before = spark.conf.get(RETENTION_CHECK, None)
    spark.conf.set(RETENTION_CHECK, "false")
    yield
    if before is None:
        spark.conf.unset(RETENTION_CHECK)
    else:
        spark.conf.set(RETENTION_CHECK, before)


def _data_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*.parquet") if "_delta_log" not in p.parts)


def test_maintain_compacts_and_vacuums_without_changing_rows(
    spark, tmp_path: Path, retention_check_off
) -> None:
    ctx = Context.create(
        make_settings(tmp_path, "collect.maintenance.vacuum_retention_hours=0"), spark=spark
    )
    day = dt.date(2026, 3, 2)
    for batch in range(6):  # six small appends: six files in the one partition
        rows = [
            (f"e{batch}-{i}", dt.datetime(2026, 3, 2, 10, i), day, "web", "events", f"a{i % 3}")
            for i in range(5)
        ]
        ctx.lake.append(ctx.spark.createDataFrame(rows, EVENTS), "silver.events")
    path = Path(ctx.lake.path("silver.events").removeprefix("file://").removeprefix("file:"))
    before_rows = ctx.lake.read("silver.events")
    expected = before_rows.orderBy("event_id").collect()
    files_before = _data_files(path)
    assert files_before >= 6

    with job_run(ctx, "maintain") as run:
        report = run_maintenance(ctx, run, ["silver.events"])

    assert "silver.events" in report
    detail = ctx.spark.sql(f"DESCRIBE DETAIL {ctx.lake.ident('silver.events')}").first()
    assert detail is not None and detail["numFiles"] == 1  # one partition, compacted
    assert _data_files(path) == 1  # the replaced files are gone from disk (retention 0)
    after = ctx.spark.createDataFrame(
        ctx.lake.read("silver.events").orderBy("event_id").collect(), before_rows.schema
    )
    assert_df_equality(after, ctx.spark.createDataFrame(expected, before_rows.schema))
    history = ctx.spark.sql(f"DESCRIBE HISTORY {ctx.lake.ident('silver.events')}")
    ops = {r[0] for r in history.select("operation").collect()}
    assert {"OPTIMIZE", "VACUUM START", "VACUUM END"} <= ops
    zorder = history.where(F.col("operation") == "OPTIMIZE").first()
    assert zorder is not None and "actor_id" in zorder["operationParameters"]["zOrderBy"]
    runs = ctx.lake.read("ops.job_runs").where(F.col("job") == "maintain")
    assert runs.where(F.col("status") == "succeeded").count() == 1


def test_maintain_rejects_an_unknown_table(spark, tmp_path: Path) -> None:
    ctx = Context.create(make_settings(tmp_path), spark=spark)
    with job_run(ctx, "maintain") as run, pytest.raises(CrossdataError, match="unknown table"):
        run_maintenance(ctx, run, ["silver.nope"])


def test_maintain_brings_constraints_up_to_date(spark, tmp_path: Path) -> None:
    # ops.ingest_file_changes as a version before misnamed files left it: the old set of
    # changes, which refuses the new rows, and a constraint it never had.
    ctx = Context.create(make_settings(tmp_path, "collect.maintenance.optimize=false"), spark=spark)
    name = "ops.ingest_file_changes"
    row = [("r1", None, "events", "file:/l/e.json", "misnamed", None, 5, None, None, None, None)]
    change_rows = ctx.spark.createDataFrame(row, FILE_CHANGES_SCHEMA)
    ctx.lake.append(change_rows.where("false"), name)
    ident = ctx.lake.ident(name)
    ctx.spark.sql(f"ALTER TABLE {ident} DROP CONSTRAINT valid_change")
    ctx.spark.sql(
        f"ALTER TABLE {ident} ADD CONSTRAINT valid_change CHECK (change IN ('rewritten', 'gone'))"
    )
    with pytest.raises(InvariantViolation, match="valid_change"):
        ctx.lake.append(change_rows, name)

    with job_run(ctx, "maintain") as run:
        report = run_maintenance(ctx, run, [name], vacuum=False)
    assert report.splitlines()[1].split()[-1] == "valid_change"
    ctx.lake.append(change_rows, name)
    assert [r["change"] for r in ctx.lake.read(name).collect()] == ["misnamed"]
    with pytest.raises(InvariantViolation, match="valid_change"):
        ctx.lake.append(change_rows.withColumn("change", F.lit("moved")), name)
    with job_run(ctx, "maintain") as run:  # up to date: nothing to change
        assert run_maintenance(ctx, run, [name], vacuum=False).splitlines()[1].split()[-1] == "-"


def test_maintain_command_line(spark, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = Context.create(make_settings(tmp_path), spark=spark)
    ctx.lake.append(
        ctx.spark.createDataFrame([("x", "r")], "src string, reason string"), "bronze.quarantine"
    )
    code = main(
        [
            "--set",
            f"lakehouse.root={tmp_path / 'lakehouse'}",
            "maintain",
            "--table",
            "bronze.quarantine",
            "--table",
            "silver.sessions",
            "--no-vacuum",
        ]
    )
    assert code == 0
    report = capsys.readouterr().out.splitlines()
    assert report[1].split()[0] == "bronze.quarantine"
    assert report[2].split() == ["silver.sessions", "not", "created", "yet:", "skipped"]

    code = main(["maintain", "--table", "silver.session"])  # a typo: refused, nothing run
    assert code == 1
    assert "unknown table 'silver.session'" in capsys.readouterr().err


# A DELETE run by another process, on its own JVM, while this session's OPTIMIZE waits.
_DELETE_SCRIPT = """
import sys
from pyspark.sql import SparkSession

path, jars = sys.argv[1], sys.argv[2]
spark = (
    SparkSession.builder.master("local[1]")
    .config("spark.jars", jars)
    .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
    .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
    .config("spark.ui.enabled", "false")
    .getOrCreate()
)
spark.sql(f"DELETE FROM delta.`{path}` WHERE event_id = 'e0-0'")
spark.stop()
"""

_HOLDER_GROUP = "test-slot-holder"


class _SlotGate:
    """Holds every task slot of the local session with a Python UDF job, so that other jobs wait
    in the queue; ``pass_one`` lets the queued jobs run and holds the slots again behind them."""

    def __init__(self, spark, folder: Path) -> None:
        self.spark = spark
        self.folder = folder
        self.slots = spark.sparkContext.defaultParallelism
        self.rounds = 0
        self.threads: list[threading.Thread] = []

    def _go(self, k: int) -> Path:
        return self.folder / f"go-{k}"

    def _start_holder(self) -> int:
        k = self.rounds
        self.rounds += 1
        folder, go = str(self.folder), str(self._go(k))

        def hold(i):
            import os
            import time

            open(os.path.join(folder, f"held-{k}-{i}"), "w").close()
            deadline = time.monotonic() + 300
            while not os.path.exists(go) and time.monotonic() < deadline:
                time.sleep(0.05)
            return i

        held = F.udf(hold, "long")

        def run() -> None:
            self.spark.sparkContext.setJobGroup(_HOLDER_GROUP, f"slot holder {k}")
            n = self.slots
            self.spark.range(0, n, 1, n).select(held("id")).collect()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)
        return k

    def _wait_held(self, k: int) -> None:
        deadline = time.monotonic() + 120
        while len(list(self.folder.glob(f"held-{k}-*"))) < self.slots:
            assert time.monotonic() < deadline, f"slot holder {k} did not get the slots"
            time.sleep(0.05)

    def hold(self) -> None:
        self._wait_held(self._start_holder())

    def queued(self) -> dict[int, str]:
        """The active jobs that are not the holder's, with their descriptions."""
        sc = self.spark.sparkContext
        holders = set(sc.statusTracker().getJobIdsForGroup(_HOLDER_GROUP))
        store = sc._jsc.sc().statusStore()  # job descriptions: only the JVM's status store has them
        found = {}
        for j in set(sc.statusTracker().getActiveJobsIds()) - holders:
            description = store.job(j).description()
            found[j] = description.get() if description.isDefined() else ""
        return found

    def pass_one(self) -> None:
        """Let the queued jobs have the slots, then hold them again (FIFO: the new holder
        comes after every job queued before it)."""
        k = self._start_holder()
        sc = self.spark.sparkContext
        deadline = time.monotonic() + 60
        while len(set(sc.statusTracker().getJobIdsForGroup(_HOLDER_GROUP))) <= k:
            assert time.monotonic() < deadline, "the next slot holder was not submitted"
            time.sleep(0.05)
        self._go(k - 1).touch()
        self._wait_held(k)

    def release(self) -> None:
        for k in range(self.rounds):
            self._go(k).touch()
        for thread in self.threads:
            thread.join(timeout=60)


@pytest.mark.slow  # a second JVM in another process
def test_maintain_retries_an_optimize_that_meets_another_jobs_delete(
    spark, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real conflict: OPTIMIZE starts its transaction and waits for a task slot (all held by
    a Python UDF job) to compact its files; meanwhile another process deletes a row of one of
    them. Delta refuses the compaction (a file it rewrote is gone); maintain runs OPTIMIZE
    again on the table as it is then."""
    from crossdata.spark.session import jar_conf

    ctx = Context.create(
        make_settings(
            tmp_path, "lakehouse.write_retries=2", "lakehouse.retry_backoff_seconds=0.01"
        ),
        spark=spark,
    )
    day = dt.date(2026, 3, 2)
    for batch in range(3):
        rows = [
            (f"e{batch}-{i}", dt.datetime(2026, 3, 2, 10, i), day, "web", "events", f"a{i % 3}")
            for i in range(4)
        ]
        ctx.lake.append(ctx.spark.createDataFrame(rows, EVENTS), "silver.events")
    path = ctx.lake.path("silver.events")
    flags = tmp_path / "flags"
    flags.mkdir()
    gate = _SlotGate(spark, flags)
    errors: list[BaseException] = []

    def maintain() -> None:
        try:
            with job_run(ctx, "maintain") as run:
                run_maintenance(ctx, run, ["silver.events"], vacuum=False)
        except BaseException as exc:  # handed to the test below, not lost with the thread
            errors.append(exc)

    worker = threading.Thread(target=maintain, daemon=True)
    try:
        gate.hold()
        with caplog.at_level(logging.WARNING, logger="crossdata.lakehouse.store"):
            worker.start()
            # Jobs before the compaction (the table's state) go through; the compaction, which
            # runs inside OPTIMIZE's transaction, is held.
            deadline = time.monotonic() + 240
            while not any("Optimizing" in d for d in gate.queued().values()):
                assert time.monotonic() < deadline, f"no compaction job came: {gate.queued()}"
                if gate.queued():
                    gate.pass_one()
                else:
                    time.sleep(0.1)
            other = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    _DELETE_SCRIPT,
                    path,
                    jar_conf(ctx.settings.spark)["spark.jars"],
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert other.returncode == 0, other.stderr[-3000:]
            gate.release()
            worker.join(timeout=300)
    finally:
        gate.release()  # again (harmless) when an assertion above stopped the test early
    assert not worker.is_alive() and not errors, errors

    conflicts = [r.getMessage() for r in caplog.records if "write conflict" in r.getMessage()]
    assert len(conflicts) == 1, conflicts
    assert conflicts[0].startswith("lakehouse: write conflict table=silver.events attempt=1")
    history = ctx.spark.sql(f"DESCRIBE HISTORY {ctx.lake.ident('silver.events')}")
    last = history.orderBy(F.desc("version")).select("operation", "readVersion").collect()
    # The DELETE committed first; the OPTIMIZE that landed was the retry, read after it.
    assert [r["operation"] for r in last[:2]] == ["OPTIMIZE", "DELETE"]
    assert last[0]["readVersion"] == last[1]["readVersion"] + 1
    # Every row but the deleted one, in one compacted file.
    ids = {r[0] for r in ctx.lake.read("silver.events").select("event_id").collect()}
    assert ids == {f"e{b}-{i}" for b in range(3) for i in range(4)} - {"e0-0"}
    detail = ctx.spark.sql(f"DESCRIBE DETAIL {ctx.lake.ident('silver.events')}").first()
    assert detail is not None and detail["numFiles"] == 1


def test_maintain_gives_an_older_table_its_statistics_columns(spark, tmp_path: Path) -> None:
    """A silver.events created before its statistics columns were declared (Delta's default:
    the first 32 columns) gets them from maintain before compaction, so the compacted file
    keeps statistics on those columns only, and Z-ordering by actor_id is still allowed."""
    ctx = Context.create(make_settings(tmp_path), spark=spark)
    day = dt.date(2026, 3, 2)
    rows = [
        (f"e{i}", dt.datetime(2026, 3, 2, 10, i), day, "web", "events", f"a{i}") for i in range(4)
    ]
    # one file per append
    ctx.lake.append(ctx.spark.createDataFrame(rows[:2], EVENTS).coalesce(1), "silver.events")
    ident = ctx.lake.ident("silver.events")
    ctx.spark.sql(f"ALTER TABLE {ident} UNSET TBLPROPERTIES ('delta.dataSkippingStatsColumns')")
    ctx.lake.append(ctx.spark.createDataFrame(rows[2:], EVENTS).coalesce(1), "silver.events")
    folder = ctx.lake.path("silver.events").removeprefix("file://").removeprefix("file:")

    def stats_by_commit() -> dict[bool, list[set[str]]]:
        """The columns with min/max in each added file's statistics, by the add's dataChange
        (False: files OPTIMIZE rewrote)."""
        adds = ctx.spark.read.json(f"{folder}/_delta_log/*.json").where("add IS NOT NULL")
        found: dict[bool, list[set[str]]] = {True: [], False: []}
        for r in adds.select("add.dataChange", "add.stats").collect():  # one row per file
            found[r[0]].append(set(json.loads(r[1]).get("minValues", {})))
        return found

    first, second = sorted(stats_by_commit()[True], key=len)
    assert first == {"event_ts", "actor_id"}
    assert {"event_id", "platform", "origin", "event_ts", "actor_id"} <= second

    with job_run(ctx, "maintain") as run:
        run_maintenance(ctx, run, ["silver.events"])

    props = {r["key"]: r["value"] for r in ctx.spark.sql(f"SHOW TBLPROPERTIES {ident}").collect()}
    assert props["delta.dataSkippingStatsColumns"] == "event_ts,actor_id"
    assert stats_by_commit()[False] == [{"event_ts", "actor_id"}]  # one compacted file
    assert ctx.lake.read("silver.events").count() == 4


def test_vacuum_keeps_files_as_long_as_the_configured_retention(
    spark, tmp_path: Path, caplog: pytest.LogCaptureFixture, retention_check_off
) -> None:
    """Delta 4 ignores VACUUM's RETAIN clause (unless 0) and keeps files for the table's own
    retention, 7 days by default. Files no commit took, dated by hand, show which retention
    VACUUM applied: with 24 hours a file 48 hours old goes (it stayed before the retention
    was written on the table); with 1,000 hours a file 200 hours old stays (it went)."""
    ctx = Context.create(make_settings(tmp_path), spark=spark)
    day = dt.date(2026, 3, 2)
    rows = [
        (f"e{i}", dt.datetime(2026, 3, 2, 10, i), day, "web", "events", f"a{i}") for i in (1, 2)
    ]
    ctx.lake.append(ctx.spark.createDataFrame(rows, EVENTS).coalesce(1), "silver.events")
    folder = Path(ctx.lake.path("silver.events").removeprefix("file://").removeprefix("file:"))
    data = next(p for p in folder.rglob("*.parquet") if "_delta_log" not in p.parts)
    ident = ctx.lake.ident("silver.events")

    def stray(name: str, hours_old: float) -> Path:
        """A copy of a data file that no commit lists, last modified ``hours_old`` ago."""
        copy = data.with_name(f"part-stray-{name}.snappy.parquet")
        copy.write_bytes(data.read_bytes())
        then = time.time() - hours_old * 3600
        os.utime(copy, (then, then))
        return copy

    def maintain(hours: int) -> dict[str, str]:
        settings = make_settings(
            tmp_path,
            f"collect.maintenance.vacuum_retention_hours={hours}",
            "collect.maintenance.optimize=false",
        )
        this = Context.create(settings, spark=spark)
        with job_run(this, "maintain") as run:
            run_maintenance(this, run, ["silver.events"])
        return {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {ident}").collect()}

    old, young = stray("48h", 48), stray("12h", 12)
    with caplog.at_level(logging.WARNING, logger="crossdata.collect.maintain"):
        props = maintain(24)
    assert not old.exists()
    assert young.exists()
    assert props["delta.deletedFileRetentionDuration"] == "interval 24 hours"
    assert "delta.logRetentionDuration" not in props  # 24 hours: the log's 30 days cover it
    assert "below Delta's default 168h retention table=silver.events hours=24" in caplog.text

    kept = stray("200h", 200)
    props = maintain(1000)
    assert kept.exists()
    assert young.exists()
    assert props["delta.deletedFileRetentionDuration"] == "interval 1000 hours"
    assert props["delta.logRetentionDuration"] == "interval 1000 hours"
    assert ctx.lake.read("silver.events").count() == 2  # the table never saw the copies


def _valid_change(spark, ident: str) -> list[str]:
    """The table's stored valid_change conditions, spaced alike."""
    return [
        _condition_text(r["value"])
        for r in spark.sql(f"SHOW TBLPROPERTIES {ident}").collect()
        if r["key"] == "delta.constraints.valid_change"
    ]


@pytest.mark.parametrize(
    ("old", "change"),
    [
        ("change IN ('rewritten', 'gone', 'misnamed', 'moved')", "moved"),
        # A NULL condition is refused by Delta as a false one, though NOT (...) skips it.
        ("change IS NULL OR change IN ('rewritten', 'gone', 'misnamed')", None),
    ],
    ids=["false", "null"],
)
def test_a_constraint_existing_rows_break_is_refused_and_the_old_one_kept(
    spark, tmp_path: Path, old: str, change: str | None
):
    # The table's old condition allows a row the declared one refuses: replacing the
    # condition would fail after dropping the old one, leaving the table with neither.
    ctx = Context.create(make_settings(tmp_path, "collect.maintenance.optimize=false"), spark=spark)
    name = "ops.ingest_file_changes"
    row = [("r1", None, "events", "file:/l/e.json", change, None, 5, None, None, None, None)]
    ctx.lake.append(ctx.spark.createDataFrame(row, FILE_CHANGES_SCHEMA).where("false"), name)
    ident = ctx.lake.ident(name)
    ctx.spark.sql(f"ALTER TABLE {ident} DROP CONSTRAINT valid_change")
    ctx.spark.sql(f"ALTER TABLE {ident} ADD CONSTRAINT valid_change CHECK ({old})")
    ctx.lake.append(ctx.spark.createDataFrame(row, FILE_CHANGES_SCHEMA), name)

    with pytest.raises(CrossdataError, match=r"1 rows break the constraint valid_change"):
        ctx.lake.sync_constraints(name)
    assert _valid_change(spark, ident) == [_condition_text(old)]  # Delta's own spacing


def test_a_row_written_between_the_drop_and_the_add_puts_the_old_constraint_back(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    ctx = Context.create(make_settings(tmp_path, "collect.maintenance.optimize=false"), spark=spark)
    name = "ops.ingest_file_changes"

    def row(change: str):
        values = [("r1", None, "events", "file:/l/e.json", change, None, 5) + (None,) * 4]
        return ctx.spark.createDataFrame(values, FILE_CHANGES_SCHEMA)

    ctx.lake.append(row("gone"), name)
    ident = ctx.lake.ident(name)
    ctx.spark.sql(f"ALTER TABLE {ident} DROP CONSTRAINT valid_change")
    old = "change IN ('rewritten', 'gone', 'misnamed', 'moved')"
    ctx.spark.sql(f"ALTER TABLE {ident} ADD CONSTRAINT valid_change CHECK ({old})")
    retrying = ctx.lake._retrying

    def another_writer_first(table_name, action):
        statement = getattr(action, "args", ("",))[0]
        if "ADD CONSTRAINT valid_change" in statement and "'moved'" not in statement:
            ctx.lake.append(row("moved"), name)  # the old condition allows it, the new one not
        return retrying(table_name, action)

    monkeypatch.setattr(ctx.lake, "_retrying", another_writer_first)
    with pytest.raises(CrossdataError, match=r"could not be replaced.*keeps its current"):
        ctx.lake.sync_constraints(name)
    assert _valid_change(spark, ident) == [_condition_text(old)]
    with pytest.raises(Exception, match="valid_change"):  # the table refuses again what it did
        ctx.lake.append(row("bogus"), name)


def test_a_retention_under_deltas_floor_is_refused_while_deltas_guard_is_on(
    spark, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Written on the table, such a retention lets a plain VACUUM delete the files another job
    # has written and not committed yet, which Delta's guard exists to prevent.
    assert spark.conf.get(RETENTION_CHECK, "true") == "true"
    ctx = Context.create(
        make_settings(tmp_path, "collect.maintenance.vacuum_retention_hours=24"), spark=spark
    )
    day = dt.date(2026, 3, 2)
    for batch in range(2):
        rows = [(f"e{batch}", dt.datetime(2026, 3, 2, 10), day, "web", "events", "a1")]
        ctx.lake.append(ctx.spark.createDataFrame(rows, EVENTS), "silver.events")
    ident = ctx.lake.ident("silver.events")
    version = ctx.lake.version("silver.events")

    with job_run(ctx, "maintain") as run, pytest.raises(CrossdataError, match="168-hour floor"):
        run_maintenance(ctx, run, ["silver.events"])
    assert ctx.lake.version("silver.events") == version  # no property, no OPTIMIZE, no VACUUM
    props = {r["key"] for r in spark.sql(f"SHOW TBLPROPERTIES {ident}").collect()}
    assert "delta.deletedFileRetentionDuration" not in props

    root = f"lakehouse.root={tmp_path / 'lakehouse'}"
    code = main(["--set", root, "--set", "collect.maintenance.vacuum_retention_hours=24",
                 "maintain", "--table", "silver.events"])  # fmt: skip
    assert code == 1
    assert "--no-vacuum" in capsys.readouterr().err
    assert ctx.lake.version("silver.events") == version
    compact_only = ["--set", root, "--set", "collect.maintenance.vacuum_retention_hours=24",
                    "maintain", "--table", "silver.events", "--no-vacuum"]  # fmt: skip
    assert main(compact_only) == 0  # compaction alone deletes nothing


def test_a_z_order_is_given_only_the_partitions_written_since_the_last_one(spark, tmp_path: Path):
    # Delta's ZORDER rewrites every file it is pointed at: a maintain run after a day of
    # ingestion must not rewrite the whole table, nor anything when nothing was written.
    ctx = Context.create(make_settings(tmp_path), spark=spark)
    days = [dt.date(2026, 3, 2), dt.date(2026, 3, 3)]

    def write(day: dt.date, batch: int) -> None:
        at = dt.datetime(day.year, day.month, day.day, 10)
        rows = [(f"e{day}-{batch}-{i}", at, day, "web", "events", f"a{i % 3}") for i in range(4)]
        ctx.lake.append(ctx.spark.createDataFrame(rows, EVENTS), "silver.events")

    def maintain() -> str:
        with job_run(ctx, "maintain") as run:
            report = run_maintenance(ctx, run, ["silver.events", "silver.events"], vacuum=False)
        rows = report.splitlines()[1:]
        assert len(rows) == 1  # a table named twice is maintained once
        return rows[0]

    def files_of(day: dt.date) -> set[str]:
        found = ctx.lake.read("silver.events").where(F.col("event_date") == day)
        return {r[0] for r in found.select(F.input_file_name()).distinct().collect()}

    def zorders() -> list:
        history = ctx.spark.sql(f"DESCRIBE HISTORY {ctx.lake.ident('silver.events')}")
        found = history.where(F.col("operation") == "OPTIMIZE").orderBy("version")
        return [r["operationParameters"]["predicate"] for r in found.collect()]

    for batch in range(2):
        for day in days:
            write(day, batch)
    assert "Z-ordered whole" in maintain()  # never Z-ordered: all of it
    assert len(zorders()) == 1
    assert "Z-order up to date" in maintain()  # nothing written since: no rewrite
    assert len(zorders()) == 1

    first_day = files_of(days[0])
    write(days[1], 2)
    write(days[1], 3)
    assert "Z-ordered 1 partitions" in maintain()
    predicates = zorders()
    assert len(predicates) == 2 and "2026-03-03" in predicates[-1]
    assert "2026-03-02" not in predicates[-1]
    assert files_of(days[0]) == first_day  # the other day's files were left as they were
    assert len(files_of(days[1])) == 1  # the written day is one Z-ordered file again
    assert ctx.lake.read("silver.events").count() == 24
