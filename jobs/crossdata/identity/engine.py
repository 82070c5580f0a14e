"""Connected components behind one boundary: GraphFrames when its jar is there, else native.

Both engines take an edge list of longs ``(src, dst)`` and return ``(id, component)`` where
``component`` is the smallest id in the component.

The native engine contracts the graph in rounds. Each round routes every edge to the
partitions of both its endpoints, solves each partition's subgraph exactly with scipy's
connected components inside ``mapInArrow``, and keeps one star per local component; rounds stop
when every partition finds its input already made of finished stars, or after the first round
when the whole graph fits one partition (it is then solved exactly at once). A round subsumes a
large-star plus small-star step of the algorithm GraphFrames runs by default (Kiveris et al.,
"Connected Components in MapReduce and Beyond", SoCC 2014), so it needs no more rounds and in
practice far fewer. Memory is bounded per partition (``partition_rows``), the driver holds two
numbers per round, and the lineage is cut every round. DataFrame API only: it runs over Spark
Connect too.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pyspark.sql import functions as F

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
Engine = Literal["auto", "graphframes", "native"]


@dataclass(frozen=True)
class ComponentsOptions:
    engine: Engine = "auto"
    checkpoint_interval: int = 2  # rounds between reliable checkpoints (0: local only)
    max_iterations: int = 100
    graphframes_algorithm: Literal["two_phase", "graphx", "graphframes"] = "two_phase"
    broadcast_threshold: int = 1_000_000  # GraphFrames' skew handling for high-degree nodes
    partition_rows: int = 16_000_000  # native: edge rows one worker solves in memory at once


# Per session: a session's classpath is fixed when it starts, and the probe runs a Spark job.
_PROBED: weakref.WeakKeyDictionary[SparkSession, tuple[bool, str]] = weakref.WeakKeyDictionary()


def graphframes_available(spark: SparkSession) -> tuple[bool, str]:
    """Whether GraphFrames runs in this session: (ok, what was found or why not)."""
    if spark not in _PROBED:
        _PROBED[spark] = ok, why = _probe_graphframes(spark)
        # Said once per session, not at every call of the engine.
        if ok:
            log.info("graph engine: graphframes (%s)", why)
        else:
            log.warning("graph engine: graphframes unavailable (%s)", why)
    return _PROBED[spark]


def _probe_graphframes(spark: SparkSession) -> tuple[bool, str]:
    try:
        from graphframes import GraphFrame
    except ImportError:
        return False, "graphframes-py is not installed"
    try:
        vertices = spark.createDataFrame([(1,), (2,)], "id LONG")
        edges = spark.createDataFrame([(1, 2)], "src LONG, dst LONG")
        GraphFrame(vertices, edges).inDegrees.count()
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        return False, f"jar not on the classpath ({first}); the native engine is used"
    return True, "jar loaded"


def connected_components(
    edges: DataFrame,
    vertices: DataFrame | None = None,
    options: ComponentsOptions | None = None,
) -> DataFrame:
    """``(id, component)`` for every vertex: component = the smallest id it is connected to.

    ``edges`` has long columns ``src, dst`` (direction ignored); ``vertices`` (column ``id``)
    adds isolated vertices. This triggers Spark jobs (one per round).
    """
    opts = options or ComponentsOptions()
    spark = edges.sparkSession
    engine = opts.engine
    if engine == "auto":
        engine = "graphframes" if graphframes_available(spark)[0] else "native"
    if engine == "graphframes":
        return _graphframes_components(edges, vertices, opts)
    return native_components(edges, vertices, opts)


def _graphframes_components(
    edges: DataFrame, vertices: DataFrame | None, opts: ComponentsOptions
) -> DataFrame:
    from graphframes import GraphFrame

    pairs = edges.select(F.col("src").cast("long"), F.col("dst").cast("long"))
    ids = pairs.select(F.col("src").alias("id")).union(pairs.select(F.col("dst")))
    if vertices is not None:
        ids = ids.union(vertices.select(F.col("id").cast("long")))
    # As in the native engine: a null end is no vertex, and the other end of its row still is.
    ids = ids.where(F.col("id").isNotNull()).distinct()
    edge_list = pairs.where(F.col("src").isNotNull() & F.col("dst").isNotNull())
    graph = GraphFrame(ids, edge_list)
    result = graph.connectedComponents(
        algorithm=opts.graphframes_algorithm,
        checkpointInterval=opts.checkpoint_interval,
        broadcastThreshold=opts.broadcast_threshold,
    )
    return result.select("id", result["component"].cast("long").alias("component"))


# -- native engine -----------------------------------------------------------------------------
# Each round sends every edge to the partitions of both its endpoints (so a partition holds the
# whole neighbourhood of each node hashed to it, its "own" nodes), solves the partition's
# subgraph exactly with scipy's connected components, and emits a star per local component:
# (node, smallest node of its local component). Connectivity is kept (every edge is in some
# partition and each local component becomes a star over the same nodes) and labels only
# decrease. A node's several labels meet in its own partition next round, and a chain
# x -> v -> w meets in v's partition, so one round does at least what a large-star plus a
# small-star step of Kiveris et al. does, and usually far more: every path a partition sees is
# collapsed, not just one hop.
#
# A node that is not the partition's own, and whose only rows here are the edge (z, R) with R
# its local root, is not emitted: that same edge also went to z's own partition, whose
# component holds both z and R and links them there. Without this rule every edge of a finished
# star would come back twice (from the child's partition and from the root's).
#
# Fixed point: a partition's output equals its input exactly when every input edge (u, v) has
# v = the local root of u; once every partition says so the edges form one star per component,
# rooted at its smallest id, and the engine stops without spending an extra round to see it.
_ROUND_SCHEMA = "u long, v long, changed boolean"
_OUT_ROWS = 1 << 20  # rows per emitted Arrow batch
_ARROW_BATCH_ROWS = 200_000  # rows per Arrow batch sent to the workers


def _star_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """One partition's subgraph, solved: its local components as stars (runs in the workers).

    Input rows ``(own_u, u, v)`` with ``u > v``: ``own_u`` tells which endpoint the row was
    routed by (the partition's own node). Output ``(u, v, changed)`` with ``v`` the local root,
    and ``(r, r, changed)`` for each own node that is a local root: once the rounds stop, the
    output holds every node exactly once, roots included, and is the answer as it stands.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as scipy_cc

    owns, us, vs = [], [], []
    for batch in batches:
        owns.append(batch.column(0).to_numpy(zero_copy_only=False))
        us.append(batch.column(1).to_numpy(zero_copy_only=False))
        vs.append(batch.column(2).to_numpy(zero_copy_only=False))
    m = sum(len(x) for x in us)
    if m == 0:
        return
    own_u = np.concatenate(owns)
    v = np.concatenate(vs)
    # Dense positions by hashing (pandas.factorize: about twice as fast as a sort here).
    codes, nodes = pd.factorize(np.concatenate([np.concatenate(us), v]), sort=False)
    del owns, us, vs
    n = len(nodes)
    if n < 2**31:  # scipy's own index type: no conversion copy
        codes = codes.astype(np.int32)
    ui, vi = codes[:m], codes[m:]
    graph = coo_matrix((np.ones(m, dtype=bool), (ui, vi)), shape=(n, n)).tocsr()
    count, labels = scipy_cc(graph, directed=False)
    del graph, codes
    smallest = np.full(count, np.iinfo(np.int64).max)
    np.minimum.at(smallest, labels, nodes)
    root = smallest[labels]  # each node's local root (its local component's smallest id)
    stale = root[ui] != v  # rows whose label is not (yet) the local root
    changed = bool(stale.any())
    # Which nodes to emit: not roots, and not a foreign node whose rows all say (z, root).
    own = np.zeros(n, dtype=bool)
    own[ui[own_u]] = True
    own[vi[~own_u]] = True
    redundant = ~own
    redundant[vi] = False  # a label: its own link is not among these rows
    redundant[ui[stale]] = False
    is_root = root == nodes
    keep = np.flatnonzero((~is_root & ~redundant) | (is_root & own))
    out_u = nodes[keep]
    out_v = root[keep]
    for at in range(0, len(keep), _OUT_ROWS):
        part_u = out_u[at : at + _OUT_ROWS]
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(part_u),
                pa.array(out_v[at : at + _OUT_ROWS]),
                pa.array(np.full(len(part_u), changed)),
            ],
            names=["u", "v", "changed"],
        )


def _round_partitions(edges: int, opts: ComponentsOptions) -> int:
    # Each edge travels twice (to both endpoints); a partition's rows must fit one worker. As
    # few partitions as that allows: the more of the graph a partition sees, the fewer rounds,
    # and a graph that fits one partition is solved exactly in a single round. Keeping every
    # core busy does not pay: on 2 cores, 4M random edges took 19.1 s in 2 partitions and 6.3 s
    # in one (docs/bench-identity.md).
    return max(1, math.ceil(2 * edges / opts.partition_rows))


def native_components(
    edges: DataFrame,
    vertices: DataFrame | None = None,
    options: ComponentsOptions | None = None,
) -> DataFrame:
    """Rounds of partition-local exact components until the edges are one star per component."""
    opts = options or ComponentsOptions()
    spark = edges.sparkSession
    src, dst = F.col("src").cast("long"), F.col("dst").cast("long")
    is_edge = F.coalesce(src != dst, F.lit(False))  # both ends known and different
    counts = edges.agg(F.count_if(is_edge), F.count_if(~is_edge)).first()
    size, ends_count = (int(counts[0]), int(counts[1])) if counts is not None else (0, 0)
    e = edges.where(is_edge).select(F.greatest(src, dst).alias("u"), F.least(src, dst).alias("v"))
    # Large Arrow batches: a partition is gathered whole anyway, and Spark's default of 10k
    # rows a batch costs about a quarter of a round in per-batch overhead.
    batch_conf = "spark.sql.execution.arrow.maxRecordsPerBatch"
    batch_before = spark.conf.get(batch_conf, None)
    spark.conf.set(batch_conf, str(_ARROW_BATCH_ROWS))
    try:
        stars = _contract(e, size, opts)
    finally:
        if batch_before is None:
            spark.conf.unset(batch_conf)
        else:
            spark.conf.set(batch_conf, batch_before)
    # One row per node of an edge: (node, smallest id of its component), roots included. Add
    # isolated vertices, self-loops and the known end of a half-null edge, labelled themselves.
    labels = stars.select(F.col("u").alias("id"), F.col("v").alias("component"))
    if vertices is None and ends_count == 0:
        return labels
    ends = edges.where(~is_edge).select(F.coalesce(src, dst).alias("id"))
    if vertices is not None:
        ends = ends.union(vertices.select(F.col("id").cast("long")))
    alone = ends.where(F.col("id").isNotNull()).join(labels, "id", "left_anti").distinct()
    return labels.unionByName(alone.select("id", F.col("id").alias("component")))


def _contract(e: DataFrame, size: int, opts: ComponentsOptions) -> DataFrame:
    """The rounds: edges ``(u, v)`` with u > v in; the final stars out, with ``(r, r)`` rows."""
    for iteration in range(1, opts.max_iterations + 1):
        both = e.select(
            F.explode(
                F.array(
                    F.struct(F.lit(True).alias("own_u"), "u", "v"),
                    F.struct(F.lit(False).alias("own_u"), "u", "v"),
                )
            ).alias("x")
        ).select("x.*")
        parts = _round_partitions(size, opts)
        owner = F.when(F.col("own_u"), F.col("u")).otherwise(F.col("v"))
        stars = both.repartition(parts, owner).mapInArrow(_star_partition, _ROUND_SCHEMA)
        # Cut the lineage every round (each round would otherwise re-run all before it). A
        # reliable checkpoint (checkpoint dir, survives a lost executor) every
        # ``checkpoint_interval`` rounds, a local one (executor storage) in between.
        if opts.checkpoint_interval and iteration % opts.checkpoint_interval == 0:
            stars = stars.checkpoint(eager=True)
        else:
            stars = stars.localCheckpoint(eager=True)
        edge = F.col("u") != F.col("v")  # the (r, r) rows only name roots
        row = stars.agg(F.count_if(edge), F.max(F.col("changed").cast("int"))).first()
        size, changed = (int(row[0]), bool(row[1])) if row is not None else (0, False)
        log.debug("native components: iteration=%d edges=%d partitions=%d", iteration, size, parts)
        # One partition saw the whole graph and solved it exactly: its stars are the answer.
        if not changed or parts == 1:
            return stars.select("u", "v")
        e = stars.where(edge).select("u", "v")
    raise RuntimeError(f"connected components did not converge in {opts.max_iterations} iterations")
