"""Connected components behind one boundary: GraphFrames when its jar is there, else native.

Both engines take an edge list of longs ``(src, dst)`` and return ``(id, component)`` where
``component`` is the smallest id in the component.

The native engine contracts the graph in rounds. Each round routes every edge to the
partitions of both its endpoints, solves each partition's subgraph exactly with scipy's
connected components inside ``mapInArrow``, and keeps one star per local component; rounds stop
when every partition finds its input already made of finished stars. A round subsumes a
large-star plus small-star step of the algorithm GraphFrames runs by default (Kiveris et al.,
"Connected Components in MapReduce and Beyond", SoCC 2014), so it needs no more rounds and in
practice far fewer. Memory is bounded per partition (``partition_rows``), the driver holds two
numbers per round, and the lineage is cut every round. DataFrame API only: it runs over Spark
Connect too.
"""

from __future__ import annotations

import logging
import math
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
    graphframes_algorithm: Literal["graphframes", "graphx"] = "graphframes"
    broadcast_threshold: int = 1_000_000  # GraphFrames' skew handling for high-degree nodes
    partition_rows: int = 8_000_000  # native: edge rows one worker solves in memory at once


def graphframes_available(spark: SparkSession) -> tuple[bool, str]:
    """Whether GraphFrames runs in this session: (ok, what was found or why not)."""
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
        ok, why = graphframes_available(spark)
        engine = "graphframes" if ok else "native"
        if not ok:
            log.warning("graph engine: graphframes unavailable, using native (%s)", why)
    if engine == "graphframes":
        return _graphframes_components(edges, vertices, opts)
    return native_components(edges, vertices, opts)


def _graphframes_components(
    edges: DataFrame, vertices: DataFrame | None, opts: ComponentsOptions
) -> DataFrame:
    from graphframes import GraphFrame

    edge_list = edges.select(F.col("src").cast("long"), F.col("dst").cast("long"))
    ids = edge_list.select(F.col("src").alias("id")).union(edge_list.select(F.col("dst")))
    if vertices is not None:
        ids = ids.union(vertices.select(F.col("id").cast("long")))
    graph = GraphFrame(ids.distinct(), edge_list)
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


def _star_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """One partition's subgraph, solved: its local components as stars (runs in the workers).

    Input rows ``(own_u, u, v)`` with ``u > v``: ``own_u`` tells which endpoint the row was
    routed by (the partition's own node). Output ``(u, v, changed)`` with ``v`` the local root.
    """
    import numpy as np
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
    nodes, inverse = np.unique(np.concatenate([np.concatenate(us), v]), return_inverse=True)
    del owns, us, vs
    n = len(nodes)
    ui, vi = inverse[:m], inverse[m:]
    graph = coo_matrix((np.ones(m, dtype=np.int32), (ui, vi)), shape=(n, n))
    _, labels = scipy_cc(graph, directed=False)
    del graph
    # nodes is sorted, so a label's first position is its component's smallest node.
    _, first = np.unique(labels, return_index=True)
    root = first[labels]  # position of each node's local root
    stale = root[ui] != vi  # rows whose label is not (yet) the local root
    changed = bool(stale.any())
    # Which nodes to emit: not roots, and not a foreign node whose rows all say (z, root).
    redundant = np.ones(n, dtype=bool)
    redundant[ui[own_u]] = False  # own nodes are always emitted
    redundant[vi] = False  # a label: its own link is not among these rows
    redundant[ui[stale]] = False
    keep = np.flatnonzero((root != np.arange(n)) & ~redundant)
    out_u = nodes[keep]
    out_v = nodes[root[keep]]
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


def _round_partitions(edges: int, opts: ComponentsOptions, floor: int) -> int:
    # Each edge travels twice (to both endpoints); a partition's rows must fit one worker. No
    # more partitions than that: the more of the graph a partition sees, the fewer rounds.
    return max(floor, math.ceil(2 * edges / opts.partition_rows))


def native_components(
    edges: DataFrame,
    vertices: DataFrame | None = None,
    options: ComponentsOptions | None = None,
) -> DataFrame:
    """Rounds of partition-local exact components until the edges are one star per component."""
    opts = options or ComponentsOptions()
    spark = edges.sparkSession
    floor = int(spark.conf.get("spark.sql.shuffle.partitions") or "1")
    e = (
        edges.select(F.col("src").cast("long").alias("u"), F.col("dst").cast("long").alias("v"))
        .where(F.col("u").isNotNull() & F.col("v").isNotNull() & (F.col("u") != F.col("v")))
        .select(F.greatest("u", "v").alias("u"), F.least("u", "v").alias("v"))
    )
    size = e.count()
    for iteration in range(1, opts.max_iterations + 1):
        both = e.select(
            F.explode(
                F.array(
                    F.struct(F.lit(True).alias("own_u"), "u", "v"),
                    F.struct(F.lit(False).alias("own_u"), "u", "v"),
                )
            ).alias("x")
        ).select("x.*")
        parts = _round_partitions(size, opts, floor)
        owner = F.when(F.col("own_u"), F.col("u")).otherwise(F.col("v"))
        stars = both.repartition(parts, owner).mapInArrow(_star_partition, _ROUND_SCHEMA)
        # Cut the lineage every round (each round would otherwise re-run all before it). A
        # reliable checkpoint (checkpoint dir, survives a lost executor) every
        # ``checkpoint_interval`` rounds, a local one (executor storage) in between.
        if opts.checkpoint_interval and iteration % opts.checkpoint_interval == 0:
            stars = stars.checkpoint(eager=True)
        else:
            stars = stars.localCheckpoint(eager=True)
        row = stars.agg(F.count(F.lit(1)), F.max(F.col("changed").cast("int"))).first()
        size, changed = (int(row[0]), bool(row[1])) if row is not None else (0, False)
        log.debug("native components: iteration=%d edges=%d partitions=%d", iteration, size, parts)
        e = stars.select("u", "v")
        if not changed:
            break
    else:
        raise RuntimeError(
            f"connected components did not converge in {opts.max_iterations} iterations"
        )
    # Each non-root node now has one label, its component's smallest id; roots, isolated
    # vertices, self-loops and the known end of a half-null edge label themselves. One
    # aggregation puts them together.
    src, dst = F.col("src").cast("long"), F.col("dst").cast("long")
    ends = edges.where(F.coalesce(src == dst, F.lit(True))).select(F.coalesce(src, dst).alias("id"))
    if vertices is not None:
        ends = ends.union(vertices.select(F.col("id").cast("long")))
    labels = (
        e.select(F.col("u").alias("id"), F.col("v").alias("component"))
        .union(e.select(F.col("v").alias("id"), F.col("v").alias("component")))
        .union(ends.where(F.col("id").isNotNull()).select("id", F.col("id").alias("component")))
    )
    return labels.groupBy("id").agg(F.min("component").alias("component"))
