"""A small `crossdata ingest`, several times in one process: the cold run and the warm ones.

Run from the repository root, after `make setup`:

    .venv/bin/python infra/profile/small_ingest.py --rounds 4

Each round runs the `ingest` command (the CLI's own entry point, in this process) on a fresh
lakehouse over the kill test's landing: 4 files of 30 events, one file per bronze batch, then
silver and sessions. Round 0 starts the JVM and pays its warm-up, as every job started by
`spark-submit` or a subprocess test does; the later rounds show the warm fixed cost, as the
in-process tests see it. With so few rows the time is per batch, per write and per action.

For an A/B, run both sides one after the other on the same machine, the other side with
`PYTHONPATH=<other checkout>/jobs` (from that checkout, so its conf/ is read), or with a
setting changed: `--set "spark.conf={spark.driver.extraJavaOptions: '-XX:+UseParallelGC'}"`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.helpers import daily_events  # noqa: E402

import crossdata  # noqa: E402
from crossdata.cli import main as crossdata_main  # noqa: E402

FILES = 4
EVENTS_PER_FILE = 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="one more setting for every round, as the command takes it (repeatable)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crossdata-small-ingest-"))
    landing = daily_events(work / "landing", FILES, EVENTS_PER_FILE)
    print(f"code: {Path(crossdata.__file__).parent}", flush=True)
    seconds = []
    try:
        for r in range(args.rounds):
            lake = work / f"round{r}"
            start = time.perf_counter()
            code = crossdata_main(
                [
                    "ingest",
                    "--source",
                    "events",
                    "--input",
                    str(landing),
                    "--set",
                    f"lakehouse.root={lake / 'lakehouse'}",
                    "--set",
                    f"spark.checkpoint_dir={lake / 'checkpoints'}",
                    "--set",
                    "spark.shuffle_partitions=2",
                    "--set",
                    "collect.max_bytes_per_trigger=null",
                    "--set",
                    "collect.max_files_per_trigger=1",
                    *(arg for setting in args.set for arg in ("--set", setting)),
                ]
            )
            seconds.append(time.perf_counter() - start)
            if code != 0:
                raise SystemExit(f"round {r}: ingest exited {code}")
            shutil.rmtree(lake, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n| round | s |\n| --- | --- |")
    for r, s in enumerate(seconds):
        print(f"| {r}{' (cold JVM)' if r == 0 else ''} | {s:.1f} |")
    if len(seconds) > 1:
        print(f"| median of rounds 1-{len(seconds) - 1} | {statistics.median(seconds[1:]):.1f} |")


if __name__ == "__main__":
    main()
