"""Small generated worlds, each made once and shared by the world tests."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crossdata.config.schema import WorldSettings
from crossdata.ops.runs import JobRun
from crossdata.world import generate
from crossdata.world.generate import Summary

from ..conftest import make_settings


@dataclass(frozen=True)
class World:
    root: Path
    settings: WorldSettings
    summary: Summary

    def truth(self, table: str) -> list[dict[str, str]]:
        """A truth table's rows (all parts of a folder, or the single file)."""
        folder = self.root / "_truth" / table
        paths = (
            sorted(folder.glob("part-*.csv")) if folder.is_dir() else [folder.with_suffix(".csv")]
        )
        rows: list[dict[str, str]] = []
        for path in paths:
            with path.open(encoding="utf-8", newline="") as fh:
                rows += list(csv.DictReader(fh))
        return rows

    def files(self) -> dict[str, bytes]:
        """Every file the generator wrote, by path relative to the root."""
        return {
            p.relative_to(self.root).as_posix(): p.read_bytes()
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }


def make_world(spark, folder: Path, *overrides: str, task_size: int | None = None) -> World:
    loaded = make_settings(folder, f"world.out={folder / 'world'}", *overrides)
    run = JobRun("test", "generate", dt.datetime.now(dt.UTC))
    saved = generate.PERSON_DAYS_PER_PARTITION
    if task_size is not None:
        generate.PERSON_DAYS_PER_PARTITION = task_size
    try:
        summary = generate.generate_world(spark, loaded.settings.world, run)
    finally:
        generate.PERSON_DAYS_PER_PARTITION = saved
    return World(folder / "world", loaded.settings.world, summary)


MAIN = ("world.persons=200", "world.days=7", "world.seed=7", "world.fault_rate=0.08")
SMALL = ("world.persons=60", "world.days=4", "world.fault_rate=0.05")


@pytest.fixture(scope="package")
def world(spark, tmp_path_factory: pytest.TempPathFactory) -> World:
    """200 people over 7 days, 8% faults, small files (several shards per day)."""
    return make_world(spark, tmp_path_factory.mktemp("main"), *MAIN, "world.lines_per_file=500")


@pytest.fixture(scope="package")
def twins(spark, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, World]]:
    """The same small world twice, split over very different numbers of Spark partitions."""
    a = make_world(spark, tmp_path_factory.mktemp("twin_a"), *SMALL, "world.seed=11")
    b = make_world(spark, tmp_path_factory.mktemp("twin_b"), *SMALL, "world.seed=11", task_size=28)
    yield a, b


@pytest.fixture(scope="package")
def other_seed(spark, tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(spark, tmp_path_factory.mktemp("other_seed"), *SMALL, "world.seed=12")


@pytest.fixture(scope="package")
def clean_world(spark, tmp_path_factory: pytest.TempPathFactory) -> World:
    """No faults at all: fault_rate=0."""
    return make_world(
        spark,
        tmp_path_factory.mktemp("clean"),
        "world.persons=60",
        "world.days=4",
        "world.seed=11",
        "world.fault_rate=0",
        "world.access_log_format=combined",
    )
