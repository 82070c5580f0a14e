"""``crossdata bench ingest``: raw events to bronze and to silver, beside a plain Delta copy.

For each size (site/app events in the ``events`` source) a world of 28 days is generated with
enough people to reach it (``crossdata.world.bench.persons_for``), then, in the same process:

1. the reference: ``spark.read.json(<landing>/events).write.format("delta")`` of the very same
   files, schema inferred, as a user would write it;
2. raw -> bronze: the ``events`` stream of ``crossdata ingest`` (contract validation,
   quarantine, duplicate files, file ledger, reconciliation, idempotent commits);
3. bronze -> silver: deduplication, normalisation, expectations, quality counts, and the
   sessions (silver.events rows are written with theirs, silver.sessions in the same batch);
4. the sessions catch-up ``crossdata ingest`` ends with (events inserted without a session by
   an older version; here it finds none, and its time is what that check costs);
5. the reference of step 1 again, the denominator of the ratios (see ``Measure.reference_s``),
   then once with the contract's schema given (no inference pass), for reading.

Each size runs in a fresh Python process (``python -m crossdata.collect.bench SPEC``) with its
own JVM, lakehouse and checkpoints, so the peak memory figures belong to that size alone: the
peaks are reset after generation (``/proc/<pid>/clear_refs``) and read after step 5.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crossdata.bench import Table, human, jvm_pid, parse_sizes, proc_status_kb, timed
from crossdata.config import Loaded, load_settings
from crossdata.errors import CrossdataError
from crossdata.world.bench import DAYS, persons_for

log = logging.getLogger(__name__)

DEFAULT_SIZES = ("1M", "10M")
SOURCE = "events"
RESULT = "result.json"
FAILURE = "error.json"  # a CrossdataError the child stopped on: its message and exit code
# How many triggers a query keeps in ``recentProgress`` (Spark's default is 100).
PROGRESS_KEPT = 100_000
# Spark SQL types of the contract's field types (JSON values are kept as their text).
DDL_TYPES = {
    "string": "STRING",
    "timestamp": "TIMESTAMP",
    "long": "BIGINT",
    "double": "DOUBLE",
    "date": "DATE",
    "json": "STRING",
}


@dataclasses.dataclass
class Measure:
    """One size's figures, as the child process writes them to ``result.json``."""

    size: int
    persons: int
    events: int  # landing lines of the events source (originals, copies excluded)
    files: int  # landing files of the events source (copies included)
    landing_mb: float
    generate_s: float
    reference_before_s: float  # plain copy, schema inferred, before the ingestion
    reference_after_s: float  # the same, after it
    reference_schema_s: float  # plain copy, the contract's schema given
    bronze_s: float
    silver_s: float  # bronze -> silver, sessions included
    sessions_s: float  # the sessions catch-up on the change feed (finds nothing to do here)
    read: int  # records the bronze stream read (bronze + quarantine + duplicate files)
    bronze_rows: int
    quarantined: int
    duplicates: int  # records in redelivered copies of files, counted, not loaded
    silver_rows: int
    sessions: int
    bronze_batches: int
    silver_batches: int
    stream_ms: dict[str, dict[str, int]]  # stream -> durationMs phase -> total over batches
    max_files_per_trigger: int
    lines_per_file: int
    driver_rss_mb: float | None  # Python driver's peak RSS during steps 1-5
    jvm_rss_mb: float | None  # the JVM's peak RSS during steps 1-5 (local: driver + executors)
    jvm_heap_live_mb: float | None  # JVM heap in use after a full GC at the end
    jvm_heap_max_mb: float | None
    load_before: float  # 1-minute load average of the machine when the steps began
    load_after: float

    @property
    def reference_s(self) -> float:
        """The denominator: the inferred-schema copy timed after the ingestion.

        The first pass also pays for what crossdata's steps then find done (the JIT of the
        JSON reader and Parquet writer, the write-back of the freshly generated files): the
        second ran in the conditions crossdata ran in, and is the stricter denominator.
        """
        return self.reference_after_s

    @property
    def raw_to_silver_s(self) -> float:
        return self.bronze_s + self.silver_s + self.sessions_s


COLUMNS = [
    "events",
    "files",
    "bronze rows",
    "quarantined",
    "duplicates",
    "silver rows",
    "sessions",
    "reference s (before / after)",
    "reference s (schema given)",
    "bronze s",
    "bronze events/s",
    "bronze ratio",
    "silver + sessions s",
    "sessions catch-up s",
    "raw to silver s",
    "silver events/s",
    "silver ratio",
    "driver peak RSS MB",
    "JVM peak RSS MB",
    "JVM live heap MB",
]


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def row(m: Measure) -> list[str]:
    """The table row of one size (ratios: see ``Measure.reference_s``)."""
    return [
        human(m.events),
        str(m.files),
        f"{m.bronze_rows:,}",
        f"{m.quarantined:,}",
        f"{m.duplicates:,}",
        f"{m.silver_rows:,}",
        f"{m.sessions:,}",
        f"{m.reference_before_s:.1f} / {m.reference_after_s:.1f}",
        f"{m.reference_schema_s:.1f}",
        f"{m.bronze_s:.1f}",
        human(m.events / m.bronze_s),
        f"{m.bronze_s / m.reference_s:.2f}x",
        f"{m.silver_s:.1f}",
        f"{m.sessions_s:.1f}",
        f"{m.raw_to_silver_s:.1f}",
        human(m.events / m.raw_to_silver_s),
        f"{m.raw_to_silver_s / m.reference_s:.2f}x",
        _mb(m.driver_rss_mb),
        _mb(m.jvm_rss_mb),
        _mb(m.jvm_heap_live_mb),
    ]


# -- the parent: one child process per size ------------------------------------------------------
def run(args: argparse.Namespace, loaded: Loaded) -> int:
    """Measure every requested size, each in its own process, and print the table."""
    from crossdata.collect.ingest import trigger_limit

    sizes = parse_sizes(args.sizes, DEFAULT_SIZES)
    workdir = Path(args.workdir).expanduser().resolve()
    keep = bool(getattr(args, "keep", False))  # keep worlds and tables (tests read them)
    table = Table("Ingestion (raw to bronze, raw to silver)", COLUMNS)
    measures = []
    try:
        for size in sizes:
            m = measure_in_child(loaded, size, workdir, keep)
            measures.append(m)
            table.add(*row(m))
    finally:
        if measures:  # the sizes measured before a failure are not lost with it
            table.emit(args.output)
    for m in measures:
        print(where_time_goes(m))
    first = measures[0]
    print(
        f"machine: {os.cpu_count()} cores, master={loaded.settings.spark.master}, "
        f"driver_memory={loaded.settings.spark.driver_memory}, "
        f"bronze {_limit_text(trigger_limit(loaded.settings.collect))}, "
        f"world.lines_per_file={first.lines_per_file}; ratios divide by the plain copy with "
        "the schema inferred, timed after the ingestion"
    )
    return 0


def _limit_text(options: Mapping[str, int]) -> str:
    return ", ".join(f"{name}={value}" for name, value in options.items())


def where_time_goes(m: Measure) -> str:
    """One line per stream: batches and the Spark-reported phases summed over them."""
    parts = [f"{human(m.events)} events: generate {m.generate_s:.1f}s"]
    for name, phases in m.stream_ms.items():
        total = phases.get("triggerExecution", 0) / 1000
        inner = ", ".join(
            f"{k} {v / 1000:.1f}s"
            for k, v in sorted(phases.items(), key=lambda kv: -kv[1])
            if k != "triggerExecution" and v >= 50
        )
        parts.append(f"{name} ({total:.1f}s in triggers: {inner})")
    parts.append(f"batches bronze={m.bronze_batches} silver={m.silver_batches}")
    parts.append(f"load average {m.load_before:.1f} -> {m.load_after:.1f}")
    return "; ".join(parts)


def cli_overrides(loaded: Loaded) -> list[str]:
    """The ``--set`` overrides ``loaded`` was built with, to hand on to a child process.

    A key holding a dot (``spark.conf``'s keys) cannot be written as ``a.b=value``: its
    mapping is handed on whole. Values that came from ``${env:NAME}`` are handed on as that
    template, never resolved.
    """
    chosen: dict[str, Any] = {}
    for key, label in loaded.origins.items():
        path = _path(loaded.raw, key) if label == "--set" else None
        if not path:
            continue
        cut = next((i for i, part in enumerate(path) if "." in part), len(path))
        at = path[: max(cut, 1)]
        value: Any = loaded.raw
        for part in at:
            value = value[part]
        name = ".".join(at)
        chosen[name] = _templated(value, name, loaded.secret_keys)
    top = [k for k in chosen if not any(k.startswith(p + ".") for p in chosen if p != k)]
    return [f"{k}={json.dumps(chosen[k], default=str)}" for k in top]


def _path(data: Any, key: str) -> list[str] | None:
    """The keys leading to dotted ``key`` in nested mappings whose own keys may hold dots."""
    if not isinstance(data, Mapping):
        return None
    if key in data:
        return [key]
    for k in data:
        if key.startswith(f"{k}."):
            rest = _path(data[k], key[len(k) + 1 :])
            if rest is not None:
                return [k, *rest]
    return None


def _templated(value: Any, key: str, secrets: Mapping[str, str]) -> Any:
    if key in secrets:
        return secrets[key]
    if isinstance(value, Mapping):
        return {k: _templated(v, f"{key}.{k}", secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_templated(v, f"{key}[{i}]", secrets) for i, v in enumerate(value)]
    return value


def size_folder(workdir: Path, size: int) -> Path:
    return workdir / f"ingest-{human(size)}"


def measure_in_child(loaded: Loaded, size: int, workdir: Path, keep: bool = False) -> Measure:
    """Run one size in a fresh interpreter and JVM; return what it measured."""
    folder = size_folder(workdir, size)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    spec = {
        "profile": loaded.profile,
        "conf_dir": str(loaded.conf_dir),
        "overrides": cli_overrides(loaded),
        "size": size,
        "folder": str(folder),
        "keep": keep,
        "log_level": logging.getLevelName(logging.getLogger().getEffectiveLevel()),
    }
    spec_path = folder / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
    # A child of spark-submit must not attach to its parent's JVM: it builds its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_GATEWAY_")}
    log.info("bench ingest size=%d: child process, folder=%s", size, folder)
    done = subprocess.run(
        [sys.executable, "-m", "crossdata.collect.bench", str(spec_path)], env=env, check=False
    )
    result, failure = folder / RESULT, folder / FAILURE
    if failure.is_file():  # the child's own one-line error, with its exit code
        stopped = json.loads(failure.read_text(encoding="utf-8"))
        error = CrossdataError(f"bench ingest size={size}: {stopped['error']}")
        error.exit_code = int(stopped["exit_code"])
        raise error
    if done.returncode != 0 or not result.is_file():
        raise CrossdataError(
            f"bench ingest size={size}: the child process failed (exit {done.returncode}); "
            "its traceback is above"
        )
    data = json.loads(result.read_text(encoding="utf-8"))
    return Measure(**data)


# -- the child: one size -------------------------------------------------------------------------
def size_settings(spec: Mapping[str, Any]) -> Loaded:
    """The caller's settings, pointed at this size's world, lakehouse and checkpoints."""
    folder = Path(spec["folder"])
    world = folder / "world"
    return load_settings(
        profile=spec["profile"],
        conf_dir=spec["conf_dir"],
        overrides=[
            *spec["overrides"],
            f"world.out={world}",
            f"world.persons={persons_for(int(spec['size']))}",
            f"world.days={DAYS}",
            f"collect.landing={world}",
            f"lakehouse.root={folder / 'lakehouse'}",
            f"collect.checkpoint_dir={folder / 'checkpoints'}",
            f"spark.checkpoint_dir={folder / 'spark-checkpoints'}",
        ],
    )


def events_ddl() -> str:
    """The events contract as a Spark schema (what bronze types the fields as)."""
    from crossdata.contracts import SOURCES

    return ", ".join(f"`{f.name}` {DDL_TYPES[f.type]}" for f in SOURCES[SOURCE].fields)


def reference_seconds(spark, landing: str, out: Path, schema: str | None = None) -> float:
    """The plain copy: read the landing JSON files, write them as one Delta table."""
    with timed() as t:
        # The files sit in one folder per delivery day, as bronze reads them.
        reader = spark.read.option("recursiveFileLookup", "true")
        if schema:
            reader = reader.schema(schema)
        reader.json(landing).write.format("delta").save(str(out))
    shutil.rmtree(out, ignore_errors=True)
    return t.seconds


def warm_up_delta(spark, out: Path) -> None:
    """Load Delta's classes and caches once, so neither side pays for them in its time."""
    spark.range(1000).write.format("delta").save(str(out))
    spark.read.format("delta").load(str(out)).count()
    shutil.rmtree(out, ignore_errors=True)


def _reset_peak(pid: int | str) -> bool:
    """Reset a process's peak RSS (Linux >= 4.0); False when not possible here."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def _jvm_heap_mb(spark) -> tuple[float | None, float | None]:
    """Heap in use after a full GC (what the JVM retains) and the heap's ceiling."""
    try:
        runtime = spark._jvm.java.lang.Runtime.getRuntime()
        spark._jvm.java.lang.System.gc()
        used = (runtime.totalMemory() - runtime.freeMemory()) / 2**20
        return used, runtime.maxMemory() / 2**20
    except Exception:
        return None, None


def _progress_ms(stream) -> tuple[int, dict[str, int]]:
    """Batches and durationMs phases summed over a finished stream's recent progress."""
    query = getattr(stream, "_query", None)  # RunningStream keeps the StreamingQuery here
    if query is None:
        return 0, {}
    totals: dict[str, int] = {}
    batches = 0
    for p in (
        query.recentProgress
    ):  # the last 100 triggers (spark.sql.streaming.numRecentProgressUpdates)
        if not p.numInputRows:
            continue
        batches += 1
        for phase, ms in (p.durationMs or {}).items():
            totals[phase] = totals.get(phase, 0) + int(ms)
    return batches, totals


def measure(spec: Mapping[str, Any]) -> Measure:
    """Generate the world of one size, then time the reference and the ingestion of events."""
    from crossdata.collect.ingest import build_sessions, start_bronze, start_silver, summarize
    from crossdata.contracts import SOURCES
    from crossdata.ops import Context, job_run
    from crossdata.ops.runs import JobRun, new_run_id
    from crossdata.spark import get_spark
    from crossdata.spark.session import to_uri
    from crossdata.world.bench import folder_bytes
    from crossdata.world.generate import generate_world

    loaded = size_settings(spec)
    settings = loaded.settings
    folder = Path(spec["folder"])
    size = int(spec["size"])
    spark = get_spark(settings)
    ctx = Context.create(loaded, spark=spark)
    job = JobRun(new_run_id("bench-ingest-generate"), "bench ingest", dt.datetime.now(dt.UTC))
    log.info("bench ingest size=%d persons=%d days=%d", size, settings.world.persons, DAYS)
    world = generate_world(spark, settings.world, job)
    landing = settings.collect.landing
    events_dir = f"{to_uri(landing).rstrip('/')}/{SOURCE}"

    # Peaks from here on belong to the measured steps, not to the generation.
    jvm = jvm_pid(spark)
    reset = _reset_peak("self") and (jvm is None or _reset_peak(jvm))
    if not reset:
        log.warning("bench ingest: cannot reset peak RSS; peaks include the generation")

    warm_up_delta(spark, folder / "warm-up")
    load_before = os.getloadavg()[0]
    log.info("bench ingest: reference, schema inferred (before)")
    ref_before = reference_seconds(spark, events_dir, folder / "reference")
    source = SOURCES[SOURCE]
    with job_run(ctx, "bench ingest") as run:
        # What run_ingest does for one source, timed half by half.
        spark.conf.set("spark.sql.mapKeyDedupPolicy", "LAST_WIN")
        spark.conf.set("spark.sql.streaming.numRecentProgressUpdates", str(PROGRESS_KEPT))
        with timed() as tb:
            bronze = start_bronze(ctx, run, source, landing)
            bronze.wait()
        with timed() as ts:
            silver = start_silver(ctx, run, source)
            if silver is not None:
                silver.wait()
        with timed() as tx:
            build_sessions(ctx, run)
        summary = summarize(ctx.lake, run.run_id)
    log.info("bench ingest: reference, schema inferred (after)")
    ref_after = reference_seconds(spark, events_dir, folder / "reference")
    log.info("bench ingest: reference, schema given")
    ref_schema = reference_seconds(spark, events_dir, folder / "reference", events_ddl())
    load_after = os.getloadavg()[0]

    driver_rss = proc_status_kb("self", "VmHWM")
    jvm_rss = proc_status_kb(jvm, "VmHWM") if jvm is not None else None
    heap_live, heap_max = _jvm_heap_mb(spark)
    outcome = summary.bronze.get(SOURCE)
    bronze_batches, bronze_ms = _progress_ms(bronze)
    silver_batches, silver_ms = _progress_ms(silver) if silver is not None else (0, {})
    lake = ctx.lake
    return Measure(
        size=size,
        persons=settings.world.persons,
        events=world.lines.get(SOURCE, 0),
        files=world.files.get(SOURCE, 0),
        landing_mb=folder_bytes(Path(landing) / SOURCE) / 1e6,
        generate_s=world.seconds,
        reference_before_s=ref_before,
        reference_after_s=ref_after,
        reference_schema_s=ref_schema,
        bronze_s=tb.seconds,
        silver_s=ts.seconds,
        sessions_s=tx.seconds,
        read=outcome.read if outcome else 0,
        bronze_rows=outcome.loaded if outcome else 0,
        quarantined=outcome.quarantined if outcome else 0,
        duplicates=outcome.duplicates if outcome else 0,
        silver_rows=lake.read("silver.events").count() if lake.exists("silver.events") else 0,
        sessions=lake.read("silver.sessions").count() if lake.exists("silver.sessions") else 0,
        bronze_batches=bronze_batches,
        silver_batches=silver_batches,
        stream_ms={"bronze": bronze_ms, "silver": silver_ms},
        max_files_per_trigger=settings.collect.max_files_per_trigger,
        lines_per_file=settings.world.lines_per_file,
        driver_rss_mb=None if driver_rss is None else driver_rss / 1024,
        jvm_rss_mb=None if jvm_rss is None else jvm_rss / 1024,
        jvm_heap_live_mb=heap_live,
        jvm_heap_max_mb=heap_max,
        load_before=load_before,
        load_after=load_after,
    )


def child(spec_path: str) -> int:
    """``python -m crossdata.collect.bench SPEC``: measure one size, write ``result.json``."""
    from crossdata.cli import configure_logging

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    configure_logging(spec.get("log_level") or "INFO")
    folder = Path(spec["folder"])
    (folder / FAILURE).unlink(missing_ok=True)
    try:
        m = measure(spec)
    except CrossdataError as exc:  # the parent says it in one line, with the same exit code
        failure = {"error": str(exc), "exit_code": exc.exit_code}
        (folder / FAILURE).write_text(json.dumps(failure), encoding="utf-8")
        return exc.exit_code
    (folder / RESULT).write_text(json.dumps(dataclasses.asdict(m), indent=2), encoding="utf-8")
    log.info("bench ingest size=%d: %s", m.size, where_time_goes(m))
    if not spec.get("keep"):
        # Worlds and tables are large: keep the disk for the next size.
        for name in ("world", "lakehouse", "checkpoints", "spark-checkpoints"):
            shutil.rmtree(folder / name, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(child(sys.argv[1]))
