"""Bad records on purpose: each has exactly one fault, whose reason code is unambiguous under
the priority order of ``contracts.REASONS``.

A fault is applied to one good line of a file by the file's writer, with the file's own random
stream. Only a field where the fault means something is touched (a wrong type goes into a
number field, an invalid value into a required enumeration, a bad time into the time field),
so the line keeps every other property of a good record.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass

import numpy as np

from crossdata import contracts
from crossdata.world import formats
from crossdata.world.model import WorldParams

OVERSIZE_CHARS = 20_000
FUTURE_DAYS = (3, 10)  # far beyond the end of the delivery day plus the tolerance

BAD_TIMES = (
    "2026-13-45T99:00:00+01:00",
    "yesterday",
    "32/13/2026 25:61",
    "not a time",
    "2026-03-05T25:61:00+01:00",
    "1970-01-01T00:00:00Z",  # a device clock reset to its epoch
)
BAD_LOG_TIMES = (
    "45/Foo/2026:99:00:00 +0100",
    "yesterday",
    "2026-03-05 14:03",
    "01/Jan/1970:00:00:00 +0000",
)
BAD_NUMBERS = ("12,50", "twelve", "1.2.3", "€12", "NaN", "Infinity")
BAD_LONGS = ("one", "5kB", "12,5", "NaN")  # no spaces: a log token stays one token
BAD_VALUES = ("unknown_value", "billboard", "teleport", "tv")
GARBAGE = (
    "<html><body><h1>502 Bad Gateway</h1></body></html>",
    "#### export interrupted ####",
    "ERROR: connection reset by peer",
    "\\N\\N\\N",
)
# Descriptive text fields a fault may blow up; identifiers are left alone on purpose so a bad
# record never hides or invents an identity.
OVERSIZE_FIELDS: dict[str, tuple[str, ...]] = {
    "events": ("page_url", "user_agent", "referrer", "event_id"),
    "access_log": ("url",),
    "ad_impressions": ("placement", "creative_id", "impression_id"),
    "ad_clicks": ("landing_url", "creative_id", "click_id"),
    "email_events": ("link_url", "message_id", "campaign_id"),
    "crm_customers": ("address_line1", "city", "first_name"),
    "orders": ("store_id", "order_id"),
    "consent": ("consent_id",),
    "spend": ("campaign_name", "campaign_id"),
}
# How each source writes its time field.
TIME_STYLE: dict[str, str] = {
    "events": "local_ms",
    "email_events": "utc_z",
    "ad_impressions": "utc_offset",
    "ad_clicks": "utc_z",
    "orders": "local_s",
    "consent": "local_s",
    "crm_customers": "local_s",
    "spend": "date",
    "access_log": "log",
}


@dataclass(frozen=True)
class Layout:
    """Where the fields of one line are (the CSV header, or nothing for JSON/logs)."""

    source: str
    header: tuple[str, ...] = ()
    sep: str = ","  # CSV cell separator
    encoding: str = "utf-8"  # of the file's bytes; a character it lacks is written "?"

    def encode(self, text: str) -> bytes:
        return text.encode(self.encoding, errors="replace")

    def cells(self, line: str) -> list[str]:
        return next(csv.reader([line], delimiter=self.sep))


# Silver expectations (collect.expectations, action quarantine) a record can break while
# passing every bronze check: (source, field) whose value is made negative.
EXPECTATION_FIELDS: dict[str, str] = {"orders": "amount", "spend": "cost"}
EXPECTATION_SHARE = 0.3


def reasons_for(source: str) -> tuple[str, ...]:
    """The reasons a line of this source can be given, in contract order."""
    fmt = contracts.SOURCES[source].format
    s = contracts.SOURCES[source]
    out = ["invalid_encoding", "malformed_record"]
    if fmt != "combined_log":
        out.append("missing_required_field")
    if s.get(s.time_field).type == "timestamp":
        out.append("invalid_timestamp")
    # In a log, status and size are part of the line's pattern (\d{3}, \d+|-): a wrong one
    # makes the line unreadable, so access logs never get wrong_type.
    if fmt != "combined_log" and any(f.type in ("double", "long") for f in s.fields):
        out.append("wrong_type")
    if fmt != "combined_log" and any(f.values and f.required for f in s.fields):
        out.append("invalid_value")
    out += ["oversize_field", "future_timestamp"]
    if source in EXPECTATION_FIELDS:
        out.append("expectation_failed")
    return tuple(out)


def record_key(layout: Layout, line: str) -> str:
    """The record's key as text ('|' between parts), '' when the source has none."""
    source = contracts.SOURCES[layout.source]
    if not source.record_key:
        return ""
    if source.format == "jsonl":
        obj = json.loads(line)
        return "|".join(str(obj.get(k, "")) for k in source.record_key)
    cells = layout.cells(line)
    return "|".join(cells[layout.header.index(k)] for k in source.record_key)


def future_text(P: WorldParams, source: str, day: int, rng: np.random.Generator) -> str:
    """A time several days after the delivery day, written the source's way."""
    shift = int(rng.integers(*FUTURE_DAYS))
    when = int(P.instant(np.array([day + shift]), np.array([rng.uniform(0, 86_000)]))[0])
    style = TIME_STYLE[source]
    if style == "date":
        return (P.start + dt.timedelta(days=day + shift)).isoformat()
    if style == "log":
        return formats.log_times(np.array([when]), P.paris_offset(np.array([when])))[0][1:-1]
    if style.startswith("utc"):
        return str(formats.iso_times(np.array([when]), 0, unit="s", zulu=style == "utc_z")[0])
    offset = P.paris_offset(np.array([when]))
    if style == "local_ms":
        return str(formats.iso_times(np.array([when]), offset, unit="ms")[0])
    return str(formats.iso_times(np.array([when]), offset, unit="s")[0])


def _choice(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def inject(
    P: WorldParams, layout: Layout, day: int, line: str, rng: np.random.Generator
) -> tuple[bytes, str]:
    """Turn one good line into a bad one; returns its bytes and its reason code."""
    source = contracts.SOURCES[layout.source]
    if source.format == "jsonl":
        fields = json.loads(line)
    elif source.format == "csv":
        fields = dict(zip(layout.header, layout.cells(line), strict=True))
    else:
        match = formats.COMBINED_LOG.match(line)
        if match is None:
            raise ValueError("a good access-log line must match the combined format")
        fields = {k: v for k, v in match.groupdict().items() if v is not None}
    options = [r for r in reasons_for(layout.source) if _applies(r, layout.source, fields)]
    # Orders and spend are small sources: favour the one fault only they can carry.
    if "expectation_failed" in options and rng.random() < EXPECTATION_SHARE:
        reason = "expectation_failed"
    else:
        reason = _choice(rng, [r for r in options if r != "expectation_failed"])
    if reason == "invalid_encoding":
        cut = int(rng.integers(0, len(line) + 1))
        return layout.encode(line[:cut]) + _undecodable(layout.source) + layout.encode(
            line[cut:]
        ), reason
    if reason == "malformed_record":
        return layout.encode(_malformed(layout, line, rng)), reason
    bad = dict(fields)
    s = contracts.SOURCES[layout.source]
    if reason == "missing_required_field":
        name = _choice(rng, [f.name for f in s.fields if f.required and fields.get(f.name)])
        how = int(rng.integers(3)) if source.format == "jsonl" else 0
        if how == 0 and source.format == "jsonl":
            del bad[name]
        else:
            bad[name] = None if how == 1 else ""
    elif reason == "invalid_timestamp":
        options_t = BAD_LOG_TIMES if source.format == "combined_log" else BAD_TIMES
        bad[s.time_field] = _choice(rng, options_t)
    elif reason == "wrong_type":
        numeric = [f for f in s.fields if f.type in ("double", "long") and _present(fields, f.name)]
        f = numeric[int(rng.integers(len(numeric)))]
        wrong: tuple[str, ...] = BAD_NUMBERS if f.type == "double" else BAD_LONGS
        if layout.sep == ";":  # a decimal comma is a number there
            wrong = tuple(v for v in wrong if v != "12,50")
        bad[f.name] = _choice(rng, wrong)
    elif reason == "invalid_value":
        enum = [f for f in s.fields if f.values and f.required and _present(fields, f.name)]
        bad[_choice(rng, [f.name for f in enum])] = _choice(rng, BAD_VALUES)
    elif reason == "oversize_field":
        name = next(n for n in OVERSIZE_FIELDS[layout.source] if _present(fields, n))
        value = str(bad[name])
        pad = "x" if source.format != "combined_log" else "a"
        bad[name] = value + pad * (OVERSIZE_CHARS - len(value))
    elif reason == "future_timestamp":
        bad[s.time_field] = future_text(P, layout.source, day, rng)
    elif reason == "expectation_failed":
        name = EXPECTATION_FIELDS[layout.source]
        value = bad[name]
        bad[name] = _negative(value)
    return layout.encode(_render(layout, bad)), reason


def _negative(value: object) -> object:
    """``value`` made negative, as a number or as its text: a zero becomes minus one (-0 and
    -0,00 are not below zero)."""
    if isinstance(value, int | float):
        return -value if value else -1
    text = str(value)
    if all(c == "0" for c in text if c.isdigit()):  # 0, 0,00, 0.0
        return "-1" + text.lstrip("0")
    return "-" + text


def _undecodable(source: str) -> bytes:
    """Bytes that are not UTF-8, nor in the source's fallback encoding when it has one:
    windows-1252 defines every byte but 0x81, 0x8D, 0x8F, 0x90 and 0x9D."""
    return b"\x81\x8d" if source in formats.FALLBACK_ENCODINGS else b"\xff\xfe"


def _present(fields: dict, name: str) -> bool:
    value = fields.get(name)
    return value is not None and value != ""


def _applies(reason: str, source: str, fields: dict) -> bool:
    s = contracts.SOURCES[source]
    if reason == "wrong_type":
        return any(f.type in ("double", "long") and _present(fields, f.name) for f in s.fields)
    if reason == "invalid_value":
        return any(f.values and f.required and _present(fields, f.name) for f in s.fields)
    if reason == "oversize_field":
        return any(_present(fields, n) for n in OVERSIZE_FIELDS[source])
    return True


def _render(layout: Layout, fields: dict) -> str:
    source = contracts.SOURCES[layout.source]
    if source.format == "jsonl":
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    if source.format == "csv":
        cells = [fields[h] if fields[h] is not None else "" for h in layout.header]
        return formats.csv_line(cells, layout.sep)
    cookie = f' "{fields["cookie_id"]}"' if "cookie_id" in fields else ""
    protocol = f" {fields['protocol']}" if "protocol" in fields else ""
    return (
        f"{fields['ip']} {fields['ident']} {fields['auth_user']} [{fields['ts']}] "
        f'"{fields["method"]} {fields["url"]}{protocol}" {fields["status"]} {fields["bytes"]} '
        f'"{fields["referrer"]}" "{fields["user_agent"]}"{cookie}'
    )


def _malformed(layout: Layout, line: str, rng: np.random.Generator) -> str:
    """A line the source's reader cannot parse at all."""
    fmt = contracts.SOURCES[layout.source].format
    how = int(rng.integers(3))
    if how == 0:
        return _choice(rng, GARBAGE)
    if fmt == "jsonl":
        if how == 1:
            return "[" + line + "]"  # valid JSON, but not an object
        return line[: int(rng.integers(1, len(line) - 1))]  # cut before the closing brace
    if fmt == "csv":
        cells = layout.cells(line)
        if how == 1:
            return formats.csv_line([*cells, "extra"], layout.sep)
        return formats.csv_line(cells[: max(1, len(cells) // 2)], layout.sep)
    # Access log: cut before the referrer, so no optional part can make it match again.
    match = formats.COMBINED_LOG.match(line)
    end = match.start("referrer") - 1 if match else len(line)
    for _ in range(5):
        cut = line[: int(rng.integers(5, max(6, end)))]
        if formats.COMBINED_LOG.match(cut) is None:
            return cut
    return _choice(rng, GARBAGE)


__all__ = ["Layout", "inject", "reasons_for", "record_key"]
