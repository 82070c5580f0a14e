"""What one small Delta write costs: idempotent appends, table creation, catalog lookups.

Run from the repository root, after `make setup`:

    .venv/bin/python infra/profile/write_costs.py --rounds 4

In one warm session (as the test suite has), each round appends three rows three times to
fresh tables, once per kind of append: plain, with ``txnAppId``/``txnVersion`` (how every
crossdata batch writes: Delta then checks the version against the table's set transactions,
which it reads from the whole table state), and with a CHECK constraint. Then it creates a
crossdata table through ``Lakehouse.create_if_missing`` while the session still has the
name registered at the previous round's root (what happens at every table of every test),
and times the two ways to read a registered name's location. Round 0 includes the JVM
warm-up; the medians are over the later rounds. ``--conf KEY=VALUE`` sets a session option
before the rounds, for A/B runs one after the other.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.conftest import make_settings  # noqa: E402

from crossdata.lakehouse import Lakehouse  # noqa: E402
from crossdata.spark import get_spark  # noqa: E402

SCHEMA = (
    "run_id STRING, batch_id BIGINT, source STRING, file STRING, read BIGINT, loaded BIGINT, "
    "quarantined BIGINT, duplicates BIGINT, status STRING, checked_at TIMESTAMP"
)
CONSTRAINT = "TBLPROPERTIES ('delta.constraints.valid_status' = 'status IN (\\'ok\\')')"


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def one_round(spark, folder: Path, costs: dict[str, list[float]]) -> None:
    now = dt.datetime.now(dt.UTC)
    rows = [("run", 1, "events", f"f{i}", 30, 30, 0, 0, "ok", now) for i in range(3)]
    frame = spark.createDataFrame(rows, SCHEMA)
    frame.limit(0).createOrReplaceTempView("write_costs_empty")
    for kind in ("plain", "txn", "constraint"):
        path = str(folder / kind)
        props = CONSTRAINT if kind == "constraint" else ""
        spark.sql(
            f"CREATE TABLE delta.`{path}` USING DELTA {props} AS SELECT * FROM write_costs_empty"
        )
        for version in range(3):
            writer = spark.createDataFrame(rows, SCHEMA).write.format("delta").mode("append")
            if kind == "txn":
                writer = writer.option("txnAppId", "profile").option("txnVersion", version)
            spent = timed(functools.partial(writer.save, path))
            costs.setdefault(f"append: {kind}", []).append(spent)
    lake = Lakehouse(spark, str(folder / "lake"))
    table = "ops.ingest_reconciliation"
    costs.setdefault("create_if_missing (name held elsewhere)", []).append(
        timed(lambda: lake.create_if_missing(table, frame))
    )
    costs.setdefault("location: DESCRIBE TABLE EXTENDED", []).append(
        timed(lambda: spark.sql(f"DESCRIBE TABLE EXTENDED {table}").collect())
    )
    costs.setdefault("location: DESCRIBE DETAIL", []).append(
        timed(lambda: spark.sql(f"DESCRIBE DETAIL {table}").first())
    )
    # A batch's write after that: the next round finds a version whose state nobody built.
    lake.append(frame, table, txn=("profile", 0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="crossdata-write-costs-"))
    try:
        spark = get_spark(make_settings(base).settings)
        spark.sparkContext.setLogLevel("ERROR")
        for item in args.conf:
            key, _, value = item.partition("=")
            spark.conf.set(key, value)
        rounds: list[dict[str, list[float]]] = []
        for i in range(args.rounds):
            costs: dict[str, list[float]] = {}
            one_round(spark, base / f"round{i}", costs)
            rounds.append(costs)
        later = rounds[1:] or rounds
        print("| step | round 0 s | later rounds s (median of each step's calls) |")
        print("| --- | --- | --- |")
        for step in rounds[0]:
            first = statistics.median(rounds[0][step])
            rest = statistics.median(x for r in later for x in r[step])
            print(f"| {step} | {first:.2f} | {rest:.2f} |")
        spark.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
