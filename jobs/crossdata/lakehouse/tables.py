"""Every table crossdata owns: its name, how it is written and how it is laid out.

This module is the only place a table name is spelled. A table ``layer.noun`` lives at
``<lakehouse.root>/<layer>/<noun>`` and is registered as ``layer.noun`` in the Spark catalog.
Layout choices are explained per table in ``layout``; ``crossdata maintain`` uses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from crossdata.errors import CrossdataError

WriteMode = Literal["append", "overwrite", "merge"]
LAYERS = ("bronze", "silver", "gold", "ops")


@dataclass(frozen=True)
class Table:
    """A Delta table crossdata writes, described once."""

    name: str
    description: str
    mode: WriteMode
    keys: tuple[str, ...] = ()  # merge keys (mode="merge") or natural key for dedup checks
    partition_by: tuple[str, ...] = ()
    cluster_by: tuple[str, ...] = ()
    zorder_by: tuple[str, ...] = ()  # OPTIMIZE ... ZORDER BY (for partitioned tables)
    # The columns Delta keeps min/max/null statistics on (delta.dataSkippingStatsColumns):
    # those whose values follow the file layout, so a filter on them skips files. Empty:
    # Delta's default, the first 32 columns. Collecting statistics is part of every write.
    stats_columns: tuple[str, ...] = ()
    change_data_feed: bool = False
    constraints: Mapping[str, str] = field(default_factory=dict)  # name -> SQL CHECK expression
    layout: str = ""  # why this partitioning / clustering
    ddl: str | None = None  # fixed schema for tables created before their first write

    def __post_init__(self) -> None:
        layer, _, noun = self.name.partition(".")
        if layer not in LAYERS or not noun or not noun.replace("_", "").isalnum():
            raise ValueError(f"table name {self.name!r} must be <layer>.<snake_case_noun>")
        if self.mode == "merge" and not self.keys:
            raise ValueError(f"table {self.name}: merge tables need keys")
        if self.partition_by and self.cluster_by:
            raise ValueError(f"table {self.name}: choose partitioning or clustering, not both")
        if self.stats_columns:
            # Delta refuses statistics on a partition column, and Z-ordering or clustering by
            # a column it keeps none on.
            if set(self.stats_columns) & set(self.partition_by):
                raise ValueError(f"table {self.name}: partition columns take no statistics")
            missing = set(self.zorder_by + self.cluster_by) - set(self.stats_columns)
            if missing:
                raise ValueError(
                    f"table {self.name}: Z-order and clustering columns need statistics: "
                    + ", ".join(sorted(missing))
                )

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def noun(self) -> str:
        return self.name.split(".", 1)[1]


_TABLES: list[Table] = [
    Table(
        "ops.job_runs",
        "One row per job run, failed runs included (their error as Spark gave it, the row "
        "values it quotes withheld).",
        mode="append",
        ddl=(
            "run_id STRING NOT NULL, job STRING NOT NULL, started_at TIMESTAMP NOT NULL, "
            "ended_at TIMESTAMP, status STRING NOT NULL, error_message STRING, "
            "package_version STRING, git_commit STRING, config_hash STRING, profile STRING, "
            "input_rows BIGINT, output_rows BIGINT, details MAP<STRING, STRING>"
        ),
        constraints={"valid_status": "status IN ('succeeded', 'failed')"},
        layout="Tiny and append-only: no partitioning; OPTIMIZE compacts the small files.",
    ),
    Table(
        "ops.alerts",
        "Conditions a person should look at (a giant identity component, a reconciliation gap).",
        mode="append",
        ddl=(
            "alert_id STRING NOT NULL, run_id STRING, job STRING, raised_at TIMESTAMP NOT NULL, "
            "severity STRING NOT NULL, kind STRING NOT NULL, message STRING NOT NULL, "
            "details MAP<STRING, STRING>"
        ),
        constraints={"valid_severity": "severity IN ('info', 'warning', 'error')"},
        layout="Small and append-only: no partitioning.",
    ),
]


# Bronze rows are written in landing order (file and line, within a run and ingestion time),
# so these are the columns whose ranges tell files apart.
_BRONZE_STATS = ("_source_file", "_line", "_ingested_at", "_run_id", "_batch_id")


def _bronze(source: str) -> Table:
    return Table(
        f"bronze.{source}",
        f"Raw {source} records as delivered, typed by the input contract, with where each came "
        "from; unknown fields are kept in _rescued (or as columns, by collect.schema_drift).",
        mode="append",
        partition_by=("_delivery_date",),
        stats_columns=_BRONZE_STATS,
        layout="Partitioned by delivery day: bounded partition count, and replays or retention "
        "work a day at a time. Statistics on the ingestion metadata only: reads by file, run "
        "or ingestion time skip files; the records' own fields arrive in no useful order.",
    )


_BRONZE_SOURCES = (
    "events",
    "access_log",
    "ad_impressions",
    "ad_clicks",
    "email_events",
    "crm_customers",
    "orders",
    "consent",
    "spend",
)

_TABLES += [_bronze(source) for source in _BRONZE_SOURCES]
_TABLES += [
    Table(
        "bronze.quarantine",
        "Every raw record that could not be loaded, with its raw text and a reason code.",
        mode="append",
        layout="Small (bad records only): no partitioning; OPTIMIZE compacts it.",
        constraints={"has_reason": "reason IS NOT NULL"},
    ),
    Table(
        "ops.ingest_reconciliation",
        "Per file and run: records read = loaded + quarantined + removed as duplicates; also "
        "the file ledger (content hash, size, modification time when read, and the original "
        "of a file delivered twice), and how many of its lines were read in the source's "
        "fallback encoding (collect.fallback_encodings).",
        mode="append",
        layout="One row per file and run: no partitioning.",
        constraints={"valid_status": "status IN ('ok', 'mismatch')"},
    ),
    Table(
        "ops.ingest_file_changes",
        "Landing files whose content (or part of it) was not loaded: rewritten after they "
        "were read (with what the ledger held when read), gone before their batch read "
        "them, or misnamed (never read: not named as its source's files are, or in a landing "
        "folder that names no source, whose name is then the row's source); rewritten and "
        "misnamed files are recorded once per size and time (collect.file_changes).",
        mode="append",
        constraints={"valid_change": "change IN ('rewritten', 'gone', 'misnamed')"},
        layout="Rare rows: no partitioning.",
    ),
    Table(
        "ops.silver_batches",
        "Per run, silver table and micro-batch: rows in, inserted, updated, duplicates "
        "removed, quarantined by expectations, removed by a rule (bots with "
        "collect.bots.action=remove).",
        mode="append",
        layout="A few rows per run: no partitioning.",
    ),
    Table(
        "ops.data_quality",
        "Per run, table and rule: rows that passed and failed, and the action taken.",
        mode="append",
        layout="A few rows per run: no partitioning.",
    ),
]

_SILVER_EVENT_LAYOUT = (
    "Partitioned by event day (UTC): MERGE deduplication and late events touch only the "
    "days in a batch, and most reads filter on a date range. silver.events is also Z-ordered "
    "by actor_id, so a read or a DELETE that names a few actors (one customer's events, an "
    "erasure) opens few files; a join on a batch's many actors still reads whole days, as "
    "open-source Delta skips files by literal filters only. maintain Z-orders only the days "
    "written since its last run. Statistics "
    "on time and ingestion metadata (and actor_id and session_id for silver.events) only: "
    "URLs, user agents and identifiers come in random order, so their ranges skip no file, "
    "and collecting them is part of every write."
)
# Statistics on time, the Z-order column, the session (its null count finds events without
# one) and ingestion metadata; none on URLs, user agents or identifiers in random order, which
# skip no file: leaving them out made writing 1M events about 40 % shorter.
_SILVER_EVENT_STATS = ("event_ts", "actor_id", "session_id", "_ingested_at", "_run_id")
# A currency that passed the bronze check, as silver stores it.
_CURRENCY_CODE = {"currency_code": "currency IS NULL OR currency RLIKE '^[A-Z]{3}$'"}
# The other dated silver tables: time and ingestion metadata.
_TIMED_STATS = ("event_ts", "_ingested_at", "_run_id")
_TABLES += [
    Table(
        "silver.events",
        "Web and app events (tag, SDK and cookie-bearing server hits) in one model: UTC time, "
        "normalised identifiers, device, channel, bot flag and session.",
        mode="merge",
        keys=("event_id",),
        partition_by=("event_date",),
        zorder_by=("actor_id",),
        stats_columns=_SILVER_EVENT_STATS,
        change_data_feed=True,
        constraints={
            "event_id_present": "event_id IS NOT NULL",
            "event_time_present": "event_ts IS NOT NULL AND event_date IS NOT NULL",
            "known_platform": "platform IN ('web', 'app')",
            "known_origin": "origin IN ('events', 'access_log')",
            **_CURRENCY_CODE,
        },
        layout=_SILVER_EVENT_LAYOUT,
    ),
    Table(
        "silver.sessions",
        "One row per visit: actor, start and end, landing channel and campaign, conversion.",
        mode="merge",
        keys=("session_id",),
        partition_by=("session_date",),
        stats_columns=("actor_id", "session_start", "session_end"),
        change_data_feed=True,
        constraints={"ordered": "session_end >= session_start", "has_events": "n_events > 0"},
        layout="Partitioned by the day the session started, like silver.events; statistics "
        "on actor and time only.",
    ),
    Table(
        "silver.ad_impressions",
        "Ad impressions with normalised identifiers.",
        mode="merge",
        keys=("impression_id",),
        partition_by=("event_date",),
        stats_columns=_TIMED_STATS,
        change_data_feed=True,
        constraints={"cost_not_negative": "cost >= 0", **_CURRENCY_CODE},
        layout=_SILVER_EVENT_LAYOUT,
    ),
    Table(
        "silver.ad_clicks",
        "Ad clicks with normalised identifiers; click_id joins the landing page view.",
        mode="merge",
        keys=("click_id",),
        partition_by=("event_date",),
        stats_columns=_TIMED_STATS,
        change_data_feed=True,
        constraints={"cost_not_negative": "cost >= 0", **_CURRENCY_CODE},
        layout=_SILVER_EVENT_LAYOUT,
    ),
    Table(
        "silver.email_events",
        "Email sends, opens, clicks, bounces and unsubscribes with normalised addresses.",
        mode="merge",
        keys=("event_id",),
        partition_by=("event_date",),
        stats_columns=_TIMED_STATS,
        change_data_feed=True,
        constraints={"event_time_present": "event_ts IS NOT NULL"},
        layout=_SILVER_EVENT_LAYOUT,
    ),
    Table(
        "silver.orders",
        "Orders from web, app, stores and call centre in one table, lines included.",
        mode="merge",
        keys=("order_id",),
        partition_by=("order_date",),
        stats_columns=("order_ts", "_ingested_at", "_run_id"),
        change_data_feed=True,
        constraints={
            "known_channel": "channel IN ('web', 'app', 'store', 'call_center')",
            **_CURRENCY_CODE,
        },
        layout="Partitioned by order day; orders are few beside events. Statistics on time "
        "and ingestion metadata, as the silver event tables.",
    ),
    Table(
        "silver.crm_customers",
        "One row per CRM customer number, each attribute from its preferred source system.",
        mode="merge",
        keys=("customer_number",),
        change_data_feed=True,
        constraints={"has_key": "customer_number IS NOT NULL"},
        layout="Small and updated in place: no partitioning; OPTIMIZE compacts it.",
    ),
    Table(
        "silver.consent",
        "Consent events per identifier and purpose, identifiers normalised.",
        mode="merge",
        keys=("consent_id",),
        partition_by=("event_date",),
        stats_columns=_TIMED_STATS,
        change_data_feed=True,
        constraints={"known_status": "status IN ('granted', 'withdrawn')"},
        layout=_SILVER_EVENT_LAYOUT,
    ),
    Table(
        "silver.spend",
        "Marketing spend per day, channel and campaign (latest delivery wins).",
        mode="merge",
        keys=("date", "channel", "campaign_id"),
        change_data_feed=True,
        constraints={"has_key": "date IS NOT NULL AND channel IS NOT NULL", **_CURRENCY_CODE},
        layout="A few rows per day: no partitioning.",
    ),
]

_TABLES += [
    Table(
        "silver.identity_dictionary",
        "Every identifier crossdata has seen, with its permanent long node_id.",
        mode="merge",
        keys=("id_type", "id_value"),
        constraints={"has_id": "node_id IS NOT NULL"},
        layout="Z-ordered by node_id so lookups of a component's members skip files.",
        zorder_by=("node_id",),
    ),
    Table(
        "silver.identity_edges",
        "Evidence that two identifiers belong together: source, first and last seen, count, "
        "and whether the edge may merge people (guardrails).",
        mode="overwrite",
        constraints={"ordered": "src_id < dst_id"},
        layout="Rebuilt each run from silver; Z-ordered by src_id for neighbourhood reads.",
        zorder_by=("src_id",),
    ),
    Table(
        "gold.identity_map",
        "Each identifier and the customer it belongs to (NULL for shared identifiers).",
        mode="overwrite",
        constraints={"typed": "id_type IS NOT NULL AND id_value IS NOT NULL"},
        layout="Rebuilt each run; Z-ordered by customer_id for 'all identifiers of X' reads.",
        zorder_by=("customer_id",),
    ),
    Table(
        "gold.customer_keys",
        "Every customer_id ever issued: when, by which run, and whether and into what it was "
        "retired.",
        mode="merge",
        keys=("customer_id",),
        layout="One row per key: no partitioning.",
    ),
    Table(
        "gold.identity_lineage",
        "How keys changed between runs: merges (old key retired into a surviving key) and "
        "splits (part of an old customer got a new key).",
        mode="append",
        constraints={"kind": "kind IN ('merge', 'split')"},
        layout="Small and append-only.",
    ),
    Table(
        "gold.customer_golden",
        "One row per customer: the best value of each attribute by source priority and "
        "recency, and counts of its identifiers.",
        mode="overwrite",
        layout="Rebuilt each run; one row per customer.",
    ),
]

TABLES: dict[str, Table] = {t.name: t for t in _TABLES}

# The silver tables the collect flows write: each batch of theirs is checked against
# collect.expectations. (silver.sessions is derived from silver.events' sessions, and the
# identity tables are written by the identity stage.)
EXPECTATION_TABLES = (
    "silver.events",
    "silver.ad_impressions",
    "silver.ad_clicks",
    "silver.email_events",
    "silver.orders",
    "silver.crm_customers",
    "silver.consent",
    "silver.spend",
)


def table(name: str) -> Table:
    """The registered table called ``name``; a clear error for a typo."""
    try:
        return TABLES[name]
    except KeyError:
        known = ", ".join(sorted(TABLES))
        raise CrossdataError(f"unknown table {name!r}; known tables: {known}") from None


def _written(spec: Table) -> str:
    if spec.mode == "merge":  # a MERGE, or an append of the keys not stored yet
        return "one row per " + ", ".join(f"`{k}`" for k in spec.keys)
    return {"append": "append only", "overwrite": "rebuilt (overwrite)"}[spec.mode]


def _laid_out(spec: Table) -> str:
    parts = []
    if spec.partition_by:
        parts.append("partitioned by " + ", ".join(f"`{c}`" for c in spec.partition_by))
    if spec.cluster_by:
        parts.append("clustered by " + ", ".join(f"`{c}`" for c in spec.cluster_by))
    if spec.zorder_by:
        parts.append("Z-ordered by " + ", ".join(f"`{c}`" for c in spec.zorder_by))
    if spec.stats_columns:
        parts.append("statistics on " + ", ".join(f"`{c}`" for c in spec.stats_columns))
    return "; ".join(parts) or "none"


def catalog_markdown() -> str:
    """The text of docs/tables.md: every table, how it is written and laid out, and why."""
    out = [
        "# Tables",
        "",
        "<!-- Generated by `python -m crossdata.gendocs`; do not edit by hand. The definitions "
        "live in jobs/crossdata/lakehouse/tables.py. -->",
        "",
        "Every Delta table crossdata writes. Table `layer.noun` is stored at "
        "`<lakehouse.root>/<layer>/<noun>` and registered under that name in the Spark catalog "
        "(`Lakehouse.register_all()`). `crossdata maintain` compacts each table with its layout "
        "(OPTIMIZE, with ZORDER BY where one is listed) and vacuums it with "
        "`collect.maintenance.vacuum_retention_hours`. CHECK constraints are set when the table "
        "is created; `crossdata maintain` adds those declared since.",
        "",
        "| table | written | layout | change data feed |",
        "| --- | --- | --- | --- |",
    ]
    for spec in _TABLES:
        cdf = "on" if spec.change_data_feed else ""
        out.append(f"| `{spec.name}` | {_written(spec)} | {_laid_out(spec)} | {cdf} |")
    out.append("")
    for spec in _TABLES:
        out += [f"## `{spec.name}`", "", spec.description, ""]
        out.append(f"- written: {_written(spec)}")
        out.append(f"- layout: {_laid_out(spec)}. {spec.layout}".rstrip())
        if spec.change_data_feed:
            out.append("- change data feed: on (`delta.enableChangeDataFeed`)")
        for cname, expr in spec.constraints.items():
            out.append(f"- CHECK `{cname}`: `{expr}`")
        if spec.ddl:
            out.append(f"- schema, fixed at creation: `{spec.ddl}`")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
