"""Read and write crossdata's Delta tables by name; the only code that knows paths.

Everything goes through SQL and the DataFrame API (no DeltaTable/JVM handles), so the same calls
work on a classic session and over Spark Connect. Writes retry Delta's optimistic-concurrency
conflicts with bounded back-off, then fail with ConcurrentWriteError.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from crossdata.config.schema import Settings
from crossdata.errors import ConcurrentWriteError, CrossdataError, InvariantViolation
from crossdata.lakehouse.tables import LAYERS, TABLES, Table, table
from crossdata.spark.session import is_connect, to_uri

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
T = TypeVar("T")

# Delta's optimistic-concurrency failures, by error class and by exception name; a retry of
# the whole write (re-reading the snapshot) is the documented way to resolve them.
_CONFLICT_MARKERS = (
    "DELTA_CONCURRENT_",
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
)


# Delta's error for a row that breaks a CHECK constraint; its message goes on to list the row's
# values, one "\n - column : value" line each.
_VIOLATION = re.compile(r"CHECK constraint (.+?) violated by row")


def withheld_violation(exc: BaseException, table_name: str) -> InvariantViolation | None:
    """The CHECK-constraint failure in ``exc`` without the row's values, or None."""
    text = str(exc)
    if "DELTA_VIOLATE_CONSTRAINT" not in text and "violated by row" not in text:
        return None
    found = _VIOLATION.search(text)
    constraint = found.group(1) if found else "(unnamed)"
    return InvariantViolation(
        f"table {table_name}: a row breaks CHECK constraint {constraint}; the row's values "
        "are withheld (personal data) and nothing was written. It is a bug or a missing "
        "expectation: look at the rows of the write's input where that condition is false"
    )


# The userMetadata of a Z-order crossdata ran: the table version whose changes it covers.
ZORDERED_THROUGH = "crossdata-zordered-through:"
USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
# What a Delta commit's JSON says of the files it added, as far as Z-ordering asks.
_LOG_ADDS = "add STRUCT<partitionValues: MAP<STRING, STRING>, dataChange: BOOLEAN>"


def _partitions_predicate(
    columns: Sequence[str], partitions: Sequence[dict[str, str | None]]
) -> str:
    """An OPTIMIZE WHERE predicate selecting exactly these partitions (values as Delta writes
    them in its log: text, None for a null partition)."""

    def equals(column: str, value: str | None) -> str:
        return f"`{column}` IS NULL" if value is None else f"`{column}` = '{_sql_string(value)}'"

    return " OR ".join(
        "(" + " AND ".join(equals(c, values.get(c)) for c in columns) + ")" for values in partitions
    )


def _condition_text(sql: str) -> str:
    """A CHECK condition's text without the spaces Delta may add or drop: it stores the
    condition as given at creation, but as tokens joined by spaces after ALTER TABLE
    (``change IN ( 'a' , 'b' )``)."""
    return re.sub(r"\s*([^\w\s'])\s*", r"\1", " ".join(sql.split()))


def is_conflict(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}"
    return any(marker in text for marker in _CONFLICT_MARKERS)


# The longest wait between two attempts of a conflicted write, whatever the retry count.
MAX_BACKOFF_SECONDS = 60.0


def _exists_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the table being created exists already (created by another)."""
    text = str(exc)
    return "ALREADY_EXISTS" in text or "already exists" in text.lower()


def _is_missing_table(exc: BaseException) -> bool:
    text = str(exc)
    return any(
        m in text
        for m in (
            "DELTA_MISSING_DELTA_TABLE",
            "PATH_NOT_FOUND",
            "is not a Delta table",
            "DELTA_TABLE_NOT_FOUND",
            "doesn't exist",
        )
    )


# Paths of Delta tables this process has seen exist, so that each micro-batch's fresh Lakehouse
# object skips Delta's snapshot load (30 to 45 ms a table in a warm local session). A folder can
# still be deleted under a live process (`crossdata demo --fresh` run twice from a notebook, a
# user's rm -rf), so a hit counts only while the table's log folder is there: one file-system
# lookup through Hadoop's client, about 3 ms. A Spark Connect client has no JVM to ask and
# skips the cache.
_EXISTING: set[str] = set()


def path_exists(spark: SparkSession, path: str) -> bool | None:
    """Whether ``path`` exists, asked of its file system through Hadoop's client (any scheme
    the session reads); None when this session cannot ask it directly (Spark Connect)."""
    if is_connect(spark):
        return None
    jvm = spark._jvm
    if jvm is None:
        return None
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    hadoop_conf = spark._jsc.hadoopConfiguration()
    return bool(hadoop_path.getFileSystem(hadoop_conf).exists(hadoop_path))


STATS_COLUMNS = "delta.dataSkippingStatsColumns"


def stats_columns(spec: Table, columns: Sequence[str] | None) -> str | None:
    """The value of delta.dataSkippingStatsColumns for a table with ``columns`` (None: the
    table's fixed schema): its declared statistics columns that it has, or None for Delta's
    default. Delta refuses a name the table lacks; a frame written by a test or an older
    version may lack one (it gets the others; ``crossdata maintain`` completes the list)."""
    present = set(spec.stats_columns if columns is None else columns)
    return ",".join(c for c in spec.stats_columns if c in present) or None


# Delta's defaults: removed files are kept 7 days (delta.deletedFileRetentionDuration), the log
# 30 days (delta.logRetentionDuration).
DELTA_DEFAULT_FILE_RETENTION_HOURS = 7 * 24
_DEFAULT_LOG_RETENTION_HOURS = 30 * 24


def retention_properties(hours: int) -> dict[str, str]:
    """The table properties that keep a table's removed files (and its versions readable by
    time travel) ``hours`` long: the files' retention, and the log's when the default 30 days
    would drop versions sooner."""
    if hours < 0:
        raise CrossdataError(f"a retention of {hours} hours: it cannot be negative")
    interval = f"interval {hours} hours"
    props = {"delta.deletedFileRetentionDuration": interval}
    if hours > _DEFAULT_LOG_RETENTION_HOURS:
        props["delta.logRetentionDuration"] = interval
    return props


def _table_properties(spec: Table, columns: Sequence[str] | None) -> str:
    """TBLPROPERTIES for a new table: change data feed, statistics columns, and CHECK
    constraints set at creation (Delta stores them as delta.constraints.* properties: one
    commit instead of one each)."""
    props = {f"delta.constraints.{k.lower()}": v for k, v in spec.constraints.items()}
    if spec.change_data_feed:
        props["delta.enableChangeDataFeed"] = "true"
    stats = stats_columns(spec, columns)
    if stats is not None:
        props[STATS_COLUMNS] = stats
    if not props:
        return ""
    quoted = ", ".join(f"'{k}' = '{_sql_string(v)}'" for k, v in props.items())
    return f" TBLPROPERTIES ({quoted})"


def _sql_string(value: str) -> str:
    """Escape a value for a single-quoted Spark SQL literal."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _same_location(a: str, b: str) -> bool:
    def norm(uri: str) -> str:
        return uri.replace("file:///", "file:/").rstrip("/")

    return norm(a) == norm(b)


@dataclass(frozen=True)
class LakeLocation:
    """Where a lakehouse is, without a session: safe to ship to a streaming batch function
    (over Spark Connect it runs on the server, where the client's session does not exist)."""

    root: str
    register_tables: bool = True
    write_retries: int = 5
    retry_backoff_seconds: float = 0.5

    def open(self, spark: SparkSession) -> Lakehouse:
        return Lakehouse(
            spark, self.root, self.register_tables, self.write_retries, self.retry_backoff_seconds
        )


class Lakehouse:
    """crossdata's tables under one root, addressed as ``layer.noun``."""

    def __init__(
        self,
        spark: SparkSession,
        root: str,
        register_tables: bool = True,
        max_retries: int = 5,
        backoff_seconds: float = 0.5,
    ) -> None:
        self.spark = spark
        self.root = to_uri(root).rstrip("/")
        self.register_tables = register_tables
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self._databases_ready = False

    @classmethod
    def from_settings(cls, spark: SparkSession, settings: Settings) -> Lakehouse:
        s = settings.lakehouse
        return cls(spark, s.root, s.register_tables, s.write_retries, s.retry_backoff_seconds)

    @property
    def location(self) -> LakeLocation:
        return LakeLocation(self.root, self.register_tables, self.max_retries, self.backoff_seconds)

    # -- names and paths -------------------------------------------------------------------
    def path(self, name: str) -> str:
        spec = table(name)
        return f"{self.root}/{spec.layer}/{spec.noun}"

    def ident(self, name: str) -> str:
        """How crossdata's own SQL names a table: by path, which needs no catalog lookup and
        cannot point at another root. People use ``layer.noun`` (see ``register_all``)."""
        return "delta.`" + self.path(name).replace("`", "``") + "`"

    # -- catalog -----------------------------------------------------------------------------
    def ensure_databases(self) -> None:
        """One database per layer, located under the root (idempotent)."""
        if self._databases_ready or not self.register_tables:
            return
        for layer in LAYERS:
            # Asked first: Spark 4.2's CREATE DATABASE IF NOT EXISTS warns "created concurrently"
            # for a database that was there all along, four log lines per streaming batch.
            if self.spark.catalog.databaseExists(layer):
                continue
            where = _sql_string(f"{self.root}/{layer}")
            self.spark.sql(f"CREATE DATABASE IF NOT EXISTS {layer} LOCATION '{where}'")
        self._databases_ready = True

    def register(self, name: str) -> bool:
        """Register an existing Delta table in the catalog; False when it has no data yet.

        The catalog is asked every time: another Lakehouse in the session (another root) may
        have re-pointed the name since this one registered it."""
        if not self.exists(name):
            return False
        if self.register_tables:
            self.ensure_databases()
            registered = self._catalog_location(name)
            if registered is not None and _same_location(registered, self.path(name)):
                return True
            if registered is not None:
                # The name points at another root (another lakehouse in this session): re-point
                # it. The table is external, so dropping the name leaves its files alone.
                log.info("lakehouse: re-registering table=%s at this root", name)
                self.spark.sql(f"DROP TABLE IF EXISTS {name}")
            where = _sql_string(self.path(name))
            self.spark.sql(f"CREATE TABLE IF NOT EXISTS {name} USING DELTA LOCATION '{where}'")
        return True

    def _catalog_location(self, name: str) -> str | None:
        """Where the catalog's ``name`` points, None when the name is free.

        Read from the catalog entry (DESCRIBE TABLE EXTENDED), not from DESCRIBE DETAIL,
        which rebuilds the table's whole Delta state to answer (about 1 s a table, paid at
        every creation when a session had the name registered at another root). A name
        whose files are gone is reported at an empty location: it is stale either way.
        """
        try:
            if not self.spark.catalog.tableExists(name):
                return None
            rows = self.spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
        except Exception as exc:
            if "TABLE_OR_VIEW_NOT_FOUND" in str(exc):
                return None  # dropped by another writer between the two questions
            if _is_missing_table(exc):  # the registered location no longer holds a table
                return ""
            raise
        # A few dozen rows: the columns, then the catalog entry's fields after a marker row.
        details = False
        for r in rows:
            details = details or r[0] == "# Detailed Table Information"
            if details and r[0] == "Location":
                return str(r[1])
        return ""

    def register_all(self) -> list[str]:
        """Register every crossdata table that exists (for notebooks and SQL users)."""
        return [name for name in sorted(TABLES) if self.register(name)]

    def exists(self, name: str) -> bool:
        path = self.path(name)
        if path in _EXISTING:
            if path_exists(self.spark, f"{path}/_delta_log"):
                return True
            _EXISTING.discard(path)  # deleted since, or not askable: Delta decides below
        try:
            self.spark.read.format("delta").load(path).schema  # noqa: B018
        except Exception as exc:  # the reader's only way to say "no table here"
            if _is_missing_table(exc):
                return False
            raise
        _EXISTING.add(path)
        return True

    # -- reads ---------------------------------------------------------------------------------
    def read(
        self, name: str, version: int | None = None, timestamp: str | None = None
    ) -> DataFrame:
        """The table (optionally as of a version or timestamp: Delta time travel)."""
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        if timestamp is not None:
            reader = reader.option("timestampAsOf", timestamp)
        if not self.exists(name):
            raise CrossdataError(f"table {name} does not exist yet at {self.path(name)}")
        return reader.load(self.path(name))

    def read_changes(
        self, name: str, starting_version: int, ending_version: int | None = None
    ) -> DataFrame:
        """Rows changed since a version, from the change data feed."""
        reader = (
            self.spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", starting_version)
        )
        if ending_version is not None:
            reader = reader.option("endingVersion", ending_version)
        return reader.load(self.path(name))

    def version(self, name: str) -> int | None:
        """The latest commit version, or None when the table does not exist."""
        if not self.exists(name):
            return None
        row = self.spark.sql(f"DESCRIBE HISTORY {self.ident(name)} LIMIT 1").first()
        return None if row is None else int(row["version"])

    def table_id(self, name: str) -> str | None:
        """Delta's id of the table (new whenever the table is created again), or None when
        the table does not exist."""
        if not self.exists(name):
            return None
        row = self.spark.sql(f"DESCRIBE DETAIL {self.ident(name)}").first()
        return None if row is None else str(row["id"])

    # -- writes --------------------------------------------------------------------------------
    def create_if_missing(self, name: str, schema_source: DataFrame | None = None) -> None:
        """Create the table with its layout, properties and constraints if it does not exist."""
        if self.exists(name):
            return
        spec = table(name)
        self.ensure_databases()
        registered = self._catalog_location(name) if self.register_tables else None
        if registered is not None:
            if _same_location(registered, self.path(name)) and self.exists(name):
                return  # another writer (a stream of this job) created it just now
            self.spark.sql(f"DROP TABLE IF EXISTS {name}")  # stale name from another root
        target = name if self.register_tables else self.ident(name)
        tblprops = _table_properties(spec, None if schema_source is None else schema_source.columns)
        layout = ""
        if spec.partition_by:
            layout = f" PARTITIONED BY ({', '.join(spec.partition_by)})"
        elif spec.cluster_by:
            layout = f" CLUSTER BY ({', '.join(spec.cluster_by)})"
        location = f" LOCATION '{_sql_string(self.path(name))}'" if self.register_tables else ""
        try:
            self._create(name, spec, target, layout, location, tblprops, schema_source)
        except Exception as exc:
            # Another writer may be creating the same table right now: once it exists, use
            # it. Only an error such a race gives is waited on; any other is raised at once,
            # unless the table is there already.
            racing = isinstance(exc, ConcurrentWriteError) or is_conflict(exc) or _exists_error(exc)
            if not (self._appears(name) if racing else self.exists(name)):
                raise
            log.info(
                "lakehouse: table=%s was created by another writer (%s)", name, type(exc).__name__
            )
            return
        _EXISTING.add(self.path(name))
        log.info("lakehouse: created table=%s path=%s", name, self.path(name))

    def _create(
        self,
        name: str,
        spec: Table,
        target: str,
        layout: str,
        location: str,
        tblprops: str,
        schema_source: DataFrame | None,
    ) -> None:
        if spec.ddl is not None:  # its NOT NULL columns, not the first rows' nullability
            self._retrying(
                name,
                lambda: self.spark.sql(
                    f"CREATE TABLE IF NOT EXISTS {target} ({spec.ddl}) USING DELTA"
                    f"{layout}{location}{tblprops}"
                ),
            )
        else:
            if schema_source is None:
                raise CrossdataError(f"table {name} has no fixed schema: pass a DataFrame")
            # The view lives in the DataFrame's own session (inside foreachBatch that is a
            # clone of self.spark), so the statement must run there too.
            with self._view(schema_source.limit(0)) as view:
                self._retrying(
                    name,
                    lambda: schema_source.sparkSession.sql(
                        f"CREATE TABLE IF NOT EXISTS {target} USING DELTA{layout}{location}"
                        f"{tblprops} AS SELECT * FROM {view}"
                    ),
                )

    def _appears(self, name: str, attempts: int = 10) -> bool:
        """Whether the table exists, waiting a little for a concurrent creation to finish."""
        for attempt in range(attempts):
            if self.exists(name):
                return True
            time.sleep(0.5 * (attempt + 1))
        return False

    def sync_constraints(self, name: str) -> list[str]:
        """Give the table the CHECK constraints its spec declares now (``crossdata maintain``):
        add those declared since it was created, and replace one whose condition changed
        (a set of allowed values grown), which would refuse the new rows. Returns their names."""
        spec = table(name)
        ident = self.ident(name)
        prefix = "delta.constraints."
        existing = {
            r["key"][len(prefix) :]: r["value"]
            for r in self.spark.sql(f"SHOW TBLPROPERTIES {ident}").collect()
            if r["key"].startswith(prefix)
        }
        changed = []
        for cname, expr in spec.constraints.items():
            stored = existing.get(cname.lower())
            if stored is not None and _condition_text(stored) == _condition_text(expr):
                continue
            # Rows the new condition refuses would fail the ADD, after the DROP had removed
            # the old condition: the table would be left with neither. Refused first. Delta
            # refuses a row whose condition is NULL as well as false, hence IS NOT TRUE.
            refused = self.spark.sql(
                f"SELECT count(*) FROM {ident} WHERE ({expr}) IS NOT TRUE"
            ).first()
            if refused is not None and refused[0]:
                raise CrossdataError(
                    f"table {name}: {refused[0]} rows break the constraint {cname} CHECK "
                    f"({expr}); the table keeps its current constraints. Correct or remove "
                    "those rows, then run maintain again"
                )
            add = f"ALTER TABLE {ident} ADD CONSTRAINT {cname} CHECK ({expr})"
            if stored is None:
                self._retrying(name, functools.partial(self.spark.sql, add))
            else:
                drop = f"ALTER TABLE {ident} DROP CONSTRAINT {cname}"
                self._retrying(name, functools.partial(self.spark.sql, drop))
                try:
                    self._retrying(name, functools.partial(self.spark.sql, add))
                except Exception as exc:
                    # A row written since the count, or conflicts past the retries: the old
                    # condition goes back before the error is raised.
                    old = f"ALTER TABLE {ident} ADD CONSTRAINT {cname} CHECK ({stored})"
                    self._retrying(name, functools.partial(self.spark.sql, old))
                    raise CrossdataError(
                        f"table {name}: the constraint {cname} could not be replaced "
                        f"({type(exc).__name__}); the table keeps its current condition"
                    ) from exc
            changed.append(cname)
        return changed

    def declare_stats_columns(self, name: str) -> bool:
        """Give a table created before its ``stats_columns`` were declared those columns
        (``crossdata maintain``, before compacting, so rewritten files carry them). Files
        written earlier keep their statistics. Returns whether the table changed."""
        spec = table(name)
        wanted = stats_columns(spec, self.read(name).columns) if spec.stats_columns else None
        if wanted is None:
            return False
        return self._set_properties(name, {STATS_COLUMNS: wanted})

    def _set_properties(self, name: str, wanted: dict[str, str]) -> bool:
        """Set the table properties of ``name`` that differ from ``wanted`` (one metadata
        commit, retried like any write; none when all are set). Returns whether it committed."""
        ident = self.ident(name)
        current = {
            r["key"]: r["value"] for r in self.spark.sql(f"SHOW TBLPROPERTIES {ident}").collect()
        }  # a few dozen rows
        changed = {k: v for k, v in wanted.items() if current.get(k) != v}
        if not changed:
            return False
        pairs = ", ".join(f"'{k}' = '{v}'" for k, v in changed.items())
        statement = f"ALTER TABLE {ident} SET TBLPROPERTIES ({pairs})"
        self._retrying(name, functools.partial(self.spark.sql, statement))
        return True

    def optimize(self, name: str) -> str:
        """Compact ``name`` (Z-ordered by its declared columns), retried on write conflicts;
        returns what was done, for maintain's report.

        OPTIMIZE rewrites the files it read when it started; a writer that removes one of them
        meanwhile (a DELETE, a MERGE that updates rows) makes Delta refuse the compaction's
        commit. The retry starts again from the table as it is then.

        Plain compaction only rewrites small files, so it is cheap once done. Z-ordering in
        Delta rewrites every file it is pointed at, each time, so a Z-ordered table is given
        only what changed since its last Z-order: nothing when no data was written since, the
        partitions written since when it is partitioned, else the whole table. The commit's
        userMetadata records the version whose changes it covers.
        """
        spec = table(name)
        ident = self.ident(name)
        if not spec.zorder_by:
            self._retrying(name, functools.partial(self.spark.sql, f"OPTIMIZE {ident}"))
            return "compacted"
        current, changed = self._written_since_zorder(name)
        where, done = "", "Z-ordered whole"
        if changed is not None and not changed:
            return "Z-order up to date"
        if changed is not None and spec.partition_by:
            where = " WHERE " + _partitions_predicate(spec.partition_by, changed)
            done = f"Z-ordered {len(changed)} partitions"
        zorder = f" ZORDER BY ({', '.join(spec.zorder_by)})"
        statement = f"OPTIMIZE {ident}{where}{zorder}"
        with self._commit_metadata(f"{ZORDERED_THROUGH}{current}"):
            self._retrying(name, functools.partial(self.spark.sql, statement))
        return done

    def _written_since_zorder(
        self, name: str
    ) -> tuple[int | None, list[dict[str, str | None]] | None]:
        """The table's current version, and the partition values of the files written to
        ``name`` since its last Z-order covered it, up to that version (an empty list: none;
        None when that is unknown: never Z-ordered, or the commits since are no longer in the
        log). Read from the history and the commits' JSON, not from the data."""
        from pyspark.sql import functions as F

        # A command runs once, within spark.sql, and keeps its rows: both questions read them.
        history = self.spark.sql(f"DESCRIBE HISTORY {self.ident(name)}")
        latest = history.agg(F.max("version")).first()
        current = None if latest is None or latest[0] is None else int(latest[0])
        last = (
            history.where(F.col("operation") == "OPTIMIZE")
            .where(F.col("operationParameters")["zOrderBy"] != "[]")
            .orderBy(F.col("version").desc())
            .select("readVersion", "userMetadata")
            .first()
        )
        if last is None:
            return current, None
        tag = last["userMetadata"] or ""
        # Another tool's Z-order covers what it read; crossdata's says what it was given.
        through = int(tag[len(ZORDERED_THROUGH) :]) if tag.startswith(ZORDERED_THROUGH) else None
        through = last["readVersion"] if through is None else through
        if through is None or current is None:
            return current, None
        if current <= through:
            return current, []
        log_dir = f"{self.path(name)}/_delta_log"
        commits = [f"{log_dir}/{v:020d}.json" for v in range(through + 1, current + 1)]
        try:
            written = (
                self.spark.read.schema(_LOG_ADDS)
                .json(commits)
                .where(F.col("add.dataChange"))  # a compaction's own files are not new data
                # as sorted (key, value) pairs: a map cannot be compared for distinct
                .select(F.array_sort(F.map_entries("add.partitionValues")).alias("values"))
                .distinct()
                .collect()  # one row per partition written: a few days
            )
        except Exception as exc:
            if _is_missing_table(exc):  # the log was cleaned up since: Z-order it all
                return current, None
            raise
        return current, [{e["key"]: e["value"] for e in r["values"] or []} for r in written]

    @contextmanager
    def _commit_metadata(self, text: str) -> Iterator[None]:
        """Delta's userMetadata for the commits this session makes meanwhile."""
        before = self.spark.conf.get(USER_METADATA, None)
        self.spark.conf.set(USER_METADATA, text)
        try:
            yield
        finally:
            if before is None:
                self.spark.conf.unset(USER_METADATA)
            else:
                self.spark.conf.set(USER_METADATA, before)

    def vacuum(self, name: str, retain_hours: int) -> None:
        """Delete the files of ``name`` that no version younger than ``retain_hours`` reads
        (and files no commit ever took, once that old).

        Delta 4 ignores VACUUM's ``RETAIN n HOURS`` unless n is 0, and keeps files for the
        table's ``delta.deletedFileRetentionDuration`` (7 days by default) instead, with only
        a warning in Spark's log. So the retention is written on the table first, where every
        later VACUUM (crossdata's or anyone's) and time travel's own limit read it. A retention
        longer than the log's (30 days by default) lengthens the log's too: a version whose
        files are kept stays readable. VACUUM commits its start and end to the table's log,
        so it is retried like any write.
        """
        self._set_properties(name, retention_properties(retain_hours))
        self._retrying(name, functools.partial(self.spark.sql, f"VACUUM {self.ident(name)}"))

    def append(
        self,
        df: DataFrame,
        name: str,
        merge_schema: bool = False,
        txn: tuple[str, int] | None = None,
    ) -> None:
        """Append rows. ``txn=(app_id, version)`` makes the append idempotent: Delta skips a
        write whose version it has already committed for that app id (streaming replays). The
        commit also carries the txn as its userMetadata, so ``txn_rows`` can find it again."""
        self.create_if_missing(name, df)
        writer = df.write.format("delta").mode("append")
        if merge_schema:
            writer = writer.option("mergeSchema", "true")
        if txn is not None:
            writer = (
                writer.option("txnAppId", txn[0])
                .option("txnVersion", txn[1])
                .option("userMetadata", _txn_tag(txn))
            )
        self._retrying(name, lambda: writer.save(self.path(name)))

    def txn_rows(self, name: str, txn: tuple[str, int], lookback: int = 20) -> int | None:
        """Rows the append made with ``txn`` wrote (Delta's ``numOutputRows``), or None when
        that commit is not among the table's last ``lookback`` commits. A replay whose write
        Delta skipped finds the commit of its first attempt."""
        history = self.spark.sql(f"DESCRIBE HISTORY {self.ident(name)} LIMIT {lookback}")
        tag = _txn_tag(txn)
        for r in history.select("userMetadata", "operation", "operationMetrics").collect():
            if r["userMetadata"] == tag and r["operation"] == "WRITE":
                rows = (r["operationMetrics"] or {}).get("numOutputRows")
                return None if rows is None else int(rows)
        return None

    def overwrite(self, df: DataFrame, name: str, replace_where: str | None = None) -> None:
        """Replace the table's rows (or only those matching ``replace_where``)."""
        self.create_if_missing(name, df)
        writer = df.write.format("delta").mode("overwrite")
        if replace_where:
            writer = writer.option("replaceWhere", replace_where)
        self._retrying(name, lambda: writer.save(self.path(name)))

    def merge(
        self,
        df: DataFrame,
        name: str,
        keys: Sequence[str] | None = None,
        when_matched: str = "update",
        matched_condition: str | None = None,
        source_condition: str | None = None,
    ) -> dict[str, int]:
        """Upsert ``df`` on ``keys`` (the table's keys by default) with SQL MERGE.

        when_matched: "update" (UPDATE SET *), "ignore" (insert only new keys), "delete".
        source_condition narrows the target side, e.g. to the partitions the batch touches.
        Returns Delta's counts: inserted, updated, deleted.
        """
        spec = table(name)
        on_keys = tuple(keys or spec.keys)
        if not on_keys:
            raise CrossdataError(f"merge into {name} needs keys")
        on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in on_keys)
        if source_condition:
            on = f"({on}) AND ({source_condition})"
        clauses = []
        cond = f" AND ({matched_condition})" if matched_condition else ""
        if when_matched == "update":
            clauses.append(f"WHEN MATCHED{cond} THEN UPDATE SET *")
        elif when_matched == "delete":
            clauses.append(f"WHEN MATCHED{cond} THEN DELETE")
        elif when_matched != "ignore":
            raise ValueError(f"when_matched must be update, ignore or delete, not {when_matched}")
        clauses.append("WHEN NOT MATCHED THEN INSERT *")
        return self.merge_sql(df, name, on, clauses)

    def merge_sql(
        self, df: DataFrame, name: str, on: str, clauses: Sequence[str]
    ) -> dict[str, int]:
        """MERGE ``df`` (as ``s``) into the table (as ``t``) with hand-written clauses."""
        self.create_if_missing(name, df)
        ident = self.ident(name)
        with self._view(df) as view:
            result = self._retrying(
                name,
                lambda: df.sparkSession.sql(
                    f"MERGE INTO {ident} AS t USING {view} AS s ON {on} {' '.join(clauses)}"
                ).first(),
            )
        if result is None:
            return {"inserted": 0, "updated": 0, "deleted": 0}
        row = result.asDict()
        return {
            "inserted": int(row.get("num_inserted_rows") or 0),
            "updated": int(row.get("num_updated_rows") or 0),
            "deleted": int(row.get("num_deleted_rows") or 0),
        }

    def write(self, df: DataFrame, name: str) -> None:
        """Write ``df`` the way the table is declared to be written."""
        mode = table(name).mode
        if mode == "append":
            self.append(df, name)
        elif mode == "overwrite":
            self.overwrite(df, name)
        else:
            self.merge(df, name)

    # -- helpers -------------------------------------------------------------------------------
    @contextmanager
    def _view(self, df: DataFrame) -> Iterator[str]:
        view = f"_crossdata_src_{uuid.uuid4().hex[:12]}"
        df.createOrReplaceTempView(view)
        try:
            yield view
        finally:
            df.sparkSession.catalog.dropTempView(view)

    def _retrying(self, name: str, action: Callable[[], T]) -> T:
        for attempt in range(1, self.max_retries + 2):
            try:
                return action()
            except Exception as exc:
                violation = withheld_violation(exc, name)
                if violation is not None:
                    # not chained: the JVM's message names the row's values
                    raise violation from None
                if not is_conflict(exc):
                    raise
                if attempt > self.max_retries:
                    raise ConcurrentWriteError(
                        f"table {name}: write still conflicted with another writer after "
                        f"{self.max_retries} retries; run the job again when the other one is done"
                    ) from exc
                delay = min(
                    MAX_BACKOFF_SECONDS,
                    self.backoff_seconds * (2 ** (attempt - 1)) * (1 + random.random()),
                )
                log.warning(
                    "lakehouse: write conflict table=%s attempt=%d retry_in=%.1fs",
                    name,
                    attempt,
                    delay,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")


def _txn_tag(txn: tuple[str, int]) -> str:
    """The userMetadata of an idempotent append: its txn app id and version."""
    return f"crossdata:{txn[0]}:{txn[1]}"
