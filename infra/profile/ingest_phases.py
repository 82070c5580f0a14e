"""Time the steps of bronze and of the silver.events shaping one by one, on a world's events.

Run from the repository root, after `make setup`, on a generated world (for example
`.venv/bin/crossdata generate --persons 7599 --days 28 --out /tmp/w1m`, about 1M events):

    .venv/bin/python infra/profile/ingest_phases.py /tmp/w1m --rounds 2

Each step is a `noop` write (every column computed, nothing stored) of a prefix of the
pipeline, so the difference between two lines is what the later step adds. Bronze steps read
the landing files; silver steps read a bronze table made from them (written once, first). The
plain copy (`spark.read.json(...).write.format("delta")`) is timed in the same session as a
yardstick. Round 0 includes the JVM's warm-up: compare the later rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pyspark.sql import DataFrame  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from tests.conftest import make_settings  # noqa: E402

from crossdata.collect import bronze, flows, formats  # noqa: E402
from crossdata.collect.bots import flag_bots  # noqa: E402
from crossdata.collect.channels import with_channel, with_url_parts  # noqa: E402
from crossdata.collect.silver import SilverBatch  # noqa: E402
from crossdata.collect.user_agents import with_user_agent_fields  # noqa: E402
from crossdata.contracts import SOURCES  # noqa: E402
from crossdata.spark import get_spark  # noqa: E402

IDS = {"cookie_id": "cookie_id", "device_id": "device_id", "user_id": "user_id", "email": "email"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("world", help="a generated world's folder (its events/ are read)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    landing = str(Path(args.world).resolve() / "events")
    work = Path(tempfile.mkdtemp(prefix="crossdata-ingest-phases-"))
    settings = make_settings(work).settings
    spark = get_spark(settings)
    spark.sparkContext.setLogLevel("ERROR")
    source = SOURCES["events"]
    collect = settings.collect

    def files() -> DataFrame:
        return (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .load(landing)
            .select("path", "length", "content")
        )

    paths = [r["path"] for r in files().select("path").collect()]  # one row per file

    def lines() -> DataFrame:
        return bronze.batch_lines(spark, files(), paths)

    def validated() -> DataFrame:
        return bronze.kept_for_writes(bronze.validated_records(lines(), source, collect), source)

    info = bronze.BatchInfo(source, "profile", 0, "profile", dt.datetime.now(dt.UTC))
    table = str(work / "bronze")
    # Cached, as the bronze batch does: see bronze.bronze_rows.
    with formats.whole_file_tasks(spark):  # as the bronze batch reads its lines
        checked = validated().persist()
        checked.count()
    bronze.bronze_rows(checked, info).write.format("delta").save(table)
    checked.unpersist()
    batch = SilverBatch(collect, None, "profile", 0, dt.datetime.now(dt.UTC))  # type: ignore[arg-type]

    def events() -> DataFrame:
        rows = spark.read.format("delta").load(table)
        return rows.select(
            "*",
            F.col("ts").alias("event_ts"),
            F.to_date("ts").alias("event_date"),
            F.col("_rescued").alias("attributes"),
        )

    def web(df: DataFrame) -> DataFrame:
        df = with_user_agent_fields(df, "user_agent")
        df = with_url_parts(df, "page_url", "referrer", collect.site_hosts)
        return with_channel(df, collect.channels)

    steps: dict[str, Callable[[], DataFrame]] = {
        "bronze: split into lines (binaryFile rows)": lambda: formats.file_lines(files()),
        "bronze: read lines (text reader)": lines,
        "bronze: + parse": lambda: formats.parse_lines(lines(), source),
        "bronze: + validate": lambda: validated(),
        "silver: read bronze": events,
        "silver: + identifiers": lambda: flows.clean_identifiers(events(), IDS, collect),
        "silver: + user agents": lambda: with_user_agent_fields(
            flows.clean_identifiers(events(), IDS, collect), "user_agent"
        ),
        "silver: + url parts, channel": lambda: web(
            flows.clean_identifiers(events(), IDS, collect)
        ),
        "silver: + bots (whole shape)": lambda: flows.shape_events(
            spark.read.format("delta").load(table), batch
        ),
        "silver: bots alone on bronze": lambda: flag_bots(
            events().withColumn("actor_id", F.coalesce("cookie_id", "device_id")),
            collect.bots,
            ("cookie_id", "device_id", "ip"),
            "event_ts",
            "user_agent",
        ),
    }
    results: dict[str, list[float]] = {"plain copy (json -> delta)": []}
    results.update({name: [] for name in steps})
    try:
        for i in range(args.rounds):
            t = time.perf_counter()
            out = str(work / f"copy{i}")
            spark.read.option("recursiveFileLookup", "true").json(landing).write.format(
                "delta"
            ).save(out)
            results["plain copy (json -> delta)"].append(time.perf_counter() - t)
            shutil.rmtree(out, ignore_errors=True)
            for name, build in steps.items():
                t = time.perf_counter()
                # bronze reads its lines one task per file; the copy keeps Spark's packing
                whole = formats.whole_file_tasks(spark) if name.startswith("bronze") else None
                with whole or contextlib.nullcontext():
                    build().write.format("noop").mode("overwrite").save()
                results[name].append(time.perf_counter() - t)
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("| step | " + " | ".join(f"round {i} s" for i in range(args.rounds)) + " |")
    print("| --- |" + " --- |" * args.rounds)
    for name, times in results.items():
        print(f"| {name} | " + " | ".join(f"{s:.1f}" for s in times) + " |")


if __name__ == "__main__":
    main()
