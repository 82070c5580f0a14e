"""The ground truth under ``<out>/_truth/``: what later stages score themselves against.

Large tables are folders of part files (``persons/part-00000.csv``...), written by executors;
small ones are single CSV files written by the driver; ``world.json`` holds every parameter.
All are UTF-8 CSV with a header, with deterministic names and content.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping

from crossdata import contracts
from crossdata.world import formats, model, vocab
from crossdata.world.model import WorldParams

TRUTH_DIR = "_truth"

HEADERS: dict[str, tuple[str, ...]] = {
    "persons": (
        "person_id",
        "household_id",
        "offline_only",
        "lambda",  # baseline purchases per day while alive, ~ Gamma(r, alpha)
        "p_dropout",  # ~ Beta(a, b): chance to drop out right after each purchase
        "dropout_date",  # UTC date of the purchase after which the person left; empty if alive
        "spend_nu",  # Gamma-Gamma: order value ~ Gamma(p, rate spend_nu)
        "expected_order_value",  # p / spend_nu
        "n_orders",  # orders in the world's days (all of them are in conversions)
        "lambda_marketing",  # expected touch-caused purchases per day while alive
        "dropout_ts",
        "alive_at_end",
    ),
    "identifiers": ("id_type", "id_value", "person_id", "shared_kind"),
    "identifier_variants": ("id_type", "raw_value", "normalised_value"),
    "conversions": (
        "order_id",
        "person_id",
        "ts",
        "channel",
        "amount",
        "currency",
        "cause",
        "cause_touch_id",
        "touch_source",
        "status",
    ),
    "bad_records": ("source", "file", "line", "reason", "record_id"),
    "duplicates": (
        "source",
        "record_key",
        "file",
        "line",
        "kind",
        "original_file",
        "original_line",
    ),
    "late_records": (
        "source",
        "record_id",
        "file",
        "line",
        "event_date",
        "delivery_date",
        "days_late",
    ),
    "redelivered_files": ("source", "file", "original_file"),
    "manifest": ("file", "source", "delivery_date", "lines", "bytes", "sha256", "kind", "records"),
    "placeholders": ("source", "field", "value", "count"),
    "bots": ("id_type", "id_value", "kind", "user_agent"),
    "channel_effects": (
        "channel",
        "true_effect",
        "touch",
        "touches",
        "touches_alive",
        "caused_conversions",
        "spend",
    ),
}
# Tables written as folders of part files by executors (they grow with the world).
PART_TABLES = (
    "persons",
    "identifiers",
    "identifier_variants",
    "conversions",
    "bad_records",
    "duplicates",
    "late_records",
)
# Rows the file writers report, collected by the driver for the small files.
WRITER_TABLES = ("bad_records", "duplicates", "late_records")


def header_line(table: str) -> str:
    """A truth table's header line."""
    return ",".join(HEADERS[table])


def part_path(table: str, part: int) -> str:
    """Where part ``part`` of a truth table is written."""
    return f"{TRUTH_DIR}/{table}/part-{part:05d}.csv"


def csv_text(table: str, rows: Iterable[Iterable[object]]) -> bytes:
    """A small truth file: header and rows, sorted for a stable content."""
    lines = sorted(formats.csv_line([str(c) for c in row]) for row in rows)
    return ("\n".join([header_line(table), *lines]) + "\n").encode("utf-8")


def bots_rows(P: WorldParams) -> list[tuple[str, str, str, str]]:
    """Every identifier that belongs to a bot, not a person."""
    rows = []
    for bot in P.bots:
        rows.append(("user_agent", bot.user_agent, bot.kind, bot.user_agent))
        rows += [("ip", ip, bot.kind, bot.user_agent) for ip in bot.ips]
        if bot.cookie_id:
            rows.append(("cookie_id", bot.cookie_id, bot.kind, bot.user_agent))
    # A stealth bot copies a real browser's user agent: that string is not a bot marker.
    return [r for r in rows if not (r[0] == "user_agent" and r[2] == "stealth")]


def channel_rows(
    P: WorldParams, stats: Mapping[str, int], spend: Mapping[str, float]
) -> list[tuple[str, ...]]:
    """channel_effects rows: true effect, what a touch is, counts, spend."""
    return [
        (
            c,
            f"{P.effects[c]:.6g}",
            model.TOUCH_KIND[c],
            str(stats.get(f"touches:{c}", 0)),
            str(stats.get(f"touches_alive:{c}", 0)),
            str(stats.get(f"conversions:{c}", 0)),
            f"{spend.get(c, 0.0):.2f}",
        )
        for c in contracts.CHANNELS
    ]


def world_json(P: WorldParams, stats: Mapping[str, int], files: Mapping[str, int]) -> bytes:
    """Every parameter of the world, and the facts a stage needs to score itself."""
    drift_date = P.day_text(P.drift_day)
    doc = {
        "persons": P.persons,
        "days": P.days,
        "start_date": P.start.isoformat(),
        "end_date": P.day_text(P.days - 1),
        "seed": P.seed,
        "fault_rate": P.fault_rate,
        "lines_per_file": P.lines_per_file,
        "access_log_format": "extended" if P.extended_log else "combined",
        "access_log_regex": formats.COMBINED_LOG_PATTERN,
        "bgnbd": dataclasses.asdict(P.bgnbd),
        "gamma_gamma": dataclasses.asdict(P.gamma_gamma),
        "bgnbd_note": (
            "lambda ~ Gamma(shape r, rate alpha) baseline purchases per day; p ~ Beta(a, b); "
            "a person may drop out only right after a purchase. Touch-caused purchases add "
            "lambda_marketing per day and count as purchases for dropout."
        ),
        "gamma_gamma_note": "order value ~ Gamma(shape p, rate nu), nu ~ Gamma(shape q, rate v)",
        "channel_effects": P.effects,
        "touch_definitions": model.TOUCH_KIND,
        "conversion_lag": (
            "35% within 3-40 minutes of the touch, else exponential with a 1.5-day mean "
            "(capped at 10 days)"
        ),
        "timezone": "Europe/Paris for devices, servers, stores and the CRM; UTC for the ad "
        "server and the ESP",
        "delivery_day": (
            "the Paris calendar date of the record's true time (UTC date for ad_impressions, "
            "ad_clicks, email_events), plus days_late for buffered app events"
        ),
        "clock_skew": "some devices run minutes to 5 hours fast or slow (device times only)",
        "click_ids": (
            "landing URLs carry the ad click's click_id: gclid (paid_search), fbclid (social), "
            "clid (display, video, affiliate), with utm_source/utm_medium/utm_campaign"
        ),
        "bad_records_note": (
            "one fault per line, never on a record whose quoted cell holds a line break (a CRM "
            "address with its second line, written by ecommerce and loyalty_app); line numbers "
            "are physical, a record numbered by its first line, and manifest.records counts "
            "records, headers excluded; reasons follow contracts.REASONS. expectation_failed lines "
            "(a negative order amount or spend cost) pass bronze and are quarantined by silver's "
            "default expectations order_amount_not_negative and spend_not_negative"
        ),
        "identifiers_note": (
            "identifiers actually written in landing lines (before faults: with fault_rate F an "
            "identifier written once may only survive in a bad line); placeholders and bot "
            "identifiers are excluded (see placeholders.csv and bots.csv)"
        ),
        "late_share_of_app_visits": P.late_share,
        "schema_drift": [
            {
                "source": "events",
                "field": "network",
                "from_date": drift_date,
                "rule": "app events whose Paris date is on or after from_date",
            },
            {
                "source": "crm_customers",
                "field": "preferred_language",
                "from_date": drift_date,
                "rule": "a column of every CRM file delivered on or after from_date",
            },
        ],
        "placeholders": {k: list(v) for k, v in model.PLACEHOLDERS.items()},
        "declared_bot_user_agents": list(vocab.DECLARED_BOT_UAS),
        "bots": [dataclasses.asdict(b) for b in P.bots],
        "stores": P.n_stores,
        "kiosks": [
            {"store_id": model.store_id(k), "device_id": model.kiosk_device_id(P.seed, k)}
            for k in range(P.n_kiosks)
        ],
        "campaigns": [dataclasses.asdict(c) for c in P.campaigns],
        "email_sends": [dataclasses.asdict(s) for s in P.email_sends],
        "shards_per_day": {k: list(v) for k, v in P.shards.items()},
        "truth_parts": P.truth_parts,
        "redelivery_rule": (
            "a copy is byte-identical to its original, named <name>.resent-<YYYYMMDD of the "
            "original><ext>, in the same or a later day folder; its lines are not listed again "
            "in bad_records, duplicates or late_records"
        ),
        "statistics": dict(sorted(stats.items())),
        "files": dict(sorted(files.items())),
    }
    return (json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=False) + "\n").encode()
