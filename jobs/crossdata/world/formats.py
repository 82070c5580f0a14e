"""How each landing format is written: timestamps, JSON objects, CSV cells, access-log lines.

Builders work on whole columns (numpy object arrays) so a file's lines are assembled without a
Python loop per record wherever the values are known to be plain; free text goes through
``json.dumps`` / RFC 4180 quoting once per distinct value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from crossdata import contracts

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# The combined log format as ingestion reads it (crossdata.collect.formats.COMBINED_LOG, here
# with named groups): status and size are part of the pattern, quoted fields may hold escaped
# quotes, the extended variant's cookie is the first optional quoted field after the agent.
COMBINED_LOG_PATTERN = (
    r"^(?P<ip>\S+) (?P<ident>\S+) (?P<auth_user>\S+) \[(?P<ts>[^\]]+)\] "
    r'"(?P<method>\S+) (?P<url>\S+)(?: (?P<protocol>\S+))?" '
    r"(?P<status>\d{3}) (?P<bytes>\d+|-) "
    r'"(?P<referrer>(?:[^"\\]|\\.)*)" "(?P<user_agent>(?:[^"\\]|\\.)*)"'
    r'(?: "(?P<cookie_id>(?:[^"\\]|\\.)*)")?(?: .*)?$'
)
COMBINED_LOG = re.compile(COMBINED_LOG_PATTERN)
LOG_TIME_FORMAT = "%d/%b/%Y:%H:%M:%S %z"

_UNSAFE_JSON = re.compile(r'["\\\x00-\x1f\x7f\u2028\u2029]')
_CSV_NEEDS_QUOTES = re.compile(r'[",\r\n]|^\s|\s$')


def offset_text(minutes: int, colon: bool = True) -> str:
    """'+01:00' (or '+0100' without colon) for an offset in minutes."""
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(int(minutes)), 60)
    return f"{sign}{h:02d}:{m:02d}" if colon else f"{sign}{h:02d}{m:02d}"


def _by_value(values: np.ndarray, fn) -> np.ndarray:
    """Apply ``fn`` once per distinct value (vocabularies repeat a lot)."""
    codes, uniques = pd.factorize(np.asarray(values))
    mapped = np.array([fn(v) for v in uniques.tolist()], dtype=object)
    return mapped[codes] if len(uniques) else np.array([], dtype=object)


def iso_times(
    utc_ms: npt.ArrayLike,
    offset_min: npt.ArrayLike,
    unit: Literal["s", "ms"] = "ms",
    zulu: bool = False,
) -> np.ndarray:
    """ISO-8601 local times with their offset: 2026-03-05T14:03:22.120+01:00 (or ...Z)."""
    ms = np.asarray(utc_ms, dtype=np.int64)
    off = np.broadcast_to(np.asarray(offset_min, dtype=np.int64), ms.shape)
    wall = (ms + off * 60_000).astype("datetime64[ms]")
    body = np.datetime_as_string(wall, unit=unit).astype(object)
    if zulu:
        return body + "Z"
    suffix = _by_value(off, offset_text) if len(ms) else np.array([], dtype=object)
    return body + suffix


def wall_clock_times(utc_ms: npt.ArrayLike, offset_min: npt.ArrayLike) -> np.ndarray:
    """Local times as a till writes them, without an offset: 2026-03-05 14:03:22."""
    body = iso_times(utc_ms, offset_min, unit="s", zulu=True)
    return np.array([t[:10] + " " + t[11:19] for t in body], dtype=object)


def log_times(utc_ms: npt.ArrayLike, offset_min: npt.ArrayLike) -> np.ndarray:
    """Access-log times: [05/Mar/2026:14:03:22 +0100]."""
    ms = np.asarray(utc_ms, dtype=np.int64)
    off = np.broadcast_to(np.asarray(offset_min, dtype=np.int64), ms.shape)
    body = np.datetime_as_string((ms + off * 60_000).astype("datetime64[ms]"), unit="s").tolist()
    suffix = {int(o): offset_text(int(o), colon=False) for o in np.unique(off)}
    return np.array(
        [
            f"[{b[8:10]}/{MONTHS[int(b[5:7]) - 1]}/{b[0:4]}:{b[11:19]} {suffix[o]}]"
            for b, o in zip(body, off.tolist(), strict=True)
        ],
        dtype=object,
    )


def json_text(value: str) -> str:
    """One JSON string literal, non-ASCII kept as is."""
    return json.dumps(value, ensure_ascii=False)


def json_strings(values: np.ndarray, plain: bool = False) -> np.ndarray:
    """JSON string literals per value ('' stays '' = absent). ``plain``: no escaping needed."""
    v = np.asarray(values, dtype=object)
    present = v != ""
    if plain:
        return np.where(present, '"' + v + '"', "")
    return np.where(present, _by_value(v, json_text), "")


def json_numbers(values: np.ndarray, present: np.ndarray, decimals: int) -> np.ndarray:
    """Numbers as JSON text with fixed decimals ('' where absent)."""
    text = np.char.mod(f"%.{decimals}f", np.asarray(values, dtype=np.float64)).astype(object)
    return np.where(present, text, "")


def json_objects(first: tuple[str, np.ndarray], rest: Sequence[tuple[str, np.ndarray]]):
    """One JSON object per row from encoded columns; '' means the key is absent.

    ``first`` is present on every row (the record id), so the other keys can all be written
    with a leading comma.
    """
    name, enc = first
    out = f'{{"{name}":' + np.asarray(enc, dtype=object)
    for name, enc in rest:
        e = np.asarray(enc, dtype=object)
        out = out + np.where(e != "", f',"{name}":' + e, "")
    return out + "}"


# Sources whose export is written the way a French spreadsheet writes CSV: semicolons between
# cells and decimal commas in numbers (crossdata reads both, see docs/inputs.md).
SEMICOLON_SOURCES = frozenset({"spend"})


# Sources whose sheet a spreadsheet on Windows saves on even delivery days: in windows-1252,
# with "?" for each character that code page lacks, as Excel does. conf/base.yaml gives them
# that fallback encoding (collect.fallback_encodings); other days are UTF-8.
FALLBACK_ENCODINGS: dict[str, str] = {"spend": "windows-1252"}


# Sources some of whose times are written by tills, as wall-clock time without an offset (the
# store channel's orders, in Paris); conf/base.yaml gives them that zone
# (collect.local_time_zones).
LOCAL_TIME_ZONES: dict[str, str] = {"orders": "Europe/Paris"}


def file_encoding(source: str, day: int) -> str:
    """The encoding of ``source``'s files delivered on ``day``."""
    fallback = FALLBACK_ENCODINGS.get(source)
    return fallback if fallback and day % 2 == 0 else "utf-8"


def separator(source: str) -> str:
    """The cell separator of a CSV source's files."""
    return ";" if source in SEMICOLON_SOURCES else ","


def decimal_comma(text: str, thousands: str = "") -> str:
    """A number's text with a decimal comma, its whole part grouped by ``thousands`` when
    given (1234.5, "\u202f" -> "1\u202f234,5"; 412.37 -> 412,37)."""
    grouped = f"{Decimal(text):,}"  # grouped by commas, digits and sign kept as written
    return grouped.replace(",", " ").replace(".", ",").replace(" ", thousands)


def csv_cell(value: str, sep: str = ",") -> str:
    """RFC 4180: quote a field holding a comma (or ``sep``), quote, line break or edge
    whitespace."""
    if _CSV_NEEDS_QUOTES.search(value) or sep in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_cells(values: np.ndarray, plain: bool = False) -> np.ndarray:
    """A CSV cell per value (quoted only where needed)."""
    v = np.asarray(values, dtype=object)
    return v if plain else _by_value(v, csv_cell)


def csv_line(cells: Sequence[str], sep: str = ",") -> str:
    """One CSV line from raw cell values."""
    return sep.join(csv_cell(c, sep) for c in cells)


def csv_lines(columns: Sequence[np.ndarray]) -> np.ndarray:
    """Join already-quoted cells into lines."""
    out = np.asarray(columns[0], dtype=object)
    for col in columns[1:]:
        out = out + "," + np.asarray(col, dtype=object)
    return out


def csv_header(source: str, extra: Sequence[str] = ()) -> str:
    """A source's header line (contract order, then drift columns)."""
    return ",".join([*contracts.SOURCES[source].field_names, *extra])


def strip_newlines(values: np.ndarray) -> np.ndarray:
    """No raw line break may reach a line-based file."""
    return _by_value(
        np.asarray(values, dtype=object), lambda s: s.replace("\r", " ").replace("\n", " ")
    )


def money(values: np.ndarray, decimals: int = 2) -> np.ndarray:
    """Amounts as text with fixed decimals."""
    return np.char.mod(f"%.{decimals}f", np.asarray(values, dtype=np.float64)).astype(object)


def access_log_lines(
    ip: np.ndarray,
    time_text: np.ndarray,
    method: np.ndarray,
    url: np.ndarray,
    status: np.ndarray,
    size: np.ndarray,
    referrer: np.ndarray,
    user_agent: np.ndarray,
    cookie: np.ndarray | None,
) -> np.ndarray:
    """Combined log format lines (plus the quoted cookie when ``cookie`` is given)."""
    ref = np.where(np.asarray(referrer, dtype=object) == "", "-", referrer)
    out = (
        np.asarray(ip, dtype=object)
        + " - - "
        + time_text
        + ' "'
        + method
        + " "
        + url
        + ' HTTP/1.1" '
        + status
        + " "
        + size
        + ' "'
        + ref
        + '" "'
        + user_agent
        + '"'
    )
    if cookie is not None:
        ck = np.where(np.asarray(cookie, dtype=object) == "", "-", cookie)
        out = out + ' "' + ck + '"'
    return out
