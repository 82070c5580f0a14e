"""``crossdata bench ingest`` at a tiny size: the table is whole and agrees with the world."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest

from crossdata.bench import human
from crossdata.collect import bench
from crossdata.config import load_settings
from crossdata.errors import CrossdataError

from ..conftest import CONF_DIR, make_settings


def test_overrides_are_handed_on_to_the_child_as_given(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BENCH_TEST_SECRET", "s3cr3t")
    loaded = make_settings(
        tmp_path,
        "collect.max_files_per_trigger=7",
        "collect.sources=[events, orders]",
        "spark.conf={spark.sql.ansi.enabled: 'true'}",
        "mlflow.registry_uri=${env:BENCH_TEST_SECRET}",
    )
    handed = bench.cli_overrides(loaded)
    assert not any("s3cr3t" in o for o in handed)  # the template, never the value
    again = load_settings(profile="local", conf_dir=CONF_DIR, overrides=handed)
    assert again.settings == loaded.settings


def _table(markdown: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return cells[0], cells[2:]


@pytest.mark.slow
def test_bench_ingest_at_a_tiny_size(tmp_path: Path) -> None:
    # One micro-batch per stream keeps the run short; the setting must reach the child.
    loaded = make_settings(
        tmp_path, "collect.max_bytes_per_trigger=null", "collect.max_files_per_trigger=1000"
    )
    output = tmp_path / "bench.md"
    workdir = tmp_path / "bench"
    args = argparse.Namespace(sizes="5k", workdir=str(workdir), output=str(output), keep=True)

    assert bench.run(args, loaded) == 0

    head, rows = _table(output.read_text(encoding="utf-8"))
    assert head == bench.COLUMNS
    assert len(rows) == 1
    row = dict(zip(head, rows[0], strict=True))

    def number(column: str) -> int:
        return int(row[column].replace(",", ""))

    folder = bench.size_folder(workdir, 5000)
    with (folder / "world" / "_truth" / "manifest.csv").open(encoding="utf-8") as fh:
        files = [r for r in csv.DictReader(fh) if r["source"] == "events"]
    originals = sum(int(r["lines"]) for r in files if r["kind"] == "original")
    copies = sum(int(r["lines"]) for r in files if r["kind"] != "original")
    assert copies > 0  # the world redelivers some files

    assert row["events"] == human(originals)
    assert number("files") == len(files)
    # Every landing line of every events file is in bronze, in quarantine, or in a copy.
    assert number("bronze rows") + number("quarantined") + number("duplicates") == (
        originals + copies
    )
    assert number("duplicates") == copies
    assert number("quarantined") > 0
    assert 0 < number("silver rows") <= number("bronze rows")
    for column in ("bronze ratio", "silver ratio"):
        assert row[column].endswith("x")
        assert float(row[column].removesuffix("x")) > 0
    assert float(row["bronze events/s"].rstrip("kM")) > 0

    result = json.loads((folder / bench.RESULT).read_text(encoding="utf-8"))
    assert result["max_files_per_trigger"] == 1000
    assert result["bronze_batches"] == 1
    assert result["read"] == originals + copies
    assert result["sessions"] > 0
    assert result["reference_before_s"] > 0 and result["reference_after_s"] > 0
    assert result["driver_rss_mb"] > 0 and result["jvm_rss_mb"] > 0


def test_a_child_that_stops_on_an_error_hands_it_on_in_one_line(tmp_path: Path, capfd) -> None:
    # No jars where the cache should be: the child stops before Spark starts, as a job would.
    empty = tmp_path / "no-jars"
    empty.mkdir()
    loaded = make_settings(tmp_path, f"spark.jars.cache_dir={empty}")
    output = tmp_path / "bench.md"
    args = argparse.Namespace(sizes="5k", workdir=str(tmp_path / "bench"), output=str(output))
    with pytest.raises(CrossdataError, match=r"^bench ingest size=5000: jar cache") as caught:
        bench.run(args, loaded)
    assert caught.value.exit_code == 3  # the child's EnvironmentProblem, not a bare failure
    assert "Traceback" not in capfd.readouterr().err
    assert not output.exists()  # no size was measured: no table
