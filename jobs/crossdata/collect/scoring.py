"""Score an ingestion against a generated world's truth (tests and benchmarks use this).

Everything is computed with DataFrames; only small summaries (counts, a few examples of
disagreement) reach the driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crossdata.collect.ledgers import QUARANTINE, RECONCILIATION, SILVER_BATCHES
from crossdata.lakehouse import Lakehouse
from crossdata.spark.session import to_uri

_KEYED_SILVER = {
    "events": ("silver.events", "event_id"),
    "ad_impressions": ("silver.ad_impressions", "impression_id"),
    "ad_clicks": ("silver.ad_clicks", "click_id"),
    "email_events": ("silver.email_events", "event_id"),
    "orders": ("silver.orders", "order_id"),
    "consent": ("silver.consent", "consent_id"),
}


@dataclass
class IngestScore:
    bad_records: int = 0  # in the truth
    quarantined: int = 0  # in bronze.quarantine
    wrong_reason: int = 0
    missed: int = 0  # bad in truth, not quarantined
    unexpected: int = 0  # quarantined, not bad in truth
    examples: list[tuple] = field(default_factory=list)
    record_lines: int = 0  # landing records (a CRM record may span lines; no headers)
    read: int = 0  # what reconciliation says was read
    unreconciled_files: int = 0
    redelivered_files: int = 0  # truth
    duplicate_files: int = 0  # ledger
    duplicate_records: dict[str, int] = field(default_factory=dict)  # truth, per keyed source
    removed_duplicates: dict[str, int] = field(default_factory=dict)  # silver, per source
    silver_key_repeats: dict[str, int] = field(default_factory=dict)  # must all be 0

    @property
    def quarantine_exact(self) -> bool:
        return self.wrong_reason == self.missed == self.unexpected == 0


def _truth(spark: SparkSession, truth_dir: str, name: str) -> DataFrame:
    return spark.read.option("header", True).csv(f"{truth_dir}/{name}")


def score_ingestion(
    spark: SparkSession, lake: Lakehouse, landing: str, truth_dir: str | None = None
) -> IngestScore:
    """Compare quarantine, reconciliation, file and record deduplication with the truth."""
    root = to_uri(landing).rstrip("/")
    truth = (truth_dir and to_uri(truth_dir).rstrip("/")) or f"{root}/_truth"
    score = IngestScore()

    expected = _truth(spark, truth, "bad_records").select(
        "source",
        "file",
        F.col("line").cast("bigint").alias("line"),
        F.col("reason").alias("expected"),
    )
    # Spark writes file:/x where to_uri gives file:///x: compare on the path alone.
    root_path = root.removeprefix("file://").removeprefix("file:")
    relative = F.regexp_replace(F.col("file"), "^(?:file:(?://)?)?" + _escape(root_path) + "/", "")
    got = lake.read(QUARANTINE).select(
        "source", relative.alias("file"), "line", F.col("reason").alias("got")
    )
    both = expected.join(got, ["source", "file", "line"], "full_outer")
    row = both.agg(
        F.count("expected").alias("bad"),
        F.count("got").alias("quarantined"),
        F.sum((F.col("expected").isNotNull() & F.col("got").isNull()).cast("int")).alias("missed"),
        F.sum((F.col("expected").isNull() & F.col("got").isNotNull()).cast("int")).alias("extra"),
        F.sum((F.col("expected") != F.col("got")).cast("int")).alias("wrong"),
    ).collect()[0]
    score.bad_records, score.quarantined = row["bad"], row["quarantined"]
    score.missed, score.unexpected = row["missed"] or 0, row["extra"] or 0
    score.wrong_reason = row["wrong"] or 0
    disagree = both.where(
        F.col("expected").isNull() | F.col("got").isNull() | (F.col("expected") != F.col("got"))
    )
    score.examples = [tuple(r) for r in disagree.limit(10).collect()]

    manifest = _truth(spark, truth, "manifest.csv")
    score.record_lines = int(
        manifest.agg(F.sum(F.col("records").cast("bigint"))).collect()[0][0] or 0
    )
    recon = lake.read(RECONCILIATION)
    totals = recon.agg(
        F.sum("read").alias("read"), F.sum((F.col("status") != "ok").cast("int")).alias("bad")
    ).collect()[0]
    score.read, score.unreconciled_files = int(totals["read"] or 0), int(totals["bad"] or 0)

    score.redelivered_files = _truth(spark, truth, "redelivered_files.csv").count()
    score.duplicate_files = recon.where(F.col("duplicate_of").isNotNull()).count()

    dups = _truth(spark, truth, "duplicates").where(F.col("kind") == "duplicate_record")
    bad_keys = expected.select("source", "file", "line")
    # A duplicate copy that was also made bad on purpose is quarantined, not deduplicated.
    countable = dups.select("source", "file", F.col("line").cast("bigint").alias("line")).join(
        bad_keys, ["source", "file", "line"], "left_anti"
    )
    score.duplicate_records = {
        r["source"]: r["count"] for r in countable.groupBy("source").count().collect()
    }
    removed = lake.read(SILVER_BATCHES).groupBy("source").agg(F.sum("duplicates"))
    score.removed_duplicates = {r[0]: int(r[1]) for r in removed.collect()}
    for source, (table, key) in _KEYED_SILVER.items():
        if lake.exists(table):
            repeats = lake.read(table).groupBy(key).count().where("count > 1").count()
            score.silver_key_repeats[source] = repeats
    return score


def _escape(text: str) -> str:
    return "".join("\\" + c if c in r".^$*+?{}[]\|()" else c for c in text)
