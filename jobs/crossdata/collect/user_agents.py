"""What a user agent says about the device: device type, OS, browser and whether it is a bot.

Parsing is ua-parser 1.0 with its bundled regexes, in a pandas UDF. User agents repeat a lot,
so each distinct one is parsed once per Arrow batch and kept in an LRU cache that lives as
long as the (reused) Python worker: no shuffle, no join, and it also works on a stream. A new
agent is parsed by ua-parser's Rust resolver (ua-parser-rs, the ``[regex]`` extra crossdata
pins), which ua-parser picks when it is installed: ten times faster than its pure Python
resolver, same results (``infra/profile/ua_resolvers.py``).

``device_type`` rules, first that applies:

- ``bot``: ``ua_is_bot`` (ua-parser's device family ``Spider``, a scripted client or
  headless browser from ``BOT_FAMILIES``, or one of the caller's bot patterns found in the
  user agent);
- ``tablet``: an iPad or Kindle, what ua-parser calls a generic Android tablet (an Android
  browser without the ``Mobile`` token), or an Android app UA naming a tablet model;
- ``mobile``: a phone OS (iOS, Android, ...) or the ``Mobi`` token browsers add on phones;
- ``desktop``: a desktop OS (Windows, macOS, Linux, Chrome OS, ...) on no particular device;
- ``other``: the rest (TVs, consoles, unknown clients) and a NULL or blank user agent.

An app's own user agent (``ShopApp/5.2.1 (iPhone; iOS 17.1)``) names the app, not a browser:
its ``browser_family`` is the app's name where ua-parser would say ``Mobile Safari
UI/WKWebView`` or ``Android``. A NULL or blank user agent gives ``other``, NULL families and
``ua_is_bot`` false: a missing header alone is no evidence (app SDKs often send none).

Bot patterns (``collect.bots.user_agent_patterns``) are Python regular expressions, searched
case-insensitively anywhere in the user agent. They are tested here, once per distinct user
agent, rather than as a Spark ``rlike`` on every row: one case-insensitive alternation of a
dozen words cost about 4 s per million rows in Spark, and almost nothing on the few thousand
distinct agents of a batch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from ua_parser import Device, parse

DEVICE_TYPES: tuple[str, ...] = ("desktop", "mobile", "tablet", "bot", "other")

# Clients ua-parser recognises but does not mark as Spider: scripts and headless browsers.
BOT_FAMILIES: frozenset[str] = frozenset(
    {
        "HeadlessChrome",
        "PhantomJS",
        "Python Requests",
        "Python-urllib",
        "aiohttp",
        "curl",
        "Wget",
        "Go-http-client",
        "Apache-HttpClient",
        "Scrapy",
        "axios",
    }
)
MOBILE_OS: frozenset[str] = frozenset(
    {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS", "Symbian OS"}
)
DESKTOP_OS: frozenset[str] = frozenset(
    {
        "Windows",
        "Mac OS X",
        "Linux",
        "Ubuntu",
        "Debian",
        "Fedora",
        "Chrome OS",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
    }
)
_TABLET_DEVICES = frozenset({"iPad", "Kindle", "Kindle Fire"})
# App user agents carry only the model, and ua-parser's tablet rule needs a browser's missing
# "Mobile" token; these model names are tablets (Samsung SM-T/X/P, Amazon KF*, *Pad, *Tab).
_APP_TABLET_MODEL = re.compile(r"tablet|\btab\b|pad\b|\bSM-[TXP]\d|\bKF[A-Z]{2,}\b", re.I)
_APP_NAME = re.compile(r"^([A-Za-z][\w.-]*)/")
# Televisions, streaming sticks and game consoles: "other", whatever OS they run (Android TV
# would otherwise pass for a tablet, an Xbox for a Windows desktop).
_TV_OR_CONSOLE = re.compile(
    r"smart-?tv|\bGoogleTV\b|Android TV|\bBRAVIA\b|\bAFT[A-Z]{1,4}\b|\bCrKey\b|HbbTV|"
    r"\bWeb0S\b|\bTizen\b.*\bTV\b|\bXbox\b|PlayStation|Nintendo",
    re.I,
)

UA_FIELDS = "device_type string, os_family string, browser_family string, ua_is_bot boolean"


class UserAgentFields(NamedTuple):
    device_type: str
    os_family: str | None
    browser_family: str | None
    ua_is_bot: bool


UNKNOWN = UserAgentFields("other", None, None, False)


@lru_cache(maxsize=64)
def bot_pattern(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One case-insensitive regex that finds any of ``patterns`` (None when there are none).

    Raises ``re.error`` on a pattern Python cannot compile (the config checks them first)."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def matches_bot_pattern(user_agent: str | None, patterns: tuple[str, ...]) -> bool:
    """Whether one of ``patterns`` is found in ``user_agent`` (never for NULL or blank)."""
    found = bot_pattern(patterns)
    return bool(found and user_agent and user_agent.strip() and found.search(user_agent))


@lru_cache(maxsize=50_000)
def classify_user_agent(
    user_agent: str | None, bot_patterns: tuple[str, ...] = ()
) -> UserAgentFields:
    """device_type, os_family, browser_family and ua_is_bot of one user agent string.

    ``bot_patterns``: regexes that also make it a bot when found in it (case-insensitive)."""
    if user_agent is None or not user_agent.strip():
        return UNKNOWN
    result = parse(user_agent)
    browser = result.user_agent.family if result.user_agent else None
    os_family = result.os.family if result.os else None
    device = result.device
    is_bot = (
        (device is not None and device.family == "Spider")
        or browser in BOT_FAMILIES
        or matches_bot_pattern(user_agent, bot_patterns)
    )
    is_app = not user_agent.startswith("Mozilla/") and os_family in ("iOS", "Android")
    if is_app and (app := _APP_NAME.match(user_agent)):
        browser = app.group(1)
    if is_bot:
        device_type = "bot"
    elif _TV_OR_CONSOLE.search(user_agent):
        device_type = "other"
    elif (device is not None and device.family in _TABLET_DEVICES) or (
        os_family == "Android" and _android_tablet(user_agent, is_app, device)
    ):
        device_type = "tablet"
    elif os_family in MOBILE_OS or "Mobi" in user_agent:
        device_type = "mobile"
    elif os_family in DESKTOP_OS and (device is None or device.family in ("Mac", "Other")):
        device_type = "desktop"
    else:
        device_type = "other"
    return UserAgentFields(device_type, os_family, browser, is_bot)


def _android_tablet(user_agent: str, is_app: bool, device: Device | None) -> bool:
    """An Android tablet: a browser without the "Mobile" token phones send (Chrome's and
    Firefox's convention, whatever the model: a Lenovo TB-J606F, a Pixel Tablet), or an
    app whose model name is a tablet's."""
    if device is not None and device.brand == "Generic_Android_Tablet":
        return True
    if is_app:
        return device is not None and bool(_APP_TABLET_MODEL.search(device.family))
    return user_agent.startswith("Mozilla/") and "Mobile" not in user_agent


def classify_series(user_agents: pd.Series, bot_patterns: tuple[str, ...] = ()) -> pd.DataFrame:
    """classify_user_agent over a batch, each distinct user agent once."""
    table = {ua: classify_user_agent(ua, bot_patterns) for ua in user_agents.dropna().unique()}
    rows = [table.get(ua, UNKNOWN) for ua in user_agents]
    return pd.DataFrame(rows, columns=list(UserAgentFields._fields), index=user_agents.index)


def with_user_agent_fields(
    df: DataFrame, column: str = "user_agent", bot_patterns: Sequence[str] = ()
) -> DataFrame:
    """Add device_type, os_family, browser_family and ua_is_bot parsed from ``column``;
    a user agent in which one of ``bot_patterns`` is found is a bot too."""
    patterns = tuple(bot_patterns)
    bot_pattern(patterns)  # a pattern Python cannot compile fails here, not in a worker

    @F.pandas_udf(UA_FIELDS)  # type: ignore[call-overload]
    def _parse(user_agents: pd.Series) -> pd.DataFrame:
        return classify_series(user_agents, patterns)

    parsed = "_ua_fields"
    return (
        df.withColumn(parsed, _parse(F.col(column).cast("string")))
        .withColumns({name: F.col(f"{parsed}.{name}") for name in UserAgentFields._fields})
        .drop(parsed)
    )


def bot_pattern_found(column: str, bot_patterns: Sequence[str]) -> Column:
    """Whether one of ``bot_patterns`` is found in ``column`` (false for NULL), tested in
    Python once per distinct value of each Arrow batch: the same semantics as the patterns
    of ``with_user_agent_fields``, for frames whose user agents are not parsed."""
    patterns = tuple(bot_patterns)
    bot_pattern(patterns)

    @F.pandas_udf("boolean")  # type: ignore[call-overload]
    def _found(user_agents: pd.Series) -> pd.Series:
        table = {ua: matches_bot_pattern(ua, patterns) for ua in user_agents.dropna().unique()}
        return pd.Series([table.get(ua, False) for ua in user_agents], index=user_agents.index)

    return _found(F.col(column).cast("string"))
