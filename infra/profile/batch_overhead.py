"""Fixed cost of one micro-batch: a few events through bronze and two silver.events batches.

Run from the repository root, after `make setup`:

    .venv/bin/python infra/profile/batch_overhead.py --rounds 4

Each round starts a fresh lakehouse in the same Spark session (as the test suite does), lands
four events in two files, runs the bronze stream, then processes each file as one silver batch
(``SilverBatchWriter.process``, sessions included). With so few rows, nearly all of the time is
per-batch overhead: building and planning the DataFrames, small jobs, Delta commits. Round 0
includes the JVM warm-up; compare the later rounds, and run both sides of an A/B one after the
other on the same machine (pass ``PYTHONPATH=<other checkout>/jobs`` for the other side).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pyspark.sql import functions as F  # noqa: E402
from tests.conftest import make_settings  # noqa: E402
from tests.helpers import deliver, event  # noqa: E402

from crossdata.collect.flows import FLOWS  # noqa: E402
from crossdata.collect.ingest import start_bronze  # noqa: E402
from crossdata.collect.silver import SilverBatch, SilverBatchWriter  # noqa: E402
from crossdata.contracts import SOURCES  # noqa: E402
from crossdata.ops import Context, job_run  # noqa: E402
from crossdata.spark import get_spark  # noqa: E402


def one_round(spark, folder: Path) -> list[float]:
    landing = folder / "landing"
    ctx = Context.create(make_settings(folder, f"collect.landing={landing}"), spark=spark)
    # One visit of two events, a second one at 10:50, and a visit across midnight.
    first_day = [("e1", "10:00"), ("e3", "10:50"), ("m1", "23:50")]
    records = [
        event(eid, f"2026-03-05T{hm}:00Z", **({"cookie": "ck_m"} if eid == "m1" else {}))
        for eid, hm in first_day
    ]
    deliver(landing, "2026-03-05", "a.jsonl", records)
    deliver(landing, "2026-03-06", "b.jsonl", [event("m2", "2026-03-06T00:10:00Z", cookie="ck_m")])
    times = []
    t = time.perf_counter()
    with job_run(ctx, "ingest") as run:
        start_bronze(ctx, run, SOURCES["events"], str(landing)).wait()
    times.append(time.perf_counter() - t)
    bronze = ctx.lake.read("bronze.events")
    for batch_id, name in enumerate(("/a.jsonl", "/b.jsonl")):
        writer = SilverBatchWriter(
            ctx.lake.location, FLOWS["events"], ctx.settings.collect, "profile", "unused"
        )
        batch = SilverBatch(
            ctx.settings.collect, ctx.lake, "profile", batch_id, dt.datetime.now(dt.UTC), "app"
        )
        t = time.perf_counter()
        writer.process(bronze.where(F.col("_source_file").endswith(name)), batch)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crossdata-batch-overhead-"))
    spark = get_spark(make_settings(work).settings)
    spark.sparkContext.setLogLevel("ERROR")
    rows = []
    try:
        for i in range(args.rounds):
            rows.append(one_round(spark, work / f"round{i}"))
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("| round | bronze s | silver batch 0 s | silver batch 1 s |")
    print("| --- | --- | --- | --- |")
    for i, (b, s0, s1) in enumerate(rows):
        print(f"| {i} | {b:.1f} | {s0:.1f} | {s1:.1f} |")
    warm = rows[1:] or rows
    medians = [statistics.median(col) for col in zip(*warm, strict=True)]
    print("| median of rounds 1+ | " + " | ".join(f"{m:.1f}" for m in medians) + " |")


if __name__ == "__main__":
    main()
