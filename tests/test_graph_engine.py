"""Connected components: the native engine against scipy, and GraphFrames when it is there."""

from __future__ import annotations

import numpy as np
import pytest
from chispa import assert_df_equality
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components

from crossdata.identity.engine import (
    ComponentsOptions,
    connected_components,
    graphframes_available,
    native_components,
)


def _scipy_min_labels(edges: list[tuple[int, int]], n: int) -> dict[int, int]:
    src, dst = zip(*edges, strict=True) if edges else ((), ())
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    _, labels = scipy_components(graph, directed=False)
    smallest: dict[int, int] = {}
    for node, label in enumerate(labels):
        smallest.setdefault(int(label), node)
    return {node: smallest[int(label)] for node, label in enumerate(labels)}


def test_two_components_an_isolated_vertex_a_self_loop_and_duplicates(spark):
    edges = spark.createDataFrame(
        [(5, 3), (3, 9), (7, 8), (8, 7), (7, 8), (11, 11), (None, 4)], "src LONG, dst LONG"
    )
    vertices = spark.createDataFrame([(42,), (3,)], "id LONG")
    got = native_components(edges, vertices, ComponentsOptions(engine="native"))
    expected = spark.createDataFrame(
        [(3, 3), (5, 3), (9, 3), (7, 7), (8, 7), (11, 11), (4, 4), (42, 42)],
        "id LONG, component LONG",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.parametrize(("seed", "partition_rows"), [(1, 8_000_000), (2, 60), (3, 400)])
def test_random_graph_matches_scipy_with_checkpoints(spark, seed, partition_rows):
    """Small ``partition_rows`` spreads the graph thin: many partitions, many rounds."""
    rng = np.random.default_rng(seed)
    n = 400
    # A long chain in shuffled order (a worst case for local contraction: each partition sees
    # short pieces of it) plus random sparse edges.
    order = rng.permutation(n)
    edges = [(int(order[i]), int(order[i + 1])) for i in range(0, 150)]
    edges += [tuple(map(int, rng.integers(0, n, 2))) for _ in range(250)]
    df = spark.createDataFrame(edges, "src LONG, dst LONG")
    vertices = spark.range(n).select("id")
    options = ComponentsOptions(
        engine="native", checkpoint_interval=1, partition_rows=partition_rows
    )
    got = native_components(df, vertices, options)
    truth = _scipy_min_labels(edges, n)
    expected = spark.createDataFrame(sorted(truth.items()), "id LONG, component LONG")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_checkpoint_files_land_in_the_configured_dir(spark, loaded):
    from pathlib import Path
    from urllib.parse import urlparse

    chk = Path(urlparse(spark.conf.get("spark.checkpoint.dir")).path)
    before = set(chk.rglob("*")) if chk.exists() else set()
    edges = spark.createDataFrame([(1, 2), (2, 3)], "src LONG, dst LONG")
    native_components(edges, None, ComponentsOptions(checkpoint_interval=1)).collect()
    assert set(chk.rglob("*")) - before, "checkpointing wrote nothing under spark.checkpoint.dir"
    assert str(chk).startswith(str(Path(loaded.settings.spark.checkpoint_dir)))


def test_graphframes_engine_agrees_with_native(spark):
    """The boundary's contract holds for both engines: same input, same ``(id, component)``."""
    ok, why = graphframes_available(spark)
    if not ok:
        pytest.skip(f"GraphFrames jar not in this session: {why}")
    awkward = spark.createDataFrame(
        [(5, 3), (3, 9), (7, 8), (8, 7), (7, 8), (11, 11), (None, 4)], "src LONG, dst LONG"
    )
    rng = np.random.default_rng(4)
    n = 300
    order = rng.permutation(n)
    chain = [(int(order[i]), int(order[i + 1])) for i in range(120)]
    chain += [tuple(map(int, rng.integers(0, n, 2))) for _ in range(150)]
    cases = [
        (awkward, spark.createDataFrame([(42,), (3,)], "id LONG")),
        (spark.createDataFrame(chain, "src LONG, dst LONG"), spark.range(n).select("id")),
    ]
    for edges, vertices in cases:
        options = ComponentsOptions(engine="graphframes", checkpoint_interval=1)
        gf = connected_components(edges, vertices, options)
        native = native_components(edges, vertices)
        assert_df_equality(gf, native, ignore_row_order=True, ignore_nullable=True)


def test_auto_engine_falls_back_to_native_when_graphframes_is_absent(spark):
    edges = spark.createDataFrame([(1, 2)], "src LONG, dst LONG")
    got = connected_components(edges, None, ComponentsOptions(engine="auto"))
    assert sorted(tuple(r) for r in got.collect()) == [(1, 1), (2, 1)]
