"""Identifier hygiene for silver: canonical emails and phones, placeholders nulled and counted.

An identifier links records of one person; a junk value (``undefined``, ``0``, an all-zero
UUID, ``test@test.com``) would link everyone who carries it, so it is nulled here and the
names of the nulled columns are kept in ``placeholder_fields`` for data-quality counts.

A value that is not a placeholder but cannot be used either (an email without a dotted domain,
a number that is not valid in its region, any identifier holding a control character) is
nulled by its normalisation. Those are listed in the transient column ``_unusable_fields``:
silver counts them in ``ops.data_quality`` and drops the column before writing (bronze keeps
the raw value).
"""

from __future__ import annotations

import gettext
import unicodedata
from collections.abc import Mapping, Sequence
from functools import lru_cache, reduce

import pandas as pd
import phonenumbers
import pycountry
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from crossdata.config.schema import CollectSettings
from crossdata.contracts import IDENTIFIER_TYPES

PLACEHOLDER_FIELDS = "placeholder_fields"
# Counted, then dropped before the write: not a stored column.
UNUSABLE_FIELDS = "_unusable_fields"
# Identifier types stored upper-cased (the others but emails keep their case).
UPPER_CASED_TYPES = ("loyalty_card", "customer_number")

# Java regexes. (?U) makes \s match Unicode whitespace too (a pasted non-breaking space is
# common in CRM exports). \p{Cf} is an invisible format character (a zero-width space, a
# byte-order mark) that copy and paste leaves around a value: trimmed like a blank at the
# edges. \p{Cc} is a control character (C0, DEL, C1), which no real identifier holds, nor a
# format character inside it: a value with one is a zeroed buffer or a corrupted field, and
# the same junk on many records would join strangers.
_EDGE_SPACE = r"(?U)^[\s\p{Cf}]+|[\s\p{Cf}]+$"
_CONTROL = r"[\p{Cc}\p{Cf}]"
_BLANK_OR_CONTROL = r"(?U)[\s\p{Cc}\p{Cf}]"
# Unquoted addresses only: besides blanks and invisible characters, the specials a bare
# address cannot hold ("<>()[],;:\) are refused, so a pasted "a@b.fr>" is not a second address.
_NOT_IN_ADDRESS = r"@\s\p{Cc}\p{Cf}<>()\[\],;:\\\""
_PLAUSIBLE_EMAIL = rf"(?U)^[^{_NOT_IN_ADDRESS}]+@[^{_NOT_IN_ADDRESS}.]+(\.[^{_NOT_IN_ADDRESS}.]+)+$"
# What a copied link or header wraps an address in: "mailto:a@b.fr", "<a@b.fr>".
_MAILTO = r"(?i)^mailto:"
_BRACKETED = r"^<([^<>]*)>$"


def normalize_email(col: Column) -> Column:
    """Trimmed, lower-cased address without a ``mailto:`` or enclosing angle brackets; NULL
    unless one @, a local part and a dotted domain, without blanks or specials."""
    # A domain needs a dot between non-empty labels: "a@b." and "a@.b" are typos, not mail.
    unwrapped = F.regexp_replace(F.regexp_replace(_trimmed(col), _MAILTO, ""), _BRACKETED, "$1")
    value = F.lower(_trimmed(unwrapped))
    return F.when(value.rlike(_PLAUSIBLE_EMAIL), value)


def _trimmed(col: Column) -> Column:
    return F.regexp_replace(col.cast("string"), _EDGE_SPACE, "")


def record_key(col: Column) -> Column:
    """A record's key as silver matches it (a CRM customer number): blanks and invisible
    characters around it trimmed, Unicode ones included, upper-cased; never NULLed, since the
    record needs its key (``normalize_token`` would null one holding a control character)."""
    return F.upper(_trimmed(col))


def normalize_token(col: Column, upper: bool = False) -> Column:
    """An identifier that is neither an email nor a phone (a cookie, a device, a card): blanks
    around it trimmed, upper-cased when ``upper``; NULL when it holds a control character."""
    text = col.cast("string")
    # Nearly every value holds neither a blank nor a control character: one scan tells.
    odd = F.coalesce(text.rlike(_BLANK_OR_CONTROL), F.lit(False))
    value = F.when(odd, _trimmed(text)).otherwise(text)
    value = F.upper(value) if upper else value
    return F.when(~odd | ~value.rlike(_CONTROL), value)


def normalize_identifier(value: Column, id_type: str | Column) -> Column:
    """``value`` as silver stores an identifier of ``id_type`` (a name, or a column of names),
    phones aside: their normalisation (``normalize_phone``) needs a column of its own."""
    if isinstance(id_type, str):
        if id_type == "email":
            return normalize_email(value)
        return normalize_token(value, upper=id_type in UPPER_CASED_TYPES)
    return (
        F.when(id_type == "email", normalize_email(value))
        .when(id_type.isin(*UPPER_CASED_TYPES), normalize_token(value, upper=True))
        .otherwise(normalize_token(value))
    )


def full_match(value: Column, patterns: Sequence[str]) -> Column:
    """True when any of the regexes matches the whole value, case-insensitively; NULL stays NULL."""
    # Settings' patterns are alternatives; each is grouped so its own "|" stays inside it.
    return value.rlike("(?i)^(?:" + "|".join(f"(?:{p})" for p in patterns) + ")$")


def is_placeholder(value: Column, id_type: str, settings: CollectSettings) -> Column:
    """True when ``value`` is a placeholder for identifier type ``id_type``; NULL stays NULL."""
    if id_type not in IDENTIFIER_TYPES:
        raise ValueError(f"unknown identifier type {id_type!r}; known: {IDENTIFIER_TYPES}")
    listed = {v.strip().lower() for v in settings.placeholders.get("*", ())}
    listed |= {v.strip().lower() for v in settings.placeholders.get(id_type, ())}
    text = F.lower(_trimmed(value))
    forms = [text]
    if id_type == "phone":
        # "06 00 00 00 00" is the listed 0600000000 written with separators.
        forms.append(F.regexp_replace(text, r"[\s.()/\-]", ""))
    tests = []
    for form in forms:
        if listed:
            tests.append(form.isin(sorted(listed)))
        if settings.placeholder_patterns:
            tests.append(full_match(form, settings.placeholder_patterns))
    test = reduce(lambda a, b: a | b, tests, F.lit(False))
    return F.when(value.isNotNull(), test)


def null_placeholders(
    df: DataFrame, columns: Mapping[str, str], settings: CollectSettings
) -> DataFrame:
    """Null placeholders in ``columns`` (name -> id type), listing the names in placeholder_fields.

    A blank value (empty after trimming) is nulled too but not listed: it is missing, not a
    placeholder.
    """
    hits = {
        name: F.coalesce(is_placeholder(F.col(name), id_type, settings), F.lit(False))
        for name, id_type in columns.items()
    }
    # withColumns evaluates every expression on the input row, so each test sees the raw value.
    nulled = {
        name: F.when(hit | ~present(F.col(name)), None).otherwise(F.col(name))
        for name, hit in hits.items()
    }
    found = listed_fields(hits)
    if PLACEHOLDER_FIELDS in df.columns:
        found = F.concat(
            F.coalesce(F.col(PLACEHOLDER_FIELDS), F.array().cast("array<string>")), found
        )
    return df.withColumns({**nulled, PLACEHOLDER_FIELDS: found})


def phone_placeholders_e164(settings: CollectSettings) -> list[str]:
    """The listed phone placeholders (``*`` and ``phone``) that are numbers, in E.164 as
    ``settings.default_region`` reads them, sorted."""
    listed = (*settings.placeholders.get("*", ()), *settings.placeholders.get("phone", ()))
    return sorted({e for v in listed if (e := to_e164(v.strip(), settings.default_region))})


def present(value: Column) -> Column:
    """True when ``value`` holds something other than blanks (NULL counts as absent)."""
    return F.coalesce(_trimmed(value) != "", F.lit(False))


def listed_fields(hits: Mapping[str, Column]) -> Column:
    """The names whose condition holds, as array<string> (empty when none does).

    Hits are rare: the list is built (array_compact takes a lambda, interpreted row by row)
    only on rows that have one.
    """
    tests = {name: F.coalesce(hit, F.lit(False)) for name, hit in hits.items()}
    return F.when(
        reduce(lambda a, b: a | b, tests.values(), F.lit(False)),
        F.array_compact(
            F.array(F.lit(None).cast("string"), *[F.when(t, F.lit(n)) for n, t in tests.items()])
        ),
    ).otherwise(F.array().cast("array<string>"))


def _folded(text: str) -> str:
    """Case, accents and blanks aside ("  États-Unis " and "etats-unis" fold alike)."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=16)
def _country_names(languages: tuple[str, ...]) -> dict[str, str]:
    """Country names in ``languages`` (pycountry's translations of ISO 3166), folded -> code."""
    names: dict[str, str] = {}
    for language in languages:
        words = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language])
        for country in pycountry.countries:
            for attribute in ("name", "official_name", "common_name"):
                english = getattr(country, attribute, None)
                if english:
                    names.setdefault(_folded(words.gettext(english)), country.alpha_2)
    return names


@lru_cache(maxsize=10_000)
def to_country_code(
    value: str, languages: tuple[str, ...] = (), aliases: tuple[tuple[str, str], ...] = ()
) -> str | None:
    """ISO 3166 alpha-2 code of a country written as its alpha-2, alpha-3 or numeric code or
    its English name, any case ("fr", "FRA", "250", "France" -> "FR"), or as its name in one
    of ``languages`` with or without accents ("Allemagne", "Etats-Unis" with "fr"), or as
    one of ``aliases`` ((name, alpha-2) pairs, folded alike: "UK" -> "GB"); None when
    unknown."""
    text = value.strip()
    if not text:
        return None
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        pass
    folded = _folded(text)
    found = _country_names(languages).get(folded) if languages else None
    return found or {_folded(name): code.upper() for name, code in aliases}.get(folded)


def country_code(
    col: Column, languages: Sequence[str] = (), aliases: Mapping[str, str] | None = None
) -> Column:
    """``col`` as an ISO 3166 alpha-2 code, NULL when it names no country pycountry knows (in
    English or in one of ``languages``) nor one of ``aliases`` (name -> alpha-2)."""
    known = tuple(languages)
    other_names = tuple(sorted((aliases or {}).items()))

    @F.pandas_udf("string")  # type: ignore[call-overload]
    def _code(values: pd.Series) -> pd.Series:
        table = {v: to_country_code(v, known, other_names) for v in values.dropna().unique()}
        return pd.Series([table.get(v) for v in values], index=values.index, dtype=object)

    return _code(col.cast("string"))


def postal_code(value: Column, region: Column, digits: Mapping[str, int]) -> tuple[Column, Column]:
    """``(code, refused)``: a postal code as silver stores it, and whether it was given but
    is unusable.

    Blanks inside and around the code are removed and letters upper-cased ("75 011",
    "sw1a 1aa" -> "75011", "SW1A1AA"). When ``region`` is a country of ``digits`` (its codes
    are that many digits) a code one or two digits short
    lost its leading zeros to a spreadsheet and gets them back ("6000" -> "06000" in
    France); any other code there (letters, too many or too few digits) is nulled and
    ``refused``. Codes of other countries, or of no known one (NULL), are only cleaned.
    """
    squeezed = F.upper(F.regexp_replace(value, r"(?U)\s+", ""))
    given = F.when(squeezed != "", squeezed)
    padded = given
    checked = F.lit(False)
    for n in sorted(set(digits.values())):
        here = region.isin([c for c, d in digits.items() if d == n])
        fits = given.rlike(f"^[0-9]{{{max(1, n - 2)},{n}}}$")
        padded = F.when(here, F.when(fits, F.lpad(given, n, "0"))).otherwise(padded)
        checked = checked | here
    refused = F.coalesce(given.isNotNull() & checked & padded.isNull(), F.lit(False))
    return padded, refused


@lru_cache(maxsize=200_000)
def to_e164(value: str, region: str, fallbacks: tuple[str, ...] = ()) -> str | None:
    """E.164 form of a valid number read in ``region`` (when it has no country code), else
    None; a national number (no country code) not valid there is read in ``fallbacks``, in
    order, and the first region where it is valid gives it."""
    for where in (region, *fallbacks):
        try:
            number = phonenumbers.parse(value, where, keep_raw_input=True)
        except phonenumbers.NumberParseException:
            return None
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if number.country_code_source != phonenumbers.CountryCodeSource.FROM_DEFAULT_COUNTRY:
            return None  # written with its country code: no other region reads it otherwise
    return None


# The region of a record whose country is given but unknown: phonenumbers then reads only
# numbers written with their country code. Read in the default region, a Dutch "06 12345678"
# would become a valid French number, quite possibly someone else's.
UNKNOWN_REGION = "ZZ"


def e164_series(
    values: pd.Series,
    region: str,
    regions: pd.Series | None = None,
    fallbacks: Mapping[str, Sequence[str]] | None = None,
) -> pd.Series:
    """to_e164 over a batch: each distinct value once, or with ``regions`` each distinct
    (value, region) once through to_e164's cache.

    ``regions``, when given, holds each row's own region (a record's country): a row without
    one is read in ``region``; a row whose region phonenumbers does not know keeps only the
    numbers written with their country code (``UNKNOWN_REGION``). ``fallbacks``: region ->
    the regions its national numbers are also read in (``to_e164``).
    """
    also = {k.upper(): tuple(r.upper() for r in v) for k, v in (fallbacks or {}).items()}
    if regions is None:
        table = {v: to_e164(v, region, also.get(region, ())) for v in values.dropna().unique()}
        return pd.Series([table.get(v) for v in values], index=values.index, dtype=object)
    known = phonenumbers.SUPPORTED_REGIONS
    row_regions = [
        region if not isinstance(r, str) else r if r in known else UNKNOWN_REGION for r in regions
    ]
    out = [
        to_e164(v, r, also.get(r, ())) if isinstance(v, str) else None
        for v, r in zip(values, row_regions, strict=True)
    ]
    return pd.Series(out, index=values.index, dtype=object)


def normalize_phone(
    df: DataFrame,
    column: str,
    default_region: str,
    out: str | None = None,
    region_column: Column | None = None,
    fallbacks: Mapping[str, Sequence[str]] | None = None,
) -> DataFrame:
    """E.164 form of ``column`` in ``out`` (default: in place); NULL unless a valid number.

    A number without its country code is read in ``region_column``'s region when the row has
    one (an ISO 3166 alpha-2 code, any case), in ``default_region`` when it has none (NULL or
    blank), and refused when the region is one phonenumbers does not know. ``fallbacks``:
    region -> regions where its national numbers not valid in it are read too.
    """
    also = {k: tuple(v) for k, v in (fallbacks or {}).items()}
    # Valid, not merely possible: a possible number only has a plausible length, so
    # "06 12 34 56 7" (a digit lost) would pass as +33061234567 and could merge two people.
    region = default_region.upper()
    value = F.col(column).cast("string")

    # Per batch the distinct values are parsed once, and an LRU cache in the (reused) Python
    # worker spans batches and tasks. That beats distinct + join back: no shuffle of the rows,
    # and it also runs on a streaming DataFrame, where a join with an aggregate cannot.
    if region_column is None:

        @F.pandas_udf("string")  # type: ignore[call-overload]
        def _e164(values: pd.Series) -> pd.Series:
            return e164_series(values, region, fallbacks=also)

        return df.withColumn(out or column, _e164(value))

    @F.pandas_udf("string")  # type: ignore[call-overload]
    def _e164_in(values: pd.Series, regions: pd.Series) -> pd.Series:
        return e164_series(values, region, regions, also)

    row_region = F.upper(F.trim(region_column))
    return df.withColumn(out or column, _e164_in(value, F.when(row_region != "", row_region)))
