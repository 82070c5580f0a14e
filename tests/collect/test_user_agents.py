"""Device type, OS, browser and bot flag from user agents."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import ua_parser
from chispa import assert_df_equality
from ua_parser import BasicResolver, Parser, load_builtins, load_lazy_builtins

from crossdata.collect.user_agents import (
    classify_series,
    classify_user_agent,
    with_user_agent_fields,
)
from crossdata.world import vocab

REPO = Path(__file__).resolve().parents[2]

OUT = (
    "user_agent string, device_type string, os_family string, browser_family string, "
    "ua_is_bot boolean"
)
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36"
)
MAC_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Mobile Safari/537.36"
)
IPAD_SAFARI = (
    "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1"
)
# Chrome on an Android tablet leaves out the "Mobile" token.
ANDROID_TABLET_CHROME = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/122.0.0.0 Safari/537.36"
)


def _parsed(spark, user_agents):
    df = spark.createDataFrame([(ua,) for ua in user_agents], "user_agent string")
    return with_user_agent_fields(df)


def _expected(spark, rows):
    return spark.createDataFrame(rows, OUT)


def test_desktop_browsers_are_desktop(spark):
    actual = _parsed(spark, [WINDOWS_CHROME, MAC_SAFARI])
    expected = _expected(
        spark,
        [
            (WINDOWS_CHROME, "desktop", "Windows", "Chrome", False),
            (MAC_SAFARI, "desktop", "Mac OS X", "Safari", False),
        ],
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_phone_browsers_are_mobile(spark):
    actual = _parsed(spark, [IPHONE_SAFARI, ANDROID_CHROME])
    expected = _expected(
        spark,
        [
            (IPHONE_SAFARI, "mobile", "iOS", "Mobile Safari", False),
            (ANDROID_CHROME, "mobile", "Android", "Chrome Mobile", False),
        ],
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_ipad_and_android_tablet_browsers_are_tablets(spark):
    actual = _parsed(spark, [IPAD_SAFARI, ANDROID_TABLET_CHROME])
    expected = _expected(
        spark,
        [
            (IPAD_SAFARI, "tablet", "iOS", "Mobile Safari", False),
            (ANDROID_TABLET_CHROME, "tablet", "Android", "Chrome", False),
        ],
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_app_user_agents_name_the_app_and_their_device(spark):
    iphone = "ShopApp/5.2.1 (iPhone; iOS 17.1)"
    pixel = "ShopApp/5.2.1 (Linux; Android 14; Pixel 7)"
    ipad = "ShopApp/5.2.1 (iPad; iPadOS 17.1)"
    galaxy_tab = "ShopApp/5.2.1 (Linux; Android 14; SM-T970)"
    actual = _parsed(spark, [iphone, pixel, ipad, galaxy_tab])
    expected = _expected(
        spark,
        [
            (iphone, "mobile", "iOS", "ShopApp", False),
            (pixel, "mobile", "Android", "ShopApp", False),
            (ipad, "tablet", "iOS", "ShopApp", False),
            (galaxy_tab, "tablet", "Android", "ShopApp", False),
        ],
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_crawlers_scripts_and_headless_browsers_are_bots(spark):
    actual = _parsed(spark, [GOOGLEBOT, "python-requests/2.31.0", "curl/8.4.0", HEADLESS])
    expected = _expected(
        spark,
        [
            (GOOGLEBOT, "bot", None, "Googlebot", True),
            ("python-requests/2.31.0", "bot", None, "Python Requests", True),
            ("curl/8.4.0", "bot", None, "curl", True),
            (HEADLESS, "bot", "Linux", "HeadlessChrome", True),
        ],
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_missing_or_blank_user_agent_is_other_and_not_a_bot(spark):
    actual = _parsed(spark, [None, "", "-"])
    expected = _expected(
        spark,
        [(ua, "other", None, None, False) for ua in (None, "", "-")],
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_other_columns_are_kept_and_named_column_is_read(spark):
    df = spark.createDataFrame([("e1", MAC_SAFARI)], "event_id string, ua string")
    actual = with_user_agent_fields(df, column="ua")
    expected = spark.createDataFrame(
        [("e1", MAC_SAFARI, "desktop", "Mac OS X", "Safari", False)],
        OUT.replace("user_agent", "event_id string, ua"),
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


# Agents beyond the world's: other browsers, devices and clients, and strings that match little.
MORE_AGENTS = (
    "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Silk/120.3.1 like Chrome/120.0.6099.230 Safari/537.36",
    "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15254",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36 Edge/44.18363.8131",
    "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Wget/1.21.4",
    "Go-http-client/1.1",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)",
    "-",
    "??? \u00e9t\u00e9 (unknown)",
)


def test_the_rust_resolver_is_the_one_used_and_agrees_with_pure_python():
    # ua-parser picks its fastest resolver installed; the pinned [regex] extra is ua-parser-rs,
    # about ten times faster per new agent than the pure Python one (see
    # docs/bench-ingest.md). Both read the same uap-core regexes and must agree exactly.
    assert ua_parser.RegexResolver is not None, "ua-parser-rs is not installed"
    assert ua_parser.BestAvailableResolver is ua_parser.RegexResolver
    rust = Parser(ua_parser.RegexResolver(load_lazy_builtins()))
    python = Parser(BasicResolver(load_builtins()))
    world = (
        *vocab.DESKTOP_UAS,
        *vocab.SAFARI_UAS,
        *vocab.MOBILE_UAS,
        *vocab.APP_UAS,
        vocab.TABLET_APP_UA,
        vocab.KIOSK_UA,
        *vocab.DECLARED_BOT_UAS,
    )
    mine = (
        *(WINDOWS_CHROME, MAC_SAFARI, IPHONE_SAFARI, ANDROID_CHROME, IPAD_SAFARI),
        *(ANDROID_TABLET_CHROME, GOOGLEBOT, HEADLESS),
    )
    agents = (*world, *mine, *MORE_AGENTS)
    differ = [ua for ua in agents if rust.parse(ua) != python.parse(ua)]
    assert differ == []
    # The families crossdata reads are really found (not None on both sides).
    assert python.parse(IPAD_SAFARI).device.family == "iPad"
    assert rust.parse(GOOGLEBOT).device.family == "Spider"


def test_each_distinct_user_agent_is_parsed_once_per_batch():
    classify_user_agent.cache_clear()
    classify_series(pd.Series([MAC_SAFARI, MAC_SAFARI, GOOGLEBOT, MAC_SAFARI, None]))
    info = classify_user_agent.cache_info()
    assert (info.misses, info.hits) == (2, 0)


def test_configured_bot_patterns_make_a_bot_once_per_distinct_agent(spark):
    # Case-insensitive, anywhere in the agent, Python regex syntax; NULL and blank never match.
    monitor = "SiteMonitor-42 (+https://example.org)"
    uptime = "Mozilla/5.0 (compatible; UPTIMEcheck/1.0)"
    patterns = (r"sitemonitor-\d+", "uptime")
    df = spark.createDataFrame(
        [(ua,) for ua in (monitor, uptime, WINDOWS_CHROME, None, " ")], "user_agent string"
    )
    actual = with_user_agent_fields(df, bot_patterns=patterns)
    expected = _expected(
        spark,
        [
            (monitor, "bot", None, None, True),
            (uptime, "bot", None, None, True),
            (WINDOWS_CHROME, "desktop", "Windows", "Chrome", False),
            (None, "other", None, None, False),
            (" ", "other", None, None, False),
        ],
    )
    assert_df_equality(
        actual.drop("os_family", "browser_family"),
        expected.drop("os_family", "browser_family"),
        ignore_nullable=True,
    )
    # Without the patterns the same agents are not bots: the patterns did it.
    plain = {r["user_agent"]: r["ua_is_bot"] for r in with_user_agent_fields(df).collect()}
    assert plain[monitor] is False and plain[uptime] is False
    classify_user_agent.cache_clear()
    classify_series(pd.Series([monitor, monitor, WINDOWS_CHROME, monitor]), patterns)
    assert classify_user_agent.cache_info().misses == 2


def test_a_pattern_python_cannot_compile_fails_before_any_row_is_read(spark):
    df = spark.createDataFrame([(MAC_SAFARI,)], "user_agent string")
    with pytest.raises(re.error):
        with_user_agent_fields(df, bot_patterns=("bot", "(unclosed"))


@pytest.mark.parametrize(
    ("user_agent", "device_type"),
    [
        # Android browsers without the "Mobile" token, whatever ua-parser knows of the model
        (
            "Mozilla/5.0 (Linux; Android 12; TB-J606F) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36",
            "tablet",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel Tablet) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
            "tablet",
        ),
        ("Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0", "tablet"),
        ("Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0", "mobile"),
        # televisions, streaming sticks and consoles, whatever OS they run
        (
            "Mozilla/5.0 (Linux; Android 9; BRAVIA 4K GB ATV3 Build/PTT1.190515.001.S52) "
            "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/86.0.4240.99 Safari/537.36",
            "other",
        ),
        (
            "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Silk/98.6.10 like Chrome/98.0.4758.136 Safari/537.36",
            "other",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19041",
            "other",
        ),
        # a Cubot phone: its model names the maker, not a bot
        (
            "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Mobile Safari/537.36",
            "mobile",
        ),
        # clients the default patterns add
        ("Mediapartners-Google", "bot"),
        ("Mozilla/5.0 (compatible; GoogleOther)", "bot"),
        ("libwww-perl/6.67", "bot"),
        ("PostmanRuntime/7.36.0", "bot"),
        ("python-httpx/0.27.0", "bot"),
        ("node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "bot"),
        (WINDOWS_CHROME + " Chrome-Lighthouse", "bot"),
        (ANDROID_TABLET_CHROME, "tablet"),
        (ANDROID_CHROME, "mobile"),
        (GOOGLEBOT, "bot"),
    ],
)
def test_default_patterns_and_device_rules(user_agent, device_type):
    from crossdata.config import load_settings

    patterns = load_settings(conf_dir=REPO / "conf").settings.collect.bots.user_agent_patterns
    got = classify_user_agent(user_agent, tuple(patterns))
    assert got.device_type == device_type, got
    assert got.ua_is_bot == (device_type == "bot"), got
