"""The world's laws and building blocks, checked without Spark."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import phonenumbers
import pytest

from crossdata import contracts
from crossdata.config.schema import WorldSettings
from crossdata.world import faults, formats
from crossdata.world.hashing import group_rng, unique64
from crossdata.world.model import build_params
from crossdata.world.people import _phone_formats, household_of, person_laws
from crossdata.world.sources import bot_records, people_records, spend_records, unpack

from .contract_check import Header, reason_for


@pytest.fixture(scope="module")
def params():
    settings = WorldSettings(
        out="unused",
        persons=5000,
        days=6,
        start_date="2026-03-26",  # the clocks change on the 29th
        seed=3,
        fault_rate=0.01,
        lines_per_file=100_000,
        access_log_format="extended",
    )
    return build_params(settings)


def test_people_draw_their_laws_from_the_declared_distributions(params):
    laws = [person_laws(params, pid) for pid in range(params.persons)]
    g, gg = params.bgnbd, params.gamma_gamma
    lam = np.mean([x.lam for x in laws])
    p = np.mean([x.p_dropout for x in laws])
    nu = np.mean([x.nu for x in laws])
    assert lam == pytest.approx(g.r / g.alpha, rel=0.06)
    assert p == pytest.approx(g.a / (g.a + g.b), rel=0.06)
    assert nu == pytest.approx(gg.q / gg.v, rel=0.06)


def test_paris_offsets_follow_the_time_zone_database(params):
    paris = ZoneInfo("Europe/Paris")
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    hours = [start + dt.timedelta(hours=h) for h in range(0, 2 * 365 * 24, 7)]
    expected = [t.astimezone(paris).utcoffset().total_seconds() / 60 for t in hours]
    ms = np.array([int(t.timestamp() * 1000) for t in hours])
    assert params.paris_offset(ms).tolist() == expected


def test_a_person_simulated_alone_or_with_others_writes_the_same_lines(params):
    alone = people_records(params, np.array([17]))
    alone = alone[alone["kind"] != "stat"]  # statistics are sums over the chunk
    together = people_records(params, np.array([16, 17, 18]))
    mine = together[(together["kind"] != "stat") & together["line"].isin(set(alone["line"]))]
    assert len(alone) > 50
    pd.testing.assert_frame_equal(
        alone.reset_index(drop=True), mine.reset_index(drop=True), check_dtype=False
    )


def test_household_members_agree_on_their_household(params):
    sizes = Counter()
    for pid in range(400):
        hh = household_of(params, pid)
        assert pid in hh.members and 1 <= len(hh.members) <= 4
        for member in hh.members:
            other = household_of(params, member)
            assert (other.key, other.members, other.tablet) == (hh.key, hh.members, hh.tablet)
        sizes[len(hh.members)] += 1
    assert set(sizes) == {1, 2, 3, 4}


def test_ids_from_different_keys_never_collide():
    owners, counters = np.meshgrid(np.arange(300), np.arange(300))
    ids = np.concatenate([unique64(9, ns, owners.ravel(), counters.ravel()) for ns in (1, 2, 3)])
    assert len(np.unique(ids)) == len(ids)


def test_phone_spellings_are_one_valid_french_number():
    for national in ("0612345678", "0780123456", "0102030405"):
        spellings = _phone_formats(national)
        assert len(set(spellings)) == 7
        for raw in spellings:
            number = phonenumbers.parse(raw, "FR")
            assert phonenumbers.is_valid_number(number), raw
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            assert e164 == spellings[-1]


def _good_lines(params) -> dict[str, list[str]]:
    frames = [people_records(params, np.arange(0, 60)), bot_records(params, params.bots[0].index)]
    records = pd.concat(frames, ignore_index=True)
    spend = unpack(spend_records(params)["payload"].tolist())
    out: dict[str, list[str]] = {"spend": spend["line"].tolist()}
    landing = records[records["kind"] == "landing"]
    for source, group in landing.groupby("source"):
        out[str(source)] = group["line"].tolist()
    return out


def test_each_injected_fault_is_read_back_with_its_own_reason(params):
    lines = _good_lines(params)
    assert set(lines) == set(contracts.SOURCES)
    day = 2
    when = params.start + dt.timedelta(days=day)
    for source, good in lines.items():
        header = Header(contracts.SOURCES[source].field_names)
        header.sep = formats.separator(source)
        if source == "crm_customers":
            header.append("preferred_language")
        # Lines of other days may not fit this day (a CRM line without the drift column).
        good = [g for g in good if reason_for(source, g.encode(), header, when) is None]
        assert good, source
        layout = faults.Layout(source, tuple(header), header.sep)
        seen: Counter = Counter()
        rng = group_rng(1, 2, 3)
        for i in range(400):
            text = good[i % len(good)]
            data, reason = faults.inject(params, layout, day, text, rng)
            assert reason_for(source, data, header, when) == reason, (source, reason, data[:200])
            seen[reason] += 1
        assert set(seen) == set(faults.reasons_for(source)), source


def test_the_generators_log_pattern_reads_lines_like_ingestion(params):
    from crossdata.collect.formats import COMBINED_LOG as INGEST

    ingest = re.compile(INGEST)
    lines = _good_lines(params)["access_log"][:300]
    rng = group_rng(5)
    layout = faults.Layout("access_log")
    samples = lines + [
        faults.inject(params, layout, 1, x, rng)[0].decode("utf-8", "replace") for x in lines
    ]
    for text in samples:
        ours, theirs = formats.COMBINED_LOG.match(text), ingest.match(text)
        assert (ours is None) == (theirs is None), text
        if ours:
            assert ours.group("status", "url", "user_agent", "cookie_id") == theirs.group(
                8, 6, 11, 12
            )


def test_csv_cells_quote_only_what_rfc_4180_needs():
    assert formats.csv_cell("plain") == "plain"
    assert formats.csv_cell('=HYPERLINK("http://x.example","click")') == (
        '"=HYPERLINK(""http://x.example"",""click"")"'
    )
    assert formats.csv_cell(" padded ") == '" padded "'
    assert formats.csv_cell("a,b") == '"a,b"'


def test_spend_numbers_are_written_as_a_french_spreadsheet_writes_them():
    decimal_comma = formats.decimal_comma
    assert decimal_comma("412.37") == "412,37"
    assert decimal_comma("1234.50", "\u202f") == "1\u202f234,50"
    assert decimal_comma("-1234567.5", "\u202f") == "-1\u202f234\u202f567,5"
    assert decimal_comma("12345", "\u00a0") == "12\u00a0345"
    assert decimal_comma("999", "\u00a0") == "999"


def _settings(**changes) -> WorldSettings:
    base = {
        "out": "unused",
        "persons": 200_000,
        "days": 2,
        "start_date": "2026-03-02",
        "seed": 42,
        "fault_rate": 0.0,
        "lines_per_file": 100_000,
        "access_log_format": "extended",
    }
    return WorldSettings(**{**base, **changes})


def test_spend_costs_over_a_thousand_survive_the_windows_1252_days():
    # Day 0's sheet is saved in windows-1252, which lacks the narrow no-break space: money is
    # grouped by the no-break space there, the narrow one on UTF-8 days. 200,000 people make
    # some costs pass 1,000.
    packed = spend_records(build_params(_settings()))
    lines = [
        (int(day), line)
        for day, payload in zip(packed["day"], packed["payload"], strict=True)
        for line in unpack([payload])["line"]
    ]
    assert {day for day, _ in lines} == {0, 1}
    grouped = 0
    for day, line in lines:
        cost = line.split(";")[4].strip('"')
        utf8 = formats.file_encoding("spend", day) == "utf-8"
        cost.encode("utf-8" if utf8 else "windows-1252")  # never a "?"
        if "\u202f" in cost or "\u00a0" in cost:
            grouped += 1
            assert ("\u202f" in cost) == utf8, line
        assert float(cost.replace("\u202f", "").replace("\u00a0", "").replace(",", ".")) >= 0
    assert grouped > 0


@pytest.mark.parametrize(("value", "negative"), [(0, -1), (2.5, -2.5), ("0,00", "-1,00"),
                                                 ("0", "-1"), ("412,37", "-412,37")])  # fmt: skip
def test_a_failed_expectation_is_a_value_below_zero_even_from_zero(value, negative):
    assert faults._negative(value) == negative


def test_a_start_date_the_worlds_own_times_would_contradict_is_refused():
    from crossdata.world.model import date_problem

    earliest = dt.datetime(2000, 1, 2, tzinfo=dt.UTC)
    assert date_problem(_settings(start_date="2026-03-02"), earliest) is None
    assert date_problem(_settings(start_date="2001-12-03"), earliest) is None
    early = date_problem(_settings(start_date="2001-12-02"), earliest)
    assert early is not None and "start after 2001-12-02" in early
    late = date_problem(_settings(start_date="8999-12-30", days=400), earliest)
    assert late is not None and "ends too late" in late


def test_a_tills_wall_clock_time_names_its_instant_in_the_hour_the_clocks_repeat():
    # Paris clocks go back on 2026-10-25 at 01:00 UTC: 02:00 to 03:00 happens twice. A till
    # writes no offset and ingestion reads such a time as its first pass (fold=0 below).
    params = build_params(_settings(persons=50, start_date="2026-10-23", days=4))
    paris = ZoneInfo("Europe/Paris")
    first = dt.datetime(2026, 10, 24, 22, tzinfo=dt.UTC)
    instants = np.array(
        [int((first + dt.timedelta(minutes=m)).timestamp() * 1000) for m in range(0, 6 * 60, 7)]
    )
    moved = params.first_pass(instants)
    walls = formats.wall_clock_times(moved, params.paris_offset(moved))
    read = [
        int(dt.datetime.fromisoformat(w).replace(tzinfo=paris).timestamp() * 1000) for w in walls
    ]
    assert read == moved.tolist()
    back = int(dt.datetime(2026, 10, 25, 1, tzinfo=dt.UTC).timestamp() * 1000)
    second_pass = (instants >= back) & (instants < back + 3_600_000)
    assert second_pass.sum() == 9  # 01:02 to 01:58 UTC, every seven minutes
    assert (moved[~second_pass] == instants[~second_pass]).all()
    assert (moved[second_pass] == instants[second_pass] + 3_600_000).all()
