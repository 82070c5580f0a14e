"""Where an ingest's wall time goes: Spark jobs versus the driver between them.

Run from the repository root, after `make setup`:

    .venv/bin/python infra/profile/ingest_eventlog.py

Generates the stage test's small world (150 persons, 6 days, 4 % faults), ingests every source
with a Spark event log, then reads the log back and prints the ingest's wall time, the time at
least one Spark job was running (the union of job intervals), and the SQL executions per
streaming query. Wall time minus job time is spent on the driver: building and analysing
DataFrames, planning, Delta's commit protocol, Python.
"""

from __future__ import annotations

import collections
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.conftest import STAGE_WORLD, make_settings  # noqa: E402
from tests.world.conftest import make_world  # noqa: E402

from crossdata.collect.ingest import run_ingest  # noqa: E402
from crossdata.ops import Context, job_run  # noqa: E402
from crossdata.spark import get_spark  # noqa: E402


def read_event_log(folder: Path) -> list[dict]:
    """Every event of the (uncompressed, possibly rolled) logs under ``folder``."""
    events: list[dict] = []
    for f in sorted(folder.glob("*/events_*")):
        events.extend(json.loads(line) for line in f.read_text().splitlines() if line)
    return events


def busy_seconds(intervals: list[tuple[int, int]]) -> float:
    """Length of the union of [start, end] millisecond intervals, in seconds."""
    total, current = 0, None
    for start, end in sorted(intervals):
        if current is None or start > current[1]:
            if current is not None:
                total += current[1] - current[0]
            current = [start, end]
        else:
            current[1] = max(current[1], end)
    if current is not None:
        total += current[1] - current[0]
    return total / 1000


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="crossdata-eventlog-"))
    logs = work / "eventlog"
    logs.mkdir()
    loaded = make_settings(work)
    loaded.settings.spark.conf["spark.eventLog.enabled"] = "true"
    loaded.settings.spark.conf["spark.eventLog.dir"] = logs.as_uri()
    loaded.settings.spark.conf["spark.eventLog.compress"] = "false"  # read back as plain JSON
    spark = get_spark(loaded.settings)
    spark.sparkContext.setLogLevel("ERROR")
    try:
        world = make_world(spark, work / "world", *STAGE_WORLD)
        ctx = Context.create(
            make_settings(work / "ingest", f"collect.landing={world.root}"), spark=spark
        )
        start = time.time()
        with job_run(ctx, "ingest") as run:
            run_ingest(ctx, run)
        end = time.time()
    finally:
        spark.stop()
    events = read_event_log(logs)
    shutil.rmtree(work, ignore_errors=True)
    jobs: dict[int, list[int]] = {}
    queries: collections.Counter[str] = collections.Counter()
    for e in events:
        kind = e["Event"]
        if kind == "SparkListenerJobStart" and e["Submission Time"] >= start * 1000:
            jobs[e["Job ID"]] = [e["Submission Time"], e["Submission Time"]]
        elif kind == "SparkListenerJobEnd" and e["Job ID"] in jobs:
            jobs[e["Job ID"]][1] = e["Completion Time"]
        elif kind.endswith("SQLExecutionStart") and e["time"] >= start * 1000:
            queries[(e.get("description") or "").split("\n")[0] or "(none)"] += 1
    wall = end - start
    busy = busy_seconds([(a, b) for a, b in jobs.values()])
    print("| ingest wall s | some job running s | driver only s | jobs | SQL executions |")
    print("| --- | --- | --- | --- | --- |")
    print(
        f"| {wall:.1f} | {busy:.1f} | {wall - busy:.1f} ({(wall - busy) / wall:.0%}) "
        f"| {len(jobs)} | {sum(queries.values())} |"
    )
    print("\nSQL executions per streaming query:")
    for name, n in queries.most_common():
        print(f"  {n:4d}  {name}")


if __name__ == "__main__":
    main()
