"""Raw lines to fields and reasons: every wire format, every reason code, exact line numbers."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from crossdata.collect.bronze import batch_lines, check_line_numbers
from crossdata.collect.encodings import single_byte_table, with_fallback
from crossdata.collect.formats import file_lines, parse_lines, text_lines, whole_file_tasks
from crossdata.collect.records import RecordRules, validate
from crossdata.contracts import DEFAULT_MIN_TIMESTAMP, REASON_CODES, SOURCES
from crossdata.errors import CrossdataError
from crossdata.spark import conf_set

from ..helpers import is_utf8

RULES = RecordRules(
    max_field_chars=100,
    future_tolerance_hours=24,
    min_timestamp=dt.datetime.fromisoformat(DEFAULT_MIN_TIMESTAMP),
)
DAY = "2026-03-05"


def _files(spark, files: dict[str, bytes]):
    rows = [(f"file:/land/{name}", bytearray(content)) for name, content in files.items()]
    return spark.createDataFrame(rows, "path STRING, content BINARY")


def _validated(spark, source: str, content: bytes, name: str | None = None):
    name = name or f"{source}/{DAY}/f{SOURCES[source].extension}"
    lines = file_lines(_files(spark, {name: content}))
    return validate(parse_lines(lines, SOURCES[source]), SOURCES[source], RULES)


def _reasons(df) -> list[tuple[int, str | None, str | None]]:
    return [tuple(r) for r in df.select("_line", "_reason", "_detail").orderBy("_line").collect()]


def _event(**kw) -> str:
    base = {
        "event_id": "e1",
        "event_type": "page_view",
        "ts": "2026-03-05T10:00:00.5+01:00",
        "platform": "web",
    }
    return json.dumps({**base, **kw})


def test_lines_keep_numbers_drop_blanks_and_strip_crlf(spark):
    content = b"a\r\n\r\n  \nb\n"
    lines = file_lines(_files(spark, {"events/2026-03-05/x.jsonl": content}))
    got = [tuple(r) for r in lines.select("_line", "_text", "_delivery_date").collect()]
    assert [(n, t, str(d)) for n, t, d in got] == [(1, "a", DAY), (4, "b", DAY)]


def test_invalid_utf8_line_keeps_its_exact_bytes(spark):
    bad = b'{"event_id": "\xff\xfe"}'
    lines = file_lines(_files(spark, {"x.jsonl": b'{"ok": 1}\n' + bad + b"\n"}))
    rows = lines.orderBy("_line").collect()
    assert rows[0]["_text"] == '{"ok": 1}' and rows[0]["_raw_bytes"] is None
    assert rows[1]["_text"] is None and bytes(rows[1]["_raw_bytes"]) == bad


def test_lines_not_in_utf8_are_read_in_the_sources_fallback_encoding(spark):
    header = b"date;channel;campaign_id;campaign_name;cost;currency\n"
    utf8 = "2026-03-05;display;c1;Vidéo – été 🎯;1,50;EUR\n".encode()
    windows = "2026-03-05;display;c2;Vidéo – été € œ;2,50;EUR\n".encode("cp1252")
    undefined = b"2026-03-05;display;c3;x\x81;3,50;EUR\n"  # 0x81: no character in cp1252
    content = header + utf8 + windows + undefined
    lines = file_lines(_files(spark, {f"spend/{DAY}/f.csv": content}))
    source = SOURCES["spend"]

    def read(encoding):
        df = validate(parse_lines(with_fallback(lines, encoding), source), source, RULES)
        return df.orderBy("_line").collect()

    got = read("windows-1252")
    assert [(r["_line"], r["_reason"], r["campaign_name"]) for r in got] == [
        (2, None, "Vidéo – été 🎯"),  # valid UTF-8 stays UTF-8
        (3, None, "Vidéo – été € œ"),
        (4, "invalid_encoding", None),
    ]
    assert bytes(got[2]["_raw_bytes"]) == undefined[:-1]  # kept as delivered
    # ISO-8859-15 has no undefined byte: 0x81 is a control character there
    assert [r["_reason"] for r in read("iso-8859-15")] == [None, None, None]
    # without a fallback, only the UTF-8 line is read
    assert [r["_reason"] for r in read(None)] == [None, "invalid_encoding", "invalid_encoding"]


@pytest.mark.parametrize("encoding", ["windows-1252", "iso-8859-15", "cp1250", "latin-1"])
def test_a_fallback_encoding_reads_every_byte_as_pythons_codec_does(spark, encoding):
    # Every byte above ASCII, alone and after an accent in UTF-8 (which makes the line
    # windows-1252 as a whole), against Python's own codec.
    raws = [b"a" + bytes([b]) + b"z" for b in range(0x80, 0x100)]
    raws += ["é".encode() + bytes([b]) for b in range(0x80, 0x100)]
    raws += ["é – ok".encode()]
    rows = [
        (i, *((r.decode(), None) if is_utf8(r) else (None, bytearray(r))))
        for i, r in enumerate(raws)
    ]
    lines = spark.createDataFrame(rows, "_line INT, _text STRING, _raw_bytes BINARY")
    got = {r["_line"]: r for r in with_fallback(lines, encoding).collect()}
    table = single_byte_table(encoding)
    for i, raw in enumerate(raws):
        expected = table.decode(raw)
        assert got[i]["_text"] == expected, (raw, encoding)
        assert (got[i]["_raw_bytes"] is None) == (expected is not None), raw
        if expected is None:
            assert bytes(got[i]["_raw_bytes"]) == raw


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ("utf-16", "not a single-byte encoding that agrees with ASCII"),
        ("shift_jis", "not a single-byte encoding: 0x81 starts a longer one"),
        ("utf-8", "not a single-byte encoding"),
        ("cp037", "agrees with ASCII"),  # EBCDIC
        ("klingon", "not an encoding Python knows"),
    ],
)
def test_an_encoding_that_cannot_be_a_fallback_is_refused(encoding, message):
    with pytest.raises(ValueError, match=message):
        single_byte_table(encoding)


LOCAL_TIMES = [
    ("2026-03-05T10:00:00", "2026-03-05T09:00:00+00:00"),  # winter: +01:00
    ("2026-07-05 10:00:00.25", "2026-07-05T08:00:00.250+00:00"),  # summer, a space, a fraction
    ("2026-10-25T02:30:00", "2026-10-25T00:30:00+00:00"),  # twice that night: the first
    ("2026-10-25T03:30:00", "2026-10-25T02:30:00+00:00"),  # after it: winter time again
    ("2026-03-29T02:30:00", None),  # the clocks skipped it: no such time in Paris
    ("2026-03-05T10:00:00-05:00", "2026-03-05T15:00:00+00:00"),  # an offset given wins
    ("2026-03-05T10:00", None),
    ("2026-03-05", None),
    ("2026-03-05T25:00:00", None),
]


def test_times_without_an_offset_are_read_in_the_sources_local_time_zone(spark):
    lines = "\n".join(_event(event_id=f"e{i}", ts=ts) for i, (ts, _) in enumerate(LOCAL_TIMES))
    source = SOURCES["events"]
    undated = file_lines(_files(spark, {"events/f.jsonl": lines.encode()}))  # no future check

    def read(zone):
        rules = dataclasses.replace(RULES, local_time_zone=zone)
        df = validate(parse_lines(undated, source), source, rules)
        return [
            (r["_reason"], r["us"])
            for r in df.select("_line", "_reason", F.unix_micros("ts").alias("us"))
            .orderBy("_line")
            .collect()
        ]

    expected = [
        (None, int(dt.datetime.fromisoformat(utc).timestamp() * 1_000_000))
        if utc
        else ("invalid_timestamp", None)
        for _, utc in LOCAL_TIMES
    ]
    assert read("Europe/Paris") == expected
    with conf_set(spark, {"spark.sql.session.timeZone": "America/New_York"}):
        assert read("Europe/Paris") == expected  # the session's own zone plays no part
    # without a zone for the source, only the time with an offset is read
    without = [reason for reason, _ in read(None)]
    assert without == ["invalid_timestamp"] * 5 + [None] + ["invalid_timestamp"] * 3


EVENT_CASES = [
    (_event(), None, None),
    (_event(price="12,50"), "wrong_type", "price"),
    (_event(quantity=2.0), None, None),
    (_event(quantity=2.5), "wrong_type", "quantity"),
    (_event(event_type="pageview"), "invalid_value", "event_type"),
    (_event(ts="2026-13-45T99:00:00+01:00"), "invalid_timestamp", "ts"),
    (_event(ts="2026-03-05T10:00:00"), "invalid_timestamp", "ts"),
    # clocks reset to an epoch: before collect.min_timestamp (2000-01-02 UTC by default)
    (_event(ts="1970-01-01T00:00:00Z"), "invalid_timestamp", "ts"),
    (_event(ts="2000-01-01T12:00:00+01:00"), "invalid_timestamp", "ts"),
    (_event(ts="0001-01-01T00:00:00Z"), "invalid_timestamp", "ts"),
    (_event(ts="2000-01-02T00:00:00Z"), None, None),
    (_event(ts="2026-03-09T10:00:00Z"), "future_timestamp", "ts"),
    (_event(ts="2026-03-06T23:59:00Z"), None, None),
    (_event(event_id=""), "missing_required_field", "event_id"),
    (_event(event_id=None), "missing_required_field", "event_id"),
    (_event(user_agent="x" * 101), "oversize_field", "field"),
    (_event(novel="y" * 101), "oversize_field", "field"),
    (_event()[:-5], "malformed_record", "line"),
    (_event() + " trailing", "malformed_record", "line"),
    ("[1, 2, 3]", "malformed_record", "line"),
    ('{"event_id": "a", "event_id": "b"}', "malformed_record", "line"),
    # Spark's parser stops after the first object: what follows it must still be refused
    (_event() + _event(), "malformed_record", "line"),
    (_event() + " x}", "malformed_record", "line"),
    (_event() + "]}", "malformed_record", "line"),
    (_event() + ", 1]}", "malformed_record", "line"),
    (_event() + "}", "malformed_record", "line"),
    ("null", "malformed_record", "line"),
    ("\t" + _event() + "  ", None, None),
    (_event(page_url="https://shop.example/?q=[1]}{"), None, None),
    # half of a UTF-16 surrogate pair is no character: stored, it would be "?"
    (_event(cookie_id="c\ud800"), "malformed_record", "line"),
    (_event(cookie_id="c\U0001f600"), None, None),
    # JSON as RFC 8259 writes it: Spark would also read single quotes and NaN or Infinity
    (_event().replace('"', "'"), "malformed_record", "line"),
    (_event()[:-1] + ', "price": NaN}', "malformed_record", "line"),
    (_event()[:-1] + ', "price": -Infinity}', "malformed_record", "line"),
    # numbers written as numbers: not Java's other spellings, not beyond a double or a bigint
    (_event(price="NaN"), "wrong_type", "price"),
    (_event(price="Infinity"), "wrong_type", "price"),
    (_event(price="inf"), "wrong_type", "price"),
    (_event(price="12.5d"), "wrong_type", "price"),
    (_event(price="0x1p3"), "wrong_type", "price"),
    (_event()[:-1] + ', "price": 1e400}', "wrong_type", "price"),
    (_event(price=" 1.5e1 "), None, None),
    (_event(price=".5"), None, None),
    (_event(quantity="2f"), "wrong_type", "quantity"),
    (_event(quantity="NaN"), "wrong_type", "quantity"),
    (_event(quantity="9223372036854775808"), "wrong_type", "quantity"),
    (_event(quantity=1e19), "wrong_type", "quantity"),
    (_event(quantity="9223372036854775807"), None, None),
    (_event(quantity="3e2"), None, None),
    # an identifier given as an array or object, or as its JSON text, identifies nobody
    (_event(cookie_id=["ck_a", "ck_b"]), "wrong_type", "cookie_id"),
    (_event(user_id={"id": "u1"}), "wrong_type", "user_id"),
    (_event(email='["a@example.org"]'), "wrong_type", "email"),
    (_event(cookie_id="[ck_a"), None, None),
    (_event(user_id=123), None, None),
    (_event(product_id=["p1"]), None, None),  # not an identifier: kept as its JSON text
    # several faults: the first in the documented order wins
    (_event(event_id="", price="x"), "missing_required_field", "event_id"),
]


def test_each_event_line_gets_its_documented_reason(spark):
    content = "\n".join(line for line, _, _ in EVENT_CASES).encode()
    got = _reasons(_validated(spark, "events", content))
    expected = [(i, reason, detail) for i, (_, reason, detail) in enumerate(EVENT_CASES, 1)]
    assert got == expected


def _one_python_object(line: str) -> bool:
    """The reference: Python's strict reader finds exactly one object, no key twice."""

    def no_twice(pairs):
        if len({k for k, _ in pairs}) != len(pairs):
            raise ValueError("a key twice")
        return dict(pairs)

    def no_constant(name):
        raise ValueError(f"{name} is not JSON")

    try:
        parsed = json.loads(line, object_pairs_hook=no_twice, parse_constant=no_constant)
        # a string holding half of a surrogate pair is no Unicode text: it has no UTF-8 form
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
        return isinstance(parsed, dict)
    except ValueError:  # UnicodeEncodeError is one
        return False


def test_a_json_line_is_well_formed_exactly_when_it_is_one_object(spark):
    """Objects joined to what may follow them (brackets and braces, also inside strings and
    nested arrays): the line is malformed exactly when Python's strict reader refuses it."""
    objects = [
        "{}",
        '{"a": 1}',
        '{"a": [1, [2]], "b": {"c": "]}"}}',
        '{"a": "x\\"]", "b": null}',
        '{"a": 1, "a": 2}',
        "{'a': 1}",
        '{"a": NaN}',
        '{"a": [Infinity]}',
    ]
    glues = ["", " ", "\t", ",", "]", "}", "]]", "}}", ", 0]", " x", "{", "["]
    lines = [o + g + t for o in objects for g in glues for t in ("", "}", "]}", *objects[1:3])]
    lines = [line for line in lines if line.strip(" ")]
    content = "\n".join(lines).encode()
    lines_df = file_lines(_files(spark, {f"events/{DAY}/f.jsonl": content}))
    got = parse_lines(lines_df, SOURCES["events"]).orderBy("_line").select("_malformed").collect()
    assert [not r["_malformed"] for r in got] == [_one_python_object(line) for line in lines]


SURROGATE_CASES = [
    r"\ud800",  # a high half alone
    r"\udc00",  # a low half alone
    r"\ud83d\ude00",  # a pair: U+1F600
    r"\uD83D\uDE00",
    r"\udc00\ud800",  # halves in the wrong order
    r"\ud800\u0041",
    r"\ud800\ud800\udc00",
    r"\\ud800",  # an escaped backslash, then text
    r"\\\ud800",  # an escaped backslash, then a half alone
    r"\\\\ud800",
    r"x\u00e9\u20ac",  # other escapes
    r"\\u",
]


@pytest.mark.parametrize("where", ["value", "key"])
def test_a_json_string_with_half_a_surrogate_pair_alone_is_malformed(spark, where):
    """What Python's strict reader decodes to text that has a UTF-8 form is well formed."""
    lines = [
        '{"cookie_id": "' + case + '"}' if where == "value" else '{"' + case + '": 1}'
        for case in SURROGATE_CASES
    ]
    content = "\n".join(lines).encode()
    lines_df = file_lines(_files(spark, {f"events/{DAY}/f.jsonl": content}))
    got = parse_lines(lines_df, SOURCES["events"]).orderBy("_line").select("_malformed").collect()
    expected = [_one_python_object(line) for line in lines]
    assert expected.count(False) == 6  # the reference itself tells the cases apart
    assert [not r["_malformed"] for r in got] == expected


def test_unknown_json_fields_are_rescued_not_dropped(spark):
    row = _validated(spark, "events", _event(network="wifi", nested={"a": 1}).encode()).first()
    assert row["_reason"] is None
    assert row["_rescued"] == {"network": "wifi", "nested": '{"a":1}'}


def test_order_lines_are_one_json_array_even_when_sent_as_text(spark):
    order = {"order_id": "o1", "ts": "2026-03-05T10:00:00Z", "channel": "store", "currency": "EUR"}
    order["amount"] = 1.0
    array = [{"sku": "s", "quantity": 1, "unit_price": 1.0}]
    text = json.dumps(array)
    cases = [
        (array, None),
        (text, None),  # the array as JSON text is read the same way
        (text + " x", "wrong_type"),
        (text + "]", "wrong_type"),
        (text + ", 2]", "wrong_type"),
        (text + text, "wrong_type"),
        ("[{]", "wrong_type"),
        ([1], "wrong_type"),  # each line is an object
        ([{"sku": "s", "quantity": "two"}], "wrong_type"),
        ([{"sku": "s", "quantity": 1.5}], "wrong_type"),
        ([{"sku": "s", "unit_price": "NaN"}], "wrong_type"),
        ([{"sku": "s", "quantity": 2.0, "unit_price": "1e1"}, {"sku": "t"}], None),
        # sent as text, its own escapes are read there: half a surrogate pair is no text
        (json.dumps([{"sku": "s\ud800"}]), "wrong_type"),
        (json.dumps([{"sku": "s\U0001f600"}]), None),
    ]
    content = "\n".join(json.dumps({**order, "lines": lines}) for lines, _ in cases)
    got = _reasons(_validated(spark, "orders", content.encode()))
    assert [(reason, detail) for _, reason, detail in got] == [
        (reason, reason and "lines") for _, reason in cases
    ]


def test_csv_is_read_by_header_name_with_quotes(spark):
    content = (
        b"cost,date,channel,campaign_id,currency,campaign_name\n"
        b'12.5,2026-03-05,display,c1,EUR,"Spring, ""best"" deals"\n'
        b"abc,2026-03-05,display,c2,EUR,x\n"
        b'1,2026-03-05,display,"c3,EUR,x\n'
        b"1,2026-03-05,display,c4,EUR\n"
        b"1,2026-03-05,radio,c5,EUR,x\n"
        b"1,2026-03-05,display,c6,EUR,x,extra\n"
    )
    df = _validated(spark, "spend", content)
    assert _reasons(df) == [
        (2, None, None),
        (3, "wrong_type", "cost"),
        (4, "malformed_record", "line"),
        (5, "malformed_record", "line"),
        (6, "invalid_value", "channel"),
        (7, "malformed_record", "line"),
    ]
    good = df.where("_line = 2").first()
    assert (good["campaign_name"], good["cost"], str(good["date"])) == (
        'Spring, "best" deals',
        12.5,
        DAY,
    )


# Text a CSV cell may hold: anything, line breaks, Java's line separators (U+2028, U+0085, a
# lone CR) and the unit separator included.
_CELL = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ['a"b', '""', ",", " x ", "\r", "\u2028", "a\u0085b", "\x1f", "", "a\nb", "\n", "x\n  \n"]
)


def _as_read(cell: str) -> str:
    """A quoted cell's text as bronze reads its lines: the CR of a CRLF dropped, and a line
    of only spaces inside the cell empty (the cell's first and last lines hold a quote)."""
    parts = cell.split("\n")
    inner = [p.removesuffix("\r") for p in parts[:-1]]
    inner[1:] = [p if p.strip(" ") else "" for p in inner[1:]]
    return "\n".join([*inner, parts[-1]])


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.tuples(_CELL, _CELL), min_size=1, max_size=6), sep=st.sampled_from(",;"))
def test_csv_cells_come_back_exactly_as_python_wrote_them(spark, rows, sep):
    """Whatever Python's csv writer makes of two text cells, with commas or semicolons between
    them, bronze reads the same text (an empty cell is absent; in a cell holding line breaks,
    as ``_as_read``), each record numbered by its first line. Quoted cells holding a line separator,
    the other separator or line breaks come first, every time."""
    rows = [
        ("a\r,b", "x\u2028,y"),
        ('q"\u0085"', "\r"),
        ("c;d", ";"),
        ("1\r\n2", "\n\n"),
        ("x\n  \r\ny", ""),
        ("", "\nz"),  # a line that could open a cell or close one: `,"`
        ("", '\n"z'),  # `,"` then `""z",...`
        *rows,
    ]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep, lineterminator="\n")
    writer.writerow(["campaign_id", "campaign_name", "date", "channel", "cost", "currency"])
    starts = []
    for campaign, name in rows:
        starts.append(out.getvalue().count("\n") + 1)
        writer.writerow([campaign, name, DAY, "display", "1.0", "EUR"])
    text = out.getvalue()
    lines = file_lines(_files(spark, {f"spend/{DAY}/f.csv": text.encode()}))
    got = parse_lines(lines, SOURCES["spend"]).orderBy("_line").collect()
    assert [(r["_line"], r["_malformed"]) for r in got] == [(n, False) for n in starts]
    fields = [(r["_fields"]["campaign_id"], r["_fields"]["campaign_name"]) for r in got]
    assert fields == [(_as_read(c) or None, _as_read(n) or None) for c, n in rows]


def test_values_past_the_json_parsers_own_limits_get_the_contracts_reason(spark):
    # Jackson refuses a number of over 1,000 characters and a string of over 20M by default;
    # the line would be malformed_record although the contract says what is wrong with it.
    lines = [
        _event()[:-1] + ', "price": ' + "1" * 1500 + "}",  # beyond a double: infinite
        _event(search_query="x" * 20_000_001),
    ]
    df = _validated(spark, "events", "\n".join(lines).encode())
    assert _reasons(df) == [(1, "wrong_type", "price"), (2, "oversize_field", "field")]


def test_semicolon_files_are_read_with_their_decimal_commas_and_thousands_marks(spark):
    content = (
        "date;channel;campaign_id;campaign_name;cost;currency;impressions\n"
        "2026-03-05;display;c1;Promo 12,50;412,37;EUR;98211\n"
        '2026-03-05;display;c2;x;"1,5";EUR;1\n'
        "2026-03-05;display;c3;x;12.50;EUR;1\n"
        "2026-03-05;display;c4;x;1.234,5;EUR;1\n"  # points group thousands before a comma
        "2026-03-05;display;c5;x;-,5;EUR;1\n"
        "2026-03-05,display,c6,x,1.0,EUR,1\n"  # commas in a semicolon file: one column
        # Excel's no-break space, the narrow one of newer locales, a plain space
        "2026-03-05;display;c7;x;1\u00a0234,50;EUR;12\u202f345\n"
        "2026-03-05;display;c8;x;1 234 567;EUR;1 000\n"
        "2026-03-05;display;c9;x;1.234;EUR;1\n"  # no comma: a decimal point
        "2026-03-05;display;c10;x;12 34,5;EUR;1\n"  # not groups of three
        "2026-03-05;display;c11;x;1.234.567;EUR;1\n"  # points with no decimal comma
        "2026-03-05;display;c12;x;1,0;EUR;1 234,5\n"  # a count must be whole
    ).encode()
    df = _validated(spark, "spend", content)
    assert _reasons(df) == [
        (2, None, None),
        (3, None, None),
        (4, None, None),
        (5, None, None),
        (6, None, None),
        (7, "malformed_record", "line"),
        (8, None, None),
        (9, None, None),
        (10, None, None),
        (11, "wrong_type", "cost"),
        (12, "wrong_type", "cost"),
        (13, "wrong_type", "impressions"),
    ]
    good = df.where("_reason IS NULL").orderBy("_line").collect()
    assert [(r["campaign_id"], r["cost"], r["impressions"]) for r in good] == [
        ("c1", 412.37, 98211),
        ("c2", 1.5, 1),
        ("c3", 12.5, 1),
        ("c4", 1234.5, 1),
        ("c5", -0.5, 1),
        ("c7", 1234.5, 12345),
        ("c8", 1234567.0, 1000),
        ("c9", 1.234, 1),
    ]
    assert good[0]["campaign_name"] == "Promo 12,50"  # text is not a number: kept as written
    # in a comma file a decimal comma stays what it was: not a number
    comma = b'date,channel,campaign_id,cost,currency\n2026-03-05,display,c1,"12,50",EUR\n'
    assert _reasons(_validated(spark, "spend", comma)) == [(2, "wrong_type", "cost")]


def test_csv_extra_header_column_is_rescued(spark):
    content = (
        b"date,channel,campaign_id,cost,currency,preferred_language\n"
        b"2026-03-05,display,c1,1.0,EUR,fr\n"
    )
    row = _validated(spark, "spend", content).first()
    assert (row["_reason"], row["_rescued"]) == (None, {"preferred_language": "fr"})


def test_csv_header_names_are_read_in_any_case(spark):
    content = (
        b"Date, Channel ,CAMPAIGN_ID,Cost,Currency,Preferred_Language\n"
        b"2026-03-05,display,c1,1.0,EUR,fr\n"
    )
    row = _validated(spark, "spend", content).first()
    assert (row["_reason"], row["campaign_id"], row["cost"]) == (None, "c1", 1.0)
    assert row["_rescued"] == {"Preferred_Language": "fr"}  # not the contract's: as written
    # two columns that are one name in two cases: which is right is unknowable; the header
    # line is no header then, and is kept in quarantine with its records
    twice = b"date,channel,campaign_id,cost,currency,Cost\n2026-03-05,display,c1,1.0,EUR,2.0\n"
    assert _reasons(_validated(spark, "spend", twice)) == [
        (1, "malformed_record", "line"),
        (2, "malformed_record", "line"),
    ]


@pytest.mark.parametrize("sep", [",", ";"])
def test_a_separator_ending_every_line_names_no_column(spark, sep):
    lines = [
        "date,channel,campaign_id,cost,currency,",
        "2026-03-05,display,c1,1.5,EUR,",
        "2026-03-05,display,c2,1.5,EUR,x",  # a cell under no name
        "2026-03-05,display,c3,1.5,EUR",  # not the file's shape
        "2026-03-05,display,c4,2.5,EUR,",
    ]
    if sep == ";":
        lines = [line.replace(",", ";").replace(".", ",") for line in lines]
    rows = _validated(spark, "spend", "\n".join(lines).encode()).orderBy("_line").collect()
    assert [(r["_line"], r["_reason"]) for r in rows] == [
        (2, None),
        (3, "malformed_record"),
        (4, "malformed_record"),
        (5, None),
    ]
    assert [(r["campaign_id"], r["cost"], r["_rescued"]) for r in rows if r["_reason"] is None] == [
        ("c1", 1.5, {}),
        ("c4", 2.5, {}),
    ]


@pytest.mark.parametrize(
    "header", ["date,,channel,campaign_id,cost,currency", ",,,,,", "date,channel,campaign_id,cost,"]
)
def test_empty_names_not_at_the_end_or_everywhere_break_the_header(spark, header):
    content = f"{header}\n2026-03-05,,display,c1,1.5,EUR\n".encode()
    reasons = _reasons(_validated(spark, "spend", content))
    # the last header is well formed (a trailing separator), but its record has six cells for
    # five; the others are no header, and their lines are kept as malformed records too
    broken = [] if header.endswith("cost,") else [(1, "malformed_record", "line")]
    assert reasons == [*broken, (2, "malformed_record", "line")]


def test_a_quoted_cell_may_hold_line_breaks(spark):
    header = "customer_number,source_system,updated_at,address_line1,city\n"
    content = (
        header
        + 'C1,pos,2026-03-05T10:00:00Z,"12 rue des Lilas\r\nBâtiment B",Lyon\n'
        + 'C2,pos,2026-03-05T10:00:00Z,"Hall ""A"",\n\n  \n3e étage","Saint-\nÉtienne"\n'
        + "C3,pos,2026-03-05T10:00:00Z,1 place Bellecour,Lyon\n"
    ).encode()
    rows = _validated(spark, "crm_customers", content).orderBy("_line").collect()
    got = [(r["_line"], r["_reason"], r["customer_number"], r["address_line1"]) for r in rows]
    assert got == [
        (2, None, "C1", "12 rue des Lilas\nBâtiment B"),  # the CR of a CRLF is not kept
        (4, None, "C2", 'Hall "A",\n\n\n3e étage'),  # blank lines come back empty
        (9, None, "C3", "1 place Bellecour"),
    ]
    assert rows[1]["city"] == "Saint-\nÉtienne"


def test_stray_quotes_and_cells_cut_short_pair_no_lines(spark):
    header = "date,channel,campaign_id,cost,currency\n"
    content = (
        header
        + '2026-03-05,display,5" screen,1.0,EUR\n'  # a stray quote in a bare cell...
        + "2026-03-05,display,c2,1.0,EUR\n"
        + '2026-03-05,display,6" screen,1.0,EUR\n'  # ...and another: no record from 2 to 4
        + '2026-03-05,display,"c5\n'  # a quoted line break: one record...
        + 'c5",1.0,EUR,extra\n'  # ...with a cell too many
        + '2026-03-05,display,"c7\n'  # left without a partner
        + "2026-03-05,display,c8,1.0,EUR\n"
        + '2026-03-05,display,"c9\n'  # cut short: the next line opens a cell, closes none
        + '2026-03-05,display,"c10\n'
        + 'x",1.0,EUR\n'
    ).encode()
    rows = _validated(spark, "spend", content).orderBy("_line").collect()
    assert [(r["_line"], r["_reason"], r["campaign_id"]) for r in rows] == [
        (2, "malformed_record", None),
        (3, None, "c2"),
        (4, "malformed_record", None),
        (5, "malformed_record", None),
        (7, "malformed_record", None),
        (8, None, "c8"),
        (9, "malformed_record", None),
        (10, None, "c10\nx"),
    ]


def _plan_nodes(node):
    yield node
    children = node.children()
    for i in range(children.size()):
        yield from _plan_nodes(children.apply(i))


def test_a_csv_parse_reads_its_files_once_per_branch_and_never_joins_the_index_to_a_line(spark):
    # Records on two lines every other record: the file's position index is as long as it.
    records = "".join(f'2026-03-05,display,"c{i}\n{i}",1.0,EUR\n' for i in range(0, 40, 2))
    records += "".join(f"2026-03-05,display,c{i},1.0,EUR\n" for i in range(1, 40, 2))
    content = b"date,channel,campaign_id,cost,currency\n" + records.encode()
    files = _files(spark, {f"spend/{DAY}/s.csv": content})
    parsed = parse_lines(file_lines(files), SOURCES["spend"])
    plan = parsed._jdf.queryExecution().executedPlan()
    # The lines in no span, the one aggregate (its exchange reused) and the lines of spans:
    # three scans. A fourth would mean the aggregate was pruned into two plans.
    assert plan.toString().count("Scan ExistingRDD") == 3, plan.toString()
    # The position index meets the lines only in an anti join, which writes out the lines
    # alone; any other join writes out both sides, the index copied once per line.
    joins = [n for n in _plan_nodes(plan) if n.nodeName() == "BroadcastHashJoin"]
    carrying = {
        n.joinType().toString(): any(
            n.output().apply(i).name() == "_starts" for i in range(n.output().size())
        )
        or "_starts" in n.condition().toString()
        for n in joins
    }
    assert carrying == {"LeftOuter": False, "LeftAnti": True, "Inner": False}, plan.toString()
    got = parsed.orderBy("_line").select("_line", "_malformed", F.col("_fields.campaign_id"))
    assert [tuple(r) for r in got.collect()] == [
        *[(2 + i, False, f"c{i}\n{i}") for i in range(0, 40, 2)],
        *[(42 + i // 2, False, f"c{i}") for i in range(1, 40, 2)],
    ]


def test_csv_file_with_broken_header_refuses_every_record(spark):
    content = b'date,"channel,cost\n2026-03-05,display,1\n'
    assert _reasons(_validated(spark, "spend", content)) == [
        (1, "malformed_record", "line"),  # the header itself: kept, not consumed in silence
        (2, "malformed_record", "line"),
    ]


def test_a_csv_file_without_its_header_loses_no_record(spark):
    # Its first record names none of the contract's fields: it is no header but a record.
    content = b"2026-03-05,display,c1,1.0,EUR\n2026-03-05,display,c2,2.0,EUR\n"
    assert _reasons(_validated(spark, "spend", content)) == [
        (1, "malformed_record", "line"),
        (2, "malformed_record", "line"),
    ]


def test_crm_birth_date_accepts_both_documented_formats(spark):
    header = "customer_number,source_system,updated_at,birth_date\n"
    content = (
        header
        + "C1,pos,2026-03-05T10:00:00+01:00,1986-04-17\n"
        + "C2,pos,2026-03-05T10:00:00+01:00,17/04/1986\n"
        + "C3,pos,2026-03-05T10:00:00+01:00,April 17\n"
    ).encode()
    df = _validated(spark, "crm_customers", content)
    assert _reasons(df) == [(2, None, None), (3, None, None), (4, "wrong_type", "birth_date")]
    assert {str(r["birth_date"]) for r in df.where("_reason IS NULL").collect()} == {"1986-04-17"}


def test_currency_is_an_iso_4217_code_in_any_case(spark):
    header = "date,channel,campaign_id,cost,currency\n"
    given = ["EUR", " usd ", "chf", "XAU", "EURO", "€", "E U R", "TV"]
    content = header + "".join(f"2026-03-05,display,c{i},1.0,{c}\n" for i, c in enumerate(given))
    df = _validated(spark, "spend", content.encode())
    refused = (None, None), ("invalid_value", "currency")
    assert [r[1:] for r in _reasons(df)] == [refused[0]] * 4 + [refused[1]] * 4
    # bronze keeps the value as delivered; silver upper-cases it
    kept = [r["currency"] for r in df.where("_reason IS NULL").orderBy("_line").collect()]
    assert kept == ["EUR", " usd ", "chf", "XAU"]


def test_access_log_fields_are_exact_whatever_characters_they_hold(spark):
    agents = [
        "Mozilla/5.0 \x1f Unit",  # the separator the parse joins its groups with
        "Line\u2028Separator and next\u0085line",
        'Quoted \\"x\\" and a backslash \\\\ and \\x07',  # as Apache escapes them
    ]
    content = "".join(
        f'203.0.113.9 - - [05/Mar/2026:14:03:22 +0100] "GET /p HTTP/1.1" 200 5 "-" "{ua}" '
        f'"ck_{i}"\n'
        for i, ua in enumerate(agents)
    ).encode()
    lines = file_lines(_files(spark, {f"access_log/{DAY}/f.log": content}))
    got = parse_lines(lines, SOURCES["access_log"]).orderBy("_line").collect()
    assert [(r["_fields"]["user_agent"], r["_fields"]["cookie_id"]) for r in got] == [
        ("Mozilla/5.0 \x1f Unit", "ck_0"),
        ("Line\u2028Separator and next\u0085line", "ck_1"),
        ('Quoted "x" and a backslash \\ and \\x07', "ck_2"),
    ]


def test_access_log_combined_and_extended(spark):
    content = (
        b'203.0.113.9 - - [05/Mar/2026:14:03:22 +0100] "GET /p/1?utm_source=x HTTP/1.1" 200 512 '
        b'"https://www.google.com/" "Mozilla/5.0 (X11)" "ck_1"\n'
        b'198.51.100.7 - - [05/Mar/2026:14:03:23 +0100] "GET /robots.txt HTTP/1.1" 404 - "-" '
        b'"Googlebot/2.1 \\"x\\""\n'
        b"203.0.113.9 - - [05/Mar/2026:14:03:22 +0100] GET broken\n"
        b'203.0.113.9 - - [99/Xyz/2026:14:03:22 +0100] "GET / HTTP/1.1" 200 1 "-" "-"\n'
        b'203.0.113.9 - - [01/Jan/1970:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"\n'
    )
    df = _validated(spark, "access_log", content)
    assert _reasons(df) == [
        (1, None, None),
        (2, None, None),
        (3, "malformed_record", "line"),
        (4, "invalid_timestamp", "ts"),
        (5, "invalid_timestamp", "ts"),
    ]
    first, second = df.where("_reason IS NULL").orderBy("_line").collect()
    assert (first["cookie_id"], first["status"], first["url"]) == ("ck_1", 200, "/p/1?utm_source=x")
    assert str(first["ts"]) == "2026-03-05 13:03:22"
    assert (second["bytes"], second["referrer"], second["user_agent"]) == (
        None,
        None,
        'Googlebot/2.1 "x"',
    )


def test_undated_file_is_compared_with_now(spark):
    df = _validated(spark, "events", _event(ts="2099-01-01T00:00:00Z").encode(), "events/x.jsonl")
    assert _reasons(df) == [(1, "future_timestamp", "ts")]


_SAMPLE_LINES = {
    "events": _event().encode(),
    "orders": json.dumps(
        {
            "order_id": "o1",
            "ts": "2026-03-05T10:00:00Z",
            "channel": "store",
            "currency": "EUR",
            "amount": 10.0,
            "lines": [{"sku": "s", "quantity": 1, "unit_price": 10.0}],
        }
    ).encode(),
    "access_log": b'1.2.3.4 - - [05/Mar/2026:14:03:22 +0100] "GET / HTTP/1.1" 200 1 "-" "UA"',
    "spend": b"2026-03-05,display,c1,1.0,EUR",
}
_HEADERS = {"spend": b"date,channel,campaign_id,cost,currency\n"}


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    source=st.sampled_from(sorted(_SAMPLE_LINES)),
    mutations=st.lists(
        st.tuples(st.integers(min_value=0, max_value=200), st.binary(max_size=12)),
        min_size=1,
        max_size=8,
    ),
    junk=st.lists(st.binary(max_size=40), max_size=4),
)
def test_any_mutation_is_loaded_or_quarantined_never_lost(spark, source, mutations, junk):
    """Random bytes and mutated lines: no crash, and every record line gets exactly one row."""
    good = _SAMPLE_LINES[source]
    mutated = [good[:cut] + insert + good[cut:] for cut, insert in mutations]
    content = _HEADERS.get(source, b"") + b"\n".join([good, *mutated, *junk]) + b"\n"
    df = _validated(spark, source, content)
    rows = df.select(
        "_line", "_text", "_reason", F.col("_fields").isNull().alias("no_fields")
    ).collect()
    physical = content.split(b"\n")
    offset = 1 if source in _HEADERS else 0
    # A line is a record unless it is empty or only spaces once a trailing CR is removed.
    expected = [
        i + 1
        for i, line in enumerate(physical)
        if i >= offset and line.removesuffix(b"\r").strip(b" ")
    ]
    # A CSV record may span lines (a quoted line break): it holds them all, blank ones too.
    covered = [
        n for r in rows for n in range(r["_line"], r["_line"] + (r["_text"] or "").count("\n") + 1)
    ]
    assert len(covered) == len(set(covered))
    assert sorted(n for n in covered if n in set(expected)) == expected
    assert all(r["_reason"] in (None, *REASON_CODES) for r in rows)
    assert not any(r["_reason"] is None and r["no_fields"] for r in rows)


_LINE_COLUMNS = ("_source_file", "_line", "_delivery_date", "_text", "_raw_bytes", "_is_header")


def _lines_both_ways(spark, folder, files: dict[str, bytes]):
    """(rows of text_lines, rows of file_lines, task per file) for files written under folder."""
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    binary = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(str(folder))
    paths = [r["path"] for r in binary.select("path").collect()]
    with whole_file_tasks(spark):
        read = text_lines(spark, paths).collect()
    split = file_lines(binary).collect()

    def key(r):
        return tuple(str(r[c]) for c in _LINE_COLUMNS)

    tasks = {}
    for r in read:
        tasks.setdefault(r["_source_file"], set()).add(r["_task"])
    return sorted(map(key, read)), sorted(map(key, split)), tasks


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    contents=st.lists(
        st.lists(
            st.one_of(
                st.binary(max_size=30),
                st.sampled_from(
                    [
                        b"",
                        b"  ",
                        b"\r",
                        b"\xef\xbb\xbf",
                        b"\xef\xbb\xbf{}",
                        b'{"a": 1}\r',
                        b"\xff\r",
                    ]
                ),
            ),
            max_size=6,
        ),
        min_size=1,
        max_size=3,
    )
)
def test_the_text_reader_gives_the_lines_the_split_gives(spark, tmp_path_factory, contents):
    """Random bytes (CR, BOM, blank and undecodable lines): both line readers agree on every
    column, line numbers included, and each file is read by one task of its own."""
    folder = tmp_path_factory.mktemp("lines")
    files = {f"{DAY}/f {i}.jsonl": b"\n".join(parts) for i, parts in enumerate(contents)}
    read, split, tasks = _lines_both_ways(spark, folder, files)
    assert read == split
    assert all(len(t) == 1 for t in tasks.values())
    assert len({next(iter(t)) for t in tasks.values()}) == len(tasks)


def test_a_first_line_holding_only_a_byte_order_mark_is_blank_to_both_readers(spark, tmp_path):
    files = {
        f"{DAY}/bom.jsonl": b'\xef\xbb\xbf\n{"a": 1}\n',
        f"{DAY}/bom2.jsonl": b"\xef\xbb\xbf \r\n",
    }
    read, split, _ = _lines_both_ways(spark, tmp_path, files)
    assert read == split and len(read) == 1


def test_many_small_files_in_a_batch_are_each_numbered_from_one(spark, tmp_path):
    """Left to itself, Spark packs small files into one task and cuts big ones: inside
    whole_file_tasks neither happens, and the session's settings come back after. The names
    hold what URIs escape (a space, a percent sign, a plus, an accent): each is matched."""
    files = {
        f"{DAY}/{i:02d} +%20é.jsonl": b"".join(b'{"n": %d}\n' % j for j in range(i + 1))
        for i in range(12)
    }
    # a key=value folder beside plain ones is read like any other
    files["part=1/late.jsonl"] = b'{"n": 0}\n'
    with conf_set(spark, {"spark.sql.files.maxPartitionBytes": "16"}):
        read, split, tasks = _lines_both_ways(spark, tmp_path, files)
        assert spark.conf.get("spark.sql.files.maxPartitionBytes") == "16"
    assert read == split and len(read) == sum(range(1, 13)) + 1
    assert all(len(t) == 1 for t in tasks.values()) and len(tasks) == 13


def test_whole_file_tasks_gives_the_session_its_settings_back_also_after_an_error(spark):
    keys = ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")
    with conf_set(spark, {keys[0]: "1000"}):  # one set before, one not
        assert spark.conf.get(keys[1], None) is None
        with pytest.raises(ZeroDivisionError), whole_file_tasks(spark):
            assert all(spark.conf.get(k) == str(2**40) for k in keys)
            _ = 1 / 0
        assert spark.conf.get(keys[0]) == "1000"
        assert spark.conf.get(keys[1], None) is None
    assert spark.conf.get(keys[0], None) is None


def test_lines_read_outside_whole_file_tasks_are_refused(spark, tmp_path):
    """Without whole_file_tasks a file cut in pieces would be numbered wrongly: the batch's
    check sees it and refuses, and a path with glob characters goes to the split instead."""
    (tmp_path / "big.jsonl").write_bytes(b'{"a": 1}\n' * 2000)
    (tmp_path / "odd[1].jsonl").write_bytes(b'{"a": 1}\n{"a": 2}\n')
    binary = spark.read.format("binaryFile").load(str(tmp_path))
    paths = sorted(r["path"] for r in binary.select("path").collect())
    small_tasks = {
        "spark.sql.files.maxPartitionBytes": "4096",
        "spark.sql.files.openCostInBytes": "0",
    }
    with conf_set(spark, small_tasks):
        lines = batch_lines(spark, binary, paths)
        per_file = (
            lines.groupBy("_source_file")
            .agg(F.min("_task").alias("first_task"), F.max("_task").alias("last_task"))
            .collect()
        )
        odd = lines.where(F.col("_source_file").endswith("odd[1].jsonl"))
        assert sorted(r["_line"] for r in odd.collect()) == [1, 2]
    with pytest.raises(CrossdataError, match="one task of their own"):
        check_line_numbers(per_file)
