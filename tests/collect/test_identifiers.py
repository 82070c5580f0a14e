"""Identifier hygiene: emails, placeholders and phones, with the real collect settings."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from chispa import assert_column_equality, assert_df_equality
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from crossdata.collect.identifiers import (
    e164_series,
    normalize_email,
    normalize_phone,
    null_placeholders,
    postal_code,
    to_country_code,
    to_e164,
)
from crossdata.config import load_settings
from crossdata.config.schema import CollectSettings

REPO = Path(__file__).resolve().parents[2]
IDS = "cookie_id string, email string"
IDS_OUT = IDS + ", placeholder_fields array<string>"
# Each example is one batch of values in one DataFrame: a Spark job per example, not per value.
PROPERTY = settings(max_examples=6, deadline=None, database=None)
FRENCH_FORMS = (
    "06 12 34 56 78",
    "0612345678",
    "+33 6 12 34 56 78",
    "+33612345678",
    "0033612345678",
    "06.12.34.56.78",
)
PLAUSIBLE = re.compile(r"[^@]+@[^@.]+(\.[^@.]+)+")


@pytest.fixture(scope="module")
def collect() -> CollectSettings:
    return load_settings(conf_dir=REPO / "conf").settings.collect


def _emails(spark, values):
    df = spark.createDataFrame([(v,) for v in values], "email string")
    return df.withColumn("normalized", normalize_email(F.col("email")))


def test_email_is_trimmed_and_lower_cased(spark):
    actual = _emails(spark, [" Anna.Meyer@Example.ORG\u00a0", "\tbo@shop.example\n"])
    expected = spark.createDataFrame(
        [
            (" Anna.Meyer@Example.ORG\u00a0", "anna.meyer@example.org"),
            ("\tbo@shop.example\n", "bo@shop.example"),
        ],
        "email string, normalized string",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_email_without_dotted_domain_is_null(spark):
    actual = _emails(spark, ["anna@example", "anna@example.", "anna@.org", "anna@example..org"])
    expected = spark.createDataFrame(
        [(v, None) for v in ("anna@example", "anna@example.", "anna@.org", "anna@example..org")],
        "email string, normalized string",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_email_needs_exactly_one_at_and_a_local_part(spark):
    actual = _emails(spark, ["@example.org", "anna@bo@example.org", "anna.example.org"])
    expected = spark.createDataFrame(
        [("@example.org", None), ("anna@bo@example.org", None), ("anna.example.org", None)],
        "email string, normalized string",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_email_with_inner_whitespace_is_null(spark):
    actual = _emails(spark, ["anna meyer@example.org", "anna@exa\tmple.org", None])
    expected = spark.createDataFrame(
        [("anna meyer@example.org", None), ("anna@exa\tmple.org", None), (None, None)],
        "email string, normalized string",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


email_text = st.one_of(
    st.text(max_size=30),
    st.emails(),
    st.from_regex(r"\s{0,2}[A-Za-z0-9.@ ]{0,20}\s{0,2}", fullmatch=True),
)


@PROPERTY
@given(st.lists(email_text, min_size=1, max_size=50))
def test_normalized_email_is_null_or_canonical(spark, values):
    for row in _emails(spark, values).collect():
        out = row.normalized
        assert out is None or (
            PLAUSIBLE.fullmatch(out)
            and not any(c.isspace() for c in out)
            and not any("A" <= c <= "Z" for c in out)
        ), (row.email, out)


@PROPERTY
@given(st.lists(email_text, min_size=1, max_size=50))
def test_normalize_email_is_idempotent(spark, values):
    once = _emails(spark, values)
    twice = once.withColumn("again", normalize_email(F.col("normalized")))
    assert_column_equality(twice, "normalized", "again")


def test_listed_placeholder_is_nulled_and_named(spark, collect):
    df = spark.createDataFrame([("undefined", "anna@example.org")], IDS)
    actual = null_placeholders(df, {"cookie_id": "cookie_id", "email": "email"}, collect)
    expected = spark.createDataFrame([(None, "anna@example.org", ["cookie_id"])], IDS_OUT)
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_placeholder_match_ignores_case_and_surrounding_space(spark, collect):
    df = spark.createDataFrame([(" UNDEFINED ", "N/A"), ("Null", "[Object Object]")], IDS)
    actual = null_placeholders(df, {"cookie_id": "cookie_id", "email": "email"}, collect)
    expected = spark.createDataFrame(
        [(None, None, ["cookie_id", "email"]), (None, None, ["cookie_id", "email"])], IDS_OUT
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_type_placeholder_applies_only_to_its_identifier_type(spark, collect):
    df = spark.createDataFrame([("test@test.com", "Test@Test.com")], IDS)
    actual = null_placeholders(df, {"cookie_id": "cookie_id", "email": "email"}, collect)
    expected = spark.createDataFrame([("test@test.com", None, ["email"])], IDS_OUT)
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_placeholder_pattern_must_match_the_whole_value(spark, collect):
    df = spark.createDataFrame(
        [
            ("00000000-0000-0000-0000-000000000000", None),
            ("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", None),
            ("0000", None),
            ("ck_0000", None),
            ("00000000-0000-0000-0000-000000000001", None),
        ],
        IDS,
    )
    actual = null_placeholders(df, {"cookie_id": "device_id"}, collect)
    expected = spark.createDataFrame(
        [
            (None, None, ["cookie_id"]),
            (None, None, ["cookie_id"]),
            (None, None, ["cookie_id"]),
            ("ck_0000", None, []),
            ("00000000-0000-0000-0000-000000000001", None, []),
        ],
        IDS_OUT,
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_phone_placeholder_matches_with_separators(spark, collect):
    df = spark.createDataFrame([("06 00 00 00 00",), ("06.00.00.00.01",)], "phone string")
    actual = null_placeholders(df, {"phone": "phone"}, collect)
    expected = spark.createDataFrame(
        [(None, ["phone"]), ("06.00.00.00.01", [])],
        "phone string, placeholder_fields array<string>",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_row_without_placeholder_has_empty_placeholder_fields(spark, collect):
    df = spark.createDataFrame([("ck_9d2f61a0b4c3", None)], IDS)
    actual = null_placeholders(df, {"cookie_id": "cookie_id", "email": "email"}, collect)
    expected = spark.createDataFrame([("ck_9d2f61a0b4c3", None, [])], IDS_OUT)
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_existing_placeholder_fields_are_appended_to(spark, collect):
    df = spark.createDataFrame(
        [("-1", "x@y.org", ["device_id"]), ("ck_1", "x@y.org", None)], IDS_OUT
    )
    actual = null_placeholders(df, {"cookie_id": "cookie_id"}, collect)
    expected = spark.createDataFrame(
        [(None, "x@y.org", ["device_id", "cookie_id"]), ("ck_1", "x@y.org", [])], IDS_OUT
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_blank_identifier_is_nulled_but_not_listed(spark, collect):
    df = spark.createDataFrame([("   ", "")], IDS)
    actual = null_placeholders(df, {"cookie_id": "cookie_id", "email": "email"}, collect)
    expected = spark.createDataFrame([(None, None, [])], IDS_OUT)
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_unknown_identifier_type_is_refused(spark, collect):
    df = spark.createDataFrame([("x", None)], IDS)
    with pytest.raises(ValueError, match="emial"):
        null_placeholders(df, {"email": "emial"}, collect)


def test_refused_identifiers_are_listed_as_unusable_not_placeholders(spark, collect):
    from crossdata.collect.flows import clean_identifiers

    schema = "id string, cookie_id string, email string, phone string, card string"
    df = spark.createDataFrame(
        [
            # no dotted domain, a digit short
            ("refused", "ck_1", "bob@shop", "06 12 34 56 7", "lc-1"),
            ("placeholders", "ck_2", "test@test.com", "0600000000", "lc-2"),
            ("blank", "ck_3", "  ", "", "\u00a0"),
            ("good", "\tck_4\u00a0", " Ann@Shop.Example", "06 12 34 56 78", " lc-4 "),
            ("one of two", "ck_5", "ann@shop.example", "call me", "lc-5"),
            # control characters: a zeroed buffer, a NUL or an escape inside, a C1 code
            ("controls", "\x00\x00\x00", "ann@shop.example", "", "lc\x1b6"),
            ("c1", "c\x85k", None, None, "lc\x00"),
        ],
        schema,
    )
    ids = {"cookie_id": "cookie_id", "email": "email", "phone": "phone", "card": "loyalty_card"}
    actual = clean_identifiers(df, ids, collect)
    expected = spark.createDataFrame(
        [
            ("refused", "ck_1", None, None, "LC-1", [], ["email", "phone"]),
            ("placeholders", "ck_2", None, None, "LC-2", ["email", "phone"], []),
            ("blank", "ck_3", None, None, None, [], []),
            ("good", "ck_4", "ann@shop.example", "+33612345678", "LC-4", [], []),
            ("one of two", "ck_5", "ann@shop.example", None, "LC-5", [], ["phone"]),
            ("controls", None, "ann@shop.example", None, None, [], ["cookie_id", "card"]),
            ("c1", None, None, None, None, [], ["cookie_id", "card"]),
        ],
        schema + ", placeholder_fields array<string>, _unusable_fields array<string>",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)
    # every source with an identifier is checked, even with no email or phone
    cookies = clean_identifiers(df.select("id", "cookie_id"), {"cookie_id": "cookie_id"}, collect)
    assert cookies.where(F.size("_unusable_fields") > 0).count() == 2


def test_invisible_characters_wrappings_and_placeholders_written_otherwise(spark, collect):
    from crossdata.collect.flows import clean_identifiers

    schema = "id string, cookie_id string, email string, phone string"
    df = spark.createDataFrame(
        [
            # a zero-width space or a byte-order mark that copy and paste left at an edge
            ("edges", "ck_9d2f\u200b", "anna.meyer@example.org\u200b", None),
            ("bom", "\ufeffck_8", "\ufeff Anna@Example.org", None),
            # inside a value: no real identifier holds one
            ("inside", "ck\u200b9", "an\u200bna@example.org", None),
            ("mailto", "ck_10", "mailto:Anna@Example.org", None),
            ("brackets", "ck_11", " <anna@example.org>", None),
            ("specials", "ck_12", "anna@example.org>", None),
            ("list", "ck_13", "anna@example.org;bo@example.org", None),
            # the listed 0600000000 and 0123456789, written internationally
            ("intl", "ck_14", None, "+33 6 00 00 00 00"),
            ("0033", "ck_15", None, "0033 1 23 45 67 89"),
        ],
        schema,
    )
    ids = {"cookie_id": "cookie_id", "email": "email", "phone": "phone"}
    actual = clean_identifiers(df, ids, collect)
    expected = spark.createDataFrame(
        [
            ("edges", "ck_9d2f", "anna.meyer@example.org", None, [], []),
            ("bom", "ck_8", "anna@example.org", None, [], []),
            ("inside", None, None, None, [], ["cookie_id", "email"]),
            ("mailto", "ck_10", "anna@example.org", None, [], []),
            ("brackets", "ck_11", "anna@example.org", None, [], []),
            ("specials", "ck_12", None, None, [], ["email"]),
            ("list", "ck_13", None, None, [], ["email"]),
            ("intl", "ck_14", None, None, ["phone"], []),
            ("0033", "ck_15", None, None, ["phone"], []),
        ],
        schema + ", placeholder_fields array<string>, _unusable_fields array<string>",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_consent_counts_a_refused_identifier_as_unusable(spark, collect):
    import datetime as dt

    from crossdata.collect.flows import shape_consent
    from crossdata.collect.silver import SilverBatch

    rows = [
        ("c1", "email", "bob@shop"),  # refused
        ("c2", "phone", "06 12 34 56 7"),  # refused
        ("c3", "email", "a@a.com"),  # a placeholder, listed as such
        ("c4", "phone", "06 12 34 56 78"),
        ("c5", "cookie_id", " x"),  # only trimmed
        ("c6", "email", " "),  # blank: missing
        ("c7", "device_id", "d\x00"),  # refused: no identifier holds a control character
    ]
    ts = dt.datetime(2026, 3, 5, 10, tzinfo=dt.UTC)
    bronze = spark.createDataFrame(
        [
            (c, ts, t, v, "ads", "granted", "web", {}, "f", i, None, ts, "r")
            for i, (c, t, v) in enumerate(rows)
        ],
        "consent_id string, ts timestamp, id_type string, id_value string, purpose string, "
        "status string, channel string, _rescued map<string,string>, _source_file string, "
        "_line bigint, _delivery_date date, _ingested_at timestamp, _run_id string",
    )
    batch = SilverBatch(collect, None, "r", 0, ts)  # type: ignore[arg-type]
    shaped = shape_consent(bronze, batch).select(
        "consent_id", "id_value", "placeholder_fields", "_unusable_fields"
    )
    assert sorted(tuple(r) for r in shaped.collect()) == [
        ("c1", None, [], ["id_value"]),
        ("c2", None, [], ["id_value"]),
        ("c3", None, ["id_value"], []),
        ("c4", "+33612345678", [], []),
        ("c5", "x", [], []),
        ("c6", None, [], []),
        ("c7", None, [], ["id_value"]),
    ]


def test_french_phone_forms_become_one_e164_number(spark):
    df = spark.createDataFrame([(v,) for v in FRENCH_FORMS], "phone string")
    actual = normalize_phone(df, "phone", "FR")
    expected = spark.createDataFrame([("+33612345678",)] * len(FRENCH_FORMS), "phone string")
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_invalid_phone_is_null(spark):
    # A digit short, an impossible French prefix, too short, text: none is a valid number.
    values = ["06 12 34 56 7", "+33000000000", "1234", "call me", None]
    df = spark.createDataFrame([(v,) for v in values], "phone string")
    actual = normalize_phone(df, "phone", "FR")
    expected = spark.createDataFrame([(None,)] * len(values), "phone string")
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_phone_with_country_code_keeps_its_country(spark):
    df = spark.createDataFrame([("+44 7911 123456",), ("0049 30 901820",)], "phone string")
    actual = normalize_phone(df, "phone", "FR")
    expected = spark.createDataFrame([("+447911123456",), ("+4930901820",)], "phone string")
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_a_national_number_is_read_in_its_rows_region(spark):
    rows = [
        ("030 901820", "de"),  # Berlin: read in France it would be +33 3 09 01 82 0
        ("07911 123456", "GB"),
        ("06 12 34 56 78", None),  # no region: the default one
        ("06 12 34 56 78", " "),  # blank: no region, the default one
        # a region phonenumbers does not know: a national number could be anyone's there,
        # read in the default region it could be someone else's; only international ones
        ("06 12 34 56 78", "XX"),
        ("+44 7911 123456", "ZZ"),
        ("+33 6 12 34 56 78", "DE"),  # a country code wins over the row's region
        ("030 901820", "FR"),  # not a valid French number
    ]
    df = spark.createDataFrame(rows, "phone string, country string")
    actual = normalize_phone(df, "phone", "FR", out="e164", region_column=F.col("country"))
    assert [r["e164"] for r in actual.collect()] == [
        "+4930901820",
        "+447911123456",
        "+33612345678",
        "+33612345678",
        None,
        "+447911123456",
        "+33612345678",
        None,
    ]


def test_a_country_is_kept_as_its_iso_alpha_2_code():
    for text, code in [
        ("fr", "FR"),
        ("FRA", "FR"),
        ("250", "FR"),
        ("France", "FR"),
        (" germany ", "DE"),
        ("United Kingdom", "GB"),
        ("Atlantis", None),
        ("  ", None),
        ("Allemagne", None),  # a French name, French names not asked for
    ]:
        assert to_country_code(text) == code, text
    for text, code in [
        ("Allemagne", "DE"),
        (" royaume-uni ", "GB"),
        ("Etats-Unis", "US"),  # accents left out
        ("États-Unis d'Amérique", "US"),  # the official name
        ("Germany", "DE"),  # English names and codes still
        ("BEL", "BE"),
        ("Atlantide", None),
    ]:
        assert to_country_code(text, ("fr",)) == code, text
    aliases = (("UK", "GB"), ("Holland", "nl"))
    for text, code in [
        ("Deutschland", "DE"),  # in German
        ("España", "ES"),
        (" uk ", "GB"),  # an alias, folded
        ("HOLLAND", "NL"),
        ("Allemagne", "DE"),
        ("Mars", None),
    ]:
        assert to_country_code(text, ("fr", "de", "es"), aliases) == code, text


def test_crm_countries_become_codes_their_phones_are_read_there_and_birth_dates_are_checked(
    spark, tmp_path
):
    import datetime as dt

    from crossdata.collect.flows import shape_crm
    from crossdata.collect.silver import SilverBatch
    from crossdata.ops import Context

    from ..conftest import make_settings

    ctx = Context.create(make_settings(tmp_path), spark=spark)
    ts = dt.datetime(2026, 3, 5, 10, tzinfo=dt.UTC)
    born = dt.date(1986, 4, 17)
    versions = [
        ("C1", "030 901820", "Germany", "pos", born, "1067"),  # Dresden's 01067, as a number
        # the same customer, exported with a pasted no-break space and in lower case
        ("c1\u00a0", None, None, "ecommerce", born, None),
        ("C2", "06 12 34 56 78", "fr", "pos", dt.date(1900, 1, 1), "6000"),  # form's "unknown"
        # an unknown country: nulled, counted; its national phone refused (read in FR, a
        # Dutch 06 number would be a French one), the postal code only cleaned (not taken
        # for a French one); born after the update
        ("C3", "06 12 34 56 78", "Atlantis", "pos", dt.date(2027, 1, 1), " 6 000 "),
        ("C8", "+31 6 12345678", "Holland", "pos", born, None),  # an alias (conf)
        # two versions: the e-commerce one's country and birth date are unusable, the store's
        # are kept; a British code is only cleaned
        ("C4", "07911 123456", "GBR", "pos", born, "sw1a 1aa"),
        ("C4", None, "Mars", "ecommerce", dt.date(1850, 6, 1), None),
        ("C5", None, "FR", "pos", born, "75O11"),  # a letter O typed for a zero: unusable
        ("C6", None, "Belgique", "pos", born, "1000"),  # named in French; Brussels, 4 digits
        ("C7", None, None, "pos", born, "6000"),  # no country: the default region's rule
    ]
    bronze = spark.createDataFrame(
        [
            (c, p, k, s, b, z, ts, {}, "f", i, None, ts, "r")
            for i, (c, p, k, s, b, z) in enumerate(versions)
        ],
        "customer_number string, phone string, country string, source_system string, "
        "birth_date date, postal_code string, updated_at timestamp, "
        "_rescued map<string,string>, _source_file string, "
        "_line bigint, _delivery_date date, _ingested_at timestamp, _run_id string",
    )
    for column in ("first_name", "last_name", "email", "mobile_phone", "address_line1"):
        bronze = bronze.withColumn(column, F.lit(None).cast("string"))
    for column in ("city", "store_id", "loyalty_card"):
        bronze = bronze.withColumn(column, F.lit(None).cast("string"))
    ctx.lake.append(bronze, "bronze.crm_customers")
    batch = SilverBatch(ctx.settings.collect, ctx.lake, "r", 0, ts)
    shaped = shape_crm(bronze, batch).select(
        "customer_number",
        "country",
        "phone",
        "birth_date",
        "postal_code",
        "placeholder_fields",
        "_unusable_fields",
    )
    assert sorted(tuple(r) for r in shaped.collect()) == [
        ("C1", "DE", "+4930901820", born, "01067", [], []),
        ("C2", "FR", "+33612345678", None, "06000", ["birth_date"], []),
        ("C3", None, None, None, "6000", [], ["birth_date", "country", "phone"]),
        ("C4", "GB", "+447911123456", born, "SW1A1AA", [], ["birth_date", "country"]),
        ("C5", "FR", None, born, None, [], ["postal_code"]),
        ("C6", "BE", None, born, "1000", [], []),
        ("C7", None, None, born, "06000", [], []),
        ("C8", "NL", "+31612345678", born, None, [], []),
    ]


def test_postal_codes_get_back_the_leading_zeros_a_spreadsheet_dropped(spark):
    digits = {"FR": 5, "IT": 5, "DK": 4}
    rows = [
        ("6000", "FR", "06000", False),  # Nice, read as a number
        ("75 011", "FR", "75011", False),
        ("\u00a075011\u00a0", "FR", "75011", False),  # pasted non-breaking spaces
        ("6000", None, "6000", False),  # no known country: only cleaned
        ("100", "IT", "00100", False),  # Rome's 00100 lost two zeros
        ("800", "DK", "0800", False),
        ("750110", "FR", None, True),  # a digit too many
        ("75", "FR", None, True),  # three short: not a lost zero
        ("2A004", "FR", None, True),  # a Corsican commune's INSEE code, not a postal code
        ("02134-1234", "US", "02134-1234", False),  # a country not listed: only cleaned
        ("ec1a 1bb", "GB", "EC1A1BB", False),
        ("  ", "FR", None, False),  # blank: absent, not refused
        (None, "FR", None, False),
    ]
    df = spark.createDataFrame(
        [(i, v, c) for i, (v, c, _, _) in enumerate(rows)], "i int, v string, c string"
    )
    code, refused = postal_code(F.col("v"), F.col("c"), digits)
    got = df.select("i", code.alias("code"), refused.alias("refused")).orderBy("i").collect()
    assert [(r["code"], r["refused"]) for r in got] == [(c, x) for _, _, c, x in rows]


def test_normalized_phone_goes_to_out_column_and_input_is_kept(spark):
    df = spark.createDataFrame([("k1", "06.12.34.56.78")], "id string, phone string")
    actual = normalize_phone(df, "phone", "fr", out="phone_e164")
    expected = spark.createDataFrame(
        [("k1", "06.12.34.56.78", "+33612345678")], "id string, phone string, phone_e164 string"
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_overseas_french_numbers_dialled_nationally_are_read_in_their_region(collect):
    also = collect.phone_fallback_regions
    rows = [
        ("0692 12 34 56", None, "+262692123456"),  # Réunion, dialled from mainland France
        ("0590 12 34 56", "FR", "+590590123456"),  # Guadeloupe, on a French CRM record
        ("06 96 12 34 56", None, "+596696123456"),  # Martinique
        ("06 12 34 56 78", None, "+33612345678"),  # mainland first
        ("+33 692 12 34 56", None, None),  # written with France's code: not valid there
        ("0692 12 34 56", "DE", "+49692123456"),  # a German record's: read in Germany
        ("06 12 34 56 7", None, None),  # a digit short, anywhere
    ]
    values = pd.Series([v for v, _, _ in rows])
    regions = pd.Series([r for _, r, _ in rows], dtype=object)
    got = e164_series(values, collect.default_region, regions, also)
    assert got.tolist() == [e for _, _, e in rows]
    assert e164_series(values[:1], "FR").tolist() == [None]  # without fallbacks


def test_each_distinct_phone_is_parsed_once_per_batch():
    to_e164.cache_clear()
    batch = pd.Series(["0612345678", "0612345678", "0612345678", "07 00", None])
    out = e164_series(batch, "FR")
    assert out.tolist() == ["+33612345678"] * 3 + [None, None]
    assert (to_e164.cache_info().misses, to_e164.cache_info().hits) == (2, 0)


phone_text = st.one_of(
    st.text(max_size=25),
    st.from_regex(r"(\+|00)?[0-9 .()\-]{0,18}", fullmatch=True),
    st.sampled_from(FRENCH_FORMS),
)


def _phones(spark, values):
    return spark.createDataFrame([(v,) for v in values], "phone string")


@PROPERTY
@given(st.lists(phone_text, min_size=1, max_size=50))
def test_normalized_phone_is_null_or_e164(spark, values):
    rows = normalize_phone(_phones(spark, values), "phone", "FR", out="e164").collect()
    for row in rows:
        assert row.e164 is None or re.fullmatch(r"\+[1-9]\d{1,14}", row.e164), row


@PROPERTY
@given(st.lists(phone_text, min_size=1, max_size=50))
def test_normalize_phone_is_idempotent(spark, values):
    once = normalize_phone(_phones(spark, values), "phone", "FR", out="once")
    twice = normalize_phone(once, "once", "FR", out="again")
    assert_column_equality(twice, "once", "again")
