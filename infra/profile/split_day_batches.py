"""Silver batches of events that find events already stored: one day's file per batch.

Run from the repository root, after `make setup`:

    .venv/bin/python infra/profile/split_day_batches.py --days 6

It lands ``--days`` files of 40 events (7 cookies, no bot), runs the bronze stream, then
processes each file as one silver batch (``SilverBatchWriter.process``) in a session set up
as the test session (interpreted, adaptive execution off) and prints each batch's seconds.
Batch 0 creates silver.events; the later ones read the stored events of their days for the
bot rates and the sessions. For an A/B, run the other side with
``PYTHONPATH=<other checkout>/jobs`` one after the other on the same machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pyspark.sql import functions as F  # noqa: E402
from tests.conftest import make_settings  # noqa: E402
from tests.helpers import INTERPRETED, NOT_ADAPTIVE, deliver, event  # noqa: E402

from crossdata.collect.flows import FLOWS  # noqa: E402
from crossdata.collect.ingest import start_bronze  # noqa: E402
from crossdata.collect.silver import SilverBatch, SilverBatchWriter  # noqa: E402
from crossdata.contracts import SOURCES  # noqa: E402
from crossdata.ops import Context, job_run  # noqa: E402
from crossdata.spark import get_spark  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=6)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crossdata-split-day-"))
    landing = work / "landing"
    loaded = make_settings(work, f"collect.landing={landing}")
    spark = get_spark(loaded.settings)
    spark.sparkContext.setLogLevel("ERROR")
    for key, value in {**INTERPRETED, **NOT_ADAPTIVE}.items():
        spark.conf.set(key, value)
    ctx = Context.create(loaded, spark=spark)
    names = []
    for d in range(args.days):
        day = (dt.date(2026, 3, 1) + dt.timedelta(days=d)).isoformat()
        lines = [
            event(f"e{d}-{i}", f"{day}T{8 + i % 10:02d}:{i % 60:02d}:00Z", cookie=f"ck{i % 7}")
            for i in range(40)
        ]
        deliver(landing, day, f"f{d}.jsonl", lines)
        names.append(f"f{d}.jsonl")
    try:
        with job_run(ctx, "ingest") as run:
            start_bronze(ctx, run, SOURCES["events"], str(landing)).wait()
        bronze = ctx.lake.read("bronze.events")
        settings = ctx.settings.collect
        for i, name in enumerate(names):
            rows = bronze.where(F.col("_source_file").endswith(f"/{name}"))
            writer = SilverBatchWriter(ctx.lake.location, FLOWS["events"], settings, "p", "-")
            batch = SilverBatch(settings, ctx.lake, "p", i, dt.datetime.now(dt.UTC), "profile")
            t = time.perf_counter()
            writer.process(rows, batch)
            print(f"batch {i}: {time.perf_counter() - t:.1f} s", flush=True)
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
