"""The one way crossdata gets a SparkSession.

``get_spark`` returns the session that already exists (spark-submit, Databricks, a notebook, a
test fixture) and otherwise builds one: local, or remote over Spark Connect when
``spark.remote`` is set. Importing this module starts nothing.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from crossdata import stack
from crossdata.config.schema import Settings, SparkSettings
from crossdata.errors import EnvironmentProblem

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DELTA_SESSION_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

# Settings crossdata's results depend on; also applied to a session it did not build.
SESSION_CONF_REQUIRED = {
    "spark.sql.session.timeZone": "UTC",
}

# PySpark 4.2 records, for every Column function called, the Python line that called it (a
# stack walk and a few round trips to the JVM each), so that a runtime error can name that
# line. crossdata's jobs build expression trees of thousands of calls per micro-batch:
# shaping one silver batch of events took 2.0 s on the driver with it and 0.85 s without
# (docs/bench-ingest.md). Off in sessions crossdata builds; spark.conf turns it back on.
# PySpark reads it once per process, at the first Column function called with a session.
DEBUGGING_CONF = {"spark.python.sql.dataFrameDebugging.enabled": "false"}


def to_uri(path: str) -> str:
    """A location Spark and Hadoop accept: URIs as given, local paths made absolute."""
    if "://" in path or path.startswith("file:"):
        return path
    # Not Path.as_uri(): it escapes a space as %20, and Hadoop takes a location's text as
    # the path's own characters, so files would land in a folder named "a%20b".
    return "file://" + Path(path).expanduser().resolve().as_posix()


@contextmanager
def conf_set(spark: SparkSession, values: Mapping[str, str]) -> Iterator[None]:
    """Within the block, ``spark`` has these SQL settings; after it, the values it had before
    (a setting it did not have is unset again), also when the block raises."""
    before = {key: spark.conf.get(key, None) for key in values}
    for key, value in values.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in before.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


def local_path(location: str) -> Path | None:
    """The local path of a ``file:`` URI or plain path (``to_uri``'s inverse); None for a
    location on any other file system."""
    # Read as Hadoop reads it: after the scheme and authority, every character is the path's
    # own ("%20", "#" and "?" included), where a URI parser would unescape or cut them.
    if location.startswith("file://"):
        rest = location[len("file://") :]
        return Path(rest[rest.find("/") :] if "/" in rest else "/")
    if location.startswith("file:"):
        return Path(location[len("file:") :])
    return Path(location) if urlparse(location).scheme == "" else None


def cached_jars(cache_dir: str) -> list[Path]:
    """The jars `make setup` put in the project-local cache, sorted for a stable classpath."""
    folder = Path(cache_dir)
    return sorted(folder.glob("*.jar")) if folder.is_dir() else []


def jar_conf(settings: SparkSettings) -> dict[str, str]:
    """spark.jars / spark.jars.packages for the configured jar mode."""
    mode = settings.jars.mode
    if mode == "provided":
        return {}
    if mode == "packages":
        return {"spark.jars.packages": ",".join(a.coordinate for a in stack.JVM_ARTIFACTS)}
    jars = cached_jars(settings.jars.cache_dir)
    missing = [
        a.jar_name
        for a in stack.JVM_ARTIFACTS
        if a.required and not any(j.name == a.jar_name for j in jars)
    ]
    if missing:
        folder = Path(settings.jars.cache_dir)
        where = "" if folder.is_absolute() else f" (relative to the current folder {Path.cwd()})"
        raise EnvironmentProblem(
            f"jar cache {settings.jars.cache_dir}{where} lacks {', '.join(missing)}: run "
            "`make setup`, or point spark.jars.cache_dir at the repository's .cache/jars, "
            "or set spark.jars.mode=packages to let Spark resolve them"
        )
    return {"spark.jars": ",".join(str(j.resolve()) for j in jars)}


def session_conf(settings: SparkSettings, jars: bool = True) -> dict[str, str]:
    """Everything crossdata sets on a session it builds (except master/app name); without
    the jars when the JVM already has its own (spark-submit: the submitter chose them)."""
    conf: dict[str, str] = {
        **DELTA_SESSION_CONF,
        **SESSION_CONF_REQUIRED,
        **DEBUGGING_CONF,
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.checkpoint.dir": to_uri(settings.checkpoint_dir),
        "spark.driver.memory": settings.driver_memory,
    }
    if jars:
        conf.update(jar_conf(settings))
    conf.update(settings.conf)
    conf["spark.driver.extraJavaOptions"] = with_log_config(
        conf.get("spark.driver.extraJavaOptions", "")
    )
    return conf


# The JVM's logging for sessions crossdata starts: see the file for what it withholds.
LOG_CONFIG = Path(__file__).with_name("log4j2.properties")


def with_log_config(java_options: str) -> str:
    """``java_options`` plus crossdata's log4j2 file, unless they already name one."""
    if "log4j2.configurationFile" in java_options or "log4j.configurationFile" in java_options:
        return java_options
    return f"{java_options} -Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}".strip()


def safe_remote(remote: str) -> str:
    """A Spark Connect address fit for a log: its ``;token=`` value (a credential) hidden."""
    return re.sub(r"(;token=)[^;]*", r"\1***", remote, flags=re.IGNORECASE)


def is_spark_submit() -> bool:
    """True when this Python driver was started by spark-submit (the JVM came first)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(settings: Settings | SparkSettings) -> SparkSession:
    """The active session if there is one, else a new local or Spark Connect session."""
    from pyspark.sql import SparkSession

    spark_settings = settings.spark if isinstance(settings, Settings) else settings
    active = SparkSession.getActiveSession()
    if active is not None:
        _ensure_session_conf(active, {"spark.sql.shuffle.partitions": None})
        _ensure_checkpoint_dir(active, spark_settings.checkpoint_dir)
        return active
    if spark_settings.remote:
        log.info("spark session: connecting remote=%s", safe_remote(spark_settings.remote))
        session = SparkSession.builder.remote(spark_settings.remote).getOrCreate()
        _ensure_session_conf(
            session, {"spark.sql.shuffle.partitions": str(spark_settings.shuffle_partitions)}
        )
        return session
    conf = session_conf(spark_settings, jars=not is_spark_submit())
    # Python workers must run the interpreter that has crossdata and the pinned stack.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(spark_settings.app_name)
    if is_spark_submit():
        # spark-submit already fixed master, jars and memory: only fill in what it left unset.
        from pyspark import SparkConf

        given = dict(SparkConf().getAll())
        conf = {k: v for k, v in conf.items() if k not in given}
        for key in ("spark.jars", "spark.jars.packages", "spark.driver.memory"):
            conf.pop(key, None)
    else:
        builder = builder.master(spark_settings.master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    log.info(
        "spark session: building master=%s jars=%s partitions=%s",
        "spark-submit" if is_spark_submit() else spark_settings.master,
        spark_settings.jars.mode,
        spark_settings.shuffle_partitions,
    )
    return builder.getOrCreate()


def is_connect(session: SparkSession) -> bool:
    """Whether ``session`` is a Spark Connect client: no JVM and no SparkContext of its own."""
    return type(session).__module__.startswith("pyspark.sql.connect")


def _ensure_checkpoint_dir(session: SparkSession, checkpoint_dir: str) -> None:
    """Give a session crossdata did not build (a notebook's, a platform's) the checkpoint
    folder reliable checkpoints need (the identity engine's, past one round), unless it has
    one. A Spark Connect session has none to set: the server's own applies."""
    if is_connect(session):
        return
    context = session.sparkContext
    if context.getCheckpointDir() is None:
        log.info("spark session: setting the checkpoint folder of an existing session")
        context.setCheckpointDir(to_uri(checkpoint_dir))


def _ensure_session_conf(session: SparkSession, extra: Mapping[str, str | None]) -> None:
    for key, value in {**SESSION_CONF_REQUIRED, **extra}.items():
        if value is None:
            continue
        current = session.conf.get(key, None)
        if current != value:
            log.info("spark session: setting %s=%s (was %s)", key, value, current)
            session.conf.set(key, value)
