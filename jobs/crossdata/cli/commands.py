"""The sub-commands: each parses its flags and calls one function of the package.

Handlers import their stage lazily so ``crossdata --help`` and ``config show`` stay quick and
start no JVM.
"""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from crossdata.bench import sizes_argument
from crossdata.config import Loaded


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add every sub-command to the parser."""
    from crossdata.collect.cli import register as register_collect
    from crossdata.demo import register as register_demo
    from crossdata.identity.cli import register as register_identity
    from crossdata.world.cli import register as register_world

    _config(sub, common)
    _doctor(sub, common)
    _pipeline(sub, common)
    register_world(sub, common)
    register_collect(sub, common)
    register_identity(sub, common)
    register_demo(sub, common)
    _bench(sub, common)


# -- config ------------------------------------------------------------------------------------
def _config(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("config", help="inspect the effective configuration", parents=[common])
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = csub.add_parser(
        "show",
        help="print the effective config (values from the environment masked)",
        parents=[common],
    )
    show.add_argument("--format", choices=["yaml", "json"], default="yaml")
    show.add_argument("--origins", action="store_true", help="also say where each value came from")
    show.set_defaults(handler=config_show)


def config_show(args: argparse.Namespace, loaded: Loaded) -> int:
    data = loaded.masked()
    header = f"# profile={loaded.profile} conf_dir={loaded.conf_dir} hash={loaded.fingerprint()}"
    if args.format == "json":
        # One JSON document: the origins, when asked for, go in it rather than after it.
        doc = {"settings": data, "origins": dict(sorted(loaded.origins.items()))}
        print(json.dumps(doc if args.origins else data, indent=2, sort_keys=False, default=str))
        return 0
    print(header)
    print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())
    if args.origins:
        print("# origins", file=sys.stdout)
        for key in sorted(loaded.origins):
            print(f"#   {key}: {loaded.origins[key]}")
    return 0


# -- doctor ------------------------------------------------------------------------------------
def _doctor(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "doctor",
        help="check Java, Spark, Delta, GraphFrames, MLflow, jar cache and lakehouse",
        parents=[common],
    )
    p.add_argument("--no-spark", action="store_true", help="skip the checks that start Spark")
    p.set_defaults(handler=doctor)


def doctor(args: argparse.Namespace, loaded: Loaded) -> int:
    from crossdata.doctor import run_doctor

    return run_doctor(loaded, with_spark=not args.no_spark)


# -- pipeline ----------------------------------------------------------------------------------
def _pipeline(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("pipeline", help="run the stages in order", parents=[common])
    psub = p.add_subparsers(dest="pipeline_command", metavar="ACTION", required=True)
    run = psub.add_parser("run", help="run every stage in order", parents=[common])
    run.add_argument(
        "--stages", help="comma-separated subset of stages to run (default: all, in order)"
    )
    run.set_defaults(handler=pipeline_run)


def pipeline_run(args: argparse.Namespace, loaded: Loaded) -> int:
    from crossdata.ops import Context
    from crossdata.pipeline import preflight, run_pipeline

    stages = [s.strip() for s in args.stages.split(",")] if args.stages else None
    preflight(loaded.settings, stages)  # unknown stages, missing inputs: before the session
    ctx = Context.create(loaded)
    run_pipeline(ctx, stages)
    return 0


# -- bench -------------------------------------------------------------------------------------
BENCHMARKS = {
    # name -> (module:function, help); each prints a table with ratios against a reference
    # measured in the same run. Heavy: never part of `make test`.
    "generate": ("crossdata.world.bench:run", "generation speed of the sample world"),
    "ingest": ("crossdata.collect.bench:run", "raw -> bronze -> silver against a plain copy"),
    "identity": (
        "crossdata.identity.bench:run",
        "connected components against scipy; --world: accuracy on a generated world",
    ),
}


def _bench(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("bench", help="benchmarks (opt-in, heavy)", parents=[common])
    bsub = p.add_subparsers(dest="bench_name", metavar="NAME", required=True)
    for name, (target, text) in BENCHMARKS.items():
        b = bsub.add_parser(name, help=text, parents=[common])
        b.add_argument(
            "--sizes",
            default=None,
            type=sizes_argument,
            help="comma-separated sizes, e.g. 1M,10M (benchmark default)",
        )
        b.add_argument("--workdir", default=".cache/bench", help="scratch folder for the runs")
        b.add_argument("--output", default=None, help="also append the table to this markdown file")
        if name == "identity":
            b.add_argument(
                "--world",
                default=None,
                type=sizes_argument,
                metavar="EVENTS",
                help="score identity resolution on generated worlds of about EVENTS site/app "
                "events each, e.g. 200k,1M: generate (or reuse), ingest every source, resolve, "
                "score against the truth (the edge timings then run only with --sizes)",
            )
        b.set_defaults(handler=bench, bench_target=target)


def bench(args: argparse.Namespace, loaded: Loaded) -> int:
    import importlib

    module, _, func = args.bench_target.partition(":")
    runner = getattr(importlib.import_module(module), func)
    return int(runner(args, loaded) or 0)
