"""Stage test: a generated world with every fault, ingested, scored against its truth."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql import functions as F

from crossdata.collect.encodings import single_byte_table
from crossdata.collect.scoring import score_ingestion
from crossdata.world.model import build_params
from crossdata.world.vocab import CITIES

from ..helpers import is_utf8
from ..world.contract_check import file_lines, landing_files


@pytest.fixture(scope="module")
def score(ingested_world):
    world, ctx, _ = ingested_world
    return score_ingestion(ctx.spark, ctx.lake, str(world.root))


def test_every_bad_record_is_quarantined_with_its_reason(score):
    assert score.bad_records > 50  # the world really is faulty
    assert (score.missed, score.unexpected, score.wrong_reason) == (0, 0, 0), score.examples


def test_counts_reconcile_with_every_landing_line(score):
    assert score.unreconciled_files == 0
    assert score.read == score.record_lines


def test_redelivered_files_are_counted_as_duplicates(score):
    assert score.duplicate_files == score.redelivered_files


def test_duplicate_records_are_removed_exactly_once(score):
    keyed = {k: v for k, v in score.duplicate_records.items() if k != "crm_customers"}
    assert keyed, "the world has duplicate records"
    for source, expected in keyed.items():
        assert score.removed_duplicates.get(source, 0) == expected, source
    assert set(score.silver_key_repeats.values()) == {0}


def test_late_events_land_on_the_day_they_happened(ingested_world):
    world, ctx, _ = ingested_world
    late = {
        r["record_id"]: r["event_date"]
        for r in world.truth("late_records")
        if r["source"] == "events"
    }
    assert late, "the world has late events"
    silver = ctx.lake.read("silver.events").where(F.col("event_id").isin(list(late)))
    placed = {r["event_id"]: str(r["event_date"]) for r in silver.collect()}
    bad = {r["record_id"] for r in world.truth("bad_records") if r["record_id"]}
    assert {k: v for k, v in late.items() if k not in bad} == placed


def test_drifted_field_is_kept_from_its_first_day(ingested_world):
    world, ctx, _ = ingested_world
    drift = next(
        d
        for d in json.loads((world.root / "_truth" / "world.json").read_text())["schema_drift"]
        if d["source"] == "events"
    )
    bronze = ctx.lake.read("bronze.events").where(F.col("_rescued")[drift["field"]].isNotNull())
    first_day = bronze.agg(F.min(F.to_date("ts"))).collect()[0][0]
    assert first_day is not None
    assert str(first_day) >= drift["from_date"]


def _counted(ctx, rule: str) -> list:
    """The ``<source>:<rule>`` rows of ops.data_quality beside their batch's rows_in."""
    quality = (
        ctx.lake.read("ops.data_quality")
        .where(F.col("rule").endswith(f":{rule}"))
        .withColumn("source", F.split("rule", ":")[0])
    )
    batches = ctx.lake.read("ops.silver_batches")
    rows = quality.join(batches, ["run_id", "batch_id", "table", "source"]).collect()
    assert all(r["passed"] + r["failed"] == r["rows_in"] for r in rows)
    assert all(r["action"] == "count" for r in rows)
    return rows


def test_placeholders_are_counted_for_every_source_with_identifiers(ingested_world):
    _, ctx, _ = ingested_world
    rows = _counted(ctx, "placeholder_fields")
    # every source but spend carries an identifier of someone
    assert {r["source"] for r in rows} == set(ctx.settings.collect.sources) - {"spend"}
    # the world writes placeholders for cookies and devices on some events
    assert sum(r["failed"] for r in rows if r["source"] == "events") > 0


def test_unusable_identifiers_are_counted_in_every_batch_that_checks_them(ingested_world):
    _, ctx, _ = ingested_world
    rows = _counted(ctx, "unusable_fields")
    # every source whose records carry an identifier: all but spend
    assert {r["source"] for r in rows} == set(ctx.settings.collect.sources) - {"spend"}
    silver_columns = {
        c for t in ("events", "orders", "consent") for c in ctx.lake.read(f"silver.{t}").columns
    }
    assert "_unusable_fields" not in silver_columns


def test_server_hits_that_are_not_page_views_are_counted_where_silver_leaves_them(
    ingested_world,
):
    _, ctx, _ = ingested_world
    bronze = ctx.lake.read("bronze.access_log")
    asset = F.regexp_extract("url", r"^[^?#]*", 0).rlike(r"(?i)\.(css|js|png|jpe?g|gif|svg|ico)$")
    pages = bronze.where((F.col("method") == "GET") & (F.col("status") < 400) & ~asset).count()
    quality = ctx.lake.read("ops.data_quality").where("rule = 'access_log:not_page_views'")
    skipped, passed = quality.agg(F.sum("failed"), F.sum("passed")).first()
    assert 0 < skipped == bronze.count() - pages  # the world's POSTs, 404s and redirects
    assert passed == pages  # the page views are the silver batches' rows in
    assert quality.where("action <> 'skip'").count() == 0


def test_crm_addresses_on_two_lines_are_one_record_numbered_by_its_first_line(ingested_world):
    world, ctx, _ = ingested_world
    copies = {r["file"] for r in world.truth("redelivered_files")}
    expected = set()  # (file, first line, customer number) of each record on two lines
    for f in landing_files(world.root):
        if f.source != "crm_customers" or f.relative in copies:
            continue
        _, records = file_lines(f)
        for line, raw in records:
            if b"\n" in raw:
                number = raw.split(b",", 1)[0].decode()
                expected.add((f.relative, line, number))
    assert expected, "the world writes addresses on two lines"
    bronze = ctx.lake.read("bronze.crm_customers").where(F.col("address_line1").contains("\n"))
    root = f"{world.root}/"  # Spark names files file:/x or file:///x
    got = {
        (r["_source_file"].partition(root)[2], r["_line"], r["customer_number"])
        for r in bronze.select("_source_file", "_line", "customer_number").collect()
    }
    assert got == expected


def test_crm_countries_written_in_any_iso_form_or_by_name_are_stored_as_codes(ingested_world):
    _, ctx, _ = ingested_world
    bronze = ctx.lake.read("bronze.crm_customers")
    spellings = {r["country"] for r in bronze.select("country").distinct().collect()}
    assert {"FR", "fr", "France", "FRA"} <= spellings  # the world writes France several ways
    silver = ctx.lake.read("silver.crm_customers")
    assert {r["country"] for r in silver.select("country").distinct().collect()} == {"FR"}
    unusable = ctx.lake.read("ops.data_quality").where("rule = 'crm_customers:unusable_fields'")
    assert unusable.agg(F.sum("failed")).first()[0] == 0


def test_crm_postal_codes_get_back_their_leading_zeros_and_lose_their_blanks(ingested_world):
    _, ctx, _ = ingested_world
    cities = {code for code, _ in CITIES}
    bronze = {
        r["postal_code"]
        for r in ctx.lake.read("bronze.crm_customers").select("postal_code").collect()
    }
    # The world's till exports drop Nice's leading zero; other records are typed with a space.
    assert "6000" in bronze and any(" " in c for c in bronze if c)
    silver = ctx.lake.read("silver.crm_customers")
    stored = {r["postal_code"] for r in silver.select("postal_code").distinct().collect()}
    assert "06000" in stored and stored <= cities | {None}


def test_a_tills_unknown_birth_date_is_nulled_in_silver(ingested_world):
    world, ctx, _ = ingested_world
    truth = [r for r in world.truth("placeholders") if r["field"] == "birth_date"]
    assert [r["value"] for r in truth] == ["1900-01-01"]
    unknown = F.col("birth_date") == F.to_date(F.lit("1900-01-01"))
    bronze = ctx.lake.read("bronze.crm_customers").where(unknown)
    # every record the truth says carries it, once (a record written twice is one record)
    assert bronze.dropDuplicates(["customer_number", "updated_at"]).count() == int(
        truth[0]["count"]
    )
    silver = ctx.lake.read("silver.crm_customers")
    assert silver.where(unknown).count() == 0
    assert silver.where(F.col("birth_date").isNotNull()).count() > 0  # real ones are kept


def test_spend_written_with_semicolons_and_decimal_commas_keeps_its_amounts(ingested_world):
    world, ctx, _ = ingested_world
    truth = {r["channel"]: float(r["spend"]) for r in world.truth("channel_effects")}
    silver = ctx.lake.read("silver.spend").groupBy("channel").agg(F.sum("cost").alias("cost"))
    got = {r["channel"]: r["cost"] for r in silver.collect()}
    assert got and set(got) <= {c for c, v in truth.items() if v > 0}
    # A few days' rows are quarantined on purpose (the faults); every other cost is read
    # whole, decimals included: a misread comma would lose them all or multiply them by 100.
    for channel, cost in got.items():
        assert 0.85 * truth[channel] <= cost <= truth[channel] + 1e-6, channel
    cents = ctx.lake.read("silver.spend").where("cost != floor(cost)").count()
    assert cents > 0


def test_spend_sheets_saved_in_windows_1252_keep_their_labels(ingested_world):
    # Even delivery days' sheets are windows-1252 (conf: collect.fallback_encodings); the
    # others UTF-8. Both read to the campaigns' labels; windows-1252 has no emoji: "?" there.
    world, ctx, summary = ingested_world
    labels = {c.campaign_id: c.name for c in build_params(world.settings).campaigns}
    first = dt.date.fromisoformat(world.settings.start_date)
    rows = ctx.lake.read("silver.spend").select("date", "campaign_id", "campaign_name").collect()
    windows = 0
    for r in rows:
        if r["campaign_id"] not in labels:  # a newsletter's: ASCII (Newsletter 26w10_tue)
            assert r["campaign_name"].isascii(), r
            continue
        label = labels[r["campaign_id"]]
        if (r["date"] - first).days % 2 == 0:
            saved = label.encode("cp1252", errors="replace").decode("cp1252")
            windows += saved != label
            label = saved
        assert r["campaign_name"] == label, r
    assert windows > 0 and len({r["date"] for r in rows}) == world.settings.days
    # every line of the originals that is not UTF-8 but reads in windows-1252, counted
    copies = {r["file"] for r in world.truth("redelivered_files")}
    expected = 0
    for f in landing_files(world.root):
        if f.source == "spend" and f.relative not in copies:
            expected += sum(_in_windows_1252_only(raw) for _, raw in file_lines(f)[1])
    assert expected > 0 and summary.bronze["spend"].fallback_lines == expected
    assert f"(collect.fallback_encodings): spend {expected}" in summary.describe()
    ledger = ctx.lake.read("ops.ingest_reconciliation").where("source = 'spend'")
    assert ledger.agg(F.sum("fallback_lines")).first()[0] == expected
    refused = ctx.lake.read("bronze.quarantine").where(
        "source = 'spend' AND reason = 'invalid_encoding'"
    )
    bad = [r for r in world.truth("bad_records") if r["source"] == "spend"]
    assert refused.count() == sum(r["reason"] == "invalid_encoding" for r in bad)


def _in_windows_1252_only(raw: bytes) -> bool:
    """Whether the line is not UTF-8 but reads in windows-1252 (what fallback_lines counts)."""
    return not is_utf8(raw) and single_byte_table("windows-1252").decode(raw) is not None


def test_a_tills_wall_clock_times_are_read_in_paris(ingested_world):
    # Store orders carry no offset (conf: collect.local_time_zones = {orders: Europe/Paris}).
    world, ctx, _ = ingested_world
    truth = {
        c["order_id"]: int(dt.datetime.fromisoformat(c["ts"]).timestamp() * 1_000_000)
        for c in world.truth("conversions")
        if c["channel"] == "store"
    }
    stored = ctx.lake.read("silver.orders").where("channel = 'store'")
    got = {
        r["order_id"]: r["us"]
        for r in stored.select("order_id", F.unix_micros("order_ts").alias("us")).collect()
    }
    assert got and set(got) <= set(truth)
    assert {k: truth[k] for k in got} == got
