"""``crossdata generate``: the sample world's command line (flags fixed by the issue)."""

from __future__ import annotations

import argparse

from crossdata.config import Loaded


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "generate",
        help="write a sample world's raw landing files and its ground truth",
        parents=[common],
    )
    p.add_argument("--persons", type=int, help="number of people (world.persons)")
    p.add_argument("--days", type=int, help="number of days (world.days)")
    p.add_argument("--start-date", help="first day, YYYY-MM-DD (world.start_date)")
    p.add_argument("--seed", type=int, help="random seed (world.seed)")
    p.add_argument("--out", help="output folder (world.out)")
    p.add_argument("--fault-rate", type=float, help="share of faulty records (world.fault_rate)")
    p.set_defaults(handler=generate, extra_overrides=_overrides)


def _overrides(args: argparse.Namespace) -> list[str]:
    """Flags become --set overrides, so they are validated like any other setting."""
    pairs = {
        "persons": args.persons,
        "days": args.days,
        "start_date": args.start_date,
        "seed": args.seed,
        "out": args.out,
        "fault_rate": args.fault_rate,
    }
    return [f"world.{k}={v}" for k, v in pairs.items() if v is not None]


def generate(args: argparse.Namespace, loaded: Loaded) -> int:
    from crossdata.errors import ConfigError
    from crossdata.ops import Context, job_run
    from crossdata.world.generate import generate_world
    from crossdata.world.model import date_problem

    settings = loaded.settings
    problem = date_problem(settings.world, settings.collect.min_timestamp_utc)
    if problem:  # before Spark starts
        raise ConfigError(f"world.{problem}")
    ctx = Context.create(loaded)
    with job_run(ctx, "generate") as run:
        summary = generate_world(ctx.spark, loaded.settings.world, run)
    print(summary.describe())
    return 0
