"""From simulated rows to landing lines, source by source, exactly in the contract's formats.

Visits are expanded to events here, column-wise: every per-event draw is a hash of the event's
unique key, so the expansion needs no random state and no loop per event. The output of every
function is a *record frame*: one row per landing line with its source, delivery day, shard,
sort key and placeholder note, ready for the file writer.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from urllib.parse import quote_plus

import numpy as np
import pandas as pd
import pyarrow as pa

from crossdata.world import formats, vocab
from crossdata.world.hashing import hash64, mix64, pick, uniform, unique64
from crossdata.world.model import NS_BOT_EVENT, WorldParams, event_ids
from crossdata.world.people import PARIS, simulate_people
from crossdata.world.tables import new_tables

RECORD_COLUMNS = (
    "kind",  # landing | truth | stat
    "source",  # landing source, truth table or statistic name
    "day",  # delivery day index (-1 for truth and statistics)
    "shard",  # file number within the day folder, or truth part
    "sort_ms",  # lines are sorted by (sort_ms, sort_key, line) inside a file; a stat's value
    "sort_key",
    "line",
    "late",  # days between the event's date and its delivery folder
    "placeholders",  # field=value;... placeholders this line carries (counted in the truth)
)

GROUP_KEYS = ("kind", "source", "day", "shard")  # one group = one file, part or statistic
PAYLOAD_COLUMNS = ("sort_ms", "sort_key", "line", "late", "placeholders")
PACKED_COLUMNS = (*GROUP_KEYS, "rows", "payload")

BROWSE_TYPES = ("page_view", "product_view", "search", "add_to_cart", "checkout", "logout")
BROWSE_WEIGHTS = (0.25, 0.45, 0.17, 0.08, 0.04, 0.01)
PAGE_PATHS = ("/", "/c/femme", "/c/homme", "/c/maison", "/c/enfant", "/promotions", "/magasins")
REQUEST: dict[str, tuple[str, str]] = {
    # event type -> (method, path) of the request the web server logs
    "add_to_cart": ("POST", "/cart/add"),
    "checkout": ("GET", "/checkout"),
    "purchase": ("POST", "/checkout/confirm"),
    "login": ("POST", "/account/login"),
    "logout": ("GET", "/account/logout"),
    "email_signup": ("POST", "/newsletter/subscribe"),
}
PAGE_OF: dict[str, str] = {
    "add_to_cart": "/cart",
    "checkout": "/checkout",
    "purchase": "/checkout/confirmation",
    "login": "/account/login",
    "logout": "/account/logout",
    "email_signup": "/newsletter",
}
CHUNK_PERSONS = 200


def record_frame(
    P: WorldParams,
    source: str,
    day: np.ndarray,
    key: np.ndarray,
    sort_ms: np.ndarray,
    line: np.ndarray,
    late: np.ndarray | None = None,
    placeholders: np.ndarray | None = None,
) -> pd.DataFrame:
    """Landing lines with their delivery day and file shard (a hash of the record key)."""
    n = len(line)
    day = np.asarray(day, dtype=np.int64)
    shards = np.asarray(P.shards[source], dtype=np.uint64)[day] if n else np.zeros(0, np.uint64)
    shard = (mix64(np.asarray(key, dtype=np.uint64)) % np.maximum(shards, 1)).astype(np.int32)
    return pd.DataFrame(
        {
            "kind": "landing",
            "source": source,
            "day": day.astype(np.int32),
            "shard": shard,
            "sort_ms": np.asarray(sort_ms, dtype=np.int64),
            "sort_key": np.asarray(key, dtype=np.uint64).view(np.int64),
            "line": np.asarray(line, dtype=object),
            "late": np.zeros(n, np.int32) if late is None else np.asarray(late, dtype=np.int32),
            "placeholders": (
                np.full(n, "", dtype=object) if placeholders is None else placeholders
            ),
        },
        columns=list(RECORD_COLUMNS),
    )


def _offsets(P: WorldParams, instant: np.ndarray, zone: np.ndarray) -> np.ndarray:
    return np.where(zone == PARIS, P.paris_offset(instant), zone)


def _join_ph(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    both = (a != "") & (b != "")
    return np.where(both, a + ";" + b, a + b)


# -- visits -> events and access log --------------------------------------------------------
def visit_records(P: WorldParams, S: dict[str, np.ndarray]) -> list[pd.DataFrame]:
    """Expand visits into site/app events and web-server requests."""
    n = S["n"]
    total = int(n.sum())
    if total == 0:
        return []
    seed = P.seed
    sess = np.repeat(np.arange(len(n)), n)
    first = np.cumsum(n) - n
    k = np.arange(total) - first[sess]
    nn = n[sess]
    key, eid = event_ids(seed, S["pid"][sess], S["sid"][sess], k)

    def u(name: str) -> np.ndarray:
        return uniform(seed, name, key)

    gap = np.where(k == 0, 0, -np.log1p(-u("gap")) * 40_000 + 2_000).astype(np.int64)
    c = np.cumsum(gap)
    cum = c - c[first][sess]
    span = cum[first + n - 1][sess]
    t = S["t"][sess]
    instant = np.where(S["anchor_end"][sess], t - (span - cum), t + cum)

    app, kiosk = S["app"][sess], S["kiosk"][sess]
    typ = np.asarray(BROWSE_TYPES, dtype=object)[pick(u("type"), BROWSE_WEIGHTS)]
    typ[k == 0] = np.where(app[k == 0], "app_open", "page_view")
    typ[S["login_event"][sess] & (k == 1)] = "login"
    middle = (k > 0) & (k < nn - 1)
    typ[kiosk & (k == 0)] = "login"
    typ[kiosk & middle] = "product_view"
    typ[kiosk & (k == nn - 1) & (k > 0)] = "logout"
    buying = S["order"][sess] != ""
    typ[buying & (k > 0) & (k < nn - 3)] = "product_view"
    typ[buying & (k == nn - 3)] = "add_to_cart"
    typ[buying & (k == nn - 2)] = "checkout"
    typ[buying & (k == nn - 1)] = "purchase"
    typ[(S["signup"][sess] != "") & (k == nn - 1) & (k > 0)] = "email_signup"

    prices = np.asarray(P.product_prices)
    prod = np.minimum((u("sku") * len(prices)).astype(np.int64), len(prices) - 1)
    sku = np.array([f"sku-{i + 1:04d}" for i in prod.tolist()], dtype=object)
    price = prices[prod]
    has_product = (typ == "product_view") | (typ == "add_to_cart")
    is_cart = typ == "add_to_cart"
    quantity = 1 + (u("qty") < 0.2).astype(np.int64) + (u("qty2") < 0.05).astype(np.int64)
    amount = S["amount"][sess]
    is_checkout = typ == "checkout"
    cart_value = np.where(buying, amount, np.round(price * (1 + np.floor(u("cart") * 3)), 2))
    is_purchase = typ == "purchase"
    is_search = typ == "search"
    query_idx = np.minimum(
        (u("q") * len(vocab.SEARCH_QUERIES)).astype(np.int64), len(vocab.SEARCH_QUERIES) - 1
    )
    queries = np.asarray(vocab.SEARCH_QUERIES, dtype=object)[query_idx]
    search_query = np.where(is_search, queries, "")
    long_q = is_search & (u("long") < 0.005)
    for i in np.flatnonzero(long_q):
        # Very long but legal (< 8192 characters): someone pasted a whole page.
        size = 2000 + int(hash64(seed, "long-size", int(key[i])) % 5000)
        search_query[i] = ((str(queries[i]) + " ") * (size // 4))[:size].strip()

    path = np.full(total, "", dtype=object)
    pv = typ == "page_view"
    page_idx = np.minimum((u("page") * len(PAGE_PATHS)).astype(np.int64), len(PAGE_PATHS) - 1)
    path[pv] = np.asarray(PAGE_PATHS, dtype=object)[page_idx[pv]]
    path[typ == "product_view"] = "/p/" + sku[typ == "product_view"]
    if is_search.any():
        path[is_search] = formats._by_value(
            queries[is_search], lambda q: "/search?q=" + quote_plus(q[:100])
        )
    for name, page in PAGE_OF.items():
        path[typ == name] = page
    landing = (k == 0) & (S["query"][sess] != "")
    page_url = np.where(app, "", vocab.SHOP + path)
    page_url[landing & ~app] = page_url[landing & ~app] + S["query"][sess][landing & ~app]
    prev = np.empty(total, dtype=object)
    prev[1:] = path[:-1]
    prev[0] = ""
    referrer = np.where(k == 0, S["referrer"][sess], vocab.SHOP + prev)
    referrer = np.where(app, "", referrer)

    ev_user = S["ev_user"][sess]
    carries_user = (ev_user != "") & (~S["login_event"][sess] | kiosk | (k >= 1))
    user = np.where(carries_user, ev_user, "")
    ph = _join_ph(S["ph"][sess], np.where(carries_user, S["ph_user"][sess], ""))
    device_time = instant + S["skew"][sess]
    zone = S["zone"][sess]
    local = P.local_day(instant)
    day = local + S["late"][sess]
    network = np.asarray(("wifi", "4g", "5g", "wifi"), dtype=object)[
        np.minimum((u("net") * 4).astype(np.int64), 3)
    ]
    in_window = (day >= 0) & (day < P.days)
    out: list[pd.DataFrame] = []

    ev = in_window & S["tag"][sess]
    if ev.any():
        sel = np.flatnonzero(ev)
        ts = formats.iso_times(
            device_time[sel], _offsets(P, device_time[sel], zone[sel]), unit="ms"
        )
        J = formats.json_strings
        has_price = has_product[sel]
        line = formats.json_objects(
            ("event_id", J(np.asarray(eid, dtype=object)[sel], plain=True)),
            [
                ("event_type", J(typ[sel], plain=True)),
                ("ts", J(ts, plain=True)),
                ("platform", J(np.where(app[sel], "app", "web"), plain=True)),
                ("cookie_id", J(np.where(app[sel], "", S["ev_cookie"][sess][sel]), plain=True)),
                ("device_id", J(np.where(app[sel], S["ev_device"][sess][sel], ""), plain=True)),
                ("user_id", J(user[sel], plain=True)),
                ("email", J(np.where(typ[sel] == "email_signup", S["signup"][sess][sel], ""))),
                ("page_url", J(page_url[sel], plain=True)),
                ("referrer", J(referrer[sel], plain=True)),
                ("user_agent", J(S["ua"][sess][sel], plain=True)),
                ("ip", J(S["ip"][sess][sel], plain=True)),
                ("product_id", J(np.where(has_price, sku[sel], ""), plain=True)),
                ("price", formats.json_numbers(price[sel], has_price, 2)),
                ("quantity", np.where(is_cart[sel], quantity[sel].astype(str).astype(object), "")),
                ("cart_value", formats.json_numbers(cart_value[sel], is_checkout[sel], 2)),
                ("order_id", J(np.where(is_purchase[sel], S["order"][sess][sel], ""), plain=True)),
                ("revenue", formats.json_numbers(amount[sel], is_purchase[sel], 2)),
                (
                    "currency",
                    J(
                        np.where(has_price | is_checkout[sel] | is_purchase[sel], "EUR", ""),
                        plain=True,
                    ),
                ),
                ("search_query", J(search_query[sel])),
                ("app_version", J(S["appv"][sess][sel], plain=True)),
                (
                    "network",  # schema drift: the SDK adds it from the middle day on
                    J(
                        np.where(app[sel] & (local[sel] >= P.drift_day), network[sel], ""),
                        plain=True,
                    ),
                ),
            ],
        )
        out.append(
            record_frame(
                P, "events", day[sel], key[sel], instant[sel], line, S["late"][sess][sel], ph[sel]
            )
        )

    web = in_window & ~app & (S["late"][sess] == 0)
    if web.any():
        sel = np.flatnonzero(web)
        method = np.full(len(sel), "GET", dtype=object)
        url = path[sel].copy()
        for name, (verb, target) in REQUEST.items():
            m = typ[sel] == name
            method[m] = verb
            url[m] = target
        first_hit = landing[sel]
        url[first_hit] = url[first_hit] + S["query"][sess][sel][first_hit]
        r = u("status")[sel]
        get = method == "GET"
        status = np.where(
            get,
            np.where(r < 0.91, "200", np.where(r < 0.97, "304", np.where(r < 0.99, "404", "301"))),
            np.where(r < 0.9, "302", "200"),
        ).astype(object)
        size = np.exp(8.5 + 1.0 * np.sqrt(-2 * np.log(1 - u("size")[sel] * 0.999)) * 0.6)
        size_text = np.where(status == "304", "-", size.astype(np.int64).astype(str).astype(object))
        line = formats.access_log_lines(
            S["ip"][sess][sel],
            formats.log_times(instant[sel], P.paris_offset(instant[sel])),
            method,
            url,
            status,
            size_text,
            referrer[sel],
            S["ua"][sess][sel],
            S["cookie"][sess][sel] if P.extended_log else None,
        )
        out.append(
            record_frame(P, "access_log", P.local_day(instant[sel]), key[sel], instant[sel], line)
        )
    return out


# -- the other person sources ---------------------------------------------------------------
def impression_records(P: WorldParams, T: dict[str, np.ndarray]) -> list[pd.DataFrame]:
    """Ad impressions as CSV lines (UTC times, +00:00)."""
    if len(T["t"]) == 0:
        return []
    C = formats.csv_cells
    line = formats.csv_lines(
        [
            C(T["impression_id"], plain=True),
            formats.iso_times(T["t"], 0, unit="s"),
            C(T["campaign_id"], plain=True),
            C(T["channel"], plain=True),
            C(T["creative_id"], plain=True),
            C(T["placement"], plain=True),
            C(T["cookie_id"], plain=True),
            C(T["device_id"], plain=True),
            formats.money(T["cost"], 6),
            np.full(len(T["t"]), "EUR", dtype=object),
        ]
    )
    return [
        record_frame(P, "ad_impressions", P.utc_day(T["t"]), T["key"], T["t"], line, None, T["ph"])
    ]


def click_records(P: WorldParams, T: dict[str, np.ndarray]) -> list[pd.DataFrame]:
    """Ad clicks as CSV lines (UTC times, Z)."""
    if len(T["t"]) == 0:
        return []
    C = formats.csv_cells
    n = len(T["t"])
    line = formats.csv_lines(
        [
            C(T["click_id"], plain=True),
            formats.iso_times(T["t"], 0, unit="s", zulu=True),
            C(T["impression_id"], plain=True),
            C(T["campaign_id"], plain=True),
            C(T["channel"], plain=True),
            C(T["creative_id"], plain=True),
            C(T["cookie_id"], plain=True),
            np.full(n, "", dtype=object),
            formats.money(T["cost"], 2),
            np.full(n, "EUR", dtype=object),
            C(T["landing_url"]),
        ]
    )
    return [record_frame(P, "ad_clicks", P.utc_day(T["t"]), T["key"], T["t"], line)]


def email_records(P: WorldParams, T: dict[str, np.ndarray]) -> list[pd.DataFrame]:
    """ESP events as JSON lines (UTC times, Z)."""
    if len(T["t"]) == 0:
        return []
    J = formats.json_strings
    line = formats.json_objects(
        ("event_id", J(T["event_id"], plain=True)),
        [
            ("ts", J(formats.iso_times(T["t"], 0, unit="s", zulu=True), plain=True)),
            ("event_type", J(T["event_type"], plain=True)),
            ("email", J(T["email"])),
            ("campaign_id", J(T["campaign_id"], plain=True)),
            ("message_id", J(T["message_id"], plain=True)),
            ("link_url", J(T["link_url"], plain=True)),
            ("landing_cookie_id", J(T["landing_cookie_id"], plain=True)),
        ],
    )
    return [record_frame(P, "email_events", P.utc_day(T["t"]), T["key"], T["t"], line)]


def order_records(P: WorldParams, T: dict[str, np.ndarray]) -> list[pd.DataFrame]:
    """Orders as JSON lines (Paris times; a store's till writes them without an offset)."""
    if len(T["t"]) == 0:
        return []
    J = formats.json_strings
    n = len(T["t"])
    offset = P.paris_offset(T["t"])
    till = T["channel"] == "store"
    ts = formats.iso_times(T["t"], offset, unit="s")
    if till.any():
        ts[till] = formats.wall_clock_times(T["t"][till], offset[till])
    line = formats.json_objects(
        ("order_id", J(T["order_id"], plain=True)),
        [
            ("ts", J(ts, plain=True)),
            ("channel", J(T["channel"], plain=True)),
            ("user_id", J(T["user_id"], plain=True)),
            ("cookie_id", J(T["cookie_id"], plain=True)),
            ("device_id", J(T["device_id"], plain=True)),
            ("email", J(T["email"])),
            ("phone", J(T["phone"])),
            ("loyalty_card", J(T["loyalty_card"], plain=True)),
            ("store_id", J(T["store_id"], plain=True)),
            ("currency", J(np.full(n, "EUR", dtype=object), plain=True)),
            ("amount", formats.json_numbers(T["amount"], np.ones(n, dtype=bool), 2)),
            ("lines", T["lines"]),
            ("status", J(T["status"], plain=True)),
        ],
    )
    return [record_frame(P, "orders", P.local_day(T["t"]), T["key"], T["t"], line, None, T["ph"])]


def consent_records(P: WorldParams, T: dict[str, np.ndarray]) -> list[pd.DataFrame]:
    """Consent events as JSON lines (Paris times)."""
    if len(T["t"]) == 0:
        return []
    J = formats.json_strings
    line = formats.json_objects(
        ("consent_id", J(T["consent_id"], plain=True)),
        [
            ("ts", J(formats.iso_times(T["t"], P.paris_offset(T["t"]), unit="s"), plain=True)),
            ("id_type", J(T["id_type"], plain=True)),
            ("id_value", J(T["id_value"])),
            ("purpose", J(T["purpose"], plain=True)),
            ("status", J(T["status"], plain=True)),
            ("channel", J(T["channel"], plain=True)),
        ],
    )
    return [record_frame(P, "consent", P.local_day(T["t"]), T["key"], T["t"], line)]


def crm_records(P: WorldParams, T: dict[str, np.ndarray]) -> list[pd.DataFrame]:
    """CRM export lines, with the drift column from the middle day."""
    if len(T["t"]) == 0:
        return []
    C = formats.csv_cells
    cells = [
        C(T["customer_number"], plain=True),
        C(formats.strip_newlines(T["first_name"])),
        C(formats.strip_newlines(T["last_name"])),
        C(T["email"]),
        C(T["phone"]),
        C(T["mobile_phone"]),
        C(T["address_line1"]),
        C(crm_postal_codes(P, T["key"], T["postal_code"], T["source_system"]), plain=True),
        C(T["city"]),
        crm_countries(P, T["key"]),
        C(T["birth_date"], plain=True),
        C(T["store_id"], plain=True),
        C(T["loyalty_card"], plain=True),
        C(T["source_system"], plain=True),
        formats.iso_times(T["t"], P.paris_offset(T["t"]), unit="s"),
    ]
    line = formats.csv_lines(cells)
    # Schema drift: from the middle day the export gains a preferred_language column.
    drift = T["day"] >= P.drift_day
    line = np.where(drift, line + "," + C(T["preferred_language"], plain=True), line)
    return [record_frame(P, "crm_customers", T["day"], T["key"], T["t"], line, None, T["ph"])]


# How CRM systems write France: mostly the alpha-2 code, sometimes its other ISO forms or
# its name. Silver stores each as FR.
COUNTRY_SPELLINGS = ("FR", "fr", "France", "FRA", " france ", "250")
COUNTRY_WEIGHTS = (0.7, 0.08, 0.1, 0.05, 0.05, 0.02)


def crm_countries(P: WorldParams, key: np.ndarray) -> np.ndarray:
    """One spelling of the country per CRM record (every person lives in France)."""
    index = pick(uniform(P.seed, "crm-country", key), COUNTRY_WEIGHTS)
    return np.asarray(COUNTRY_SPELLINGS, dtype=object)[index]


def crm_postal_codes(
    P: WorldParams, key: np.ndarray, codes: np.ndarray, systems: np.ndarray
) -> np.ndarray:
    """Postal codes as the CRM exports write them: the tills' export goes through a
    spreadsheet, which reads a code as a number and drops its leading zero (Nice's 06000
    becomes 6000), and a few records elsewhere are typed with a space (75 011). Silver
    stores each as the five digits."""
    codes = np.asarray(codes, dtype=object)
    stripped = np.array([str(c).lstrip("0") or str(c) for c in codes], dtype=object)
    spaced = np.array([f"{c[:2]} {c[2:]}" if len(c) == 5 else c for c in codes], dtype=object)
    typed = uniform(P.seed, "crm-postal", key) < 0.05
    return np.where(systems == "pos", stripped, np.where(typed, spaced, codes))


def crm_columns(P: WorldParams, day: int) -> tuple[str, ...]:
    """The CRM export's columns on a given delivery day."""
    return ("preferred_language",) if day >= P.drift_day else ()


# -- chunks of people -----------------------------------------------------------------------
def truth_frame(P: WorldParams, rows: list[tuple[str, int, str]]) -> pd.DataFrame:
    """Truth rows (table, person, CSV line) with their part number."""
    tables = [r[0] for r in rows]
    lines = [r[2] for r in rows]
    parts = np.array([P.truth_parts[t] for t in tables], dtype=np.uint64)
    owner = np.array([r[1] for r in rows], dtype=np.int64)
    by_person = mix64(owner.astype(np.uint64)) % np.maximum(parts, 1)
    # Rows that several people write (a shared spelling) must meet in one part to be deduped.
    by_line = np.array([zlib.crc32(x.encode("utf-8")) for x in lines], dtype=np.uint64) % parts
    shard = np.where(owner < 0, by_line, by_person).astype(np.int32)
    n = len(rows)
    return pd.DataFrame(
        {
            "kind": "truth",
            "source": np.array(tables, dtype=object),
            "day": np.full(n, -1, np.int32),
            "shard": shard,
            "sort_ms": np.zeros(n, np.int64),
            "sort_key": np.zeros(n, np.int64),
            "line": np.array(lines, dtype=object),
            "late": np.zeros(n, np.int32),
            "placeholders": "",
        },
        columns=list(RECORD_COLUMNS),
    )


def stat_frame(stats: dict[str, int]) -> pd.DataFrame:
    """Statistics (touches, conversions by cause) as records."""
    names = sorted(stats)
    n = len(names)
    return pd.DataFrame(
        {
            "kind": "stat",
            "source": np.array(names, dtype=object),
            "day": np.full(n, -1, np.int32),
            "shard": np.zeros(n, np.int32),
            "sort_ms": np.array([stats[k] for k in names], dtype=np.int64),
            "sort_key": np.zeros(n, np.int64),
            "line": "",
            "late": np.zeros(n, np.int32),
            "placeholders": "",
        },
        columns=list(RECORD_COLUMNS),
    )


def people_records(P: WorldParams, pids: np.ndarray) -> pd.DataFrame:
    """Every landing line, truth row and statistic of a chunk of people."""
    tables = new_tables()
    truth, stats = simulate_people(P, pids, tables)
    arrays = {name: t.arrays() for name, t in tables.items()}
    frames = visit_records(P, arrays["sessions"])
    frames += impression_records(P, arrays["impressions"])
    frames += click_records(P, arrays["clicks"])
    frames += email_records(P, arrays["emails"])
    frames += order_records(P, arrays["orders"])
    frames += consent_records(P, arrays["consents"])
    frames += crm_records(P, arrays["crm"])
    if truth:
        frames.append(truth_frame(P, truth))
    if stats:
        frames.append(stat_frame(dict(stats)))
    return pd.concat(frames, ignore_index=True) if frames else empty_records()


def empty_records() -> pd.DataFrame:
    """A record frame with no rows."""
    return pd.DataFrame({c: [] for c in RECORD_COLUMNS}).astype(
        {
            "kind": object,
            "source": object,
            "day": np.int32,
            "shard": np.int32,
            "sort_ms": np.int64,
            "sort_key": np.int64,
            "line": object,
            "late": np.int32,
            "placeholders": object,
        }
    )


def pack_groups(records: pd.DataFrame) -> pd.DataFrame:
    """One row per target file (or truth part, or statistic) holding its lines as an Arrow IPC
    blob: the shuffle then moves a few large rows instead of one row per line."""
    rows = []
    for key, group in records.groupby(list(GROUP_KEYS), sort=True):
        table = pa.Table.from_pandas(group[list(PAYLOAD_COLUMNS)], preserve_index=False)
        out = pa.BufferOutputStream()
        with pa.ipc.new_stream(out, table.schema) as writer:
            writer.write_table(table)
        rows.append((*key, len(group), out.getvalue().to_pybytes()))
    packed = pd.DataFrame(rows, columns=list(PACKED_COLUMNS))
    return packed.astype({"day": np.int32, "shard": np.int32, "rows": np.int64})


def unpack(payloads: Iterable[bytes]) -> pd.DataFrame:
    """The lines of one group, from the blobs of every task that produced some."""
    tables = [pa.ipc.open_stream(pa.py_buffer(p)).read_all() for p in payloads]
    return pa.concat_tables(tables).to_pandas() if tables else empty_records()


def simulate_partition(P: WorldParams, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """mapInPandas body: person ids in, one packed row per file group out."""
    frames = []
    for batch in batches:
        ids = batch["id"].to_numpy(dtype=np.int64)
        for start in range(0, len(ids), CHUNK_PERSONS):
            frames.append(people_records(P, ids[start : start + CHUNK_PERSONS]))
    if frames:
        yield pack_groups(pd.concat(frames, ignore_index=True))


# -- bots ---------------------------------------------------------------------------------------
def bot_records(P: WorldParams, index: int) -> pd.DataFrame:
    """A bot's requests: declared ones say so in the user agent, stealth ones hammer the site
    from one cookie and one IP with a browser's user agent."""
    bot = next(b for b in P.bots if b.index == index)
    seed = P.seed
    n = bot.requests_per_day * P.days
    counter = np.arange(n)
    key = unique64(seed, NS_BOT_EVENT, bot.index, counter)
    day = counter // bot.requests_per_day
    second = uniform(seed, "bot-time", key) * 86_400
    if bot.burst:
        burst = counter // bot.burst
        start = uniform(seed, "bot-burst", bot.index, burst) * 86_000
        second = start + uniform(seed, "bot-time", key) * 55
    instant = P.instant(day, second)
    prices = len(P.product_prices)
    sku = (uniform(seed, "bot-sku", key) * prices).astype(np.int64) % prices + 1
    is_product = uniform(seed, "bot-kind", key) < 0.7
    sku_text = np.array([f"sku-{s:04d}" for s in sku.tolist()], dtype=object)
    path = np.where(
        is_product,
        "/p/" + sku_text,
        np.asarray(PAGE_PATHS, dtype=object)[(sku % len(PAGE_PATHS))],
    )
    ip = np.asarray(bot.ips, dtype=object)[
        (hash64(seed, "bot-ip", key) % len(bot.ips)).astype(np.int64)
    ]
    local = P.local_day(instant)
    ok = (local >= 0) & (local < P.days)
    out: list[pd.DataFrame] = []
    if ok.any():
        sel = np.flatnonzero(ok)
        m = len(sel)
        line = formats.access_log_lines(
            ip[sel],
            formats.log_times(instant[sel], P.paris_offset(instant[sel])),
            np.full(m, "GET", dtype=object),
            path[sel],
            np.full(m, "200", dtype=object),
            (8000 + hash64(seed, "bot-size", key[sel]) % 40000).astype(str).astype(object),
            np.full(m, "", dtype=object),
            np.full(m, bot.user_agent, dtype=object),
            np.full(m, bot.cookie_id, dtype=object) if P.extended_log else None,
        )
        out.append(record_frame(P, "access_log", local[sel], key[sel], instant[sel], line))
    fires = ok & (uniform(seed, "bot-tag", key) < bot.event_share)
    if fires.any():
        sel = np.flatnonzero(fires)
        m = len(sel)
        eid = _bot_event_ids(seed, key[sel])
        J = formats.json_strings
        product = is_product[sel]
        line = formats.json_objects(
            ("event_id", J(np.asarray(eid, dtype=object), plain=True)),
            [
                ("event_type", J(np.where(product, "product_view", "page_view"), plain=True)),
                (
                    "ts",
                    J(formats.iso_times(instant[sel], P.paris_offset(instant[sel])), plain=True),
                ),
                ("platform", J(np.full(m, "web", dtype=object), plain=True)),
                ("cookie_id", J(np.full(m, bot.cookie_id, dtype=object), plain=True)),
                ("page_url", J(vocab.SHOP + path[sel], plain=True)),
                ("user_agent", J(np.full(m, bot.user_agent, dtype=object), plain=True)),
                ("ip", J(ip[sel], plain=True)),
                ("product_id", J(np.where(product, sku_text[sel], ""), plain=True)),
            ],
        )
        out.append(record_frame(P, "events", local[sel], key[sel], instant[sel], line))
    return pd.concat(out, ignore_index=True) if out else empty_records()


def _bot_event_ids(seed: int, key: np.ndarray) -> list[str]:
    from crossdata.world.hashing import uuid_text

    return uuid_text(key, hash64(seed, "bot-event-lo", key))


def simulate_bots(P: WorldParams, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """mapInPandas body for bots (one bot index per row)."""
    for batch in batches:
        for index in batch["id"].tolist():
            yield pack_groups(bot_records(P, int(index)))


__all__ = ["RECORD_COLUMNS", "people_records", "simulate_bots", "simulate_partition"]


# -- spend (small: derived on the driver) -----------------------------------------------------
CPM = {"display": 3.0, "social": 5.0, "video": 8.0, "paid_search": 0.0, "affiliate": 0.0}
CPC = {"display": 0.2, "social": 0.35, "video": 0.15, "paid_search": 0.8, "affiliate": 1.2}


def spend_rows(P: WorldParams) -> list[tuple[int, str, str, str, float, int, int]]:
    """(day, channel, campaign_id, name, cost, impressions, clicks) per paid campaign and day."""
    from crossdata.world.model import (
        AFFILIATE_CLICKS_PER_DAY,
        CLICK_THROUGH,
        IMPRESSIONS_PER_DAY,
    )

    rows = []
    for c in P.campaigns:
        siblings = len(P.campaigns_of(c.channel))
        for day in range(P.days):
            noise = 0.8 + 0.4 * float(
                uniform(P.seed, "spend", zlib.crc32(c.campaign_id.encode()), day)
            )
            if c.channel == "affiliate":
                impressions = 0
                clicks = round(P.persons * AFFILIATE_CLICKS_PER_DAY / siblings * noise)
            else:
                impressions = round(P.persons * IMPRESSIONS_PER_DAY[c.channel] / siblings * noise)
                clicks = round(impressions * CLICK_THROUGH[c.channel])
            cost = impressions * CPM[c.channel] / 1000 + clicks * CPC[c.channel]
            rows.append(
                (day, c.channel, c.campaign_id, c.name, round(cost, 2), impressions, clicks)
            )
    for send in P.email_sends:
        recipients = round(P.persons * 0.45)
        rows.append(
            (send.day, "email", send.campaign_id, f"Newsletter {send.campaign_id[-9:]}",
             round(recipients * 0.0008, 2), recipients, 0)
        )  # fmt: skip
    return rows


def spend_records(P: WorldParams) -> pd.DataFrame:
    """The spend export, one CSV line per campaign and day, delivered in that day's folder."""
    rows = spend_rows(P)
    if not rows:
        return empty_records()
    day = np.array([r[0] for r in rows], dtype=np.int64)
    sep = formats.separator("spend")  # an agency's spreadsheet: semicolons, decimal commas

    def cells(row: tuple[int, str, str, str, float, int, int]) -> list[str]:
        d, channel, campaign_id, name, cost, impressions, clicks = row
        # Thousands grouped as French spreadsheets write them: the narrow no-break space of
        # newer locales in money, Excel's no-break space in counts (1\u202f234,50; 12\u00a0345).
        # A sheet saved in windows-1252, which has no narrow one, groups money by the other.
        utf8 = formats.file_encoding("spend", d) == "utf-8"
        return [
            P.day_text(d),
            channel,
            campaign_id,
            name,
            formats.decimal_comma(f"{cost:.2f}", "\u202f" if utf8 else "\u00a0"),
            "EUR",
            formats.decimal_comma(str(impressions), "\u00a0"),
            str(clicks),
        ]

    line = np.array([formats.csv_line(cells(r), sep) for r in rows], dtype=object)
    key = hash64(P.seed, "spend-key", np.arange(len(rows)))
    return pack_groups(record_frame(P, "spend", day, key, day * 0, line))
