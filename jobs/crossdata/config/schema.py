"""The typed shape of crossdata's settings.

Every value has its default in ``conf/base.yaml`` (the one place for defaults); these classes
have none, so a key missing from the YAML is an error, not a silent fallback. Profiles
(``conf/local.yaml``, ``conf/cluster.yaml``) and ``--set`` only override.
A section's ``validate`` returns a message for a cross-field problem, or None.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

JarMode = Literal["local_cache", "packages", "provided"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def regex_problem(key: str, patterns: Iterable[str]) -> str | None:
    """Why one of ``patterns`` (run by Spark's ``rlike``, Java's regexes) is no pattern, or
    None. Python's ``re`` checks them before any JVM starts; an escape Java knows and Python
    does not (``\\p{L}``) is left for Java to read."""
    for pattern in patterns:
        if not pattern.strip():
            return f"{key}: an empty pattern"
        try:
            re.compile(pattern)
        except re.error as exc:
            if "bad escape" not in str(exc):
                return f"{key}: {pattern!r} is not a valid regular expression: {exc}"
    return None


def _ranking_problem(ranking: Sequence[str], kinds: Sequence[str]) -> str | None:
    """Why ``ranking`` is not an order of exactly ``kinds`` (each once), or None."""
    for kind in ranking:
        if kind not in kinds:
            return f"{kind!r} is no kind of evidence (the kinds: {', '.join(kinds)})"
        if ranking.count(kind) > 1:
            return f"{kind!r} is ranked twice"
    missing = [k for k in kinds if k not in ranking]
    if missing:
        return f"{missing[0]!r} is not ranked: every kind of evidence needs its place"
    return None


@dataclass(frozen=True)
class JarSettings:
    # local_cache: spark.jars from the folder `make setup` filled (nothing resolved at run time);
    # packages: spark.jars.packages with the pinned coordinates (a cluster that reaches Maven);
    # provided: the platform already has Delta/GraphFrames (Databricks, a managed image).
    mode: JarMode
    cache_dir: str


class SparkValue(str):
    """The value of a Spark setting: Spark reads every one as text, so YAML's ``true`` or
    ``8`` is taken as ``"true"`` or ``"8"`` (a setting's value is a plain ``str``)."""

    __slots__ = ()


@dataclass(frozen=True)
class SparkSettings:
    master: str
    remote: str | None  # sc://host:port runs every job over Spark Connect
    app_name: str
    shuffle_partitions: int
    driver_memory: str
    checkpoint_dir: str
    jars: JarSettings
    conf: dict[str, SparkValue]  # any further spark.* settings, applied when crossdata builds
    # the session

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
    write_retries: int  # a write that conflicts with another writer is tried again this often
    retry_backoff_seconds: float  # first wait; doubled per retry, with up to 100 % jitter

    def validate(self) -> str | None:
        if not self.root.strip():
            return "root: must name a folder or URI"
        if self.write_retries < 0:
            return "write_retries: must be at least 0"
        if self.retry_backoff_seconds < 0:
            return "retry_backoff_seconds: must be at least 0"
        return None


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

        for key in ("persons", "days"):
            if getattr(self, key) < 1:
                return f"{key}: must be at least 1, not {getattr(self, key)}"
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
class ChannelRule:
    """One row of the ordered channel rules: the first rule whose conditions all hold wins.

    Each condition is a list of case-insensitive regular expressions that must match the whole
    value (any of them may); an empty list means "no condition". ``click_id`` names URL
    parameters whose presence matches.
    """

    channel: str
    group: Literal["paid", "owned", "earned"]
    utm_medium: tuple[str, ...] = ()
    utm_source: tuple[str, ...] = ()
    referrer_host: tuple[str, ...] = ()
    click_id: tuple[str, ...] = ()
    no_referrer: bool = False  # matches only when there is no external referrer
    # matches only without campaign tags: no utm_source, utm_medium or utm_campaign, no click id
    no_campaign: bool = False

    def validate(self) -> str | None:
        from crossdata.contracts import CHANNELS

        if self.channel not in CHANNELS:
            return f"channel: {self.channel!r} is not one of {', '.join(CHANNELS)}"
        for key in ("utm_medium", "utm_source", "referrer_host"):
            problem = regex_problem(key, getattr(self, key))
            if problem:
                return problem
        return None


@dataclass(frozen=True)
class BotSettings:
    user_agent_patterns: tuple[str, ...]  # Python regexes, case-insensitive, anywhere in the UA
    max_events_per_minute: int  # more from one cookie/device/IP in a minute: a bot
    max_events_per_day: int  # more from one cookie/device/IP in a day: a bot
    action: Literal["flag", "remove"]  # remove: kept out of silver, counted in ops.data_quality

    def validate(self) -> str | None:

        for pattern in self.user_agent_patterns:
            if not pattern.strip():
                return "user_agent_patterns: an empty pattern would match every user agent"
            try:
                re.compile(pattern)
            except re.error as exc:
                return f"user_agent_patterns: {pattern!r} is not a valid regular expression: {exc}"
        for key in ("max_events_per_minute", "max_events_per_day"):
            if getattr(self, key) < 1:
                return f"{key}: must be at least 1, not {getattr(self, key)}"
        return None


@dataclass(frozen=True)
class SessionSettings:
    inactivity_minutes: int
    new_on_campaign_change: bool

    def validate(self) -> str | None:
        if self.inactivity_minutes < 1:
            return f"inactivity_minutes: must be at least 1, not {self.inactivity_minutes}"
        return None


@dataclass(frozen=True)
class Expectation:
    """A rule every row of a silver table should satisfy, and what to do when one does not."""

    name: str
    table: str
    expr: str  # SQL boolean over the table's columns
    action: Literal["warn", "quarantine", "fail"]


@dataclass(frozen=True)
class MaintenanceSettings:
    vacuum_retention_hours: int  # written on each table as delta.deletedFileRetentionDuration
    optimize: bool

    def validate(self) -> str | None:
        if self.vacuum_retention_hours < 0:
            return "vacuum_retention_hours: must be at least 0"
        return None


@dataclass(frozen=True)
class CollectSettings:
    landing: str  # folder (or URI) holding <source>/<YYYY-MM-DD>/ files
    sources: tuple[str, ...]
    checkpoint_dir: str | None  # streaming checkpoints; default <lakehouse.root>/_checkpoints
    max_files_per_trigger: int
    # Landing bytes per bronze micro-batch; when set, used instead of max_files_per_trigger
    # (Spark's file source takes one limit or the other, never both).
    max_bytes_per_trigger: int | None
    # Bronze bytes (Parquet, as stored) per silver micro-batch: a soft limit, a batch takes
    # whole files and at least one. Bounds the memory of the batch's joins, windows and cache.
    silver_max_bytes_per_trigger: int
    # Days either side of a silver batch's own days on which its keys are looked up in the
    # table: a record sent again with its time moved to another day (a time zone fixed) is
    # still found there. Each day more is one more day of the table read per batch.
    duplicate_window_days: int
    max_field_chars: int
    future_tolerance_hours: int
    # ISO-8601 with an offset: a record time before it is invalid_timestamp (a clock reset)
    min_timestamp: str
    schema_drift: Literal["add", "rescue", "fail"]
    # Landing files rewritten after they were read, gone before their batch read them, or
    # misnamed (crossdata.collect.file_changes): warn: record and log them | fail: also fail
    # the run | ignore: no landing listing for rewritten or misnamed files (gone ones are
    # still recorded)
    file_changes: Literal["warn", "fail", "ignore"]
    # source -> a single-byte encoding (windows-1252, iso-8859-15, ...) its lines that are not
    # valid UTF-8 are read in, instead of being refused (crossdata.collect.encodings)
    fallback_encodings: dict[str, str]
    # source -> IANA time zone (Europe/Paris) its times written without an offset are read in,
    # instead of being refused: tills and local systems write wall-clock time
    local_time_zones: dict[str, str]
    access_log_format: Literal["combined", "extended"]
    default_region: str  # phone numbers without a country code are read in this region
    # region -> regions whose numbers are dialled there as national ones too (France's
    # overseas departments): a national number not valid in the region is read in them, in order
    phone_fallback_regions: dict[str, tuple[str, ...]]
    site_hosts: tuple[str, ...]  # the shop's own hosts: not referrers
    placeholders: dict[str, tuple[str, ...]]  # id type (or "*" for all) -> values to null
    placeholder_patterns: tuple[str, ...]  # regexes (whole value, case-insensitive)
    # CRM birth dates that stand for "unknown" (a form's default): nulled, counted as placeholders
    placeholder_birth_dates: tuple[dt.date, ...]
    # CRM birth dates before this, or after the record's update, are nulled and counted unusable
    min_birth_date: dt.date
    # Countries (ISO alpha-2) whose postal codes are all this many digits: CRM codes there get
    # back the leading zeros a spreadsheet dropped; other codes there are nulled, counted unusable
    postal_code_digits: dict[str, int]
    # Languages (pycountry's locales) whose country names CRM countries may be written in,
    # beside English names and ISO codes
    country_name_languages: tuple[str, ...]
    # Other names in use (UK, Holland, Turkey) -> ISO alpha-2
    country_aliases: dict[str, str]
    bots: BotSettings
    sessions: SessionSettings
    channels: tuple[ChannelRule, ...]
    crm_source_priority: dict[str, tuple[str, ...]]  # attribute (or "*") -> systems, best first
    expectations: tuple[Expectation, ...]
    maintenance: MaintenanceSettings

    @property
    def min_timestamp_utc(self) -> dt.datetime:
        """``min_timestamp`` as an aware datetime; ValueError without a zone or unreadable."""
        text = str(self.min_timestamp)
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO-8601 time") from None
        if when.tzinfo is None:
            raise ValueError(f"{text!r} needs a zone offset, e.g. 2000-01-02T00:00:00Z")
        return when.astimezone(dt.UTC)

    def validate(self) -> str | None:
        from crossdata.contracts import SOURCES

        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown:
            return f"sources: unknown {', '.join(unknown)}; known: {', '.join(SOURCES)}"
        wrong = regex_problem("placeholder_patterns", self.placeholder_patterns)
        if wrong:
            return wrong
        for key in ("max_files_per_trigger", "max_field_chars"):
            if getattr(self, key) < 1:
                return f"{key}: must be at least 1, not {getattr(self, key)}"
        if self.max_bytes_per_trigger is not None and self.max_bytes_per_trigger < 1:
            return "max_bytes_per_trigger: must be at least 1 (or null: count files instead)"
        if self.silver_max_bytes_per_trigger < 1:
            return "silver_max_bytes_per_trigger: must be at least 1"
        if self.duplicate_window_days < 0:
            return f"duplicate_window_days: must be at least 0, not {self.duplicate_window_days}"
        if self.future_tolerance_hours < 0:
            return f"future_tolerance_hours: must be at least 0, not {self.future_tolerance_hours}"
        import phonenumbers

        if self.default_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            return (
                f"default_region: {self.default_region!r} is not a region phonenumbers knows "
                "(an ISO 3166 alpha-2 code such as FR)"
            )
        unknown = sorted(
            r
            for key, regions in self.phone_fallback_regions.items()
            for r in (key, *regions)
            if r.upper() not in phonenumbers.SUPPORTED_REGIONS
        )
        if unknown:
            return f"phone_fallback_regions: not regions phonenumbers knows: {', '.join(unknown)}"
        try:
            self.min_timestamp_utc  # noqa: B018 (parsed to be checked)
        except ValueError as exc:
            return f"min_timestamp: {exc}"
        for key, per_source, problem in (
            ("fallback_encodings", self.fallback_encodings, _encoding_problem),
            ("local_time_zones", self.local_time_zones, _time_zone_problem),
        ):
            for source, value in per_source.items():
                if source not in SOURCES:
                    return f"{key}: unknown source {source!r}; known: {', '.join(SOURCES)}"
                found = problem(value)
                if found:
                    return f"{key}: {source}: {found}"
        found = _expectations_problem(self.expectations)
        if found:
            return found
        if "*" not in self.crm_source_priority:
            return "crm_source_priority: needs a '*' entry (the default order)"
        for country, digits in self.postal_code_digits.items():
            if not (len(country) == 2 and country.isalpha() and country.isupper()):
                return f"postal_code_digits: {country!r} is not an upper-case ISO alpha-2 code"
            if not 3 <= digits <= 10:
                return f"postal_code_digits: {country}: {digits} digits, expected 3 to 10"
        import gettext

        import pycountry

        for language in self.country_name_languages:
            # The lookup the silver step's gettext.translation makes for the same names.
            if gettext.find("iso3166-1", pycountry.LOCALES_DIR, languages=[language]) is None:
                return f"country_name_languages: pycountry has no country names in {language!r}"
        for name, code in self.country_aliases.items():
            if pycountry.countries.get(alpha_2=str(code).upper()) is None:
                return f"country_aliases: {name}: {code!r} is not an ISO 3166 alpha-2 code"
        return None


def _expectations_problem(expectations: tuple[Expectation, ...]) -> str | None:
    """What conf can check of the expectations before Spark starts: where each applies and
    its name (a column ``_exp_<name>`` while the batch is checked, a rule in ops.data_quality).
    Their expressions are checked against the rows of the first batch (silver.py)."""

    from crossdata.lakehouse.tables import EXPECTATION_TABLES

    seen: set[tuple[str, str]] = set()
    for i, e in enumerate(expectations):
        where = f"expectations[{i}]"
        if e.table not in EXPECTATION_TABLES:
            return (
                f"{where}.table: {e.table!r} is not a table ingest checks; "
                f"one of {', '.join(EXPECTATION_TABLES)}"
            )
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", e.name):
            return f"{where}.name: {e.name!r}: use letters, digits and _ (not a digit first)"
        if (e.table, e.name.lower()) in seen:
            return f"{where}.name: {e.name!r} is used twice on {e.table}"
        seen.add((e.table, e.name.lower()))
        if not e.expr.strip():
            return f"{where}.expr: empty; write a SQL condition every good row meets"
    return None


@dataclass(frozen=True)
class LinkageSettings:
    """Probabilistic linking of CRM records that share no identifier."""

    enabled: bool
    threshold: float  # scored pairs at or above this become edges
    min_evidence: float  # and only when both records hold this share of the compared weight
    blocking_keys: tuple[str, ...]  # SQL expressions; pairs must agree on one of them
    max_block_size: int  # blocks larger than this are skipped (and counted), never exploded

    def validate(self) -> str | None:
        if not 0.0 < self.threshold <= 1.0:
            return f"threshold: {self.threshold} must be in (0, 1]"
        if not self.blocking_keys:
            return "blocking_keys: give at least one"
        return None


@dataclass(frozen=True)
class IdentitySettings:
    engine: Literal["auto", "graphframes", "native"]
    checkpoint_interval: int  # rounds between reliable checkpoints (0: local only)
    max_iterations: int
    # GraphFrames' CC algorithm; "graphframes" is the older name of two_phase
    graphframes_algorithm: Literal["two_phase", "graphx", "graphframes"]
    broadcast_threshold: int  # GraphFrames: degree above which a node's edges are broadcast
    partition_rows: int  # native: edge rows one Python worker solves at once (memory bound)
    blocklist: dict[str, tuple[str, ...]]  # id type (or "*") -> regexes never linked
    shared_limits: dict[str, dict[str, int]]  # node type -> neighbour type -> max distinct
    bridge_types: tuple[str, ...]  # shared when alone joining different people's identifiers
    bridge_evidence: tuple[str, ...]  # the kinds of evidence that count for bridge_types
    max_per_person: dict[str, int]  # strong id type -> at most this many per customer
    evidence_priority: tuple[str, ...]  # strongest first; repairs cut from the end
    repair_rounds: int
    giant_component_size: int  # a component larger than this raises an alert
    linkage: LinkageSettings

    def validate(self) -> str | None:
        from crossdata.contracts import EVIDENCE_KINDS, IDENTIFIER_TYPES

        known = set(IDENTIFIER_TYPES)
        for node, limits in self.shared_limits.items():
            bad = [t for t in (node, *limits) if t not in known]
            if bad:
                return f"shared_limits: unknown identifier type {bad[0]!r}"
        named = {
            "max_per_person": tuple(self.max_per_person),
            "bridge_types": tuple(self.bridge_types),
            "blocklist": tuple(t for t in self.blocklist if t != "*"),
        }
        for key, id_types in named.items():
            for id_type in id_types:
                if id_type not in known:
                    return (
                        f"{key}: unknown identifier type {id_type!r}; "
                        f"known: {', '.join(sorted(known))}"
                    )
        for id_type, patterns in self.blocklist.items():
            problem = regex_problem(f"blocklist.{id_type}", patterns)
            if problem:
                return problem
        problem = _ranking_problem(self.evidence_priority, EVIDENCE_KINDS)
        if problem:
            return f"evidence_priority: {problem}"
        unknown = [k for k in self.bridge_evidence if k not in self.evidence_priority]
        if unknown:
            return f"bridge_evidence: {unknown[0]!r} is not a kind in evidence_priority"
        if self.checkpoint_interval < 0:
            return "checkpoint_interval: at least 0 (0: local checkpoints only)"
        if self.max_iterations < 1:
            return "max_iterations: at least 1"
        if self.partition_rows < 1_000:
            return "partition_rows: at least 1000 (edge rows one worker solves in memory)"
        if self.broadcast_threshold < -1:
            return "broadcast_threshold: a degree, or -1 to turn skew handling off"
        return None


@dataclass(frozen=True)
class Settings:
    spark: SparkSettings
    lakehouse: LakehouseSettings
    mlflow: MlflowSettings
    logging: LoggingSettings
    world: WorldSettings
    collect: CollectSettings
    identity: IdentitySettings


def _encoding_problem(name: str) -> str | None:
    """Why ``name`` cannot be a source's fallback encoding, or None."""
    from crossdata.collect.encodings import single_byte_table

    try:
        single_byte_table(name)
    except ValueError as exc:
        return str(exc)
    return None


def _time_zone_problem(name: str) -> str | None:
    """Why ``name`` cannot be a source's local time zone, or None."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe", a folder
        return f"{name!r} is not an IANA time zone (Europe/Paris, America/New_York)"
    return None
