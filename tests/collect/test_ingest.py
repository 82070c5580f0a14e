"""Ingestion end to end on small landing folders: exactly once, late data, drift, copies."""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from crossdata.collect import bronze
from crossdata.collect.bronze import BatchInfo, BronzeBatchWriter
from crossdata.collect.file_changes import BINARY_FILE_SCHEMA, audit_landing, empty_files
from crossdata.collect.ingest import IngestSummary, run_ingest, start_bronze
from crossdata.collect.ledgers import FILE_CHANGES, RECONCILIATION
from crossdata.collect.silver import check_expectations
from crossdata.config.schema import Expectation
from crossdata.contracts import SOURCES
from crossdata.errors import (
    ConfigError,
    CrossdataError,
    DataQualityError,
    InputContractError,
    ReconciliationError,
)
from crossdata.ops import Context, job_run

from ..conftest import make_settings
from ..helpers import deliver, event


def _ingest(ctx: Context, sources: tuple[str, ...] = ("events",)) -> IngestSummary:
    with job_run(ctx, "ingest") as run:
        return run_ingest(ctx, run, list(sources))


def _silver_ids(ctx: Context) -> list[str]:
    return sorted(r[0] for r in ctx.lake.read("silver.events").select("event_id").collect())


@dataclass
class Scenario:
    """Three ingest runs over deliveries that hold every case these tests look at."""

    ctx: Context
    landing: Path
    first: IngestSummary
    second: IngestSummary
    third: IngestSummary
    sessions_after_first: int
    bronze_version_before_third: int | None
    bronze_version_after_third: int | None


@pytest.fixture(scope="module")
def scenario(spark, tmp_path_factory) -> Scenario:
    # Spaces in every folder (as in "/Users/Jane Doe/"): lakehouse, checkpoints, landing.
    tmp = tmp_path_factory.mktemp("ingest") / "a lake"
    landing = tmp / "land ing"
    # Bots are removed from silver here (flagged by default): they must still be counted.
    settings = make_settings(tmp, f"collect.landing={landing}", "collect.bots.action=remove")
    ctx = Context.create(settings, spark=spark)
    deliver(
        landing,
        "2026-03-05",
        "crawler.jsonl",
        [event("b1", "2026-03-05T10:05:00Z", cookie="ck_bot", user_agent="Googlebot/2.1")],
    )
    original = deliver(
        landing,
        "2026-03-05",
        "a.jsonl",
        [
            event("e1", "2026-03-05T10:00:00Z"),
            event("e3", "2026-03-05T10:50:00Z", email=" Ann@Shop.Example "),
            # an address without a dotted domain: nulled in silver, counted as unusable
            event("e4", "2026-03-05T11:00:00Z", cookie="ck_b", network="wifi", email="bob@shop"),
        ],
    )
    first = _ingest(ctx)
    sessions = ctx.lake.read("silver.events").where("actor_id = 'ck_a'")
    sessions_after_first = sessions.select("session_id").distinct().count()
    # Day 2: the whole first file again under another name, a file repeating e1, and an app
    # buffer delivering two days late the event that happened between e1 and e3.
    copy = landing / "events" / "2026-03-06" / "a-redelivered.jsonl"
    copy.parent.mkdir(parents=True)
    shutil.copy(original, copy)
    deliver(
        landing,
        "2026-03-06",
        "b.jsonl",
        [
            event("e1", "2026-03-05T10:00:00Z"),
            event("e5", "2026-03-06T09:00:00Z", cookie="ck_c"),
        ],
    )
    deliver(landing, "2026-03-07", "late.jsonl", [event("e2", "2026-03-05T10:25:00Z")])
    second = _ingest(ctx)
    before = ctx.lake.version("bronze.events")
    # Before the third run, two files already read change in place: b.jsonl gains a record
    # (a partner's correction, or the end of an upload the run read half of), and the
    # crawler's file is only touched. Neither is new, so neither is read again.
    later = time.time() + 60
    with (landing / "events" / "2026-03-06" / "b.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(event("e6", "2026-03-06T09:30:00Z", cookie="ck_c") + "\n")
    for name in ("2026-03-06/b.jsonl", "2026-03-05/crawler.jsonl"):
        os.utime(landing / "events" / name, (later, later))
    third = _ingest(ctx)
    return Scenario(
        ctx,
        landing,
        first,
        second,
        third,
        sessions_after_first,
        before,
        ctx.lake.version("bronze.events"),
    )


def test_rerun_without_new_files_is_a_no_op(scenario):
    assert (scenario.third.bronze, scenario.third.silver) == ({}, {})
    assert scenario.bronze_version_after_third == scenario.bronze_version_before_third


def test_a_file_changed_after_it_was_read_is_recorded_once_not_lost_in_silence(scenario):
    ctx, landing = scenario.ctx, scenario.landing
    assert scenario.third.file_changes == {("events", "rewritten"): 2}
    assert f"files not loaded (see {FILE_CHANGES}): events rewritten 2" in (
        scenario.third.describe()
    )
    found = {r["file"].rsplit("/", 1)[-1]: r for r in ctx.lake.read(FILE_CHANGES).collect()}
    assert set(found) == {"b.jsonl", "crawler.jsonl"}
    assert {(r["change"], r["batch_id"]) for r in found.values()} == {("rewritten", None)}
    grown, touched = found["b.jsonl"], found["crawler.jsonl"]
    assert grown["bytes"] > grown["read_bytes"]
    assert touched["bytes"] == touched["read_bytes"]
    assert touched["modified_at"] > touched["read_modified_at"]
    runs = ctx.lake.read("ops.job_runs").orderBy("started_at").collect()
    assert {grown["run_id"], touched["run_id"]} == {runs[-1]["run_id"]}  # the third run
    assert grown["read_run_id"] == runs[-2]["run_id"]  # read by the second
    # The new record was not loaded: Spark's file source never reads a known path again.
    assert ctx.lake.read("bronze.events").where("event_id = 'e6'").count() == 0

    events = [SOURCES["events"]]
    # Each state is recorded once: asked again, nothing new.
    assert audit_landing(ctx.lake, "run-again", events, str(landing), "warn") == {}
    # Changed once more, with collect.file_changes=fail: recorded, then the run fails.
    with (landing / "events" / "2026-03-06" / "b.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(event("e7", "2026-03-06T09:40:00Z", cookie="ck_c") + "\n")
    with pytest.raises(InputContractError, match=r"not loaded by the run \(events rewritten 1\)"):
        audit_landing(ctx.lake, "run-fail", events, str(landing), "fail")
    again = ctx.lake.read(FILE_CHANGES).where("run_id = 'run-fail'").collect()
    assert [(r["file"].rsplit("/", 1)[-1], r["read_bytes"]) for r in again] == [
        ("b.jsonl", grown["read_bytes"])
    ]
    assert audit_landing(ctx.lake, "run-ignore", events, str(landing), "ignore") == {}


def test_an_empty_delivery_is_a_file_of_no_records_not_a_file_gone(spark, tmp_path):
    # Spark's scans skip files of 0 bytes, so an empty export gave its batch no row: it was
    # recorded as gone, and collect.file_changes=fail failed every run that met one.
    landing = tmp_path / "landing"
    ctx = Context.create(make_settings(tmp_path, f"collect.landing={landing}"), spark=spark)
    events = [SOURCES["events"]]
    a = deliver(landing, "2026-03-05", "a.jsonl", [event("e1", "2026-03-05T10:00:00Z")])
    (landing / "events" / "2026-03-05" / "empty.jsonl").write_bytes(b"")
    only_empty = landing / "events" / "2026-03-06" / "none.jsonl"

    def run_bronze() -> dict[tuple[str, str], int]:
        with job_run(ctx, "ingest") as run:
            start_bronze(ctx, run, events[0], str(landing)).wait()
            return audit_landing(ctx.lake, run.run_id, events, str(landing), "fail")

    assert run_bronze() == {}
    only_empty.parent.mkdir()
    only_empty.write_bytes(b"")  # a batch of nothing but an empty file
    assert run_bronze() == {}
    columns = ("batch_id", "read", "loaded", "bytes", "status")
    ledger = {
        r["file"].rsplit("/", 1)[-1]: tuple(r[c] for c in columns)
        for r in ctx.lake.read(RECONCILIATION).collect()
    }
    assert ledger == {
        "a.jsonl": (0, 1, 1, a.stat().st_size, "ok"),
        "empty.jsonl": (0, 0, 0, 0, "ok"),
        "none.jsonl": (1, 0, 0, 0, "ok"),
    }
    assert not ctx.lake.exists(FILE_CHANGES)
    # Written again with a record, the empty file is a file changed after it was read.
    deliver(landing, "2026-03-06", "none.jsonl", [event("e2", "2026-03-06T10:00:00Z")])
    with pytest.raises(InputContractError, match=r"\(events rewritten 1\)"):
        run_bronze()
    assert [r["event_id"] for r in ctx.lake.read("bronze.events").collect()] == ["e1"]


def test_files_not_read_are_told_empty_or_gone_on_any_file_system(spark, tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "full.jsonl").write_bytes(b"{}\n")
    names = ("empty.jsonl", "full.jsonl", "gone.jsonl", "odd[1].jsonl")
    local = [f"file:{tmp_path / n}" for n in names]
    assert empty_files(spark, local) == {local[0]}
    # Without the file: scheme, as on object stores, a file is listed: listed but not read
    # by its batch means empty; one that is not there, or cannot be listed alone, is gone.
    listed = [str(tmp_path / n) for n in ("empty.jsonl", "gone.jsonl", "odd[1].jsonl")]
    (tmp_path / "odd[1].jsonl").write_bytes(b"")
    assert empty_files(spark, listed) == {listed[0]}


def test_file_times_in_the_hour_the_clock_turns_back_are_kept_exactly(spark, tmp_path):
    # A driver in Paris saw 02:00 to 03:00 twice on 2026-10-25. A Python datetime of the first
    # pass (00:xx UTC) made back into a timestamp lands in the second, an hour later: the
    # ledger would hold a wrong time, and a change would be reported again on every run.
    landing = tmp_path / "landing"
    ctx = Context.create(make_settings(tmp_path, f"collect.landing={landing}"), spark=spark)
    events = [SOURCES["events"]]
    path = deliver(landing, "2026-10-25", "a.jsonl", [event("e1", "2026-10-25T00:10:00Z")])

    def first_pass(minute: int) -> float:
        stamp = dt.datetime(2026, 10, 25, 0, minute, tzinfo=dt.UTC).timestamp()
        os.utime(path, (stamp, stamp))
        return stamp

    def micros(table: str, column: str) -> list[int]:
        return [r[0] for r in ctx.lake.read(table).select(F.unix_micros(column)).collect()]

    read_at = first_pass(30)
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Paris"
    time.tzset()
    try:
        with job_run(ctx, "ingest") as run:
            start_bronze(ctx, run, events[0], str(landing)).wait()
        with path.open("a", encoding="utf-8") as fh:
            fh.write(event("e2", "2026-10-25T00:40:00Z") + "\n")
        changed_at = first_pass(45)
        found = audit_landing(ctx.lake, "run-1", events, str(landing), "warn")
        again = audit_landing(ctx.lake, "run-2", events, str(landing), "warn")
    finally:
        if before is None:
            os.environ.pop("TZ")
        else:
            os.environ["TZ"] = before
        time.tzset()
    assert micros("ops.ingest_reconciliation", "modified_at") == [int(read_at * 1e6)]
    assert (found, again) == ({("events", "rewritten"): 1}, {})
    assert micros(FILE_CHANGES, "modified_at") == [int(changed_at * 1e6)]
    assert micros(FILE_CHANGES, "read_modified_at") == [int(read_at * 1e6)]


def test_a_name_hadoop_cannot_open_stops_its_batch_naming_it_until_renamed(spark, tmp_path):
    # An export named with its time: the local file system's checksum file of a name with a
    # ':' is no valid path. The error names the file and what to do; after that, the batch
    # loads its other files and the new name, and records the old one as gone.
    landing = tmp_path / "landing"
    ctx = Context.create(make_settings(tmp_path, f"collect.landing={landing}"), spark=spark)
    events = SOURCES["events"]
    odd = deliver(
        landing, "2026-03-05", "export_10:00:00.jsonl", [event("e1", "2026-03-05T10:00:00Z")]
    )
    deliver(landing, "2026-03-05", "b.jsonl", [event("e2", "2026-03-05T10:00:00Z")])
    refused = r"named 'export_10:00:00.jsonl'.*rename it"
    with pytest.raises(InputContractError, match=refused), job_run(ctx, "ingest") as run:
        start_bronze(ctx, run, events, str(landing)).wait()
    assert not ctx.lake.exists("bronze.events")
    odd.rename(odd.with_name("export_10-00-00.jsonl"))
    with job_run(ctx, "ingest") as run:
        start_bronze(ctx, run, events, str(landing)).wait()
    assert sorted(r[0] for r in ctx.lake.read("bronze.events").select("event_id").collect()) == [
        "e1",
        "e2",
    ]
    gone = ctx.lake.read(FILE_CHANGES).collect()
    assert [(r["file"].rsplit("/", 1)[-1], r["change"]) for r in gone] == [(odd.name, "gone")]


def test_a_file_over_2_gib_is_refused_by_name():
    exc = RuntimeError(
        "org.apache.spark.SparkException: The length of file:/land/events/2026-03-05/big.jsonl "
        "is 2147483748, which exceeds the max length allowed: 2147483647."
    )
    refused = bronze.unhashable_file(exc, "events")
    assert refused is not None
    assert "/land/events/2026-03-05/big.jsonl of source events is 2,147,483,748 bytes" in str(
        refused
    )
    assert bronze.unhashable_file(RuntimeError("something else"), "events") is None


def test_a_file_gone_before_its_batch_read_it_is_recorded(spark, tmp_path, monkeypatch):
    # A job lists a.jsonl and b.jsonl for batch 0 and dies before writing anything; b.jsonl
    # is then removed from the landing zone. The next run replays batch 0 as listed, and
    # Spark skips the missing file with a log line only.
    landing = tmp_path / "landing"
    ctx = Context.create(make_settings(tmp_path, f"collect.landing={landing}"), spark=spark)
    events = SOURCES["events"]
    deliver(landing, "2026-03-05", "a.jsonl", [event("e1", "2026-03-05T10:00:00Z")])
    gone = deliver(landing, "2026-03-05", "b c.jsonl", [event("e2", "2026-03-05T10:00:00Z")])
    listed_at = gone.stat().st_mtime_ns // 1000

    def killed(self, batch, info):
        raise RuntimeError("killed before any write")

    with monkeypatch.context() as patch:
        patch.setattr(bronze.BronzeBatchWriter, "process", killed)
        with pytest.raises(RuntimeError, match="killed"), job_run(ctx, "ingest") as run:
            start_bronze(ctx, run, events, str(landing)).wait()
    gone.unlink()
    with job_run(ctx, "ingest") as run:
        start_bronze(ctx, run, events, str(landing)).wait()
        # collect.file_changes=ignore skips the landing listing, not what the batches found
        found = audit_landing(ctx.lake, run.run_id, [events], str(landing), "ignore")
    assert [r["event_id"] for r in ctx.lake.read("bronze.events").collect()] == ["e1"]
    assert found == {("events", "gone"): 1}
    rows = ctx.lake.read(FILE_CHANGES).collect()
    assert [(r["file"].rsplit("/", 1)[-1], r["change"], r["batch_id"]) for r in rows] == [
        ("b c.jsonl", "gone", 0)
    ]
    stamp = rows[0]["modified_at"]
    assert (
        stamp is not None
        and abs(
            ctx.lake.read(FILE_CHANGES).select(F.unix_micros("modified_at")).first()[0] - listed_at
        )
        < 1000
    )  # the file source's log keeps milliseconds
    assert [r["file"].rsplit("/", 1)[-1] for r in ctx.lake.read(RECONCILIATION).collect()] == [
        "a.jsonl"
    ]
    # A batch killed after its writes and before its checkpoint commit is replayed; a file it
    # read the first time, removed since, is not reported: its records are in.
    read_then_removed = deliver(
        landing, "2026-03-06", "d.jsonl", [event("e4", "2026-03-06T10:00:00Z")]
    )
    with job_run(ctx, "ingest") as run:
        start_bronze(ctx, run, events, str(landing)).wait()
    commits = tmp_path / "lakehouse" / "_checkpoints" / "bronze" / "events" / "commits"
    for name in ("1", ".1.crc"):
        (commits / name).unlink()
    read_then_removed.unlink()
    with job_run(ctx, "ingest") as run:
        start_bronze(ctx, run, events, str(landing)).wait()
    assert sorted(r["event_id"] for r in ctx.lake.read("bronze.events").collect()) == ["e1", "e4"]
    assert ctx.lake.read(FILE_CHANGES).count() == 1


def test_a_misnamed_file_is_recorded_once_and_hidden_names_are_not(spark, tmp_path):
    # The stream reads *.jsonl, plain or compressed, only; events.json would be left in silence.
    landing = tmp_path / "landing"
    # A lakehouse kept inside the landing root is not a landing folder: the second listing
    # below finds its tables there, and records none of their files.
    settings = make_settings(
        tmp_path, f"collect.landing={landing}", f"lakehouse.root={landing / 'lake'}"
    )
    ctx = Context.create(settings, spark=spark)
    events = [SOURCES["events"]]
    line = [event("e1", "2026-03-05T10:00:00Z")]
    deliver(landing, "2026-03-05", "a.jsonl", line)
    misnamed = deliver(landing, "2026-03-05", "events.json", line)
    deliver(landing, "2026-03-05", "b.JSONL", line)  # names are matched as written
    deliver(landing, "2026-03-05", ".c.jsonl.uploading", line)  # an upload in progress
    deliver(landing, "2026-03-05", "_SUCCESS", [])
    deliver(landing, "2026-03-05", "d.jsonl", line, source="evnets")  # a folder mistyped
    deliver(landing, "2026-03-05", "e.jsonl", line, source="_archive")  # hidden as well
    (landing / "README.txt").write_text("about this landing zone\n")  # beside the folders
    # Before any run has read a file: nothing in the ledger yet, misnamed files all the same.
    found = audit_landing(ctx.lake, "run-1", events, str(landing), "warn")
    assert found == {("events", "misnamed"): 2, ("evnets", "misnamed"): 1}
    rows = ctx.lake.read(FILE_CHANGES).collect()
    assert sorted((r["source"], r["file"].rsplit("/", 1)[-1], r["change"]) for r in rows) == [
        ("events", "b.JSONL", "misnamed"),
        ("events", "events.json", "misnamed"),
        ("evnets", "d.jsonl", "misnamed"),
    ]
    assert {r["bytes"] for r in rows} == {misnamed.stat().st_size}
    assert {r["read_run_id"] for r in rows} == {None}
    assert audit_landing(ctx.lake, "run-2", events, str(landing), "warn") == {}  # once per state
    deliver(landing, "2026-03-06", "export.zip", ["PK"])
    with pytest.raises(InputContractError, match=r"not loaded by the run \(events misnamed 1\)"):
        audit_landing(ctx.lake, "run-3", events, str(landing), "fail")
    # The stream itself reads the file the listing calls readable, and only that one.
    with job_run(ctx, "ingest") as run:
        start_bronze(ctx, run, events[0], str(landing)).wait()
    assert [r["file"].rsplit("/", 1)[-1] for r in ctx.lake.read(RECONCILIATION).collect()] == [
        "a.jsonl"
    ]


def test_compressed_files_are_read_line_by_line_as_plain_ones(spark, tmp_path):
    landing = tmp_path / "landing"
    ctx = Context.create(make_settings(tmp_path, f"collect.landing={landing}"), spark=spark)
    lines = [
        event("e1", "2026-03-05T10:00:00Z"),
        "",
        '{"event_id": "e2", "event_type": ',  # cut short
        event("e3", "2026-03-05T10:05:00Z"),
    ]
    plain = deliver(landing, "2026-03-05", "a.jsonl", lines)
    folder = plain.parent
    text = b"\xef\xbb\xbf" + plain.read_bytes()
    # two gzip members, as `cat a.gz b.gz` or a log appended after rotation leaves them
    cut = text.index(b"\n", len(text) // 2) + 1
    (folder / "b.jsonl.gz").write_bytes(gzip.compress(text[:cut]) + gzip.compress(text[cut:]))
    shutil.copy(folder / "b.jsonl.gz", folder / "b-again.jsonl.gz")  # the same bytes again
    (folder / "c.jsonl.bz2").write_bytes(
        bz2.compress(f"\n{event('e9', '2026-03-05T10:09:00Z')}\n".encode())
    )
    plain.unlink()
    with job_run(ctx, "ingest") as run:
        start_bronze(ctx, run, SOURCES["events"], str(landing)).wait()
    loaded = ctx.lake.read("bronze.events").collect()
    assert sorted(
        (r["_source_file"].rsplit("/", 1)[-1], r["event_id"], r["_line"]) for r in loaded
    ) == [("b-again.jsonl.gz", "e1", 1), ("b-again.jsonl.gz", "e3", 4), ("c.jsonl.bz2", "e9", 2)]
    bad = ctx.lake.read("bronze.quarantine").collect()
    assert [(r["line"], r["reason"], r["raw"]) for r in bad] == [(3, "malformed_record", lines[2])]
    ledger = {
        r["file"].rsplit("/", 1)[-1]: (r["read"], r["loaded"], r["quarantined"], r["duplicates"])
        for r in ctx.lake.read(RECONCILIATION).collect()
    }
    assert ledger == {
        "b-again.jsonl.gz": (3, 2, 1, 0),
        "b.jsonl.gz": (3, 0, 0, 3),
        "c.jsonl.bz2": (1, 1, 0, 0),
    }
    # Copies that come in a later run have their originals' counts too (not their compressed
    # bytes split at newlines).
    later = landing / "events" / "2026-03-06"
    later.mkdir()
    shutil.copy(folder / "b.jsonl.gz", later / "b-later.jsonl.gz")
    shutil.copy(folder / "c.jsonl.bz2", later / "c-later.jsonl.bz2")
    with job_run(ctx, "ingest") as run:
        start_bronze(ctx, run, SOURCES["events"], str(landing)).wait()
    copies = {
        r["file"].rsplit("/", 1)[-1]: (r["read"], r["loaded"], r["duplicates"], r["duplicate_of"])
        for r in ctx.lake.read(RECONCILIATION).where(F.col("file").contains("later")).collect()
    }
    assert {name: row[:3] for name, row in copies.items()} == {
        "b-later.jsonl.gz": (3, 0, 3),
        "c-later.jsonl.bz2": (1, 0, 1),
    }
    assert copies["c-later.jsonl.bz2"][3].endswith("/2026-03-05/c.jsonl.bz2")
    assert ctx.lake.read("bronze.events").count() == 3


@pytest.mark.parametrize("suffix", [".gz", ".bz2"])
def test_a_damaged_compressed_file_stops_its_batch_with_its_name(spark, tmp_path, suffix):
    landing = tmp_path / "landing"
    ctx = Context.create(make_settings(tmp_path, f"collect.landing={landing}"), spark=spark)
    events = SOURCES["events"]
    deliver(landing, "2026-03-05", "a.jsonl", [event("e1", "2026-03-05T10:00:00Z")])
    compress = {".gz": gzip.compress, ".bz2": bz2.compress}[suffix]
    whole = compress(
        "".join(event(f"e{i}", "2026-03-05T10:00:00Z") + "\n" for i in range(2, 400)).encode()
    )
    damaged = landing / "events" / "2026-03-05" / f"b.jsonl{suffix}"
    damaged.write_bytes(whole[: len(whole) // 2])  # an upload cut short
    cut_short = re.escape(f"b.jsonl{suffix} could not be read to its end")
    with pytest.raises(InputContractError, match=cut_short), job_run(ctx, "ingest") as run:
        start_bronze(ctx, run, events, str(landing)).wait()
    assert not ctx.lake.exists("bronze.events")  # nothing of the batch was written
    damaged.unlink()  # as the error says: moved out of the landing folder, then run again
    with job_run(ctx, "ingest") as run:
        start_bronze(ctx, run, events, str(landing)).wait()
    assert [r["event_id"] for r in ctx.lake.read("bronze.events").collect()] == ["e1"]
    gone = ctx.lake.read(FILE_CHANGES).collect()
    assert [(r["file"].rsplit("/", 1)[-1], r["change"]) for r in gone] == [(damaged.name, "gone")]


def test_a_compressed_file_named_with_a_glob_character_is_refused_by_name(spark):
    files = spark.createDataFrame([], BINARY_FILE_SCHEMA)
    with pytest.raises(InputContractError, match=r"a\[1\]\.jsonl\.gz is compressed"):
        bronze.batch_lines(spark, files, ["file:/landing/events/2026-03-05/a[1].jsonl.gz"])


def test_copy_of_a_file_is_counted_as_duplicate_and_not_loaded(scenario):
    bronze = scenario.second.bronze["events"]
    assert (bronze.files, bronze.read, bronze.duplicates, bronze.loaded) == (3, 6, 3, 3)
    recon = scenario.ctx.lake.read("ops.ingest_reconciliation")
    ledger = {
        r["file"].rsplit("/", 1)[-1]: (r["duplicate_of"], r["duplicates"], r["sha256"])
        for r in recon.collect()
    }
    original, duplicates, sha = ledger["a-redelivered.jsonl"]
    assert original.endswith("2026-03-05/a.jsonl") and duplicates == 3
    assert sha == ledger["a.jsonl"][2] and ledger["a.jsonl"][:2] == (None, 0)
    assert recon.where("status <> 'ok'").count() == 0


def test_event_sent_again_lands_in_silver_once(scenario):
    silver = scenario.second.silver["events"]
    assert (silver.rows_in, silver.inserted, silver.duplicates) == (3, 2, 1)
    assert _silver_ids(scenario.ctx) == ["e1", "e2", "e3", "e4", "e5"]
    # bronze keeps what arrived: six events and the crawler's hit
    assert scenario.ctx.lake.read("bronze.events").count() == 7


def test_bots_removed_by_setting_are_counted_not_lost(scenario):
    lake = scenario.ctx.lake
    silver = scenario.first.silver["events"]
    assert (silver.rows_in, silver.inserted, silver.removed, silver.duplicates) == (4, 3, 1, 0)
    assert "b1" not in _silver_ids(scenario.ctx)
    assert lake.read("bronze.events").where("event_id = 'b1'").count() == 1
    run = lake.read("ops.silver_batches").where(F.col("removed") > 0).collect()
    assert [(r["source"], r["rows_in"], r["removed"]) for r in run] == [("events", 4, 1)]
    quality = {
        r["rule"]: (r["passed"], r["failed"], r["action"])
        for r in lake.read("ops.data_quality").where(F.col("run_id") == run[0]["run_id"]).collect()
    }
    assert quality["events:bots_removed"] == (3, 1, "remove")
    assert quality["events:is_bot"] == (3, 1, "count")
    assert quality["events:placeholder_fields"] == (4, 0, "count")
    assert quality["events:unusable_fields"] == (3, 1, "count")  # e4's email
    assert "removed by rule" in scenario.first.describe()


def test_an_unusable_email_is_nulled_in_silver_and_kept_in_bronze(scenario):
    lake = scenario.ctx.lake
    silver = {r["event_id"]: r["email"] for r in lake.read("silver.events").collect()}
    assert silver["e3"] == "ann@shop.example" and silver["e4"] is None
    assert "_unusable_fields" not in lake.read("silver.events").columns
    bronze = {r["event_id"]: r["email"] for r in lake.read("bronze.events").collect()}
    assert bronze["e4"] == "bob@shop"


def test_late_event_joins_the_session_it_belongs_to(scenario):
    lake = scenario.ctx.lake
    rows = lake.read("silver.events").where("actor_id = 'ck_a'").orderBy("event_ts").collect()
    assert scenario.sessions_after_first == 2  # 50 minutes apart: two visits
    assert len({r["session_id"] for r in rows}) == 1  # e2 at 10:25 bridges them
    assert [r["session_seq"] for r in rows] == [1, 2, 3]
    sessions = lake.read("silver.sessions").where("actor_id = 'ck_a'").collect()
    assert [(s["n_events"], str(s["session_date"])) for s in sessions] == [(3, "2026-03-05")]


def test_new_field_is_rescued_by_default(scenario):
    lake = scenario.ctx.lake
    rescued = {r["event_id"]: r["_rescued"] for r in lake.read("bronze.events").collect()}
    assert rescued["e4"] == {"network": "wifi"} and rescued["e3"] == {}
    attrs = {r["event_id"]: r["attributes"] for r in lake.read("silver.events").collect()}
    assert attrs["e4"] == {"network": "wifi"}


def test_reconciliation_gap_fails_loudly_and_is_recorded(scenario):
    ctx = scenario.ctx
    uri = next(
        r["file"]
        for r in ctx.lake.read("ops.ingest_reconciliation").collect()
        if r["file"].endswith("b.jsonl")
    )
    source = SOURCES["events"]
    writer = BronzeBatchWriter(ctx.lake.location, source, ctx.settings.collect, "run-x", "-")
    writer.bind(ctx.spark, app_id="app-x")
    info = BatchInfo(source, "run-x", 7, "app-x", dt.datetime.now(dt.UTC))
    # The file had 2 records; claim 3 were read: the tables hold only 2, so it cannot balance.
    with pytest.raises(ReconciliationError, match="do not reconcile"):
        writer._reconcile(ctx.spark, [(uri, "sha", 10, None)], {uri: 3}, {}, info)
    bad = ctx.lake.read("ops.ingest_reconciliation").where("status = 'mismatch'").collect()
    assert [(r["read"], r["loaded"], r["quarantined"]) for r in bad] == [(3, 2, 0)]


def test_new_field_becomes_a_column_with_drift_add(spark, tmp_path):
    # Two files, one bronze batch each (a byte budget smaller than a file): the field
    # appears in the second, after the first made the table without it.
    landing = tmp_path / "landing"
    ctx = Context.create(
        make_settings(
            tmp_path,
            f"collect.landing={landing}",
            "collect.schema_drift=add",
            "collect.max_bytes_per_trigger=100",
        ),
        spark=spark,
    )
    first = deliver(landing, "2026-03-05", "a.jsonl", [event("e1", "2026-03-05T10:00:00Z")])
    os.utime(first, (first.stat().st_mtime - 60,) * 2)  # the stream takes older files first
    second = deliver(
        landing,
        "2026-03-06",
        "b.jsonl",
        [
            event("e2", "2026-03-06T10:00:00Z", network="wifi"),
            # a contract field's name in another case, two new fields differing only by it:
            # Spark and Delta take them for one column, so all but one stay rescued
            event("e3", "2026-03-06T10:01:00Z", Platform="iOS", carrier="x", Carrier="y"),
        ],
    )
    os.utime(second, (first.stat().st_mtime + 30,) * 2)
    # a later batch names a column an earlier one added, in another case
    deliver(landing, "2026-03-07", "c.jsonl", [event("e4", "2026-03-07T10:00:00Z", NETWORK="5g")])
    _ingest(ctx)
    bronze = ctx.lake.read("bronze.events").select(  # names resolved whatever their case
        "event_id", "network", "carrier", "_rescued", "_batch_id"
    )
    rows = {r[0]: tuple(r[1:]) for r in bronze.collect()}
    assert rows == {
        "e1": (None, None, {}, 0),
        "e2": ("wifi", None, {}, 1),
        "e3": (None, "y", {"Platform": "iOS", "carrier": "x"}, 1),
        "e4": (None, None, {"NETWORK": "5g"}, 2),
    }


def test_a_sources_times_without_an_offset_are_read_in_its_zone(spark, tmp_path):
    landing = tmp_path / "landing"
    ctx = Context.create(
        make_settings(
            tmp_path,
            f"collect.landing={landing}",
            "collect.local_time_zones={events: Europe/Paris}",
        ),
        spark=spark,
    )
    deliver(
        landing,
        "2026-03-29",
        "till.jsonl",
        [
            event("e1", "2026-03-29 01:30:00"),  # winter time: 00:30 UTC
            event("e2", "2026-03-29T02:30:00"),  # the hour the clocks skipped
            event("e3", "2026-03-29T03:30:00.5"),  # summer time: 01:30:00.5 UTC
            event("e4", "2026-03-29T03:40:00Z"),
        ],
    )
    summary = _ingest(ctx)
    assert (summary.bronze["events"].loaded, summary.bronze["events"].quarantined) == (3, 1)
    held = ctx.lake.read("bronze.quarantine").collect()
    assert [(r["reason"], r["detail"], r["line"]) for r in held] == [("invalid_timestamp", "ts", 2)]
    silver = ctx.lake.read("silver.events").select(
        "event_id", F.unix_micros("event_ts").alias("us")
    )
    utc = {r["event_id"]: r["us"] for r in silver.collect()}

    def micros(text: str) -> int:
        return int(dt.datetime.fromisoformat(text).timestamp() * 1_000_000)

    assert utc == {
        "e1": micros("2026-03-29T00:30:00+00:00"),
        "e3": micros("2026-03-29T01:30:00.500+00:00"),
        "e4": micros("2026-03-29T03:40:00+00:00"),
    }


def test_new_field_stops_the_job_with_drift_fail(spark, tmp_path):
    landing = tmp_path / "landing"
    ctx = Context.create(
        make_settings(tmp_path, f"collect.landing={landing}", "collect.schema_drift=fail"),
        spark=spark,
    )
    deliver(
        landing,
        "2026-03-05",
        "a.jsonl",
        [
            event("e1", "2026-03-05T10:00:00Z", network="wifi"),
        ],
    )
    with pytest.raises(InputContractError, match="fields not in the contract: network"):
        _ingest(ctx)
    failed = ctx.lake.read("ops.job_runs").where("status = 'failed'").collect()
    assert [r["job"] for r in failed] == ["ingest"]


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("amount >", r"cannot be evaluated on its rows: .*PARSE_SYNTAX_ERROR"),
        ("amont >= 0", r"cannot be evaluated on its rows: .*amont"),
        ("amount", r"is double, not a boolean"),
    ],
)
def test_an_expectation_that_is_not_a_condition_on_the_rows_is_named(spark, expr, problem):
    rows = spark.createDataFrame([(1.0, "web")], "amount double, channel string")
    fine = Expectation("not_negative", "silver.orders", "amount >= 0", "quarantine")
    bad = Expectation("broken", "silver.orders", expr, "warn")
    check_expectations(rows, [fine])
    named = rf"^collect.expectations: broken on silver.orders: '{re.escape(expr)}' {problem}"
    with pytest.raises(ConfigError, match=named):
        check_expectations(rows, [fine, bad])


def test_an_expectation_on_a_column_silver_lacks_stops_the_job_naming_it(spark, tmp_path):
    # conf checks an expectation's table and name; its columns only the rows can check.
    landing = tmp_path / "landing"
    typo = (
        "collect.expectations=[{name: has_cookie, table: silver.events, "
        "expr: 'cookie IS NOT NULL', action: warn}]"
    )
    ctx = Context.create(make_settings(tmp_path, f"collect.landing={landing}", typo), spark=spark)
    deliver(landing, "2026-03-05", "a.jsonl", [event("e1", "2026-03-05T10:00:00Z")])
    with pytest.raises(
        ConfigError,
        match=r"^collect.expectations: has_cookie on silver.events: 'cookie IS NOT NULL' "
        r"cannot be evaluated on its rows: .*cookie",
    ):
        _ingest(ctx)
    assert ctx.lake.read("bronze.events").count() == 1  # loaded, and silver's batch to do again
    assert not ctx.lake.exists("silver.events")
    failed = ctx.lake.read("ops.job_runs").where("status = 'failed'").collect()
    assert [r["job"] for r in failed] == ["ingest"]
    # The rule mended, the next run takes the batch again.
    mended = typo.replace("cookie IS", "cookie_id IS")
    ctx = Context.create(make_settings(tmp_path, f"collect.landing={landing}", mended), spark=spark)
    assert _ingest(ctx).silver["events"].inserted == 1
    assert _silver_ids(ctx) == ["e1"]
    assert ctx.lake.read("bronze.events").count() == 1


def _order(order_id: str, status: str, amount: float) -> str:
    return json.dumps(
        {
            "order_id": order_id,
            "ts": "2026-03-05T10:00:00Z",
            "channel": "web",
            "user_id": "u1",
            "currency": "EUR",
            "amount": amount,
            "status": status,
        }
    )


SPEND_HEADER = "date,channel,campaign_id,campaign_name,cost,currency,impressions,clicks"


def test_a_correction_delivered_with_its_original_wins_in_one_batch(spark, tmp_path):
    # A backlog: the original and its correction reach silver in one batch. The last
    # delivered version is kept (later day, then later line), not the first seen.
    landing = tmp_path / "landing"
    ctx = Context.create(make_settings(tmp_path, f"collect.landing={landing}"), spark=spark)
    deliver(landing, "2026-03-05", "orders.jsonl", [_order("o1", "placed", 50.0)], "orders")
    corrections = [
        _order("o1", "cancelled", 50.0),
        _order("o2", "placed", 20.0),
        _order("o2", "cancelled", 20.0),  # corrected further down the same file
    ]
    deliver(landing, "2026-03-06", "orders.jsonl", corrections, "orders")
    deliver(
        landing,
        "2026-03-05",
        "spend.csv",
        [SPEND_HEADER, "2026-03-04,display,cmp1,Spring,100.00,EUR,1000,10"],
        "spend",
    )
    deliver(
        landing,
        "2026-03-06",
        "spend.csv",
        [SPEND_HEADER, "2026-03-04,display,cmp1,Spring,120.00,EUR,1200,12"],
        "spend",
    )
    summary = _ingest(ctx, ("orders", "spend"))
    orders = ctx.lake.read("silver.orders").select("order_id", "status").collect()
    assert sorted(tuple(r) for r in orders) == [("o1", "cancelled"), ("o2", "cancelled")]
    spend = ctx.lake.read("silver.spend").select("cost", "impressions").collect()
    assert [tuple(r) for r in spend] == [(120.0, 1200)]
    assert (summary.silver["orders"].inserted, summary.silver["orders"].duplicates) == (2, 2)


def test_a_record_sent_again_on_another_day_is_found_there(spark, tmp_path):
    # Sent again with its time moved past midnight (a time zone fixed): still one event, one
    # order (updated where it is stored), not a second row under the same key.
    landing = tmp_path / "landing"
    ctx = Context.create(make_settings(tmp_path, f"collect.landing={landing}"), spark=spark)
    deliver(landing, "2026-03-05", "a.jsonl", [event("e1", "2026-03-05T23:10:00Z")])
    placed = _order("o1", "placed", 50.0)
    deliver(landing, "2026-03-05", "orders.jsonl", [placed], "orders")
    _ingest(ctx, ("events", "orders"))
    deliver(landing, "2026-03-06", "a.jsonl", [event("e1", "2026-03-06T00:10:00Z")])
    returned = _order("o1", "returned", 50.0).replace(
        "2026-03-05T10:00:00Z", "2026-03-06T00:30:00Z"
    )
    deliver(landing, "2026-03-06", "orders.jsonl", [returned], "orders")
    summary = _ingest(ctx, ("events", "orders"))
    events = ctx.lake.read("silver.events").select("event_id", "event_date").collect()
    assert [(r[0], r[1].isoformat()) for r in events] == [("e1", "2026-03-05")]
    assert summary.silver["events"].duplicates == 1
    orders = ctx.lake.read("silver.orders").select("order_id", "status").collect()
    assert [tuple(r) for r in orders] == [("o1", "returned")]


def test_a_batch_an_expectation_stopped_records_its_quality_again_when_it_passes(spark, tmp_path):
    landing = tmp_path / "landing"
    rule = (
        "collect.expectations=[{name: amount_plausible, table: silver.orders, "
        "expr: 'amount < 1000', action: ACTION}]"
    )

    def context(action: str) -> Context:
        settings = make_settings(
            tmp_path, f"collect.landing={landing}", rule.replace("ACTION", action)
        )
        return Context.create(settings, spark=spark)

    lines = [_order("o1", "placed", 10.0), _order("o2", "placed", 5000.0)]
    deliver(landing, "2026-03-05", "orders.jsonl", lines, "orders")
    with pytest.raises(DataQualityError, match="amount_plausible"):
        _ingest(context("fail"), ("orders",))
    ctx = context("warn")  # the rule relaxed, the batch taken again
    _ingest(ctx, ("orders",))
    assert ctx.lake.read("silver.orders").count() == 2
    quality = ctx.lake.read("ops.data_quality").where("rule = 'expect:amount_plausible'")
    got = sorted((r["action"], r["passed"], r["failed"]) for r in quality.collect())
    assert got == [("fail", 1, 1), ("warn", 1, 1)]


def test_byte_budgets_split_bronze_and_silver_into_batches(spark, tmp_path):
    # Two files that one batch would take by count (max_files_per_trigger=20); byte budgets
    # smaller than a file give each landing file its own bronze batch and each bronze file
    # its own silver batch (both sources admit at least one file per batch).
    landing = tmp_path / "landing"
    ctx = Context.create(
        make_settings(
            tmp_path,
            f"collect.landing={landing}",
            "collect.max_bytes_per_trigger=100",
            "collect.silver_max_bytes_per_trigger=1",
        ),
        spark=spark,
    )
    for day, name, ids in [
        ("2026-03-05", "a.jsonl", ["e1", "e2"]),
        ("2026-03-06", "b.jsonl", ["e3"]),
    ]:
        deliver(landing, day, name, [event(i, f"{day}T10:00:00Z") for i in ids])
    summary = _ingest(ctx)
    assert summary.bronze["events"].loaded == 3
    batches = ctx.lake.read("ops.ingest_reconciliation").groupBy("batch_id").count().collect()
    assert sorted(r["count"] for r in batches) == [1, 1]
    bronze_files = ctx.lake.read("bronze.events").select(F.input_file_name()).distinct().count()
    silver = ctx.lake.read("ops.silver_batches").where("table = 'silver.events'")
    assert silver.count() == bronze_files == 2
    assert sorted(r["rows_in"] for r in silver.collect()) == [1, 2]
    assert _silver_ids(ctx) == ["e1", "e2", "e3"]


def test_a_file_older_than_those_already_ingested_is_still_ingested(spark, tmp_path):
    # A file restored from an archive or copied with its times kept (cp -p, rsync -t) can
    # arrive with a modification time weeks older than files already ingested. Spark's file
    # source ignores, by default, a file over a week older than the newest it has seen.
    landing = tmp_path / "landing"
    ctx = Context.create(make_settings(tmp_path, f"collect.landing={landing}"), spark=spark)
    events = SOURCES["events"]

    def bronze_run() -> None:
        with job_run(ctx, "ingest") as run:
            start_bronze(ctx, run, events, str(landing)).wait()

    deliver(landing, "2026-03-05", "a.jsonl", [event("e1", "2026-03-05T10:00:00Z")])
    bronze_run()
    restored = deliver(landing, "2026-02-03", "b.jsonl", [event("e2", "2026-02-03T10:00:00Z")])
    month_ago = restored.stat().st_mtime - 30 * 86_400
    os.utime(restored, (month_ago, month_ago))
    bronze_run()
    loaded = {r["event_id"]: r["_batch_id"] for r in ctx.lake.read("bronze.events").collect()}
    assert loaded == {"e1": 0, "e2": 1}
    files = ctx.lake.read("ops.ingest_reconciliation").where("status = 'ok'").count()
    assert files == 2


def test_a_crm_record_spanning_lines_is_one_record_in_bronze_silver_and_a_later_copy(
    spark, tmp_path
):
    """An address with a line break, as CRM exports quote it: one record from bronze to
    silver, reconciled as one, and counted once again in a copy delivered by a later run."""
    landing = tmp_path / "landing"
    ctx = Context.create(make_settings(tmp_path, f"collect.landing={landing}"), spark=spark)
    header = "customer_number,source_system,updated_at,address_line1,city"
    rows = [
        header,
        'C1,pos,2026-03-05T10:00:00Z,"12 rue des Lilas\r\nBâtiment B",Lyon\r',
        "C2,pos,2026-03-05T10:00:00Z,1 place Bellecour,Lyon",
        'C3,pos,2026-03-05T10:00:00Z,"3 quai Perrache\n\n(cour)",Lyon',
    ]
    deliver(landing, "2026-03-05", "crm.csv", rows, source="crm_customers")
    first = _ingest(ctx, ("crm_customers",)).bronze["crm_customers"]
    assert (first.read, first.loaded, first.quarantined) == (3, 3, 0)
    stored = {
        r["customer_number"]: (r["_line"], r["address_line1"])
        for r in ctx.lake.read("bronze.crm_customers").collect()
    }
    assert stored == {
        "C1": (2, "12 rue des Lilas\nBâtiment B"),
        "C2": (4, "1 place Bellecour"),
        "C3": (5, "3 quai Perrache\n\n(cour)"),
    }
    silver = ctx.lake.read("silver.crm_customers").where("customer_number = 'C1'")
    assert [r["address_line1"] for r in silver.collect()] == ["12 rue des Lilas\nBâtiment B"]

    deliver(landing, "2026-03-06", "crm-again.csv", rows, source="crm_customers")
    second = _ingest(ctx, ("crm_customers",)).bronze["crm_customers"]
    assert (second.read, second.duplicates, second.loaded) == (3, 3, 0)
    recon = ctx.lake.read(RECONCILIATION).where("status <> 'ok'")
    assert recon.count() == 0


def test_checkpoints_of_another_lakehouse_stop_the_run_instead_of_loading_nothing(spark, tmp_path):
    # Checkpoints kept apart from the lakehouse (collect.checkpoint_dir, as on a cluster):
    # they count the landing's files as read, so beside a lakehouse they did not fill, the
    # run would load nothing and succeed.
    landing, checkpoints = tmp_path / "landing", tmp_path / "checkpoints"
    deliver(landing, "2026-03-05", "a.jsonl", [event("e1", "2026-03-05T10:00:00Z")])

    def context(name: str) -> Context:
        settings = make_settings(
            tmp_path / name, f"collect.landing={landing}", f"collect.checkpoint_dir={checkpoints}"
        )
        return Context.create(settings, spark=spark)

    assert _ingest(context("first")).bronze["events"].loaded == 1
    other = context("second")
    with pytest.raises(CrossdataError, match="belongs to a lakehouse that is gone"):
        _ingest(other)
    assert not other.lake.exists("bronze.events")
