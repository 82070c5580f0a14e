"""``crossdata bench identity``: connected components in Spark beside scipy on the same edges.

For each size (edges) a graph shaped like an identity graph is generated once with Spark and
written as Parquet: many small components (sizes Pareto-skewed, most 2-10 nodes, a tail up to a
few hundred), node ids hashed over the positive long range, a few duplicate, reversed and
cycle-closing edges. Deterministic for a seed, reused by later runs.

In the same run both engines read that file:

* Spark: the engine the identity job uses (``crossdata.identity.engine.connected_components``
  with the options of ``identity.*``: GraphFrames when its jar is loaded, else native). The time
  covers reading the edges, every round, and writing ``(id, component)`` as Parquet.
* scipy: ``pyarrow`` load into numpy, dense relabelling (``numpy.unique``), a CSR matrix, then
  ``scipy.sparse.csgraph.connected_components(directed=False)``. The ratio's denominator is
  the total (load + relabel + build + cc); the cc-only time is shown beside it.

Both results are compared node by node (component = smallest id of the component); a mismatch
is printed and the command exits 1.

``--world EVENTS`` (e.g. ``200k,1M``) adds the accuracy report: for each size a world of 28 days
with enough people for about EVENTS site/app events (``crossdata.world.bench.persons_for``),
generated with the configured ``world.*`` settings into ``<workdir>/identity-world-<size>/world``
and reused by later runs while its settings and the generator's source are unchanged
(``_bench.json`` beside the landing folders). Every run then starts from an empty lakehouse in
that folder (the previous run's is deleted, this one's is kept for inspection), ingests every
source with the ``crossdata ingest`` job, runs the ``crossdata identity resolve`` job, and
scores ``gold.identity_map`` against ``_truth/identifiers`` (``crossdata.identity.scoring``).
A precision under 0.995 or a reachable recall under 0.98 is printed and the command exits 1.

With ``--world`` the edge-size timings run only when ``--sizes`` is given too: the two answer
different questions (speed of one step on synthetic edges, correctness of the whole stage on
realistic data), and a world run is long enough on its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossdata.bench import (
    Table,
    driver_peak_rss_mb,
    human,
    jvm_pid,
    parse_sizes,
    proc_status_kb,
    timed,
)
from crossdata.config import Loaded

if TYPE_CHECKING:
    import numpy as np
    from pyspark.sql import Column, DataFrame, SparkSession

    from crossdata.config.schema import WorldSettings
    from crossdata.identity.engine import ComponentsOptions
    from crossdata.identity.resolve import IdentitySummary
    from crossdata.identity.scoring import IdentityScore
    from crossdata.ops import Context

log = logging.getLogger(__name__)

DEFAULT_SIZES = ("1M", "10M")
SEED = 7
MAX_COMPONENT = 500  # the largest component the generator makes
PARETO_ALPHA = 1.5  # component size ~ Pareto(x_min=2, alpha), capped at MAX_COMPONENT
DUPLICATE_RATE = 0.01  # share of tree edges written twice
REVERSED_RATE = 0.01  # share of tree edges also written dst -> src
CYCLE_RATE = 0.04  # share of tree edges (beyond a component's first) with an extra edge
EDGES_PER_FILE = 2_000_000
GENERATOR_VERSION = 1  # bump when graph_edges changes: cached edge files are regenerated
# Above this many edges the scipy reference is skipped (it needs the whole graph in this
# process); no limit by default. A runner option, not a CLI flag: getattr(args, ...).
REFERENCE_MAX_EDGES: int | None = None
WARM_UP = True  # one tiny untimed resolution first (getattr(args, "warm_up", ...))

COLUMNS = [
    "edges",
    "nodes",
    "components",
    "largest",
    "engine",
    "rounds",
    "Spark s",
    "scipy s (load+cc)",
    "scipy cc-only s",
    "ratio",
    "agree",
    "driver peak RSS MB",
    "JVM peak RSS MB",
]


# -- the test graph ---------------------------------------------------------------------------
def _uniform(seed: int, salt: str, *cols: Column) -> Column:
    """A deterministic uniform [0, 1) from a hash of ``cols`` (independent of partitioning)."""
    from pyspark.sql import functions as F

    h = F.xxhash64(F.lit(seed), F.lit(salt), *cols).bitwiseAND(F.lit((1 << 53) - 1))
    return h.cast("double") / F.lit(float(1 << 53))


def _node(seed: int, k: Column, j: Column) -> Column:
    """The id of node ``j`` of component ``k``: a hash spread over the positive long range."""
    from pyspark.sql import functions as F

    return F.xxhash64(F.lit(seed), F.lit("node"), k, j).bitwiseAND(F.lit((1 << 63) - 1))


def expected_edges_per_component(grid: int = 1_000_000) -> float:
    """Mean edges the generator writes per component (numerical integral over the size law)."""
    import numpy as np

    u = (np.arange(grid) + 0.5) / grid
    sizes = np.minimum(MAX_COMPONENT, np.floor(2.0 / (1.0 - u) ** (1.0 / PARETO_ALPHA)))
    tree = sizes - 1
    extra = (DUPLICATE_RATE + REVERSED_RATE) * tree + CYCLE_RATE * np.maximum(sizes - 2, 0)
    return float(np.mean(tree + extra))


def graph_edges(spark: SparkSession, edges: int, seed: int = SEED) -> DataFrame:
    """About ``edges`` edges ``(src, dst)`` of an identity-shaped graph (deterministic)."""
    from pyspark.sql import functions as F

    components = max(1, math.ceil(edges / expected_edges_per_component()))
    partitions = max(2, math.ceil(edges / EDGES_PER_FILE))
    k = F.col("k")
    size = F.least(
        F.lit(MAX_COMPONENT),
        F.floor(
            F.lit(2.0) / F.pow(F.lit(1.0) - _uniform(seed, "size", k), 1.0 / PARETO_ALPHA)
        ).cast("int"),
    )
    # A random recursive tree per component: node j >= 1 hangs from a node < j.
    tree = (
        spark.range(0, components, 1, partitions)
        .select(F.col("id").alias("k"), size.alias("size"))
        .select("k", F.explode(F.sequence(F.lit(1), F.col("size") - 1)).alias("j"))
        .select(
            "k",
            "j",
            F.floor(_uniform(seed, "parent", k, F.col("j")) * F.col("j")).cast("int").alias("p"),
            F.floor(_uniform(seed, "other", k, F.col("j")) * F.col("j")).cast("int").alias("q"),
            _uniform(seed, "extra", k, F.col("j")).alias("r"),
            _uniform(seed, "flip", k, F.col("j")).alias("f"),
        )
        .select(
            "j",
            "r",
            "f",
            _node(seed, k, F.col("j")).alias("a"),
            _node(seed, k, F.col("p")).alias("b"),
            _node(seed, k, F.col("q")).alias("c"),
        )
    )
    flip = F.col("f") < 0.5
    oriented = tree.select(
        "j",
        "r",
        "c",
        "a",
        F.when(flip, F.col("b")).otherwise(F.col("a")).alias("src"),
        F.when(flip, F.col("a")).otherwise(F.col("b")).alias("dst"),
    )
    r, j = F.col("r"), F.col("j")
    dup_end = DUPLICATE_RATE
    rev_end = dup_end + REVERSED_RATE
    cycle_end = rev_end + CYCLE_RATE
    is_cycle = (r >= rev_end) & (r < cycle_end) & (j >= 2)
    # One extra edge for a few tree edges: the same again, reversed, or closing a cycle.
    extra = oriented.select(
        F.when(r < dup_end, F.col("src"))
        .when(r < rev_end, F.col("dst"))
        .when(is_cycle, F.col("a"))
        .alias("src"),
        F.when(r < dup_end, F.col("dst"))
        .when(r < rev_end, F.col("src"))
        .when(is_cycle, F.col("c"))
        .alias("dst"),
    ).where(F.col("src").isNotNull())
    return oriented.select("src", "dst").unionByName(extra)


def edges_file(
    spark: SparkSession, workdir: Path, edges: int, seed: int = SEED
) -> tuple[Path, int]:
    """The Parquet edge list for ``edges`` (written once, reused) and its exact edge count."""
    path = workdir / f"identity-edges-{human(edges)}-seed{seed}"
    meta_path = path / "_bench.json"
    want = {"requested": edges, "seed": seed, "generator": GENERATOR_VERSION}
    if meta_path.is_file() and (path / "_SUCCESS").is_file():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in want} == want:
            log.info("bench identity: reusing %s (%s edges)", path, human(meta["edges"]))
            return path, int(meta["edges"])
    shutil.rmtree(path, ignore_errors=True)
    log.info("bench identity: generating about %s edges into %s", human(edges), path)
    with timed() as t:
        graph_edges(spark, edges, seed).write.mode("overwrite").parquet(str(path))
    actual = spark.read.parquet(str(path)).count()
    meta_path.write_text(json.dumps({**want, "edges": actual}))
    log.info("bench identity: wrote %d edges in %.1fs", actual, t.seconds)
    return path, actual


# -- Spark ------------------------------------------------------------------------------------
class _RoundCounter(logging.Handler):
    """Counts the native engine's rounds from its per-round debug record."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.rounds = 0

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("native components: iteration") and record.args:
            args = record.args if isinstance(record.args, tuple) else ()
            if args and isinstance(args[0], int):
                self.rounds = max(self.rounds, args[0])


@dataclass
class SparkRun:
    seconds: float
    rounds: int


def spark_components(
    spark: SparkSession, edges_path: Path, result_path: Path, options: ComponentsOptions
) -> SparkRun:
    """Read the edges, resolve, write ``(id, component)`` as Parquet; all of it timed."""
    from crossdata.identity.engine import connected_components

    engine_log = logging.getLogger("crossdata.identity.engine")
    counter = _RoundCounter()
    level = engine_log.level
    engine_log.addHandler(counter)
    engine_log.setLevel(logging.DEBUG)
    try:
        with timed() as t:
            edges = spark.read.parquet(str(edges_path))
            result = connected_components(edges, None, options)
            result.write.mode("overwrite").parquet(str(result_path))
    finally:
        engine_log.removeHandler(counter)
        engine_log.setLevel(level)
    return SparkRun(t.seconds, counter.rounds)


def jvm_peak_rss_mb(spark: SparkSession) -> float | None:
    """Peak resident memory of the local JVM (driver and executors in local mode), in MiB."""
    pid = jvm_pid(spark)
    kb = proc_status_kb(pid, "VmHWM") if pid is not None else None
    return None if kb is None else kb / 1024


def checkpoint_files(spark: SparkSession) -> set[Path]:
    """The top-level entries of this session's local checkpoint dir (empty if not local)."""
    try:
        folder = spark.sparkContext.getCheckpointDir()
    except Exception:
        return set()
    from crossdata.spark.session import local_path

    path = local_path(folder) if folder and folder.startswith("file:") else None
    return set(path.iterdir()) if path is not None and path.is_dir() else set()


def spark_summary(spark: SparkSession, result_path: Path) -> tuple[int, int, int]:
    """(nodes, components, largest component) of a written result, counted by Spark."""
    from pyspark.sql import functions as F

    sizes = spark.read.parquet(str(result_path)).groupBy("component").count()
    row = sizes.agg(F.sum("count"), F.count(F.lit(1)), F.max("count")).first()
    assert row is not None
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


# -- scipy ------------------------------------------------------------------------------------
@dataclass
class ScipyRun:
    total_seconds: float  # load + relabel + CSR + connected_components
    cc_seconds: float  # connected_components alone
    ids: np.ndarray  # every node id, sorted
    component: np.ndarray  # smallest id of each node's component
    components: int
    largest: int


def scipy_components(edges_path: Path) -> ScipyRun:
    """The single-machine reference on the same Parquet edges."""
    import numpy as np
    import pyarrow.parquet as pq
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    with timed() as total:
        table = pq.read_table(edges_path, columns=["src", "dst"])
        src = table.column("src").to_numpy()
        dst = table.column("dst").to_numpy()
        del table
        m = len(src)
        ids, inverse = np.unique(np.concatenate([src, dst]), return_inverse=True)
        del src, dst
        n = len(ids)
        graph = csr_matrix((np.ones(m), (inverse[:m], inverse[m:])), shape=(n, n))
        del inverse
        with timed() as cc:
            count, labels = connected_components(graph, directed=False)
    del graph
    # ids are sorted, so the first node carrying a label has the smallest id of its component.
    _, first = np.unique(labels, return_index=True)
    component = ids[first][labels]
    largest = int(np.bincount(labels).max()) if n else 0
    return ScipyRun(total.seconds, cc.seconds, ids, component, int(count), largest)


def checksum(ids: np.ndarray, component: np.ndarray) -> int:
    """An order-free fingerprint of a partition given as (id, smallest id of its component)."""
    import numpy as np

    with np.errstate(over="ignore"):
        mixed = ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) ^ component.astype(np.uint64)
        return int(np.bitwise_xor.reduce(mixed * np.uint64(0xBF58476D1CE4E5B9))) if len(ids) else 0


def compare(result_path: Path, ref: ScipyRun) -> tuple[bool, str]:
    """Whether Spark's written result is scipy's partition, node by node (and why not)."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(result_path, columns=["id", "component"])
    rid = table.column("id").to_numpy()
    rcomp = table.column("component").to_numpy()
    del table
    got = (len(np.unique(rcomp)), checksum(rid, rcomp))
    want = (ref.components, checksum(ref.ids, ref.component))
    detail = (
        f"components spark={got[0]} scipy={want[0]}, "
        f"checksum spark={got[1]:016x} scipy={want[1]:016x}"
    )
    if len(rid) != len(ref.ids):
        return False, f"nodes spark={len(rid)} scipy={len(ref.ids)}; {detail}"
    order = np.argsort(rid, kind="stable")
    if not np.array_equal(rid[order], ref.ids):
        return False, f"node ids differ; {detail}"
    wrong = int(np.count_nonzero(rcomp[order] != ref.component))
    if wrong:
        return False, f"{wrong} nodes in a different component; {detail}"
    return got == want, detail


# -- the run ----------------------------------------------------------------------------------
def warm_up(spark: SparkSession, options: ComponentsOptions) -> None:
    """One tiny untimed resolution so JVM start-up and code generation are not in the figures."""
    from crossdata.identity.engine import connected_components

    connected_components(graph_edges(spark, 2_000), None, options).write.format("noop").mode(
        "overwrite"
    ).save()


def run(args: argparse.Namespace, loaded: Loaded) -> int:
    """The edge-size timings, the world accuracy report, or both (see the module docstring)."""
    worlds = parse_sizes(args.world, ()) if getattr(args, "world", None) else []
    status = 0
    if not worlds or args.sizes:
        status = max(status, run_edges(args, loaded))
    if worlds:
        status = max(status, run_worlds(args, loaded, worlds))
    return status


def run_edges(args: argparse.Namespace, loaded: Loaded) -> int:
    """Resolve graphs of the requested sizes with Spark and scipy; print the table."""
    from crossdata.identity.engine import graphframes_available
    from crossdata.identity.resolve import components_options
    from crossdata.spark import get_spark

    sizes = parse_sizes(args.sizes, DEFAULT_SIZES)
    reference_max = getattr(args, "reference_max_edges", REFERENCE_MAX_EDGES)
    spark = get_spark(loaded.settings)
    workdir = Path(args.workdir).expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    options = components_options(loaded.settings)
    engine = options.engine
    if engine == "auto":
        ok, why = graphframes_available(spark)
        engine = "graphframes" if ok else "native"
        log.info("bench identity: engine=%s (%s)", engine, why)
    table = Table("Identity resolution: connected components", COLUMNS)
    status = 0
    before = checkpoint_files(spark)
    if getattr(args, "warm_up", WARM_UP):
        warm_up(spark, options)
    for size in sizes:
        edges_path, edges = edges_file(spark, workdir, size)
        result_path = workdir / f"identity-result-{human(size)}"
        log.info("bench identity: %s edges, Spark (%s engine)", human(edges), engine)
        sp = spark_components(spark, edges_path, result_path, options)
        log.info("bench identity: Spark %.1fs, %d rounds", sp.seconds, sp.rounds)
        # The checkpoints of this run are no longer needed: free the disk for the next size.
        for stale in checkpoint_files(spark) - before:
            shutil.rmtree(stale, ignore_errors=True)
        if reference_max is not None and edges > reference_max:
            log.info("bench identity: scipy skipped above %s edges", human(reference_max))
            nodes, components, largest = spark_summary(spark, result_path)
            ref_total = ref_cc = ratio = agree = "-"
        else:
            log.info("bench identity: %s edges, scipy", human(edges))
            ref = scipy_components(edges_path)
            log.info("bench identity: scipy %.1fs (cc %.1fs)", ref.total_seconds, ref.cc_seconds)
            ok, detail = compare(result_path, ref)
            if ok:
                log.info("bench identity: engines agree (%s)", detail)
            else:
                status = 1
                log.error("bench identity: engines DISAGREE at %s edges: %s", human(edges), detail)
                print(f"FAILED: Spark and scipy disagree at {human(edges)} edges: {detail}")
            nodes, components, largest = len(ref.ids), ref.components, ref.largest
            ref_total = f"{ref.total_seconds:.1f}"
            ref_cc = f"{ref.cc_seconds:.2f}"
            ratio = f"{sp.seconds / ref.total_seconds:.1f}x"
            agree = "yes" if ok else "NO"
            del ref
            gc.collect()
        jvm = jvm_peak_rss_mb(spark)
        table.add(
            human(edges),
            human(nodes),
            human(components),
            largest,
            engine,
            sp.rounds if engine == "native" else "n/a",
            f"{sp.seconds:.1f}",
            ref_total,
            ref_cc,
            ratio,
            agree,
            f"{driver_peak_rss_mb():.0f}",
            f"{jvm:.0f}" if jvm is not None else "n/a",
        )
        shutil.rmtree(result_path, ignore_errors=True)
    table.emit(args.output)
    s = loaded.settings.spark
    print(
        f"machine: {os.cpu_count()} cores, master={s.master}, driver_memory={s.driver_memory}, "
        f"shuffle_partitions={s.shuffle_partitions}, "
        f"checkpoint_interval={options.checkpoint_interval}"
    )
    print(
        "ratio = Spark s / scipy s (load+cc); driver peak RSS is this Python process "
        "(includes scipy's arrays); JVM peak RSS is the local Spark JVM"
    )
    return status


# -- accuracy on a generated world --------------------------------------------------------------
PRECISION_FLOOR = 0.995
RECALL_FLOOR = 0.98  # on reachable pairs (see crossdata.identity.scoring)

ACCURACY_COLUMNS = [
    "events",
    "persons",
    "identifiers scored",
    "identity edges",
    "true pairs",
    "reachable pairs",
    "predicted pairs",
    "precision",
    "reachable recall",
    "raw recall",
    "shared kept apart",
    "largest customer",
    "giant components",
    "ingest s",
    "identity job s",
    "floors met",
]


@dataclass(frozen=True)
class WorldAccuracy:
    """One world: the resolution's scores against the truth, and what it cost."""

    events: int  # landing lines of the events source (originals)
    persons: int
    days: int
    summary: IdentitySummary  # the identity job's own counts
    score: IdentityScore
    ingest_seconds: float | None  # None: the lakehouse was ingested before
    identity_seconds: float

    def missed_floors(self) -> list[str]:
        """The floors this resolution misses (empty when both are met). A world whose
        evidence connects no pair of one person's identifiers measures nothing: it meets
        no floor (precision and recall read 1.0 there only to avoid dividing by zero)."""
        missed = []
        if self.score.reachable_pairs == 0:
            missed.append("no pair of one person's identifiers is connected by evidence")
        if self.score.precision < PRECISION_FLOOR:
            missed.append(f"precision {self.score.precision:.4f} < {PRECISION_FLOOR}")
        if self.score.reachable_recall < RECALL_FLOOR:
            missed.append(f"reachable recall {self.score.reachable_recall:.4f} < {RECALL_FLOOR}")
        return missed


def accuracy_row(a: WorldAccuracy) -> list[str]:
    """The table row of one world (ACCURACY_COLUMNS)."""
    s = a.score
    # The job alerts on (and lists) at most 20 components above identity.giant_component_size.
    giant = a.summary.giant_components
    giants = str(len(giant)) if len(giant) < 20 else f"{len(giant)}+"
    if giant:
        giants += f" (largest {max(giant)})"
    missed = a.missed_floors()
    return [
        human(a.events),
        f"{a.persons:,}",
        f"{s.scored_identifiers:,}",
        f"{a.summary.evidence_edges:,}",
        f"{s.true_pairs:,}",
        f"{s.reachable_pairs:,}",
        f"{s.predicted_pairs:,}",
        f"{s.precision:.4f}",
        f"{s.reachable_recall:.4f}",
        f"{s.recall:.4f}",
        f"{s.shared_detected}/{s.shared_in_truth}",
        str(s.largest_customer),
        giants,
        "-" if a.ingest_seconds is None else f"{a.ingest_seconds:.1f}",
        f"{a.identity_seconds:.1f}",
        "yes" if not missed else "NO: " + ", ".join(missed),
    ]


def world_facts(world_root: Path) -> dict[str, Any]:
    """The generator's ``_truth/world.json`` (parameters and line counts)."""
    data: dict[str, Any] = json.loads((world_root / "_truth" / "world.json").read_text("utf-8"))
    return data


def score_world(ctx: Context, world_root: Path) -> IdentityScore:
    """Score the lakehouse's ``gold.identity_map`` against ``<world>/_truth/identifiers``."""
    from crossdata.identity.scoring import score_identity

    truth = ctx.spark.read.option("header", True).csv(str(world_root / "_truth" / "identifiers"))
    return score_identity(
        ctx.lake.read("gold.identity_map"), truth, ctx.lake.read("silver.identity_edges")
    )


def world_accuracy(ctx: Context, world_root: Path, ingest: bool = True) -> WorldAccuracy:
    """Ingest every source of the world (unless already done), run the identity job, score it.

    The same code paths as ``crossdata ingest`` and ``crossdata identity resolve``: each is
    one job with its row in ``ops.job_runs``; their times include that row.
    """
    from crossdata.collect.ingest import run_ingest
    from crossdata.identity.resolve import run_identity
    from crossdata.ops import job_run

    ingest_seconds = None
    if ingest:
        with timed() as t, job_run(ctx, "ingest") as run:
            log.info("bench identity world: %s", run_ingest(ctx, run).describe())
        ingest_seconds = t.seconds
    with timed() as t, job_run(ctx, "identity") as run:
        summary = run_identity(ctx, run)
    log.info("bench identity world: %s", summary.describe())
    score = score_world(ctx, world_root)
    log.info("bench identity world: %s", score.describe())
    facts = world_facts(world_root)
    return WorldAccuracy(
        events=int(facts["files"].get("lines:events", 0)),
        persons=int(facts["persons"]),
        days=int(facts["days"]),
        summary=summary,
        score=score,
        ingest_seconds=ingest_seconds,
        identity_seconds=t.seconds,
    )


def generator_fingerprint() -> str:
    """A hash of the world generator's source and of the contracts it writes to (file names,
    fields, CSV headers, reasons): a cached world is stale when either changes."""
    import hashlib

    import crossdata.contracts as contracts_module
    import crossdata.world as world_package

    digest = hashlib.sha256()
    sources = sorted(Path(world_package.__file__).parent.glob("*.py"))
    for path in [*sources, Path(contracts_module.__file__)]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def world_spec(settings: WorldSettings) -> dict[str, Any]:
    """What makes a world: every generator setting but the folder it is written to."""
    spec = {k: v for k, v in dataclasses.asdict(settings).items() if k != "out"}
    return {**spec, "generator": generator_fingerprint()}


def ensure_world(spark: SparkSession, settings: WorldSettings) -> tuple[Path, float | None]:
    """The world ``settings`` describe, in ``settings.out``: reused when the same spec was
    generated there before, else generated. Returns its root and the generation time (None
    when reused)."""
    from crossdata.ops.runs import JobRun, new_run_id
    from crossdata.world.generate import generate_world

    root = Path(settings.out)
    marker = root / "_bench.json"
    spec = world_spec(settings)
    # The marker is written once the generation has returned: with it the world is complete.
    if marker.is_file() and json.loads(marker.read_text("utf-8")) == spec:
        log.info("bench identity world: reusing %s", root)
        return root, None
    shutil.rmtree(root, ignore_errors=True)
    job = JobRun(new_run_id("bench-identity-generate"), "bench identity", dt.datetime.now(dt.UTC))
    log.info(
        "bench identity world: generating %s persons x %s days", settings.persons, settings.days
    )
    with timed() as t:
        generate_world(spark, settings, job)
    marker.write_text(json.dumps(spec, indent=2), "utf-8")
    return root, t.seconds


def world_settings(loaded: Loaded, folder: Path, persons: int, days: int) -> Loaded:
    """The caller's settings (``--set`` included) pointed at this world, its own lakehouse and
    stream checkpoints under ``folder``."""
    from crossdata.collect.bench import cli_overrides
    from crossdata.config import load_settings

    world = folder / "world"
    return load_settings(
        profile=loaded.profile,
        conf_dir=loaded.conf_dir,
        overrides=[
            *cli_overrides(loaded),
            f"world.out={world}",
            f"world.persons={persons}",
            f"world.days={days}",
            f"collect.landing={world}",
            f"lakehouse.root={folder / 'lakehouse'}",
            f"collect.checkpoint_dir={folder / 'checkpoints'}",
        ],
    )


def run_worlds(args: argparse.Namespace, loaded: Loaded, sizes: list[int]) -> int:
    """For each size: a world (generated or reused), ingested afresh, resolved and scored."""
    from crossdata.ops import Context
    from crossdata.spark import get_spark
    from crossdata.world.bench import DAYS, persons_for

    days = int(getattr(args, "world_days", DAYS))
    spark = get_spark(loaded.settings)
    workdir = Path(args.workdir).expanduser().resolve()
    table = Table("Identity resolution: accuracy on a generated world", ACCURACY_COLUMNS)
    notes = []
    status = 0
    before = checkpoint_files(spark)
    for size in sizes:
        folder = workdir / f"identity-world-{human(size)}"
        sized = world_settings(loaded, folder, persons_for(size, days), days)
        load_before = os.getloadavg()[0]
        root, generated = ensure_world(spark, sized.settings.world)
        # Ingestion is measured from an empty lakehouse: the previous run's tables go.
        for name in ("lakehouse", "checkpoints"):
            shutil.rmtree(folder / name, ignore_errors=True)
        accuracy = world_accuracy(Context.create(sized, spark=spark), root)
        load_after = os.getloadavg()[0]
        for stale in checkpoint_files(spark) - before:
            shutil.rmtree(stale, ignore_errors=True)
        table.add(*accuracy_row(accuracy))
        missed = accuracy.missed_floors()
        if missed:
            status = 1
            log.error("bench identity world: floors MISSED at %s events: %s", human(size), missed)
            print(
                f"FAILED: identity floors missed at {human(accuracy.events)} events: "
                + "; ".join(missed)
            )
        where = "reused" if generated is None else f"generated in {generated:.1f}s"
        notes.append(
            f"{human(accuracy.events)} events: world {accuracy.persons} persons x "
            f"{accuracy.days} days {where} ({root}); lakehouse {folder / 'lakehouse'}; "
            f"load average {load_before:.1f} -> {load_after:.1f}"
        )
    table.emit(args.output)
    for note in notes:
        print(note)
    s, ident = loaded.settings.spark, loaded.settings.identity
    print(
        f"machine: {os.cpu_count()} cores, master={s.master}, driver_memory={s.driver_memory}, "
        f"shuffle_partitions={s.shuffle_partitions}; world.seed={loaded.settings.world.seed}, "
        f"world.fault_rate={loaded.settings.world.fault_rate}; "
        f"identity.giant_component_size={ident.giant_component_size}"
    )
    print(
        f"floors: precision >= {PRECISION_FLOOR}, reachable recall >= {RECALL_FLOOR}; pairs are "
        "identifiers of one person in the truth (shared identifiers excluded) seen by crossdata"
    )
    return status
