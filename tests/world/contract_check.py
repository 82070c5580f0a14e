"""An independent reading of the input contracts, with standard tools only (json, csv, re,
datetime): what ingestion must decide for each line. The generator's truth is checked against
it, so it shares no code with the generator beyond ``crossdata.contracts``.

It follows the choices ``crossdata.collect`` made where the contract leaves room: in an access
log the status (three digits) and the size (digits or -) belong to the line's pattern, a
blank value is an absent value, a JSON object with a repeated key is malformed, and the
default silver expectations quarantine a negative order amount or spend cost.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from crossdata import contracts
from crossdata.world import formats

COMBINED = re.compile(
    r"^(?P<ip>\S+) (?P<ident>\S+) (?P<auth_user>\S+) \[(?P<ts>[^\]]+)\] "
    r'"(?P<method>\S+) (?P<url>\S+)(?: (?P<protocol>\S+))?" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'"(?P<referrer>(?:[^"\\]|\\.)*)" "(?P<user_agent>(?:[^"\\]|\\.)*)"'
    r'(?: "(?P<cookie_id>(?:[^"\\]|\\.)*)")?(?: .*)?$'
)
DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
INTEGER = re.compile(r"[+-]?[0-9]+")
# In a semicolon file a number may have a decimal comma and thousands grouped by a space (or
# a no-break one), or by points before a decimal comma.
LOCAL_NUMBER = re.compile(
    r"\s*[+-]?(?:[0-9]*,[0-9]+|[0-9]{1,3}(?:[ \u00a0\u202f][0-9]{3})+(?:,[0-9]+)?"
    r"|[0-9]{1,3}(?:\.[0-9]{3})+,[0-9]+)\s*",
    re.ASCII,
)
GROUP_MARKS = re.compile("[ .\u00a0\u202f]")


class Header(list):
    """A CSV file's column names, and the separator its header line shows."""

    sep: str = ","


def csv_header(line: str) -> Header:
    """The contract's rule: one column read with commas and several with semicolons marks a
    semicolon file."""
    commas = next(csv.reader([line]))
    semicolons = next(csv.reader([line], delimiter=";"))
    semicolon = len(commas) == 1 and len(semicolons) > 1
    header = Header(semicolons if semicolon else commas)
    header.sep = ";" if semicolon else ","
    return header


IDENTIFYING = {*contracts.IDENTIFIER_TYPES, "id_value"}
QUARANTINE_EXPECTATIONS = {"orders": "amount", "spend": "cost"}  # must not be negative
MAX_CHARS = contracts.DEFAULT_MAX_FIELD_CHARS
TOLERANCE = dt.timedelta(hours=contracts.DEFAULT_FUTURE_TOLERANCE_HOURS)
EARLIEST = dt.datetime.fromisoformat(contracts.DEFAULT_MIN_TIMESTAMP)


@dataclass(frozen=True)
class LandingFile:
    path: Path
    relative: str
    source: str
    day: dt.date

    @property
    def is_csv(self) -> bool:
        return contracts.SOURCES[self.source].format == "csv"

    def content(self) -> bytes:
        """The file's text as bytes, uncompressed when it was delivered gzipped."""
        return text_of(self.path)


def text_of(path: Path) -> bytes:
    """A landing file's text as bytes, uncompressed when it was delivered gzipped."""
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.name.endswith(".gz") else raw


def line_text(source: str, raw: bytes) -> str:
    """A line's text as crossdata reads it with the world's conf: UTF-8, else the source's
    fallback encoding (UnicodeDecodeError when neither reads it)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        fallback = formats.FALLBACK_ENCODINGS.get(source)
        if fallback is None:
            raise
        return raw.decode(fallback)


def landing_files(root: Path) -> list[LandingFile]:
    out = []
    for source in contracts.SOURCES:
        for path in sorted((root / source).glob("*/*")):
            rel = path.relative_to(root).as_posix()
            out.append(LandingFile(path, rel, source, dt.date.fromisoformat(path.parent.name)))
    return out


# A wall-clock time without an offset, as crossdata reads one for a source with a local zone
_WALL_CLOCK = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?")


def parse_time(value: str, fmt: str, source: str | None = None) -> dt.datetime | None:
    """A record time as crossdata reads it with the world's conf; None when it cannot."""
    try:
        if fmt == "combined_log":
            return dt.datetime.strptime(value, "%d/%b/%Y:%H:%M:%S %z")
        t = dt.datetime.fromisoformat(value)
    except (ValueError, TypeError):
        return None
    if t.tzinfo is not None:
        return t
    zone = formats.LOCAL_TIME_ZONES.get(source or "")
    if zone is None or not _WALL_CLOCK.fullmatch(value):
        return None
    local = t.replace(tzinfo=ZoneInfo(zone))  # fold 0: the first of an autumn hour's two times
    # a time the clocks skipped comes back as another wall-clock time
    same = local.astimezone(dt.UTC).astimezone(local.tzinfo).replace(tzinfo=None) == t
    return local if same else None


def parse_date(value: str) -> dt.date | None:
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")  # RFC 8259 has no NaN or Infinity


def fields_of(source: str, text: str, header: list[str]) -> dict | None:
    sep = getattr(header, "sep", ",")
    """The line's fields, or None when the format itself cannot be read."""
    fmt = contracts.SOURCES[source].format
    if fmt == "jsonl":
        repeated: list[bool] = []

        def pairs(items: list[tuple[str, object]]) -> dict:
            repeated.append(len({k for k, _ in items}) != len(items))
            return dict(items)

        try:
            obj = json.loads(text, object_pairs_hook=pairs, parse_constant=_no_constant)
        except ValueError:
            return None
        # One object per line, nothing around it, no key twice (which value would be right?).
        top = text.strip()
        if not (isinstance(obj, dict) and top.startswith("{") and top.endswith("}")):
            return None
        return None if repeated[-1] else obj
    if fmt == "csv":
        try:
            cells = next(csv.reader([text], delimiter=sep, strict=True))
        except csv.Error:
            return None
        if len(cells) != len(header):
            return None
        if sep == ";":
            numbers = {
                f.name for f in contracts.SOURCES[source].fields if f.type in ("double", "long")
            }
            cells = [
                GROUP_MARKS.sub("", c).replace(",", ".")
                if name in numbers and LOCAL_NUMBER.fullmatch(c)
                else c
                for name, c in zip(header, cells, strict=True)
            ]
        return dict(zip(header, cells, strict=True))
    m = COMBINED.match(text)
    if m is None:
        return None
    # In a log, "-" stands for an absent value (no ident, no size, no referrer, no cookie).
    return {k: v for k, v in m.groupdict().items() if v is not None and v != "-"}


def is_number(value: object, kind: str) -> bool:
    """A finite number written in decimal; a count is whole: digits within 64 bits, or a
    decimal whose value is whole and exact in a double (12.0 counts as 12)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return kind == "double" or -(2**63) <= value < 2**63
    if isinstance(value, str):
        text = value.strip(" ")
        if kind == "long" and INTEGER.fullmatch(text):
            return -(2**63) <= int(text) < 2**63
        if not DECIMAL.fullmatch(text):
            return False
        value = float(text)
    if not isinstance(value, float) or not math.isfinite(value):
        return False
    return kind == "double" or (value.is_integer() and abs(value) <= 2**53)


def is_json_structure(value: object) -> bool:
    """An array or object, or the JSON text of one."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            value = json.loads(value)
        except ValueError:
            return False
    return isinstance(value, dict | list)


def order_lines_fit(value: object) -> bool:
    """One array (or its JSON text) of objects, each quantity a count, each unit price a number."""
    if isinstance(value, str):
        try:
            value = json.loads(value, parse_constant=_no_constant)
        except ValueError:
            return False
    if not isinstance(value, list):
        return False
    return all(
        isinstance(line, dict)
        and (line.get("quantity") is None or is_number(line["quantity"], "long"))
        and (line.get("unit_price") is None or is_number(line["unit_price"], "double"))
        for line in value
    )


def reason_for(source: str, raw: bytes, header: list[str], day: dt.date) -> str | None:
    """The quarantine reason of one physical line (None: a good record)."""
    contract = contracts.SOURCES[source]
    try:
        text = line_text(source, raw)
    except UnicodeDecodeError:
        return "invalid_encoding"
    fields = fields_of(source, text, header)
    if fields is None:
        return "malformed_record"

    def present(name: str) -> bool:
        return fields.get(name) is not None and str(fields.get(name)).strip() != ""

    if any(f.required and not present(f.name) for f in contract.fields):
        return "missing_required_field"
    times = [f for f in contract.fields if f.type == "timestamp" and present(f.name)]
    parsed = [parse_time(str(fields[f.name]), contract.format, source) for f in times]
    if any(when is None or when < EARLIEST for when in parsed):
        return "invalid_timestamp"
    for f in contract.fields:
        if not present(f.name):
            continue
        if f.type in ("double", "long") and not is_number(fields[f.name], f.type):
            return "wrong_type"
        if f.type == "date" and parse_date(str(fields[f.name])) is None:
            return "wrong_type"
        if f.name in IDENTIFYING and is_json_structure(fields[f.name]):
            return "wrong_type"
        if f.type == "json" and not order_lines_fit(fields[f.name]):
            return "wrong_type"

    def allowed(f: contracts.Field, value: object) -> bool:
        # a long set (currencies) is matched trimmed of spaces and upper-cased
        return (str(value).strip(" ").upper() if f.value_set else value) in f.values

    if any(
        f.values and present(f.name) and not allowed(f, fields[f.name]) for f in contract.fields
    ):
        return "invalid_value"
    texts = [v if isinstance(v, str) else json.dumps(v) for v in fields.values() if v is not None]
    if any(len(v) > MAX_CHARS for v in texts):
        return "oversize_field"
    day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    value = fields[contract.time_field]
    if contract.time_field == "date":
        when = dt.datetime.combine(parse_date(str(value)), dt.time(), dt.UTC)  # type: ignore[arg-type]
    else:
        when = parse_time(str(value), contract.format, source)  # type: ignore[assignment]
    if when > day_end + TOLERANCE:
        return "future_timestamp"
    money = QUARANTINE_EXPECTATIONS.get(source)
    if money and float(fields[money]) < 0:
        return "expectation_failed"
    return None


def _one_csv_record(source: str, raw: bytes, sep: str) -> bool:
    """Whether ``raw`` (lines joined by LF) reads as exactly one CSV record."""
    try:
        text = line_text(source, raw)
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True))
    except (UnicodeDecodeError, csv.Error):
        return False
    return len(rows) == 1


def file_lines(f: LandingFile) -> tuple[list[str], list[tuple[int, bytes]]]:
    """(header, records) of a landing file: each record is (the number of its first physical
    line, its bytes). A quoted CSV cell may hold a line break: a line with an odd number of
    quotes and the next line, when that one has an odd number too and the two joined by LF
    read as exactly one CSV record, are one record (the world writes at most one break in a
    record). Any other line is a record of its own."""
    raw = f.content()
    assert raw.endswith(b"\n") and b"\r" not in raw
    lines = raw[:-1].split(b"\n")
    if not f.is_csv:
        return [], list(enumerate(lines, start=1))
    header = csv_header(lines[0].decode())
    records: list[tuple[int, bytes]] = []
    i = 1
    while i < len(lines):
        line = lines[i]
        if line.count(b'"') % 2 == 1 and i + 1 < len(lines):
            joined = line + b"\n" + lines[i + 1]
            if lines[i + 1].count(b'"') % 2 == 1 and _one_csv_record(f.source, joined, header.sep):
                records.append((i + 1, joined))
                i += 2
                continue
        records.append((i + 1, line))
        i += 1
    return header, records
