"""The typed shape of crossdata's settings.

Every value has its default in ``conf/base.yaml`` (the one place for defaults); these classes
have none, so a key missing from the YAML is an error, not a silent fallback. Profiles
(``conf/local.yaml``, ``conf/cluster.yaml``) and ``--set`` only override.
A section's ``validate`` returns a message for a cross-field problem, or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

JarMode = Literal["local_cache", "packages", "provided"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


@dataclass(frozen=True)
class JarSettings:
    # local_cache: spark.jars from the folder `make setup` filled (nothing resolved at run time);
    # packages: spark.jars.packages with the pinned coordinates (a cluster that reaches Maven);
    # provided: the platform already has Delta/GraphFrames (Databricks, a managed image).
    mode: JarMode
    cache_dir: str


@dataclass(frozen=True)
class SparkSettings:
    master: str
    remote: str | None  # sc://host:port runs every job over Spark Connect
    app_name: str
    shuffle_partitions: int
    driver_memory: str
    checkpoint_dir: str
    jars: JarSettings
    conf: dict[str, str]  # any further spark.* settings, applied when crossdata builds the session

    def validate(self) -> str | None:
        if self.shuffle_partitions < 1:
            return "shuffle_partitions: must be at least 1"
        if self.remote is not None and not self.remote.startswith("sc://"):
            return f"remote: {self.remote!r} must look like sc://host:port"
        for key in self.conf:
            if not key.startswith("spark."):
                return f"conf: {key!r} is not a Spark setting (keys start with 'spark.')"
        return None


@dataclass(frozen=True)
class LakehouseSettings:
    root: str  # a local folder or any Hadoop URI (s3a://, abfss://, gs://, file:/)
    register_tables: bool  # also register layer.name tables in the Spark catalog


@dataclass(frozen=True)
class MlflowSettings:
    tracking_uri: str
    registry_uri: str | None
    experiment: str
    artifact_location: str | None


@dataclass(frozen=True)
class LoggingSettings:
    level: LogLevel
    progress: bool  # log stage i/n, rows and elapsed time for long jobs


@dataclass(frozen=True)
class WorldSettings:
    """Defaults of ``crossdata generate`` (each also has a command-line flag)."""

    out: str
    persons: int
    days: int
    start_date: str  # YYYY-MM-DD
    seed: int
    fault_rate: float
    lines_per_file: int
    access_log_format: Literal["combined", "extended"]

    def validate(self) -> str | None:
        import datetime as dt

        if self.persons < 1 or self.days < 1:
            return "persons/days: must be at least 1"
        if not 0.0 <= self.fault_rate <= 0.5:
            return f"fault_rate: {self.fault_rate} must be between 0 and 0.5"
        try:
            dt.date.fromisoformat(self.start_date)
        except ValueError:
            return f"start_date: {self.start_date!r} is not a date YYYY-MM-DD"
        if self.lines_per_file < 100:
            return "lines_per_file: must be at least 100"
        return None


@dataclass(frozen=True)
class Settings:
    spark: SparkSettings
    lakehouse: LakehouseSettings
    mlflow: MlflowSettings
    logging: LoggingSettings
    world: WorldSettings
