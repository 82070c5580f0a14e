"""One local Spark session for the whole suite, on a throw-away lakehouse."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossdata.config import Loaded, load_settings

from .helpers import INTERPRETED, NOT_ADAPTIVE

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def make_settings(tmp: Path, *extra: str) -> Loaded:
    """The local profile pointed at ``tmp`` (lakehouse, checkpoints, MLflow), plus overrides."""
    return load_settings(
        profile="local",
        conf_dir=CONF_DIR,
        overrides=[
            f"lakehouse.root={tmp / 'lakehouse'}",
            f"spark.checkpoint_dir={tmp / 'checkpoints'}",
            f"spark.jars.cache_dir={REPO / '.cache' / 'jars'}",
            "spark.shuffle_partitions=2",
            f"mlflow.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
            f"mlflow.artifact_location={tmp / 'mlartifacts'}",
            *extra,
        ],
    )


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("crossdata")


@pytest.fixture(scope="session")
def loaded(session_dir: Path) -> Loaded:
    return make_settings(session_dir)


@pytest.fixture(scope="session")
def spark(loaded: Loaded) -> Iterator:
    from crossdata.spark import get_spark

    session = get_spark(loaded.settings)
    session.sparkContext.setLogLevel("ERROR")
    for key, value in {**INTERPRETED, **NOT_ADAPTIVE}.items():  # see helpers.py
        session.conf.set(key, value)
    yield session
    session.stop()


@pytest.fixture
def lake(spark, tmp_path: Path):
    """A fresh, empty lakehouse for one test (shares the session)."""
    from crossdata.lakehouse import Lakehouse

    return Lakehouse(spark, str(tmp_path / "lakehouse"))


@pytest.fixture
def ctx(spark, tmp_path: Path):
    """A job context on a fresh lakehouse."""
    from crossdata.ops import Context

    return Context.create(make_settings(tmp_path), spark=spark)


# The stage tests' world: small, with every fault (also profiled by infra/profile).
STAGE_WORLD = (
    "world.persons=150",
    "world.days=6",
    "world.seed=5",
    "world.fault_rate=0.04",
    "world.lines_per_file=1500",
)


@pytest.fixture(scope="session")
def ingested_world(spark, tmp_path_factory: pytest.TempPathFactory):
    """A generated world with faults, ingested once; stage tests score against its truth."""
    from crossdata.collect.ingest import run_ingest
    from crossdata.ops import Context, job_run

    from .world.conftest import make_world

    folder = tmp_path_factory.mktemp("stage")
    world = make_world(spark, folder, *STAGE_WORLD)
    ctx = Context.create(make_settings(folder, f"collect.landing={world.root}"), spark=spark)
    with job_run(ctx, "ingest") as run:
        summary = run_ingest(ctx, run)
    return world, ctx, summary


@pytest.fixture(scope="session")
def resolved_world(ingested_world):
    """``ingested_world`` after one run of the identity job, scored against its truth.

    The identity job and the scoring are the costly part of the stage tests: they run once,
    through the same function ``crossdata bench identity --world`` reports with. The identity
    tests score it; the notebook test reads its gold tables.
    """
    from crossdata.identity.bench import world_accuracy

    world, ctx, _ = ingested_world
    return world, ctx, world_accuracy(ctx, world.root, ingest=False)
