"""Hold each parsed record to its source's contract: typed fields, or one reason it fails.

Input: rows with ``_fields`` (a struct: the raw text of each contract field), ``_rescued`` and
``_malformed`` from ``formats``. Output: the same rows plus one typed column per contract field,
``_reason`` (NULL for a good record, else the first failing reason in
``contracts.REASONS`` order) and ``_detail`` (which field, never its value).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from crossdata.collect.formats import single_json_value
from crossdata.contracts import IDENTIFIER_TYPES, REASON_CODES, Field, Format, Source

_ISO = "yyyy-MM-dd'T'HH:mm:ss[.SSSSSSSSS]XXX"
# A wall-clock time without an offset, as a till or a local system writes it: 'T' or a space
# between date and time.
_LOCAL_TIME = r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?)$"
_LOG_TIME = "dd/MMM/yyyy:HH:mm:ss Z"
_DATE_FORMATS = ("yyyy-MM-dd", "dd/MM/yyyy")
_SPARK_TYPES = {
    "string": "string",
    "timestamp": "timestamp",
    "long": "bigint",
    "double": "double",
    "date": "date",
    "json": "string",
}
# A number as people and JSON write one: sign, digits, point, exponent (ASCII digits only),
# to the very end of the text (Java's $ would also match before a final line separator).
_DECIMAL = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?(?![\s\S])"
_EXACT_IN_DOUBLE = 2**53
_IDENTIFYING = frozenset((*IDENTIFIER_TYPES, "id_value"))
_ORDER_LINE = "array<struct<sku:string,quantity:string,unit_price:string>>"


@dataclass(frozen=True)
class RecordRules:
    """The limits a record is checked against (from collect settings)."""

    max_field_chars: int
    future_tolerance_hours: int
    # A time before this is a device's or system's clock gone back to its epoch, not a record
    # of that day: 1970-01-01, 2000-01-01, 0001-01-01.
    min_timestamp: dt.datetime
    # An IANA zone (Europe/Paris) a time written without an offset is read in; None: such a
    # time is invalid_timestamp (collect.local_time_zones)
    local_time_zone: str | None = None


def spark_type(field: Field) -> str:
    return _SPARK_TYPES[field.type]


def _raw(name: str) -> Column:
    value = F.col("_fields")[name]
    # An empty or blank value is an absent value, in every format.
    return F.when(F.length(F.trim(value)) > 0, value)


def _parse_timestamp(raw: Column, fmt: Format, zone: str | None = None) -> Column:
    if fmt == "combined_log":
        return F.try_to_timestamp(raw, F.lit(_LOG_TIME))
    text = F.trim(raw)
    with_offset = F.try_to_timestamp(text, F.lit(_ISO))
    if zone is None:
        return with_offset
    return F.coalesce(with_offset, _local_time(text, zone))


def _local_time(text: Column, zone: str) -> Column:
    """A wall-clock time in ``zone`` -> its instant; NULL when the text is not one, or when the
    zone's clocks skipped it (a spring-forward gap: no such time happened there).

    In the hour a clock turns back, the time happened twice: the first (summer time) is
    taken. The session's own time zone plays no part: the wall clock is read as UTC, then
    ``to_utc_timestamp`` reads it in ``zone``; going back with ``from_utc_timestamp`` must give
    the same wall clock, or the time fell in a gap (Java moves it past the gap instead).
    """
    wall = F.try_to_timestamp(
        F.concat(F.regexp_replace(text, _LOCAL_TIME, "$1T$2"), F.lit("Z")), F.lit(_ISO)
    )
    wall = F.when(text.rlike(_LOCAL_TIME), wall)
    instant = F.to_utc_timestamp(wall, zone)
    return F.when(F.from_utc_timestamp(instant, zone) == wall, instant)


def _parse_date(raw: Column) -> Column:
    return F.coalesce(*[F.try_to_date(F.trim(raw), f) for f in _DATE_FORMATS])


def _as_number(text: Column) -> Column:
    """Trimmed text as a finite double when it is written as a decimal number, else NULL.

    Spark's cast also reads Java's spellings: ``NaN``, ``Infinity``, ``inf``, ``1.5d``,
    ``2f``, hexadecimal ``0x1p3``, and turns ``1e400`` into infinity. None is a number here.
    """
    value = text.try_cast("double")
    return F.when(text.rlike(_DECIMAL) & (F.abs(value) < F.lit(float("inf"))), value)


def parse_double(raw: Column) -> Column:
    """A number field's text -> its double, NULL when it holds something else."""
    return _as_number(F.trim(raw))


def parse_long(raw: Column) -> Column:
    """A count field's text -> its bigint, NULL when it holds something else."""
    text = F.trim(raw)
    # Digits with a sign: exact, NULL past the bigint range. Otherwise "12.0" and "1.2e1" are
    # the same count as "12" ("12.5" is not a count), read through a double, so only while
    # every whole number is exact in one (a cast of 2**63 would come back as 2**63 - 1).
    as_double = _as_number(text)
    exact = F.abs(as_double) <= F.lit(float(_EXACT_IN_DOUBLE))
    whole = F.when(exact, F.when(as_double == F.floor(as_double), as_double.cast("bigint")))
    return F.coalesce(text.try_cast("bigint"), whole)


def typed_value(field: Field, fmt: Format, zone: str | None = None) -> Column:
    """The field's raw text converted to its contract type (NULL when absent or unreadable);
    ``zone``: where a time written without an offset was read (None: it is unreadable)."""
    raw = _raw(field.name)
    if field.type == "timestamp":
        return _parse_timestamp(raw, fmt, zone)
    if field.type == "date":
        return _parse_date(raw)
    if field.type == "long":
        return parse_long(raw)
    if field.type == "double":
        return parse_double(raw)
    return raw


def validate(parsed: DataFrame, source: Source, rules: RecordRules) -> DataFrame:
    """Add typed contract columns, ``_rescued``, ``_reason`` and ``_detail``."""
    fmt = source.format
    typed = {f.name: typed_value(f, fmt, rules.local_time_zone) for f in source.fields}
    with_typed = parsed.select("*", *[typed[f.name].alias(f.name) for f in source.fields])

    # (reason code, failed?, detail) in contracts.REASONS order; each list may hold several
    # fields, the first failing one is named in _detail.
    checks: dict[str, list[tuple[Column, str]]] = {code: [] for code in REASON_CODES}
    checks["invalid_encoding"].append((F.col("_text").isNull(), "line"))
    checks["malformed_record"].append((F.col("_malformed"), "line"))
    for f in source.fields:
        raw = _raw(f.name)
        present = raw.isNotNull()
        value = F.col(f.name)
        if f.required:
            checks["missing_required_field"].append((~present, f.name))
        if f.type == "timestamp":
            too_early = value < F.lit(rules.min_timestamp)
            checks["invalid_timestamp"].append((present & (value.isNull() | too_early), f.name))
        elif f.type in ("long", "double", "date"):
            checks["wrong_type"].append((present & value.isNull(), f.name))
        elif f.type == "json" and f.name == "lines":
            checks["wrong_type"].append((present & ~_order_lines_fit(raw), f.name))
        elif f.name in _IDENTIFYING:
            checks["wrong_type"].append((present & _json_structure(raw), f.name))
        if f.values:
            # A long set (currencies) is matched on the trimmed upper-cased value; isin becomes
            # one hash-set lookup past a few values.
            given = F.upper(F.trim(raw)) if f.value_set else raw
            checks["invalid_value"].append((present & ~given.isin(list(f.values)), f.name))
    # No field is longer than its line (decoding escapes and quotes only shortens text), so
    # the fields are measured only on the rare lines longer than the limit.
    limit = F.lit(rules.max_field_chars)
    longest = F.greatest(*[F.length(F.col("_fields")[n]) for n in source.field_names])
    too_long = (F.length("_text") > limit) & (
        (longest > limit) | F.exists(F.map_values("_rescued"), lambda v: F.length(v) > limit)
    )
    checks["oversize_field"].append((F.coalesce(too_long, F.lit(False)), "field"))
    checks["future_timestamp"].append((_is_future(source, rules), source.time_field))

    reason_cases: list[Column] = []
    detail_cases: list[Column] = []
    for code in REASON_CODES:
        for failed, name in checks[code]:
            cond = F.coalesce(failed, F.lit(False))
            reason_cases.append(F.when(cond, F.lit(code)))
            detail_cases.append(F.when(cond, F.lit(name)))
    return with_typed.select(
        "*",
        F.coalesce(*reason_cases).alias("_reason"),
        F.coalesce(*detail_cases).alias("_detail"),
    )


def _json_structure(raw: Column) -> Column:
    """Whether an identifier's text is a JSON array or object.

    A JSON line's parse gives a nested value as its JSON text, so ``["a", "b"]`` and the
    string ``"[\\"a\\", \\"b\\"]"`` read the same; neither identifies anybody, and a
    CSV cell holding one is no better. Only a value that starts like one is parsed.
    """
    looks = raw.startswith("[") | raw.startswith("{")
    parses = F.json_array_length(raw).isNotNull() | F.json_object_keys(raw).isNotNull()
    return F.when(looks, parses).otherwise(False)


def order_lines(raw: Column) -> Column:
    """An order's ``lines`` text -> its array of (sku, quantity, unit_price) as text."""
    return single_json_value(raw, _ORDER_LINE)[0]


def _order_lines_fit(raw: Column) -> Column:
    """Exactly one array of objects whose quantity is a count and unit price a number."""
    lines, one_array = single_json_value(raw, _ORDER_LINE)

    def unfit(line: Column) -> Column:
        quantity, price = line["quantity"], line["unit_price"]
        return (
            line.isNull()
            | (quantity.isNotNull() & parse_long(quantity).isNull())
            | (price.isNotNull() & parse_double(price).isNull())
        )

    # A lambda is interpreted row by row: only the arrays that parsed pay for it.
    return one_array & ~F.exists(lines, unfit)


def _is_future(source: Source, rules: RecordRules) -> Column:
    """Later than the end of the landing day plus tolerance (or than now, undated files)."""
    value = F.col(source.time_field)
    when = value.cast("timestamp") if source.get(source.time_field).type == "date" else value
    day_end = F.to_timestamp(F.date_add(F.col("_delivery_date"), 1))
    limit = F.coalesce(day_end, F.current_timestamp()) + F.expr(
        f"INTERVAL {int(rules.future_tolerance_hours)} HOURS"
    )
    return when > limit
