"""crossdata's public input contracts: every raw source, its format and fields, and why a record
can be refused.

One definition serves three readers: the sample world writes these formats, ingestion parses
them, and ``docs/inputs.md`` is generated from here (``python -m crossdata.gendocs``; a test
keeps the committed file equal). Changing a contract is changing all three at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import pycountry

FieldType = Literal["string", "timestamp", "long", "double", "date", "json"]
Format = Literal["jsonl", "csv", "combined_log"]

# Identifier types crossdata resolves; each is also the column name that carries it.
IDENTIFIER_TYPES: tuple[str, ...] = (
    "cookie_id",
    "device_id",
    "user_id",
    "email",
    "phone",
    "customer_number",
    "loyalty_card",
)

# The kinds of evidence the identity stage draws from silver (``identity.evidence``) and from
# record linkage; ``identity.evidence_priority`` ranks every one of them.
EVIDENCE_KINDS: tuple[str, ...] = (
    "crm_record",
    "order",
    "login",
    "email_signup",
    "email_click",
    "ad_match",
    "probabilistic",
)

CHANNELS: tuple[str, ...] = (
    "paid_search",
    "organic_search",
    "social",
    "display",
    "video",
    "email",
    "affiliate",
    "referral",
    "direct",
)

CONSENT_PURPOSES: tuple[str, ...] = ("analytics", "ads_personalization", "email_marketing")

# The alphabetic codes of ISO 4217 as pycountry ships them (pinned with the stack), funds and
# precious metals included. A currency field holds one of them; case and edge blanks do not
# matter ("eur " is EUR), and silver stores the code upper-cased.
CURRENCIES: tuple[str, ...] = tuple(sorted(c.alpha_3 for c in pycountry.currencies))
CURRENCY_SET = "an ISO 4217 alphabetic code, any case"


@dataclass(frozen=True)
class Reason:
    code: str
    meaning: str


DEFAULT_MIN_TIMESTAMP = "2000-01-02T00:00:00Z"

# Why a record goes to bronze.quarantine. When a record has several problems, the first in
# this order is the one reported.
REASONS: tuple[Reason, ...] = (
    Reason(
        "invalid_encoding",
        "the line is not valid UTF-8, nor in its source's fallback encoding when it has one "
        "(collect.fallback_encodings: windows-1252 leaves five bytes undefined)",
    ),
    Reason(
        "malformed_record",
        "the line cannot be read in the source's format: broken or truncated JSON (JSON as "
        "RFC 8259 writes it: no 'single quotes', no NaN or Infinity), a JSON value "
        "that is not an object, anything but whitespace after the object, the same key twice, "
        "a string escaping half of a UTF-16 surrogate pair alone (\\ud800, which is no "
        "character), "
        "CSV with unbalanced quotes or the wrong number of columns, an access-log line that does "
        "not match the log format",
    ),
    Reason("missing_required_field", "a required field is absent, null or empty"),
    Reason(
        "invalid_timestamp",
        "a timestamp field cannot be parsed in the documented format (a time without an "
        "offset is read only for a source given a zone in collect.local_time_zones, and not "
        "when that zone's clocks skipped it), or is earlier than "
        f"collect.min_timestamp (default {DEFAULT_MIN_TIMESTAMP}): a clock reset to its epoch "
        "writes 1970-01-01 or 2000-01-01, not the time of the record",
    ),
    Reason(
        "wrong_type",
        "a number or date field holds a value of another type (a number is written in "
        "decimal, as 12, -0.5 or 1.2e3, and is finite: NaN, Infinity, 1.5d or 0x1p3 are not "
        "numbers; a count is whole and fits in 64 bits), an identifier holds a JSON array or "
        "object (or its JSON text), or a JSON field (an order's lines) is "
        "not exactly one value of its documented shape (lines: one array of objects whose "
        "quantity is a count and unit_price a number)",
    ),
    Reason("invalid_value", "a field outside its documented set of values"),
    Reason("oversize_field", "a field longer than collect.max_field_chars (default 8192)"),
    Reason(
        "future_timestamp",
        "the record's time is later than the end of its landing day plus "
        "collect.future_tolerance_hours (default 24); files outside a dated folder are compared "
        "with the ingestion time instead",
    ),
    Reason(
        "expectation_failed",
        "the record was read but broke a silver expectation whose action is quarantine "
        "(collect.expectations); detail names the expectation",
    ),
)
REASON_CODES: tuple[str, ...] = tuple(r.code for r in REASONS)

DEFAULT_MAX_FIELD_CHARS = 8192
DEFAULT_FUTURE_TOLERANCE_HOURS = 24

TIMESTAMP_FORMATS: dict[Format, str] = {
    "jsonl": "ISO-8601 with a zone offset: 2026-03-05T14:03:22.120+01:00 or ...Z",
    "csv": "ISO-8601 with a zone offset: 2026-03-05T14:03:22+01:00 or ...Z",
    "combined_log": "the log's own [05/Mar/2026:14:03:22 +0100]",
}


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool
    description: str
    example: object = None
    values: tuple[str, ...] = ()  # the allowed values, when the field is an enumeration
    # How the docs name a set too long to list (empty: the values are listed). Such a set is
    # matched on the value trimmed and upper-cased.
    value_set: str = ""


# Compressed deliveries the readers open by name (Hadoop's codecs, pure Java): gzip, as web
# servers rotate their logs and most exports compress, and bzip2, as some ad servers ship
# their logs. Each file is read whole by one task (whole_file_tasks), as line numbers need.
COMPRESSED_SUFFIXES = (".gz", ".bz2")


@dataclass(frozen=True)
class Source:
    name: str
    format: Format
    extension: str
    description: str
    fields: tuple[Field, ...]
    record_key: tuple[str, ...]  # what makes two records the same record (deduplication)
    time_field: str
    example: dict[str, object] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def file_suffixes(self) -> tuple[str, ...]:
        """How the names of the files this source reads end: its extension, plain or compressed."""
        return (self.extension, *(self.extension + c for c in COMPRESSED_SUFFIXES))

    @property
    def file_glob(self) -> str:
        """``file_suffixes`` as a Hadoop glob on file names (the streams' ``pathGlobFilter``)."""
        return "*{" + ",".join(self.file_suffixes) + "}"

    def get(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name}")


def _f(
    name: str,
    type_: FieldType,
    required: bool,
    description: str,
    example: object = None,
    values: tuple[str, ...] = (),
) -> Field:
    return Field(name, type_, required, description, example, values)


def _currency(required: bool, description: str) -> Field:
    return Field("currency", "string", required, description, "EUR", CURRENCIES, CURRENCY_SET)


EVENT_TYPES = (
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "checkout",
    "purchase",
    "login",
    "logout",
    "app_open",
    "email_signup",
)

EVENTS = Source(
    "events",
    "jsonl",
    ".jsonl",
    "Web and app events from the site tag and the app SDK, one JSON object per line.",
    (
        _f(
            "event_id",
            "string",
            True,
            "unique id of the event (the SDK's UUID)",
            "6f1c0c7e-8d7b-4a51-9a44-0f2b8a5d2c11",
        ),
        _f("event_type", "string", True, "what happened", "product_view", EVENT_TYPES),
        _f(
            "ts",
            "timestamp",
            True,
            "when it happened, on the device's clock, with its offset",
            "2026-03-05T14:03:22.120+01:00",
        ),
        _f("platform", "string", True, "where it happened", "web", ("web", "app")),
        _f("cookie_id", "string", False, "first-party cookie (web)", "ck_9d2f61a0b4c3"),
        _f(
            "device_id",
            "string",
            False,
            "advertising id of the device (app: IDFA/GAID)",
            "1b4e28ba-2fa1-41d2-883f-0016d3cca427",
        ),
        _f("user_id", "string", False, "account id when logged in", "u_000123"),
        _f("email", "string", False, "email typed in (email_signup)", "anna.meyer@example.org"),
        _f(
            "page_url",
            "string",
            False,
            "page with its query: utm_source, utm_medium, utm_campaign, gclid, fbclid",
            "https://shop.example/p/sku-0042?utm_source=google&utm_medium=cpc&gclid=Cj0K",
        ),
        _f("referrer", "string", False, "referring URL", "https://www.google.com/"),
        _f(
            "user_agent",
            "string",
            False,
            "browser or app user agent",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) ...",
        ),
        _f("ip", "string", False, "client IP address", "203.0.113.9"),
        _f("product_id", "string", False, "product (product_view, add_to_cart)", "sku-0042"),
        _f("price", "double", False, "unit price of product_id", 39.9),
        _f("quantity", "long", False, "units added to the cart", 1),
        _f("cart_value", "double", False, "cart total (checkout)", 79.8),
        _f("order_id", "string", False, "order placed (purchase)", "o_20260305_000981"),
        _f("revenue", "double", False, "order total (purchase)", 79.8),
        _currency(False, "currency of price/revenue"),
        _f("search_query", "string", False, "what was searched (search)", "running shoes"),
        _f("app_version", "string", False, "app version (app)", "5.2.1"),
    ),
    record_key=("event_id",),
    time_field="ts",
    example={
        "event_id": "6f1c0c7e-8d7b-4a51-9a44-0f2b8a5d2c11",
        "event_type": "product_view",
        "ts": "2026-03-05T14:03:22.120+01:00",
        "platform": "web",
        "cookie_id": "ck_9d2f61a0b4c3",
        "page_url": "https://shop.example/p/sku-0042?utm_source=google&utm_medium=cpc&gclid=Cj0K",
        "referrer": "https://www.google.com/",
        "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
        "ip": "203.0.113.9",
        "product_id": "sku-0042",
        "price": 39.9,
        "currency": "EUR",
    },
    notes=(
        "Fields the contract does not list are kept (see collect.schema_drift), never dropped.",
        "A web event carries cookie_id, an app event device_id; either may be missing or a "
        "placeholder such as 'undefined'.",
    ),
)

ACCESS_LOG = Source(
    "access_log",
    "combined_log",
    ".log",
    "Web server access logs in the Apache/Nginx combined format. The extended variant appends "
    'one quoted field with the first-party cookie, as written by nginx\'s "$cookie_cd_id". '
    'Inside quoted fields `\\"` and `\\\\` are read as a quote and a backslash, as Apache '
    "escapes them; other escapes (`\\xhh`, `\\t`) are kept as written.",
    (
        _f("ip", "string", True, "client address (%h)", "203.0.113.9"),
        _f("ident", "string", False, "identd user (%l), usually -", "-"),
        _f("auth_user", "string", False, "HTTP auth user (%u), usually -", "-"),
        _f("ts", "timestamp", True, "request time (%t)", "[05/Mar/2026:14:03:22 +0100]"),
        _f("method", "string", True, "HTTP method from the request line", "GET"),
        _f(
            "url",
            "string",
            True,
            "path and query from the request line",
            "/p/sku-0042?utm_source=google",
        ),
        _f("protocol", "string", False, "protocol from the request line", "HTTP/1.1"),
        _f("status", "long", True, "response status (%>s)", 200),
        _f("bytes", "long", False, "response size (%b), - for none", 5123),
        _f("referrer", "string", False, "Referer header", "https://www.google.com/"),
        _f("user_agent", "string", False, "User-Agent header", "Mozilla/5.0 ..."),
        _f(
            "cookie_id",
            "string",
            False,
            "extended format only: the cd_id cookie",
            "ck_9d2f61a0b4c3",
        ),
    ),
    record_key=(),
    time_field="ts",
    example={
        "line": '203.0.113.9 - - [05/Mar/2026:14:03:22 +0100] "GET /p/sku-0042?utm_source=google '
        'HTTP/1.1" 200 5123 "https://www.google.com/" "Mozilla/5.0 (Windows NT 10.0)" '
        '"ck_9d2f61a0b4c3"'
    },
    notes=(
        "Access logs have no record id: only whole files delivered twice are removed as "
        "duplicates in bronze; silver removes repeated hits on (ip, ts, url, user_agent, "
        "cookie_id).",
    ),
)

_AD_CHANNELS = ("display", "social", "video", "paid_search", "affiliate")

AD_IMPRESSIONS = Source(
    "ad_impressions",
    "csv",
    ".csv",
    "Ad-server export of impressions, CSV with a header line.",
    (
        _f("impression_id", "string", True, "unique id of the impression", "imp_7f3a0c"),
        _f("ts", "timestamp", True, "when the ad was shown", "2026-03-05T13:58:01+00:00"),
        _f("campaign_id", "string", True, "campaign", "cmp_display_spring"),
        _f("channel", "string", True, "channel of the placement", "display", _AD_CHANNELS),
        _f("creative_id", "string", False, "creative shown", "cr_12"),
        _f("placement", "string", False, "site or slot", "news-site-top"),
        _f("cookie_id", "string", False, "cookie the ad server matched (web)", "ck_9d2f61a0b4c3"),
        _f("device_id", "string", False, "advertising id (in-app)", ""),
        _f("cost", "double", True, "cost of this impression", 0.0042),
        _currency(True, "currency of cost"),
    ),
    record_key=("impression_id",),
    time_field="ts",
)

AD_CLICKS = Source(
    "ad_clicks",
    "csv",
    ".csv",
    "Ad-server export of clicks, CSV with a header line. click_id is the gclid/fbclid the "
    "landing page carries, which links the click to the web session.",
    (
        _f(
            "click_id",
            "string",
            True,
            "unique id of the click (gclid/fbclid/ad-server id)",
            "Cj0KCQiA",
        ),
        _f("ts", "timestamp", True, "when the ad was clicked", "2026-03-05T13:58:09+00:00"),
        _f("impression_id", "string", False, "impression clicked, when known", "imp_7f3a0c"),
        _f("campaign_id", "string", True, "campaign", "cmp_search_brand"),
        _f("channel", "string", True, "channel of the ad", "paid_search", _AD_CHANNELS),
        _f("creative_id", "string", False, "creative clicked", "cr_3"),
        _f("cookie_id", "string", False, "cookie the ad server matched (web)", "ck_9d2f61a0b4c3"),
        _f("device_id", "string", False, "advertising id (in-app)", ""),
        _f("cost", "double", True, "cost of the click (CPC)", 0.61),
        _currency(True, "currency of cost"),
        _f(
            "landing_url",
            "string",
            False,
            "page the click landed on",
            "https://shop.example/?utm_source=google&utm_medium=cpc&gclid=Cj0KCQiA",
        ),
    ),
    record_key=("click_id",),
    time_field="ts",
)

EMAIL_EVENTS = Source(
    "email_events",
    "jsonl",
    ".jsonl",
    "Email service provider events, one JSON object per line.",
    (
        _f("event_id", "string", True, "unique id of the event", "em_01HQ2Z8"),
        _f("ts", "timestamp", True, "when it happened", "2026-03-05T08:00:12+00:00"),
        _f(
            "event_type",
            "string",
            True,
            "what happened",
            "click",
            ("sent", "delivered", "open", "click", "bounce", "unsubscribe"),
        ),
        _f("email", "string", True, "recipient address", "Anna.Meyer@example.org"),
        _f("campaign_id", "string", True, "campaign", "cmp_newsletter_w10"),
        _f("message_id", "string", False, "the message sent", "msg_00042"),
        _f(
            "link_url",
            "string",
            False,
            "link clicked (click)",
            "https://shop.example/?utm_source=newsletter&utm_medium=email",
        ),
        _f(
            "landing_cookie_id",
            "string",
            False,
            "cookie seen on the landing page after a click, when the ESP knows it",
            "ck_9d2f61a0b4c3",
        ),
    ),
    record_key=("event_id",),
    time_field="ts",
)

CRM_CUSTOMERS = Source(
    "crm_customers",
    "csv",
    ".csv",
    "Daily CRM export of customer records that changed, CSV with a header line. The same "
    "person often has several records (one per source system), with names, emails and "
    "phones written differently.",
    (
        _f("customer_number", "string", True, "CRM record key", "C00012345"),
        _f("first_name", "string", False, "first name", "Anna"),
        _f("last_name", "string", False, "last name", "Meyer"),
        _f("email", "string", False, "email address, as typed", " Anna.Meyer@Example.org"),
        _f("phone", "string", False, "landline or mobile, any format", "06 12 34 56 78"),
        _f("mobile_phone", "string", False, "mobile, any format", "+33 6 12 34 56 78"),
        _f("address_line1", "string", False, "street address", "12 rue des Lilas"),
        _f(
            "postal_code",
            "string",
            False,
            "postal code; lost leading zeros restored (collect.postal_code_digits)",
            "69003",
        ),
        _f("city", "string", False, "city", "Lyon"),
        _f(
            "country",
            "string",
            False,
            "country: ISO 3166 code (FR, FRA, 250), or name in English or in "
            "collect.country_name_languages (France, Allemagne) or collect.country_aliases (UK); "
            "silver keeps alpha-2",
            "FR",
        ),
        _f("birth_date", "date", False, "YYYY-MM-DD or DD/MM/YYYY", "1986-04-17"),
        _f("store_id", "string", False, "home store", "st_012"),
        _f("loyalty_card", "string", False, "loyalty card number", "LC0000123456"),
        _f(
            "source_system",
            "string",
            True,
            "system the record comes from",
            "pos",
            ("pos", "ecommerce", "call_center", "loyalty_app"),
        ),
        _f(
            "updated_at",
            "timestamp",
            True,
            "last change of the record",
            "2026-03-05T18:22:05+01:00",
        ),
    ),
    record_key=("customer_number", "updated_at"),
    time_field="updated_at",
    notes=(
        "A record appears again in a later export whenever it changes; silver keeps the "
        "latest version per customer_number.",
        "Spreadsheet formulas (=HYPERLINK(...)) may appear in names: kept as text, never "
        "evaluated, and escaped in every crossdata export.",
    ),
)

ORDERS = Source(
    "orders",
    "jsonl",
    ".jsonl",
    "Orders from the web shop, the app, the stores and the call centre, one JSON object per "
    "line. Online orders carry user_id and/or cookie_id; offline ones a loyalty card, an "
    "email or a phone. A store's till may write its local wall-clock time without an offset "
    "(`2026-03-05 14:09:40`): give the source its zone in `collect.local_time_zones` (the "
    "default conf reads orders in Europe/Paris).",
    (
        _f("order_id", "string", True, "unique id of the order", "o_20260305_000981"),
        _f("ts", "timestamp", True, "when the order was placed", "2026-03-05T14:09:40+01:00"),
        _f(
            "channel",
            "string",
            True,
            "where it was placed",
            "web",
            ("web", "app", "store", "call_center"),
        ),
        _f("user_id", "string", False, "account (online)", "u_000123"),
        _f("cookie_id", "string", False, "cookie (web)", "ck_9d2f61a0b4c3"),
        _f("device_id", "string", False, "advertising id (app)", ""),
        _f("email", "string", False, "email given with the order", "anna.meyer@example.org"),
        _f("phone", "string", False, "phone given with the order", "0612345678"),
        _f("loyalty_card", "string", False, "loyalty card shown (store)", "LC0000123456"),
        _f("store_id", "string", False, "store (store, call_center)", "st_012"),
        _currency(True, "currency of amount"),
        _f("amount", "double", True, "order total", 79.8),
        _f(
            "lines",
            "json",
            False,
            "array of {sku, quantity, unit_price}, or that array as JSON text",
            [{"sku": "sku-0042", "quantity": 2, "unit_price": 39.9}],
        ),
        _f(
            "status", "string", False, "order status", "placed", ("placed", "cancelled", "returned")
        ),
    ),
    record_key=("order_id",),
    time_field="ts",
)

CONSENT = Source(
    "consent",
    "jsonl",
    ".jsonl",
    "Consent given or withdrawn, per identifier and purpose, one JSON object per line.",
    (
        _f("consent_id", "string", True, "unique id of the consent event", "cs_000981"),
        _f("ts", "timestamp", True, "when it was given or withdrawn", "2026-03-05T14:01:00+01:00"),
        _f(
            "id_type",
            "string",
            True,
            "which identifier it is attached to",
            "email",
            IDENTIFIER_TYPES,
        ),
        _f("id_value", "string", True, "the identifier", "anna.meyer@example.org"),
        _f("purpose", "string", True, "what it covers", "email_marketing", CONSENT_PURPOSES),
        _f("status", "string", True, "granted or withdrawn", "withdrawn", ("granted", "withdrawn")),
        _f(
            "channel",
            "string",
            True,
            "where it was expressed",
            "email_link",
            ("web_banner", "app_prompt", "email_link", "store", "call_center", "preference_center"),
        ),
    ),
    record_key=("consent_id",),
    time_field="ts",
)

SPEND = Source(
    "spend",
    "csv",
    ".csv",
    "Marketing spend per day, channel and campaign, CSV with a header line.",
    (
        _f("date", "date", True, "day of the spend (YYYY-MM-DD)", "2026-03-05"),
        _f("channel", "string", True, "channel", "display", CHANNELS),
        _f("campaign_id", "string", True, "campaign", "cmp_display_spring"),
        _f("campaign_name", "string", False, "campaign label", "Display - spring"),
        _f("cost", "double", True, "spend that day", 412.37),
        _currency(True, "currency of cost"),
        _f("impressions", "long", False, "impressions bought that day", 98211),
        _f("clicks", "long", False, "clicks that day", 377),
    ),
    record_key=("date", "channel", "campaign_id"),
    time_field="date",
)

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        EVENTS,
        ACCESS_LOG,
        AD_IMPRESSIONS,
        AD_CLICKS,
        EMAIL_EVENTS,
        CRM_CUSTOMERS,
        ORDERS,
        CONSENT,
        SPEND,
    )
}

LANDING_LAYOUT = (
    "Files land under `<landing>/<source>/<YYYY-MM-DD>/<name><extension>`, one folder per day "
    "of delivery, or compressed as `<name><extension>.gz` (gzip, as web servers rotate their "
    "logs) or `<name><extension>.bz2` (bzip2). Files are UTF-8 text with one record per line "
    "(`\\n` or `\\r\\n`); blank lines are not records, and an empty file (0 bytes, a "
    "day without records) is a file of none, reconciled as such. A source may be given a "
    "single-byte fallback encoding (`collect.fallback_encodings`, e.g. windows-1252, as "
    "spreadsheets on Windows save CSV): its lines that are not valid UTF-8 are read in it, "
    "line by line. Times carry their offset; a source may be given a time zone "
    "(`collect.local_time_zones`, e.g. Europe/Paris, for tills that write wall-clock time) "
    "in which its times without one (`2026-03-05T14:03:22` or `2026-03-05 14:03:22`) are "
    "read; in the hour the clocks turn back, the first of the two times is taken. "
    "CSV files start with a header line "
    "naming their columns in any order and any case (`Email` is `email`; two columns naming "
    "one field refuse every record of the file); a column the contract does not list is kept, "
    "named as written, like an unknown JSON field. A separator ending every line, as some "
    "exports write, is no column: its cells must be empty. A quoted cell may hold line breaks "
    "(RFC 4180), as CRM exports write an address on two lines: its record spans those lines, "
    "is numbered by its first and counted once, and the cell reads LF for each break (a line "
    "of only spaces inside it is read empty). Cells are separated by commas, or by "
    "semicolons as spreadsheets write CSV where the decimal mark is a comma: a header that "
    "is one column read with commas and several read with semicolons marks a semicolon "
    "file, in which a number may have a decimal "
    "comma and its digits may be grouped by thousands with a space, a no-break space or a "
    "narrow no-break space (412,37; 1 234,50; 12 345), or with points when a decimal comma "
    "follows (1.234,50); a point alone (1.234) is a decimal point. A file is processed once: "
    "delivering the same path again changes nothing, and a copy of an already-ingested file "
    "under a new name is recognised by its content and counted as duplicate. Place each file "
    "whole (write it under another name or folder, then rename it) and leave it in place: a "
    "file changed after a run read it, whether corrected in place or still being uploaded, is "
    "not read again, and one removed between a run's listing and its read is skipped. A file "
    "in a source's folder named otherwise (`events.json` among `*.jsonl` files, a `.zip`), or "
    "in a folder that names no source (`evnets/`), is never read. All three are recorded in "
    "`ops.ingest_file_changes` with a warning, or fail the run with `collect.file_changes: "
    "fail`; deliver a corrected file under a new name. Names starting with `.` or `_` are not "
    "listed at all: upload a file under such a name, then rename it. A compressed file cut "
    "short or damaged stops the run with its name, before anything of its batch is written."
)


def _example_line(source: Source) -> str:
    if source.format == "combined_log":
        return str(source.example["line"])
    if source.format == "jsonl":
        example = source.example or {
            f.name: f.example for f in source.fields if f.example not in (None, "")
        }
        return json.dumps(example, ensure_ascii=False)
    header = ",".join(source.field_names)
    values = []
    for f in source.fields:
        v = "" if f.example is None else str(f.example)
        values.append(f'"{v}"' if ("," in v or '"' in v or v.startswith(" ")) else v)
    return header + "\n" + ",".join(values)


def _time_format(source: Source) -> str:
    return "YYYY-MM-DD" if source.time_field == "date" else TIMESTAMP_FORMATS[source.format]


def _example_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def to_markdown() -> str:
    """The text of docs/inputs.md."""
    out = [
        "# Input contracts",
        "",
        "<!-- Generated by `python -m crossdata.gendocs`; do not edit by hand. The definitions "
        "live in jobs/crossdata/contracts.py. -->",
        "",
        "These are the formats `crossdata ingest` reads. The sample world "
        "(`crossdata generate`) writes them, and you can point ingestion at your own files "
        "in the same formats with `crossdata ingest --input PATH`.",
        "",
        "## Landing layout",
        "",
        LANDING_LAYOUT,
        "",
        "## Why a record is quarantined",
        "",
        "A record that cannot be loaded goes to `bronze.quarantine` with its raw text, file, "
        "line and one reason code (the first that applies, in this order):",
        "",
        "| reason | meaning |",
        "| --- | --- |",
    ]
    out += [f"| `{r.code}` | {r.meaning} |" for r in REASONS]
    out += [
        "",
        "Identifier values that are placeholders (`undefined`, `null`, `0`, all-zero UUIDs, "
        "`test@test.com`, ... see `collect.placeholders` in conf) are not errors: silver "
        "nulls and counts them.",
        "",
        "Identifier types: " + ", ".join(f"`{t}`" for t in IDENTIFIER_TYPES) + ".",
        "",
    ]
    for source in SOURCES.values():
        out += [
            f"## `{source.name}`",
            "",
            source.description,
            "",
            f"- format: {source.format}, files "
            + " or ".join(f"`*{suffix}`" for suffix in source.file_suffixes),
            f"- timestamps: {_time_format(source)}",
            "- record key (duplicates): "
            + (", ".join(f"`{k}`" for k in source.record_key) or "none (see notes)"),
            "",
            "| field | type | required | description | example |",
            "| --- | --- | --- | --- | --- |",
        ]
        for f in source.fields:
            desc = f.description
            if f.value_set:
                desc += f" ({f.value_set})"
            elif f.values:
                desc += " (one of " + ", ".join(f"`{v}`" for v in f.values) + ")"
            example = "" if f.example in (None, "") else f"`{_example_text(f.example)}`"
            out.append(
                f"| `{f.name}` | {f.type} | {'yes' if f.required else 'no'} | {desc} | {example} |"
            )
        out += ["", "Example:", "", "```", _example_line(source), "```", ""]
        if source.notes:
            out += [f"- {n}" for n in source.notes] + [""]
    return "\n".join(out).rstrip() + "\n"
