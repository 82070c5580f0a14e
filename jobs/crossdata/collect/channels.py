"""Where a visit came from: URL parts, UTM parameters, click ids, referrer, and the channel.

URLs are split with regular expressions rather than ``parse_url``: ``parse_url`` follows
java.net.URI and returns NULL for the whole URL when one character is not escaped (a space or
a ``|`` in ``utm_campaign`` is common in real tracking links), which would lose every UTM of
the hit. Paths without a host (access logs: ``/p/sku-1?utm_source=x``) parse the same way and
have a NULL ``url_host``.

Hosts (``url_host``, ``referrer_host``) are lower-cased without user info, port or trailing
dot, and keep ``www.``: the default channel rules match ``(.+\\.)?google\\..+`` and
``collect.site_hosts`` lists ``www.`` variants explicitly, so stripping it would only lose
information.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from crossdata.collect.identifiers import full_match
from crossdata.config.schema import ChannelRule
from crossdata.errors import ConfigError

UTM_PARAMS: tuple[str, ...] = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
)
# Each also gets a column of its own.
CLICK_ID_COLUMNS: tuple[str, ...] = ("gclid", "fbclid", "msclkid")
# Every click id kept in the click_ids map: Google (gclid, gbraid, wbraid, dclid), Microsoft,
# Meta, TikTok, LinkedIn, X, Pinterest, Yandex, Snapchat.
CLICK_ID_PARAMS: tuple[str, ...] = (
    "gclid",
    "gbraid",
    "wbraid",
    "dclid",
    "msclkid",
    "fbclid",
    "ttclid",
    "li_fat_id",
    "twclid",
    "epik",
    "yclid",
    "sccid",
)
CLICK_IDS = "click_ids"

# scheme://authority path ?query #fragment, every part optional but the authority.
_URL = r"^[A-Za-z][A-Za-z0-9+.\-]*://([^/?#]*)([^?#]*)(?:\?([^#]*))?"
_HOST = r"^(?:[^@]*@)?(\[[^\]]*\]|[^:]*)"


def _text(col: Column) -> Column:
    """Trimmed text; NULL when blank or "-" (the access log's "no value")."""
    return F.when(~F.trim(col.cast("string")).isin("", "-"), F.trim(col.cast("string")))


def _absolute(url: Column) -> Column:
    """The URL with a scheme and authority, so one regex reads every form."""
    return (
        F.when(url.rlike(r"^[A-Za-z][A-Za-z0-9+.\-]*://"), url)
        .when(url.startswith("//"), F.concat(F.lit("http:"), url))
        # A path or query alone: an empty authority, hence a NULL host.
        .when(url.rlike(r"^[/?#]"), F.concat(F.lit("relative://"), url))
        # "www.google.com/search": a host someone wrote without its scheme.
        .otherwise(F.concat(F.lit("http://"), url))
    )


def _host(authority: Column) -> Column:
    """Lower-cased host of an authority, without user info, port or trailing dot ("" if none)."""
    return F.regexp_replace(F.lower(F.regexp_extract(authority, _HOST, 1)), r"\.$", "")


# One name=value pair of a query string; a piece without "=" is no parameter.
_PAIR = r"(?:^|&)([^=&]*)=([^&]*)"


def _pairs(query: Column) -> dict[str, Column]:
    """``names`` (lower-cased) and raw ``values`` of the query's pairs, in order; both NULL
    when the query is empty. Lower-casing moves no ``&`` or ``=``, so the two lists line up."""
    has_query = query != ""
    return {
        "names": F.when(has_query, F.regexp_extract_all(F.lower(query), F.lit(_PAIR), 1)),
        "values": F.when(has_query, F.regexp_extract_all(query, F.lit(_PAIR), 2)),
    }


def _params(names: Column, values: Column, wanted: Sequence[str]) -> Column:
    """The values of the ``wanted`` parameters (case-insensitive names), in that order, each
    from its first pair, URL-decoded and trimmed ("" when blank; NULL when absent).

    ``names`` and ``values`` must be columns of an earlier projection: an expression inside
    the lambda would be computed again for every wanted name.
    """
    # One lambda over the wanted names, not an expression per parameter: 17 of those, each
    # with its own regex and decoding, made the projection's generated method too large for
    # the JIT, so every row of it ran in the bytecode interpreter (5.1 s on 1M page views
    # against 1.4 s with 12 parameters; docs/bench-ingest.md). The lambda is interpreted too,
    # but with_url_parts calls it only on the rows with a query (about one page view in ten).
    return F.transform(
        F.array(*[F.lit(n) for n in wanted]),
        lambda n: _decoded(F.get(values, F.array_position(names, n).cast("int") - 1)),
    )


def _decoded(raw: Column) -> Column:
    # A "%" that starts no two-hex-digit escape leaves the text as it came: it is still the
    # best value there is. The check is ours, not the decoder's, because Java's URLDecoder
    # reads the two characters after "%" with Integer.parseInt, which takes a sign: "%+a"
    # would become a line feed and "%-1" fail.
    broken = raw.rlike("%(?![0-9A-Fa-f]{2})")
    return F.trim(F.when(broken, raw).otherwise(F.coalesce(F.try_url_decode(raw), raw)))


def _blank_to_null(value: Column) -> Column:
    return F.when(value != "", value)


def with_url_parts(
    df: DataFrame,
    url: str = "page_url",
    referrer: str = "referrer",
    site_hosts: Sequence[str] = (),
) -> DataFrame:
    """Add url_host, url_path, utm_*, click ids, click_ids, referrer_host, is_external_referrer.

    ``is_external_referrer`` is true when the referrer has a host that is neither one of
    ``site_hosts`` nor the page's own host.
    """
    params = (*UTM_PARAMS, *[n for n in CLICK_ID_PARAMS if n not in UTM_PARAMS])

    def t(name: str) -> Column:
        return F.col(f"_url_{name}")

    # One projection per step, each reading the previous one's columns by name. As a single
    # nested expression the URL would be re-parsed for every parameter, and the generated
    # code grows big enough to take seconds to compile.
    steps: list[dict[str, Column]] = [
        {"page_text": _text(F.col(url)), "ref_text": _text(F.col(referrer))},
        {"page": _absolute(t("page_text")), "ref": _absolute(t("ref_text"))},
        {
            "page_auth": F.regexp_extract(t("page"), _URL, 1),
            "path": F.regexp_extract(t("page"), _URL, 2),
            "query": F.regexp_extract(t("page"), _URL, 3),
            "ref_auth": F.regexp_extract(t("ref"), _URL, 1),
        },
        _pairs(t("query")),
        {
            "host": _host(t("page_auth")),
            "ref_host": _host(t("ref_auth")),
            # NULL without a query: the lambda runs only on the rows that have one.
            "params": F.when(t("names").isNotNull(), _params(t("names"), t("values"), params)),
        },
    ]
    out = df
    for step in steps:
        out = out.withColumns({f"_url_{name}": col for name, col in step.items()})

    value = {n: _blank_to_null(F.get(t("params"), i)) for i, n in enumerate(params)}
    for name in ("utm_source", "utm_medium"):
        value[name] = F.lower(value[name])
    url_host, referrer_host = _blank_to_null(t("host")), _blank_to_null(t("ref_host"))
    own_hosts = sorted({h.strip().lower() for h in site_hosts})
    internal = F.coalesce(referrer_host == url_host, F.lit(False))
    if own_hosts:
        internal = internal | referrer_host.isin(own_hosts)
    path = t("path")
    # The click ids present, as a map, computed only for the few hits that carry one: the
    # map_filter over every row this replaces (a lambda, interpreted row by row) cost as much
    # on 1M page views as the rest of the URL parsing.
    entries = [
        F.when(value[n].isNotNull(), F.struct(F.lit(n).alias("k"), value[n].alias("v")))
        for n in CLICK_ID_PARAMS
    ]
    click_map = F.when(
        reduce(lambda a, b: a | b, [value[n].isNotNull() for n in CLICK_ID_PARAMS]),
        F.map_from_entries(F.array_compact(F.array(*entries))),
    ).otherwise(F.create_map().cast("map<string,string>"))
    parts = {
        "url_host": url_host,
        # An empty path is the root page.
        "url_path": F.when(t("page").isNotNull(), F.when(path == "", "/").otherwise(path)),
        **{n: value[n] for n in UTM_PARAMS},
        **{n: value[n] for n in CLICK_ID_COLUMNS},
        CLICK_IDS: click_map,
        "referrer_host": referrer_host,
        "is_external_referrer": referrer_host.isNotNull() & ~internal,
    }
    # A select drops the steps' columns and puts the new ones after the input's, in order.
    kept = [c for c in df.columns if c not in parts]
    return out.select(*kept, *[col.alias(name) for name, col in parts.items()])


def _click_id_present(df: DataFrame, name: str) -> Column:
    tests = []
    if name in df.columns:
        tests.append(F.length(F.trim(F.col(name).cast("string"))) > 0)
    if CLICK_IDS in df.columns:
        tests.append(F.col(CLICK_IDS)[name].isNotNull())
    if not tests:
        raise ValueError(
            f"channel rule needs click id {name!r}: the frame has neither a column {name!r} "
            f"nor {CLICK_IDS!r} (run with_url_parts first; it extracts {CLICK_ID_PARAMS})"
        )
    if name not in df.columns and name not in CLICK_ID_PARAMS:
        raise ConfigError(
            f"collect.channels: click_id {name!r} is not a URL parameter crossdata extracts; "
            f"use one of {', '.join(CLICK_ID_PARAMS)}"
        )
    return F.coalesce(reduce(lambda a, b: a | b, tests), F.lit(False))


def _rule_holds(df: DataFrame, rule: ChannelRule) -> Column:
    external = F.coalesce(F.col("is_external_referrer"), F.lit(False))
    conditions: list[Column] = []
    if rule.utm_medium:
        conditions.append(full_match(F.col("utm_medium"), rule.utm_medium))
    if rule.utm_source:
        conditions.append(full_match(F.col("utm_source"), rule.utm_source))
    if rule.referrer_host:
        # The site's own host is not a referrer, whatever the pattern says.
        conditions.append(external & full_match(F.col("referrer_host"), rule.referrer_host))
    if rule.click_id:
        conditions.append(
            reduce(lambda a, b: a | b, [_click_id_present(df, n) for n in rule.click_id])
        )
    if rule.no_referrer:
        conditions.append(~external)
    if rule.no_campaign:
        conditions.append(~_campaign_tagged(df))
    # NULL (an absent UTM) is "does not hold", not "unknown".
    return F.coalesce(reduce(lambda a, b: a & b, conditions, F.lit(True)), F.lit(False))


def _campaign_tagged(df: DataFrame) -> Column:
    """Whether the hit carries campaign tags: a UTM source, medium or campaign, or a click id."""
    # utm_source and utm_medium are required (_require); the others count when present
    tags = [F.col(n).isNotNull() for n in ("utm_source", "utm_medium")]
    tags += [F.col(n).isNotNull() for n in ("utm_campaign", *CLICK_ID_COLUMNS) if n in df.columns]
    if CLICK_IDS in df.columns:
        tags.append(F.coalesce(F.size(CLICK_IDS) > 0, F.lit(False)))
    return F.coalesce(reduce(lambda a, b: a | b, tags), F.lit(False))


def _require(df: DataFrame, rules: Sequence[ChannelRule]) -> None:
    needed = set()
    for rule in rules:
        needed |= {name for name in ("utm_medium", "utm_source") if getattr(rule, name)}
        if rule.no_campaign:
            needed |= {"utm_medium", "utm_source"}
        if rule.referrer_host:
            needed |= {"referrer_host", "is_external_referrer"}
        if rule.no_referrer:
            needed.add("is_external_referrer")
    missing = sorted(needed - set(df.columns))
    if missing:
        raise ValueError(
            f"with_channel needs columns {', '.join(missing)}: run with_url_parts first"
        )


def with_channel(df: DataFrame, rules: Sequence[ChannelRule]) -> DataFrame:
    """Add channel and channel_group from the first of the ordered rules that holds (else NULL)."""
    _require(df, rules)
    chosen: Column = F.lit(None).cast("struct<channel:string,channel_group:string>")
    if rules:
        chain = F.when(_rule_holds(df, rules[0]), _choice(rules[0]))
        for rule in rules[1:]:
            chain = chain.when(_rule_holds(df, rule), _choice(rule))
        chosen = chain
    # One column first: the optimiser keeps a costly expression read twice in its own
    # projection, so the rule chain runs once per row.
    picked = "_channel_choice"
    return (
        df.withColumn(picked, chosen)
        .withColumns({name: F.col(f"{picked}.{name}") for name in ("channel", "channel_group")})
        .drop(picked)
    )


def _choice(rule: ChannelRule) -> Column:
    return F.struct(F.lit(rule.channel).alias("channel"), F.lit(rule.group).alias("channel_group"))
