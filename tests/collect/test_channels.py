"""URL parts and channels, with the real ordered channel rules of conf/base.yaml.

These transforms are row-wise projections: output rows keep the input order.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import pytest
from chispa import assert_df_equality
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crossdata.collect.channels import CLICK_ID_PARAMS, with_channel, with_url_parts
from crossdata.config import load_settings
from crossdata.config.schema import ChannelRule, CollectSettings
from crossdata.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
HITS = "page_url string, referrer string"
CHANNEL_OUT = HITS + ", channel string, channel_group string"
URL_PARTS = (
    "url_host string, url_path string, utm_source string, utm_medium string, "
    "utm_campaign string, utm_content string, utm_term string, gclid string, fbclid string, "
    "msclkid string, click_ids map<string,string>, referrer_host string, "
    "is_external_referrer boolean"
)


@pytest.fixture(scope="module")
def collect() -> CollectSettings:
    return load_settings(conf_dir=REPO / "conf").settings.collect


def _parts(spark, rows, site_hosts=("shop.example", "www.shop.example"), *cols):
    df = spark.createDataFrame(rows, HITS)
    return with_url_parts(df, site_hosts=site_hosts).select("page_url", "referrer", *cols)


def _channels(spark, collect, rows):
    df = with_url_parts(spark.createDataFrame(rows, HITS), site_hosts=collect.site_hosts)
    return with_channel(df, collect.channels).select(
        "page_url", "referrer", "channel", "channel_group"
    )


def test_with_url_parts_adds_every_part_and_keeps_the_input(spark):
    url = "https://Shop.Example/p/sku-1?utm_source=Google&utm_medium=CPC&gclid=Cj0K&ttclid=t1"
    df = spark.createDataFrame([(url, "https://www.google.com/")], HITS)
    actual = with_url_parts(df, site_hosts=["shop.example"])
    expected = spark.createDataFrame(
        [
            (
                *(url, "https://www.google.com/", "shop.example", "/p/sku-1", "google", "cpc"),
                *(None, None, None, "Cj0K", None, None, {"gclid": "Cj0K", "ttclid": "t1"}),
                *("www.google.com", True),
            )
        ],
        HITS + ", " + URL_PARTS,
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_utm_values_are_url_decoded_and_source_medium_lower_cased(spark):
    url = "https://shop.example/?utm_source=News%20Letter&utm_medium=E-Mail&utm_campaign=Spring+Sale%21"
    actual = _parts(
        spark, [(url, None)], ("shop.example",), "utm_source", "utm_medium", "utm_campaign"
    )
    expected = spark.createDataFrame(
        [(url, None, "news letter", "e-mail", "Spring Sale!")],
        HITS + ", utm_source string, utm_medium string, utm_campaign string",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_relative_access_log_url_has_path_and_parameters_but_no_host(spark):
    actual = _parts(
        spark, [("/p/sku-1?utm_source=x", None)], (), "url_host", "url_path", "utm_source"
    )
    expected = spark.createDataFrame(
        [("/p/sku-1?utm_source=x", None, None, "/p/sku-1", "x")],
        HITS + ", url_host string, url_path string, utm_source string",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_unescaped_characters_do_not_lose_the_parameters(spark):
    url = "https://shop.example/p?utm_campaign=spring sale|fr&utm_term=100%&x=1"
    actual = _parts(spark, [(url, None)], (), "url_path", "utm_campaign", "utm_term")
    expected = spark.createDataFrame(
        [(url, None, "/p", "spring sale|fr", "100%")],
        HITS + ", url_path string, utm_campaign string, utm_term string",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_empty_parameter_is_null(spark):
    url = "https://shop.example/?utm_source=&utm_medium=%20"
    actual = _parts(spark, [(url, None)], (), "utm_source", "utm_medium")
    expected = spark.createDataFrame(
        [(url, None, None, None)], HITS + ", utm_source string, utm_medium string"
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_click_ids_are_the_present_ones_decoded_and_first_wins(spark):
    urls = [
        ("/?GCLID=g1&yclid=%20&sccid=s%2F1&gclid=second", None),  # names are case-insensitive
        ("/?utm_source=x", None),
        (None, None),
    ]
    actual = _parts(spark, urls, (), "click_ids")
    expected = spark.createDataFrame(
        [(*urls[0], {"gclid": "g1", "sccid": "s/1"}), (*urls[1], {}), (*urls[2], {})],
        HITS + ", click_ids map<string,string>",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


# Query strings from pieces that test the reading of parameters: names in any case, a name
# twice, pieces without "=", "=" inside a value, escapes good and bad, blanks.
_NAME = st.sampled_from(
    ["utm_source", "UTM_Source", "utm_term", "gclid", "GClid", "fbclid", "yclid", "x", "", "gclid "]
)
_VALUE = st.lists(
    st.sampled_from(
        ["a", "B", "1", " ", "+", "-", "%20", "%2F", "%C3%A9", "%", "%zz", "%2", "=", "é"]
    ),
    max_size=4,
).map("".join)
_PIECE = st.one_of(st.tuples(_NAME, _VALUE).map("=".join), _NAME, st.just(""))
_QUERY = st.lists(_PIECE, min_size=1, max_size=5).map("&".join)


def _expected_param(query: str, name: str) -> str | None:
    """Independently: the first piece named ``name`` (any case), decoded as Java's URLDecoder
    does (the raw text when an escape is broken), trimmed of spaces; None when blank."""
    for piece in query.split("&"):
        key, sep, raw = piece.partition("=")
        if sep and key.lower() == name:
            broken = re.search(r"%(?![0-9A-Fa-f]{2})", raw)
            value = raw if broken else urllib.parse.unquote_plus(raw)
            return value.strip(" ") or None
    return None


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(queries=st.lists(_QUERY, min_size=1, max_size=40))
# A sign after "%": Java's URLDecoder took "%+a" for the escape "%0a" (a line feed).
@example(queries=["yclid=%+a", "utm_source=%+a&gclid=%-1&fbclid=a%+1"])
def test_every_parameter_is_its_first_pair_decoded_whatever_the_query(spark, queries):
    urls = [(f"https://shop.example/p?{q}#frag", None) for q in queries]
    names = ("utm_source", "utm_term", "gclid", "fbclid")
    got = _parts(spark, urls, (), *names, "click_ids").collect()
    for (url, _), row in zip(urls, got, strict=True):
        query = url.split("?", 1)[1].split("#", 1)[0]
        expected = {n: _expected_param(query, n) for n in names}
        if expected["utm_source"] is not None:
            expected["utm_source"] = expected["utm_source"].lower()
        clicks = {n: _expected_param(query, n) for n in CLICK_ID_PARAMS}
        assert {n: row[n] for n in names} == expected, url
        assert row["click_ids"] == {k: v for k, v in clicks.items() if v is not None}, url


def test_referrer_host_is_lower_cased_without_user_port_or_dot_and_keeps_www(spark):
    rows = [
        ("/", "https://user:pw@WWW.Google.FR.:443/search?q=x"),
        ("/", "www.bing.com/search"),
        ("/", "android-app://com.google.android.gm/"),
    ]
    actual = _parts(spark, rows, (), "referrer_host")
    expected = spark.createDataFrame(
        [
            (*r, h)
            for r, h in zip(
                rows, ["www.google.fr", "www.bing.com", "com.google.android.gm"], strict=True
            )
        ],
        HITS + ", referrer_host string",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_dash_or_blank_referrer_is_no_referrer(spark):
    rows = [("/", "-"), ("/", " "), ("/", None)]
    actual = _parts(spark, rows, (), "referrer_host", "is_external_referrer")
    expected = spark.createDataFrame(
        [(*r, None, False) for r in rows],
        HITS + ", referrer_host string, is_external_referrer boolean",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_referrer_on_a_site_host_or_the_page_host_is_not_external(spark):
    rows = [
        ("/p", "https://www.shop.example/cart"),
        ("https://m.shop.example/p", "https://m.shop.example/"),
        ("https://shop.example/p", "https://blog.example/post"),
    ]
    actual = _parts(spark, rows, ("shop.example", "WWW.shop.example"), "is_external_referrer")
    expected = spark.createDataFrame(
        [rows[0] + (False,), rows[1] + (False,), rows[2] + (True,)],
        HITS + ", is_external_referrer boolean",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_gclid_makes_paid_search_even_with_organic_referrer(spark, collect):
    row = ("https://shop.example/?gclid=Cj0KCQiA", "https://www.google.com/")
    expected = spark.createDataFrame([(*row, "paid_search", "paid")], CHANNEL_OUT)
    assert_df_equality(_channels(spark, collect, [row]), expected, ignore_nullable=True)


def test_facebook_cpc_is_paid_social(spark, collect):
    row = ("https://shop.example/?utm_source=facebook&utm_medium=cpc", None)
    expected = spark.createDataFrame([(*row, "social", "paid")], CHANNEL_OUT)
    assert_df_equality(_channels(spark, collect, [row]), expected, ignore_nullable=True)


def test_email_medium_is_owned_email(spark, collect):
    row = ("https://shop.example/?utm_source=brevo&utm_medium=email", None)
    expected = spark.createDataFrame([(*row, "email", "owned")], CHANNEL_OUT)
    assert_df_equality(_channels(spark, collect, [row]), expected, ignore_nullable=True)


def test_google_referrer_without_utm_is_organic_search(spark, collect):
    rows = [("https://shop.example/", "https://www.google.com/"), ("/", "https://google.fr/")]
    expected = spark.createDataFrame([(*r, "organic_search", "earned") for r in rows], CHANNEL_OUT)
    assert_df_equality(_channels(spark, collect, rows), expected, ignore_nullable=True)


def test_t_co_referrer_is_earned_social(spark, collect):
    row = ("https://shop.example/", "https://t.co/AbC123")
    expected = spark.createDataFrame([(*row, "social", "earned")], CHANNEL_OUT)
    assert_df_equality(_channels(spark, collect, [row]), expected, ignore_nullable=True)


def test_other_site_referrer_is_referral(spark, collect):
    row = ("https://shop.example/", "https://blog.example.org/best-shoes")
    expected = spark.createDataFrame([(*row, "referral", "earned")], CHANNEL_OUT)
    assert_df_equality(_channels(spark, collect, [row]), expected, ignore_nullable=True)


def test_no_referrer_and_no_campaign_is_direct(spark, collect):
    rows = [("https://shop.example/", None), ("/p/sku-1", "-")]
    expected = spark.createDataFrame([(*r, "direct", "owned") for r in rows], CHANNEL_OUT)
    assert_df_equality(_channels(spark, collect, rows), expected, ignore_nullable=True)


def test_internal_referrer_is_direct(spark, collect):
    row = ("https://shop.example/p/sku-1", "https://www.shop.example/search?q=shoes")
    expected = spark.createDataFrame([(*row, "direct", "owned")], CHANNEL_OUT)
    assert_df_equality(_channels(spark, collect, [row]), expected, ignore_nullable=True)


@pytest.mark.parametrize(
    ("query", "referrer", "channel", "group"),
    [
        # Google Ads tags its display and YouTube campaigns with gclid too
        (
            "utm_source=google&utm_medium=display&gclid=Cj0K",
            "https://www.google.com/",
            "display",
            "paid",
        ),
        ("utm_source=youtube&utm_medium=video&gclid=Cj0K", None, "video", "paid"),
        # Google's and Yandex's other click ids
        ("gbraid=0AAAAADx", "https://www.google.com/", "paid_search", "paid"),
        ("yclid=1234567", "https://yandex.ru/", "paid_search", "paid"),
        ("twclid=2-abc", "https://t.co/xyz", "social", "paid"),
        ("dclid=CJ3x", None, "display", "paid"),
        # the network named as a domain or with a suffix; paid social named by the medium
        ("utm_source=facebook.com&utm_medium=cpc", None, "social", "paid"),
        ("utm_source=Facebook_Ads&utm_medium=paid-social", None, "social", "paid"),
        ("utm_source=reddit&utm_medium=paid_social", None, "social", "paid"),
        # fbclid is on every outbound Facebook link, an organic post's too
        ("fbclid=IwAR0abc", "https://l.facebook.com/", "social", "earned"),
        (
            "utm_source=brevo&utm_medium=email&fbclid=IwAR0abc",
            "https://l.facebook.com/",
            "email",
            "owned",
        ),
        ("utm_source=google&utm_medium=organic", None, "organic_search", "earned"),
        # webmail and other Google products are not searches
        ("", "https://mail.google.com/", "referral", "earned"),
        ("", "android-app://com.google.android.gm/", "referral", "earned"),
        ("", "https://mail.yahoo.com/", "referral", "earned"),
        ("", "https://fr.search.yahoo.com/search?p=shoes", "organic_search", "earned"),
        ("", "https://cn.bing.com/", "organic_search", "earned"),
        ("", "android-app://com.google.android.googlequicksearchbox/", "organic_search", "earned"),
        # campaign tags no rule recognises: no channel, not direct
        ("utm_source=app&utm_medium=push", None, None, None),
        ("utm_source=google", None, None, None),
    ],
)
def test_default_rules_on_click_ids_networks_and_referrers(
    spark, collect, query, referrer, channel, group
):
    row = (f"https://shop.example/?{query}", referrer)
    expected = spark.createDataFrame([(*row, channel, group)], CHANNEL_OUT)
    assert_df_equality(_channels(spark, collect, [row]), expected, ignore_nullable=True)


def test_first_rule_that_holds_wins(spark):
    rules = [
        ChannelRule("display", "paid", utm_medium=("banner",), utm_source=("adnet",)),
        ChannelRule("affiliate", "paid", utm_medium=("banner",)),
        ChannelRule("display", "paid", utm_medium=("banner",)),
    ]
    df = with_url_parts(spark.createDataFrame([("/?utm_medium=Banner&utm_source=x", None)], HITS))
    actual = with_channel(df, rules).select("page_url", "referrer", "channel", "channel_group")
    expected = spark.createDataFrame(
        [("/?utm_medium=Banner&utm_source=x", None, "affiliate", "paid")], CHANNEL_OUT
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_rule_pattern_must_match_the_whole_value(spark):
    rules = [ChannelRule("paid_search", "paid", utm_medium=("cpc",))]
    df = with_url_parts(spark.createDataFrame([("/?utm_medium=cpc-test", None)], HITS))
    actual = with_channel(df, rules).select("page_url", "referrer", "channel", "channel_group")
    expected = spark.createDataFrame([("/?utm_medium=cpc-test", None, None, None)], CHANNEL_OUT)
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_click_id_column_counts_as_a_click_id(spark):
    rules = [ChannelRule("paid_search", "paid", click_id=("gclid",))]
    df = spark.createDataFrame([("Cj0K",), (" ",), (None,)], "gclid string")
    expected = spark.createDataFrame(
        [("Cj0K", "paid_search", "paid"), (" ", None, None), (None, None, None)],
        "gclid string, channel string, channel_group string",
    )
    assert_df_equality(with_channel(df, rules), expected, ignore_nullable=True)


def test_channel_without_url_parts_is_refused(spark, collect):
    df = spark.createDataFrame([("/", None)], HITS)
    with pytest.raises(ValueError, match="with_url_parts"):
        with_channel(df, collect.channels)


def test_unknown_click_id_in_the_rules_is_a_config_error(spark):
    rules = [ChannelRule("paid_search", "paid", click_id=("foo_clid",))]
    df = with_url_parts(spark.createDataFrame([("/", None)], HITS))
    with pytest.raises(ConfigError, match="foo_clid"):
        with_channel(df, rules)
