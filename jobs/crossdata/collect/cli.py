"""``crossdata ingest`` and ``crossdata maintain`` (flags fixed by the issue)."""

from __future__ import annotations

import argparse

from crossdata.config import Loaded
from crossdata.contracts import SOURCES


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "ingest",
        help="load new landing files into bronze, then build silver (incremental, exactly once)",
        parents=[common],
    )
    p.add_argument(
        "--source",
        default="all",
        choices=["all", *SOURCES],
        metavar="NAME|all",
        help="one source (" + ", ".join(SOURCES) + ") or all (default)",
    )
    p.add_argument("--input", help="landing folder or URI (collect.landing)")
    p.set_defaults(handler=ingest, extra_overrides=_ingest_overrides)

    m = sub.add_parser("maintain", help="OPTIMIZE and VACUUM crossdata's tables", parents=[common])
    m.add_argument("--table", action="append", help="only this table (repeatable)")
    m.add_argument("--no-vacuum", action="store_true", help="compact only")
    m.set_defaults(handler=maintain)


def _ingest_overrides(args: argparse.Namespace) -> list[str]:
    return [f"collect.landing={args.input}"] if args.input else []


def ingest(args: argparse.Namespace, loaded: Loaded) -> int:
    from crossdata.collect.ingest import preflight, run_ingest
    from crossdata.ops import Context, job_run

    preflight(loaded.settings)  # a missing landing folder stops here, before the session
    ctx = Context.create(loaded)
    sources = None if args.source == "all" else [args.source]
    with job_run(ctx, "ingest") as run:
        summary = run_ingest(ctx, run, sources)
    print(summary.describe())
    return 0


def maintain(args: argparse.Namespace, loaded: Loaded) -> int:
    from crossdata.collect.maintain import run_maintenance
    from crossdata.lakehouse import table
    from crossdata.ops import Context, job_run

    for name in args.table or []:
        table(name)  # an unknown name stops here, before the session starts
    # A retention under Delta's floor is refused by run_maintenance before any table is touched:
    # Delta's switch may come from spark-submit --conf or a Connect server, seen only then.
    ctx = Context.create(loaded)
    with job_run(ctx, "maintain") as run:
        report = run_maintenance(ctx, run, args.table, vacuum=not args.no_vacuum)
    print(report)
    return 0
