"""``crossdata bench identity`` at a tiny size: the table, the agreement, the ratio; and the
accuracy report on a generated world (``--world``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

from crossdata.identity.bench import (
    ACCURACY_COLUMNS,
    COLUMNS,
    WorldAccuracy,
    accuracy_row,
    ensure_world,
    generator_fingerprint,
    run,
    world_settings,
    world_spec,
)
from crossdata.identity.resolve import IdentitySummary
from crossdata.identity.scoring import IdentityScore
from crossdata.world.bench import persons_for


def test_bench_identity_runs_and_agrees_with_scipy(spark, loaded, tmp_path, capsys):
    output = tmp_path / "bench.md"
    args = argparse.Namespace(
        sizes="2k", workdir=str(tmp_path / "work"), output=str(output), warm_up=False
    )
    assert run(args, loaded) == 0

    printed = capsys.readouterr().out
    assert "FAILED" not in printed
    lines = [line for line in printed.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == COLUMNS
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert len(rows) == 1
    row = dict(zip(header, rows[0], strict=True))
    assert row["agree"] == "yes"
    assert row["engine"] in {"native", "graphframes"}
    ratio = re.fullmatch(r"([0-9.]+)x", row["ratio"])
    assert ratio is not None and float(ratio.group(1)) > 0
    assert float(row["Spark s"]) > 0
    assert int(row["components"]) > 1
    # The table is appended to --output as well, and the edge file is kept for the next run.
    assert "| edges | nodes |" in output.read_text()
    assert list((tmp_path / "work").glob("identity-edges-2k-*/*.parquet"))


def test_world_accuracy_scores_the_resolved_world_and_meets_the_floors(resolved_world):
    # world_accuracy(ctx, world.root, ingest=False) on the ingested stage world (conftest.py)
    world, ctx, accuracy = resolved_world

    score = accuracy.score
    assert accuracy.missed_floors() == [], score.describe()
    assert score.true_pairs > 300 and score.reachable_pairs > 150, score.describe()
    assert accuracy.events == world.summary.lines["events"]
    assert accuracy.persons == world.settings.persons and accuracy.days == world.settings.days
    edges = ctx.lake.read("silver.identity_edges").count()
    assert accuracy.summary.evidence_edges == edges
    assert accuracy.ingest_seconds is None and accuracy.identity_seconds > 0

    row = dict(zip(ACCURACY_COLUMNS, accuracy_row(accuracy), strict=True))
    assert row["identifiers scored"] == f"{score.scored_identifiers:,}"
    assert row["identity edges"] == f"{edges:,}"
    assert float(row["precision"]) == round(score.precision, 4)
    assert float(row["reachable recall"]) == round(score.reachable_recall, 4)
    assert row["shared kept apart"] == f"{score.shared_detected}/{score.shared_in_truth}"
    assert row["giant components"] == "0"
    assert row["ingest s"] == "-"
    assert row["floors met"] == "yes"


def test_a_missed_floor_is_named_in_the_row():
    score = IdentityScore(
        scored_identifiers=10,
        true_pairs=100,
        predicted_pairs=100,
        true_positives=99,  # precision 0.99
        shared_in_truth=2,
        shared_detected=1,
        largest_customer=7,
        reachable_pairs=50,
        reachable_found=50,
    )
    summary = IdentitySummary(evidence_edges=30, giant_components=[300, 250])
    accuracy = WorldAccuracy(1000, 10, 2, summary, score, 12.0, 3.0)
    row = dict(zip(ACCURACY_COLUMNS, accuracy_row(accuracy), strict=True))
    assert row["floors met"] == "NO: precision 0.9900 < 0.995"
    assert row["giant components"] == "2 (largest 300)"
    assert row["shared kept apart"] == "1/2"


def test_world_option_parses_sizes_and_reuses_a_world_of_the_same_spec(loaded, tmp_path):
    from crossdata.cli import build_parser

    args = build_parser().parse_args(
        ["bench", "identity", "--world", "200k,1M", "--workdir", str(tmp_path)]
    )
    assert args.world == "200k,1M" and args.sizes is None
    assert args.bench_target == "crossdata.identity.bench:run"

    folder = tmp_path / "identity-world-200k"
    sized = world_settings(loaded, folder, persons_for(200_000), 28)
    w = sized.settings.world
    assert (w.persons, w.days, w.out) == (persons_for(200_000), 28, str(folder / "world"))
    assert sized.settings.collect.landing == w.out
    assert sized.settings.lakehouse.root == str(folder / "lakehouse")
    # A world whose marker holds the same spec is reused as it is: nothing is generated.
    (folder / "world").mkdir(parents=True)
    (folder / "world" / "_bench.json").write_text(json.dumps(world_spec(w)))
    assert ensure_world(None, w) == (folder / "world", None)  # reused: Spark is not touched
    assert world_spec(w) != world_spec(dataclasses.replace(w, seed=w.seed + 1))


def test_a_cached_world_is_stale_when_the_contracts_it_was_written_to_change(tmp_path, monkeypatch):
    import crossdata.contracts

    before = generator_fingerprint()
    changed = tmp_path / "contracts.py"
    text = Path(crossdata.contracts.__file__).read_text(encoding="utf-8")
    changed.write_text(text.replace('".jsonl"', '".ndjson"'), encoding="utf-8")
    assert changed.read_text(encoding="utf-8") != text
    monkeypatch.setattr(crossdata.contracts, "__file__", str(changed))
    assert generator_fingerprint() != before


def test_a_world_with_no_connected_pair_meets_no_floor():
    # Precision and recall read 1.0 on no pairs, only to avoid dividing by zero.
    score = IdentityScore(
        scored_identifiers=40,
        true_pairs=12,
        predicted_pairs=0,
        true_positives=0,
        shared_in_truth=0,
        shared_detected=0,
        largest_customer=1,
    )
    accuracy = WorldAccuracy(500, 10, 2, IdentitySummary(evidence_edges=0), score, None, 1.0)
    assert (score.precision, score.reachable_recall) == (1.0, 1.0)
    row = dict(zip(ACCURACY_COLUMNS, accuracy_row(accuracy), strict=True))
    assert row["floors met"] == "NO: no pair of one person's identifiers is connected by evidence"
