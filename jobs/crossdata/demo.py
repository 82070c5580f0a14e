"""``make demo`` / ``crossdata demo``: a sample world through the whole pipeline, then a tour.

1. Generate a small sample world into ``world.out`` (reused when the same world is there).
2. Run every pipeline stage on it (``pipeline run``: each stage one job in ``ops.job_runs``).
3. Score the stages against the world's ground truth and log the scores to MLflow.
4. Print every output table with its row count, and how to look at it.

Everything stays local: Spark ``local[2]``, Delta tables under ``lakehouse.root``, MLflow in
the sqlite store of ``mlflow.tracking_uri``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

from crossdata.config import Loaded
from crossdata.errors import CrossdataError
from crossdata.tracking import SERVER_SCHEMES, safe_uri

log = logging.getLogger(__name__)

DEMO_PERSONS = 300
DEMO_DAYS = 14


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "demo",
        help="generate a sample world, run the whole pipeline on it, show the outputs",
        parents=[common],
    )
    p.add_argument("--persons", type=int, help=f"people in the world (default {DEMO_PERSONS})")
    p.add_argument("--days", type=int, help=f"days in the world (default {DEMO_DAYS})")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="delete the demo world and lakehouse first (local folders only)",
    )
    p.set_defaults(handler=demo, extra_overrides=_overrides)


def _overrides(args: argparse.Namespace) -> list[str]:
    """The demo's own world size, below what the user asked for.

    A flag wins; then ``--set world.persons=...``; the demo's small world only when neither was
    given (base.yaml's world sizes are for ``crossdata generate``).
    """
    given = {o.split("=", 1)[0].strip() for o in getattr(args, "overrides", [])}
    sizes = []
    for key, flag, default in (
        ("world.persons", args.persons, DEMO_PERSONS),
        ("world.days", args.days, DEMO_DAYS),
    ):
        if flag is not None:
            sizes.append(f"{key}={flag}")
        elif key not in given:
            sizes.append(f"{key}={default}")
    return sizes


def _local(uri: str) -> Path | None:
    if "://" in uri and not uri.startswith("file:"):
        return None
    return Path(uri.removeprefix("file://").removeprefix("file:")).expanduser().resolve()


def fresh_folders(settings) -> list[Path]:
    """What ``--fresh`` deletes: the world, the lakehouse, and the stream checkpoints when
    collect.checkpoint_dir puts them outside the lakehouse (kept, they would count the new
    world's files, named as the old one's, as read)."""
    from crossdata.collect.ingest import checkpoint_root

    folders = [_local(settings.world.out), _local(settings.lakehouse.root)]
    checkpoints = _local(checkpoint_root(settings))
    lake = folders[1]
    if checkpoints is not None and lake is not None and not checkpoints.is_relative_to(lake):
        folders.append(checkpoints)
    return [f for f in folders if f is not None]


def _same_world(out: Path, settings) -> bool:
    """Whether ``out`` already holds the world these settings describe."""
    meta = out / "_truth" / "world.json"
    if not meta.is_file():
        return False
    found = json.loads(meta.read_text(encoding="utf-8"))
    w = settings.world
    wanted = {
        "persons": w.persons,
        "days": w.days,
        "seed": w.seed,
        "fault_rate": w.fault_rate,
        "start_date": str(w.start_date),
    }
    return all(str(found.get(k)) == str(v) for k, v in wanted.items())


def demo(args: argparse.Namespace, loaded: Loaded) -> int:
    s = loaded.settings
    world_dir = _local(s.world.out)
    lake_dir = _local(s.lakehouse.root)
    if world_dir is None or lake_dir is None:
        raise CrossdataError("the demo runs on local folders: world.out and lakehouse.root")
    if _local(s.collect.landing) != world_dir:
        raise CrossdataError(
            f"the demo ingests the world it generates: collect.landing ({s.collect.landing}) "
            f"must be world.out ({s.world.out})"
        )
    if args.fresh:
        for folder in fresh_folders(s):
            if folder.exists():
                print(f"demo: removing {folder}")
                shutil.rmtree(folder)
    reuse = _same_world(world_dir, s)
    if not reuse and any((lake_dir / layer).exists() for layer in ("bronze", "silver", "gold")):
        raise CrossdataError(
            f"{lake_dir} holds tables from another world; run `crossdata demo --fresh` "
            "(or `make clean`) to start over"
        )

    from crossdata.ops import Context, job_run
    from crossdata.pipeline import STAGES, run_pipeline

    ctx = Context.create(loaded)
    print(f"demo: step 1/4 sample world ({s.world.persons} persons x {s.world.days} days)")
    if reuse:
        print(f"demo:   reusing the world already in {world_dir}")
    else:
        from crossdata.world.generate import generate_world

        with job_run(ctx, "generate") as run:
            print("demo:   " + generate_world(ctx.spark, s.world, run).describe())

    names = ", ".join(stage.name for stage in STAGES)
    print(f"demo: step 2/4 pipeline ({names})")
    run_pipeline(ctx)

    print("demo: step 3/4 scores against the world's truth")
    scores = score(ctx, world_dir)
    for line in scores.lines:
        print("demo:   " + line)
    run_url = log_scores(loaded, scores.metrics)
    print(f"demo:   logged to MLflow run {run_url}")

    print("demo: step 4/4 outputs")
    print(tour(ctx, loaded, world_dir))
    return 0


class Scores:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.metrics: dict[str, float] = {}


def score(ctx, world_dir: Path) -> Scores:
    """Ingestion and identity scores against the world's ground truth."""
    from crossdata.collect.scoring import score_ingestion
    from crossdata.identity.scoring import score_identity

    out = Scores()
    ing = score_ingestion(ctx.spark, ctx.lake, str(world_dir))
    out.lines.append(
        f"collect: {ing.read} records read, {ing.quarantined} quarantined "
        f"({ing.bad_records} bad in the truth; missed {ing.missed}, unexpected "
        f"{ing.unexpected}, wrong reason {ing.wrong_reason}); unreconciled files "
        f"{ing.unreconciled_files}; redelivered files caught {ing.duplicate_files}/"
        f"{ing.redelivered_files}"
    )
    out.metrics.update(
        {
            "collect_records_read": ing.read,
            "collect_quarantined": ing.quarantined,
            "collect_quarantine_missed": ing.missed,
            "collect_quarantine_unexpected": ing.unexpected,
            "collect_unreconciled_files": ing.unreconciled_files,
        }
    )
    truth = ctx.spark.read.option("header", True).csv(str(world_dir / "_truth" / "identifiers"))
    ident = score_identity(
        ctx.lake.read("gold.identity_map"), truth, ctx.lake.read("silver.identity_edges")
    )
    out.lines.append("identity: " + ident.describe())
    out.metrics.update(
        {
            "identity_precision": ident.precision,
            "identity_reachable_recall": ident.reachable_recall,
            "identity_raw_recall": ident.recall,
            "identity_largest_customer": ident.largest_customer,
        }
    )
    return out


def log_scores(loaded: Loaded, metrics: dict[str, float]) -> str:
    """One MLflow run in the configured experiment holding the demo's scores."""
    import mlflow

    from crossdata.tracking import use_experiment

    s = loaded.settings
    experiment = use_experiment(s.mlflow)
    with mlflow.start_run(experiment_id=experiment, run_name="demo") as active:
        w = s.world
        mlflow.log_params({"world.persons": w.persons, "world.days": w.days, "world.seed": w.seed})
        mlflow.log_metrics(metrics)
        return f"{active.info.run_id} (experiment {s.mlflow.experiment!r})"


def _mlflow_hint(loaded: Loaded) -> str:
    """How to open the runs: the UI over a local store, or the tracking server's address;
    a value from the environment is never printed (it may hold a credential)."""
    uri = loaded.settings.mlflow.tracking_uri
    if uri.startswith(SERVER_SCHEMES):
        hint = f"open {uri}"
    else:
        hint = f"mlflow ui --backend-store-uri {uri}"
    # A credential in the address: hidden whether written in conf or read from the environment.
    return loaded.redact(safe_uri(hint))


def tour(ctx, loaded: Loaded, world_dir: Path) -> str:
    """Where every output is and how to look at it."""
    from crossdata.lakehouse.tables import TABLES

    s = loaded.settings
    lines = [f"  world (raw landing files and ground truth): {world_dir}"]
    lines.append(f"  lakehouse (Delta tables, <root>/<layer>/<table>): {s.lakehouse.root}")
    for name in sorted(TABLES):
        if ctx.lake.exists(name):
            rows = ctx.lake.read(name).count()  # a count per table, no rows to the driver
            lines.append(f"    {name:<32} {rows:>10,} rows  {ctx.lake.path(name)}")
    lines += [
        f"  MLflow: {_mlflow_hint(loaded)}",
        "  Look at the tables from Python (the catalog is per session, so register them first):",
        "    from crossdata.config import load_settings",
        "    from crossdata.ops import Context",
        "    ctx = Context.create(load_settings())",
        "    ctx.lake.register_all()",
        '    ctx.spark.sql("SELECT * FROM gold.customer_golden LIMIT 10").show()',
        "  or from the command line:",
        "    .venv/bin/crossdata config show    # the effective configuration",
        "    .venv/bin/crossdata identity resolve --edges pairs.csv --out out/  # your own pairs",
    ]
    return "\n".join(lines)


def main() -> int:
    from crossdata.cli import main as cli_main

    return cli_main(["demo", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
