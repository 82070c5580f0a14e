"""Bronze of a world's access log delivered plain, then gzipped: time, counts and rows compared.

Run from the repository root, after `make setup`, on a generated world (for example
`.venv/bin/crossdata generate --persons 7599 --days 28 --out /tmp/w1m`, about 1M log lines):

    .venv/bin/python infra/profile/gzip_landing.py /tmp/w1m --workdir /tmp/gzip-landing

It copies the world's `access_log/` twice under the work folder, once as it is and once with
every file gzipped (no time in the header, so a redelivered copy stays a byte-for-byte copy),
keeping the files' modification times. Then, in a fresh Python process each (this script run
with `--one`), it runs the source's bronze stream on one landing, and prints a line per
landing: seconds, the reconciliation's totals and the quarantine's reasons. Last, it compares
the two bronze tables and quarantines row by row (file names without `.gz`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pyspark.sql import DataFrame  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from tests.conftest import make_settings  # noqa: E402

from crossdata.collect.ingest import start_bronze  # noqa: E402
from crossdata.contracts import SOURCES  # noqa: E402
from crossdata.ops import Context, job_run  # noqa: E402

SOURCE = "access_log"
KINDS = ("plain", "gzip")
_NAME = r"([^/]+?)(\.gz)?$"  # a landing file's name, less its .gz


def copy_landing(world: Path, work: Path) -> None:
    """``work/<kind>/access_log/...``: the world's files as they are, and gzipped."""
    for kind in KINDS:
        target = work / kind / SOURCE
        shutil.rmtree(target, ignore_errors=True)
        for path in sorted((world / SOURCE).rglob("*")):
            if not path.is_file():
                continue
            data = path.read_bytes()
            name = path.relative_to(world / SOURCE).as_posix()
            if kind == "gzip":
                data, name = gzip.compress(data, compresslevel=6, mtime=0), f"{name}.gz"
            out = target / name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            stat = path.stat()
            os.utime(out, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def context(work: Path, kind: str) -> Context:
    lake = work / f"lake-{kind}"
    return Context.create(make_settings(lake, f"collect.landing={work / kind}"))


def run_one(work: Path, kind: str) -> None:
    """Bronze of one landing, in this process; prints one JSON line."""
    shutil.rmtree(work / f"lake-{kind}", ignore_errors=True)
    ctx = context(work, kind)
    started = time.perf_counter()
    with job_run(ctx, "ingest") as run:
        start_bronze(ctx, run, SOURCES[SOURCE], str(work / kind)).wait()
    seconds = time.perf_counter() - started
    totals = (
        ctx.lake.read("ops.ingest_reconciliation")
        .agg(*(F.sum(c).alias(c) for c in ("read", "loaded", "quarantined", "duplicates")))
        .first()
    )
    reasons = ctx.lake.read("bronze.quarantine").groupBy("reason").count().collect()
    landing_mb = sum(p.stat().st_size for p in (work / kind).rglob("*") if p.is_file()) / 2**20
    print(
        json.dumps(
            {
                "landing": kind,
                "MB": round(landing_mb, 1),
                "seconds": round(seconds, 1),
                **(totals.asDict() if totals else {}),
                "reasons": dict(sorted((r["reason"], r["count"]) for r in reasons)),
            }
        ),
        flush=True,
    )


def compare(work: Path) -> None:
    """Rows in one landing's bronze or quarantine and not in the other's."""
    tables: dict[str, tuple[DataFrame, DataFrame]] = {}
    for kind in KINDS:
        lake = context(work, kind).lake
        loaded = lake.read(f"bronze.{SOURCE}").select(
            F.regexp_extract("_source_file", _NAME, 1).alias("file"),
            "_line",
            *SOURCES[SOURCE].field_names,
        )
        bad = lake.read("bronze.quarantine").select(
            F.regexp_extract("file", _NAME, 1).alias("file"), "line", "reason", "raw"
        )
        tables[kind] = (loaded, bad)
    (plain_rows, plain_bad), (gzip_rows, gzip_bad) = tables["plain"], tables["gzip"]
    print(
        f"bronze.{SOURCE}: {plain_rows.exceptAll(gzip_rows).count()} rows only plain, "
        f"{gzip_rows.exceptAll(plain_rows).count()} only gzipped, of {plain_rows.count()}; "
        f"quarantine: {plain_bad.exceptAll(gzip_bad).count()} only plain, "
        f"{gzip_bad.exceptAll(plain_bad).count()} only gzipped, of {plain_bad.count()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("world", nargs="?", help="a generated world's folder")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--one", choices=KINDS, help="(internal) bronze of one landing")
    args = parser.parse_args()
    work = Path(args.workdir).resolve()
    if args.one:
        run_one(work, args.one)
        return
    copy_landing(Path(args.world).resolve(), work)
    for _ in range(args.rounds):
        for kind in KINDS:
            subprocess.run(
                [sys.executable, __file__, "--workdir", str(work), "--one", kind], check=True
            )
    compare(work)


if __name__ == "__main__":
    main()
