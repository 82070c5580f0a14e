"""``crossdata identity resolve --edges FILE.csv --out DIR``: resolve a user's own pairs.

Input: CSV with header ``src_type,src_value,dst_type,dst_value`` and optionally ``ts,source``.
Output: ``DIR/identities.csv`` (``id_type,id_value,customer_id``; customer_id empty for a shared
identifier) and ``DIR/rejected_edges.csv`` (``line,reason,raw``) for every row that could not be
used. The same normalisation and guardrails as the lakehouse job apply; there is no history,
so keys depend only on the members of each customer.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crossdata.collect.formats import file_lines, parse_csv, raw_text
from crossdata.collect.identifiers import normalize_identifier, normalize_phone
from crossdata.config.schema import Settings
from crossdata.contracts import IDENTIFIER_TYPES
from crossdata.errors import InputContractError
from crossdata.identity.graph import (
    aggregate_evidence,
    aggregate_nodes,
    blocked,
    endpoint_observations,
    new_identifiers,
    with_node_ids,
    without_loops,
)
from crossdata.identity.keys import assign_keys
from crossdata.identity.resolve import identity_map, resolve_graph

REQUIRED = ("src_type", "src_value", "dst_type", "dst_value")
OPTIONAL = ("ts", "source")
_ISO = "yyyy-MM-dd'T'HH:mm:ss[.SSSSSSSSS]XXX"


@dataclass(frozen=True)
class StandaloneSummary:
    rows: int
    rejected: int
    identifiers: int
    customers: int
    shared: int

    def describe(self) -> str:
        return (
            f"{self.rows} edge rows read, {self.rejected} rejected; {self.identifiers} "
            f"identifiers in {self.customers} customers, {self.shared} shared"
        )


def read_edge_rows(spark: SparkSession, path: str) -> DataFrame:
    """The CSV's records with their line numbers: ``_line, _text, _malformed, <columns>``."""
    files = spark.read.format("binaryFile").load(path)
    parsed = parse_csv(file_lines(files))
    header = file_lines(files).where("_is_header").select("_text").first()  # one header line
    if header is None:
        raise InputContractError(f"{path}: empty file; expected a header {','.join(REQUIRED)}")
    names = [h.strip() for h in header["_text"].split(",")]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise InputContractError(
            f"{path}: header lacks {', '.join(missing)}; expected {','.join(REQUIRED)}[,ts,source]"
        )
    cols = [F.col("_fields")[c].alias(c) for c in (*REQUIRED, *OPTIONAL)]
    return parsed.select("_line", raw_text(parsed).alias("raw"), "_malformed", *cols)


def checked_edges(rows: DataFrame, settings: Settings, default_region: str) -> DataFrame:
    """Normalised edges with ``reason`` NULL when usable, else why not."""
    known = F.array(*[F.lit(t) for t in IDENTIFIER_TYPES])
    ts = F.try_to_timestamp(F.trim("ts"), F.lit(_ISO))
    df = rows.select(
        "_line",
        "raw",
        "_malformed",
        F.trim("src_type").alias("src_type"),
        F.col("src_value").alias("src_raw"),
        F.trim("dst_type").alias("dst_type"),
        F.col("dst_value").alias("dst_raw"),
        F.coalesce(F.trim("source"), F.lit("user")).alias("source"),
        ts.alias("ts"),
        F.col("ts").alias("ts_raw"),
    )
    df = df.withColumn("_sp", F.when(F.col("src_type") == "phone", F.col("src_raw")))
    df = df.withColumn("_dp", F.when(F.col("dst_type") == "phone", F.col("dst_raw")))
    df = normalize_phone(normalize_phone(df, "_sp", default_region), "_dp", default_region)
    src = F.when(F.col("src_type") == "phone", F.col("_sp")).otherwise(
        normalize_identifier(F.col("src_raw"), F.col("src_type"))
    )
    dst = F.when(F.col("dst_type") == "phone", F.col("_dp")).otherwise(
        normalize_identifier(F.col("dst_raw"), F.col("dst_type"))
    )
    df = df.withColumn("src_value", src).withColumn("dst_value", dst)
    coll, ident = settings.collect, settings.identity
    reason = (
        F.when(F.col("_malformed"), F.lit("malformed_record"))
        .when(F.col("raw").isNull(), F.lit("invalid_encoding"))
        .when(
            ~F.array_contains(known, F.col("src_type"))
            | ~F.array_contains(known, F.col("dst_type")),
            F.lit("unknown_id_type"),
        )
        .when(
            F.coalesce(F.trim("src_raw"), F.lit("")).eqNullSafe("")
            | F.coalesce(F.trim("dst_raw"), F.lit("")).eqNullSafe(""),
            F.lit("missing_value"),
        )
        .when(F.col("src_value").isNull() | F.col("dst_value").isNull(), F.lit("invalid_value"))
        .when(F.col("ts_raw").isNotNull() & F.col("ts").isNull(), F.lit("invalid_timestamp"))
        .when(
            blocked(F.col("src_value"), F.col("src_type"), coll, ident)
            | blocked(F.col("dst_value"), F.col("dst_type"), coll, ident),
            F.lit("placeholder"),
        )
    )
    return df.withColumn("reason", reason)


def resolve_csv(
    spark: SparkSession, settings: Settings, edges_csv: str, out_dir: str
) -> StandaloneSummary:
    """Resolve the pairs in ``edges_csv`` and write the two CSV files into ``out_dir``."""
    out = Path(out_dir)
    if "://" in out_dir and not out_dir.startswith("file:"):
        raise InputContractError(f"--out {out_dir}: give a local folder")
    source = Path(edges_csv)
    if not source.is_file():
        raise InputContractError(f"--edges {edges_csv}: no such file")
    rows = read_edge_rows(spark, str(source.resolve())).persist()
    checked = checked_edges(rows, settings, settings.collect.default_region).persist()
    good = checked.where(F.col("reason").isNull()).select(
        "src_type", "src_value", "dst_type", "dst_value", "source", "ts"
    )
    pairs = aggregate_evidence(good, loops=True).localCheckpoint()
    dictionary = new_identifiers(
        aggregate_nodes(endpoint_observations(pairs)), None
    ).localCheckpoint()
    edges = with_node_ids(without_loops(pairs), dictionary).localCheckpoint()
    resolution = resolve_graph(dictionary, edges, settings)
    keys = assign_keys(
        resolution.components,
        dictionary.select("node_id", "id_type", "id_value"),
        None,
        None,
        salt="",
    )
    mapped = identity_map(dictionary, resolution.components, keys.assignment, resolution.shared)
    identities = mapped.select("id_type", "id_value", "customer_id").orderBy(
        "customer_id", "id_type", "id_value"
    )
    rejected = (
        checked.where(F.col("reason").isNotNull())
        .select(F.col("_line").alias("line"), "reason", "raw")
        .orderBy("line")
    )
    out.mkdir(parents=True, exist_ok=True)
    _write_single_csv(identities, out / "identities.csv")
    _write_single_csv(rejected, out / "rejected_edges.csv")
    counts = mapped.agg(
        F.count(F.lit(1)), F.countDistinct("customer_id"), F.sum(F.col("is_shared").cast("int"))
    ).collect()[0]
    summary = StandaloneSummary(
        rows.count(),
        checked.where(F.col("reason").isNotNull()).count(),
        int(counts[0]),
        int(counts[1]),
        int(counts[2] or 0),
    )
    rows.unpersist()
    checked.unpersist()
    return summary


def _write_single_csv(df: DataFrame, target: Path) -> None:
    """One CSV file with a header at ``target`` (Spark writes a folder of parts)."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        folder = Path(tmp) / "out"
        df.coalesce(1).write.option("header", True).option("emptyValue", "").csv(str(folder))
        parts = [p for p in sorted(folder.glob("part-*.csv")) if p.stat().st_size > 0]
        if parts:
            shutil.move(str(parts[0]), target)
        else:  # no rows: Spark writes no header; keep one
            target.write_text(",".join(df.columns) + "\n", encoding="utf-8")
