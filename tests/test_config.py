"""Settings: profiles, overrides, secrets and the errors a user sees."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crossdata.config import load_settings
from crossdata.errors import ConfigError

from .conftest import CONF_DIR


def _conf(tmp_path: Path, base_extra: str = "", profile_text: str | None = None) -> Path:
    text = (CONF_DIR / "base.yaml").read_text() + base_extra
    (tmp_path / "base.yaml").write_text(text)
    if profile_text is not None:
        (tmp_path / "dev.yaml").write_text(profile_text)
    return tmp_path


def test_local_profile_overrides_base_and_records_origin():
    loaded = load_settings(profile="local", conf_dir=CONF_DIR)
    assert loaded.settings.spark.shuffle_partitions == 4  # local.yaml, base says 8
    assert loaded.origins["spark.shuffle_partitions"].endswith("local.yaml")
    assert loaded.origins["spark.app_name"].endswith("base.yaml")


def test_set_override_wins_and_is_typed():
    loaded = load_settings(
        profile="local", conf_dir=CONF_DIR, overrides=["spark.shuffle_partitions=16"]
    )
    assert loaded.settings.spark.shuffle_partitions == 16
    assert loaded.origins["spark.shuffle_partitions"] == "--set"


def test_unknown_key_in_profile_names_key_and_file(tmp_path):
    conf = _conf(tmp_path, profile_text="spark:\n  shuffle_partitons: 3\n")
    with pytest.raises(ConfigError) as err:
        load_settings(profile="dev", conf_dir=conf)
    message = str(err.value)
    assert "dev.yaml" in message
    assert "spark.shuffle_partitons" in message
    assert "did you mean 'shuffle_partitions'" in message


def test_wrong_type_names_key_value_and_expectation():
    with pytest.raises(
        ConfigError,
        match=r"--set: spark.shuffle_partitions: expected a whole "
        r"number, got 'many'",
    ):
        load_settings(conf_dir=CONF_DIR, overrides=["spark.shuffle_partitions=many"])


def test_literal_lists_allowed_values():
    with pytest.raises(
        ConfigError,
        match=r"spark.jars.mode: 'maven' is not allowed; choose one of "
        r"'local_cache', 'packages', 'provided'",
    ):
        load_settings(conf_dir=CONF_DIR, overrides=["spark.jars.mode=maven"])


def test_missing_value_is_an_error(tmp_path):
    text = (CONF_DIR / "base.yaml").read_text().replace("  experiment: crossdata\n", "")
    (tmp_path / "base.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"mlflow.experiment: missing required setting"):
        load_settings(profile="base", conf_dir=tmp_path)


def test_cross_field_validation_runs_before_spark():
    with pytest.raises(ConfigError, match=r"spark.remote: 'localhost:15002' must look like sc://"):
        load_settings(conf_dir=CONF_DIR, overrides=["spark.remote=localhost:15002"])


def test_a_value_refused_by_validation_is_traced_to_where_it_was_set():
    with pytest.raises(ConfigError, match=r"^--set: lakehouse.write_retries: must be at least 0$"):
        load_settings(conf_dir=CONF_DIR, overrides=["lakehouse.write_retries=-1"])
    with pytest.raises(
        ConfigError,
        match=r"^--set: collect.maintenance.vacuum_retention_hours: must be at least 0$",
    ):
        load_settings(
            conf_dir=CONF_DIR, overrides=["collect.maintenance.vacuum_retention_hours=-1"]
        )
    with pytest.raises(ConfigError, match=r"^--set: spark.shuffle_partitions: must be at least 1"):
        load_settings(conf_dir=CONF_DIR, overrides=["spark.shuffle_partitions=0"])
    loaded = load_settings(
        conf_dir=CONF_DIR,
        overrides=["lakehouse.write_retries=0", "lakehouse.retry_backoff_seconds=0.1"],
    )
    assert (
        loaded.settings.lakehouse.write_retries,
        loaded.settings.lakehouse.retry_backoff_seconds,
    ) == (0, 0.1)


def test_byte_budget_per_batch_is_the_default_optional_and_positive():
    assert load_settings(conf_dir=CONF_DIR).settings.collect.max_bytes_per_trigger == 2**30
    counted = load_settings(conf_dir=CONF_DIR, overrides=["collect.max_bytes_per_trigger=null"])
    assert counted.settings.collect.max_bytes_per_trigger is None  # files are counted instead
    loaded = load_settings(conf_dir=CONF_DIR, overrides=["collect.max_bytes_per_trigger=1048576"])
    assert loaded.settings.collect.max_bytes_per_trigger == 1048576
    with pytest.raises(ConfigError, match=r"max_bytes_per_trigger: must be at least 1"):
        load_settings(conf_dir=CONF_DIR, overrides=["collect.max_bytes_per_trigger=0"])
    for key in ("max_files_per_trigger", "max_field_chars"):  # each named on its own
        with pytest.raises(
            ConfigError, match=rf"^--set: collect.{key}: must be at least 1, not -1$"
        ):
            load_settings(conf_dir=CONF_DIR, overrides=[f"collect.{key}=-1"])


def test_sessions_region_and_root_are_checked_before_spark():
    for override, message in (
        ("collect.sessions.inactivity_minutes=0", "inactivity_minutes: must be at least 1, not 0"),
        ("collect.default_region=ZZ", "default_region: 'ZZ' is not a region phonenumbers knows"),
        ("lakehouse.root=' '", "lakehouse.root: must name a folder or URI"),
    ):
        with pytest.raises(ConfigError, match=rf"^--set: .*{re.escape(message)}"):
            load_settings(conf_dir=CONF_DIR, overrides=[override])
    lower = load_settings(conf_dir=CONF_DIR, overrides=["collect.default_region=gb"])
    assert lower.settings.collect.default_region == "gb"  # any case, as the phone step reads it


def test_expectations_are_checked_before_spark_and_blamed_on_the_override():
    def rule(**kw: str) -> str:
        fields = {"name": "ok", "table": "silver.orders", "expr": "amount >= 0", "action": "warn"}
        return "{" + ", ".join(f"{k}: '{v}'" for k, v in (fields | kw).items()) + "}"

    for rules, message in (
        ([rule(table="silver.order")], "[0].table: 'silver.order' is not a table ingest checks"),
        ([rule(table="silver.sessions")], "[0].table: 'silver.sessions' is not a table"),
        ([rule(name="1st")], "[0].name: '1st': use letters, digits and _"),
        ([rule(), rule(name="OK")], "[1].name: 'OK' is used twice on silver.orders"),
        ([rule(expr=" ")], "[0].expr: empty"),
        ([rule(action="drop")], "[0].action: 'drop' is not allowed"),
    ):
        override = f"collect.expectations=[{', '.join(rules)}]"
        # the whole list came from --set: its items' problems are blamed on it
        expected = rf"^--set: collect.expectations{re.escape(message)}"
        with pytest.raises(ConfigError, match=expected):
            load_settings(conf_dir=CONF_DIR, overrides=[override])
    same_name_elsewhere = f"collect.expectations=[{rule()}, {rule(table='silver.spend')}]"
    loaded = load_settings(conf_dir=CONF_DIR, overrides=[same_name_elsewhere])
    assert len(loaded.settings.collect.expectations) == 2


def test_bot_patterns_are_checked_as_regexes_before_spark():
    with pytest.raises(ConfigError, match=r"user_agent_patterns: '\(unclosed' is not a valid"):
        load_settings(
            conf_dir=CONF_DIR, overrides=['collect.bots.user_agent_patterns=[bot, "(unclosed"]']
        )
    with pytest.raises(ConfigError, match=r"an empty pattern would match every user agent"):
        load_settings(conf_dir=CONF_DIR, overrides=['collect.bots.user_agent_patterns=[bot, ""]'])


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"--profile nope: .*profiles here: cluster, local"):
        load_settings(profile="nope", conf_dir=CONF_DIR)


def test_env_reference_is_resolved_and_masked_in_show():
    env = {
        "CROSSDATA_CHECKPOINT_DIR": "s3a://bucket/chk",
        "CROSSDATA_LAKEHOUSE_ROOT": "s3a://bucket/lake",
        "MLFLOW_TRACKING_URI": "https://user:s3cret@mlflow.example",
    }
    loaded = load_settings(profile="cluster", conf_dir=CONF_DIR, environ=env)
    assert loaded.settings.mlflow.tracking_uri == "https://user:s3cret@mlflow.example"
    shown = loaded.masked()
    assert shown["mlflow"]["tracking_uri"] == "<*** from $MLFLOW_TRACKING_URI>"
    assert "s3cret" not in repr(shown)


def test_missing_env_variable_names_key_and_variable():
    with pytest.raises(
        ConfigError,
        match=r"cluster.yaml: spark.checkpoint_dir: environment "
        r"variable CROSSDATA_CHECKPOINT_DIR is not set",
    ):
        load_settings(profile="cluster", conf_dir=CONF_DIR, environ={})


def test_fingerprint_changes_with_settings_only():
    a = load_settings(conf_dir=CONF_DIR)
    b = load_settings(conf_dir=CONF_DIR)
    c = load_settings(conf_dir=CONF_DIR, overrides=["spark.shuffle_partitions=5"])
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()


def test_spark_conf_keys_must_be_spark_settings():
    with pytest.raises(ConfigError, match=r"spark.conf: 'sql.shuffle' is not a Spark setting"):
        load_settings(conf_dir=CONF_DIR, overrides=["spark.conf={sql.shuffle: '1'}"])


def test_min_timestamp_needs_an_iso_time_with_its_zone():
    import datetime as dt

    collect = load_settings(conf_dir=CONF_DIR).settings.collect
    assert collect.min_timestamp_utc == dt.datetime(2000, 1, 2, tzinfo=dt.UTC)
    # unquoted on the command line YAML reads a time; it is the same setting
    moved = load_settings(
        conf_dir=CONF_DIR, overrides=["collect.min_timestamp=1990-01-01T01:00:00+01:00"]
    )
    assert moved.settings.collect.min_timestamp_utc == dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
    for value, problem in [("2000-01-02", "needs a zone offset"), ("soon", "is not an ISO-8601")]:
        with pytest.raises(ConfigError, match=rf"collect.min_timestamp: '.*' {problem}"):
            load_settings(conf_dir=CONF_DIR, overrides=[f"collect.min_timestamp={value}"])


def test_crm_birth_date_checks_are_read_as_dates():
    import datetime as dt

    collect = load_settings(conf_dir=CONF_DIR).settings.collect
    assert dt.date(1900, 1, 1) in collect.placeholder_birth_dates
    assert collect.min_birth_date == dt.date(1900, 1, 1)
    with pytest.raises(ConfigError, match=r"collect.min_birth_date: expected a date"):
        load_settings(conf_dir=CONF_DIR, overrides=["collect.min_birth_date=long ago"])


def _collect(*overrides: str):
    return load_settings(conf_dir=CONF_DIR, overrides=list(overrides)).settings.collect


def test_fallback_encodings_and_local_time_zones_default_and_override():
    assert _collect().fallback_encodings == {"spend": "windows-1252"}
    assert _collect("collect.fallback_encodings={}").fallback_encodings == {}
    assert _collect().local_time_zones == {"orders": "Europe/Paris"}
    zones = _collect("collect.local_time_zones={crm_customers: America/New_York}")
    # a mapping given with --set adds to the one in conf
    assert zones.local_time_zones == {"orders": "Europe/Paris", "crm_customers": "America/New_York"}
    assert _collect("collect.local_time_zones={}").local_time_zones == {}


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        (
            "fallback_encodings",
            "{spend: utf-16}",
            "spend: 'utf-16' is not a single-byte encoding that agrees with ASCII",
        ),
        ("fallback_encodings", "{crm_customers: shift_jis}", "crm_customers: 'shift_jis' is not"),
        ("fallback_encodings", "{spend: cp-9999}", "spend: 'cp-9999' is not an encoding Python"),
        ("fallback_encodings", "{invoices: windows-1252}", "unknown source 'invoices'"),
        ("local_time_zones", "{orders: Europe/Lyon}", "orders: 'Europe/Lyon' is not an IANA"),
        ("local_time_zones", "{orders: '+01:00'}", "orders: '\\+01:00' is not an IANA time zone"),
        ("local_time_zones", "{tills: Europe/Paris}", "unknown source 'tills'"),
    ],
)
def test_per_source_readings_are_checked_before_spark_starts(key, value, problem):
    with pytest.raises(ConfigError, match=rf"collect.{key}: {problem}"):
        _collect(f"collect.{key}={value}")


def test_postal_code_digits_name_countries_by_their_alpha_2_code():
    collect = load_settings(conf_dir=CONF_DIR).settings.collect
    assert collect.postal_code_digits["FR"] == 5
    assert collect.postal_code_digits["NO"] == 4  # quoted in conf: bare NO is YAML's false
    for value, problem in [
        ("{fr: 5}", "'fr' is not an upper-case ISO alpha-2 code"),
        ("{FRA: 5}", "'FRA' is not an upper-case ISO alpha-2 code"),
        ("{FR: 0}", "FR: 0 digits, expected 3 to 10"),
    ]:
        with pytest.raises(ConfigError, match=rf"collect.postal_code_digits: {problem}"):
            load_settings(conf_dir=CONF_DIR, overrides=[f"collect.postal_code_digits={value}"])


def test_country_aliases_must_name_iso_codes():
    with pytest.raises(ConfigError, match="country_aliases: Holland: 'XX'"):
        load_settings(conf_dir=CONF_DIR, overrides=["collect.country_aliases={Holland: XX}"])


def test_country_name_languages_must_be_ones_pycountry_translates():
    languages = load_settings(conf_dir=CONF_DIR).settings.collect.country_name_languages
    assert languages == ("fr", "de", "es", "it", "nl", "pt")
    with pytest.raises(ConfigError, match=r"pycountry has no country names in 'klingon'"):
        load_settings(conf_dir=CONF_DIR, overrides=["collect.country_name_languages=[klingon]"])


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("collect.landing=/data/raw #2", "/data/raw #2"),  # YAML: a comment
        ("collect.landing=0755", "0755"),  # YAML 1.1: octal 493
        ("collect.landing=12:30", "12:30"),  # YAML 1.1: base 60, 750
        ("collect.landing=2024.10", "2024.10"),  # YAML: the float 2024.1
        ("collect.landing=yes", "yes"),  # YAML 1.1: true
        ("collect.landing='/quoted path'", "/quoted path"),  # quoted: YAML's reading
    ],
)
def test_a_text_setting_keeps_the_value_as_written(override, expected):
    loaded = load_settings(profile="local", conf_dir=CONF_DIR, overrides=[override])
    assert loaded.settings.collect.landing == expected


def test_numbers_are_read_as_written_and_a_mapping_entry_may_hold_dots():
    loaded = load_settings(
        profile="local",
        conf_dir=CONF_DIR,
        overrides=[
            "world.fault_rate=1e-5",  # YAML 1.1: the text '1e-5'
            "collect.max_field_chars=0755",  # YAML 1.1: octal 493
            "spark.conf.spark.sql.shuffle.partitions=10",  # one key of spark.conf
        ],
    )
    assert loaded.settings.world.fault_rate == 1e-5
    assert loaded.settings.collect.max_field_chars == 755
    assert loaded.settings.spark.conf["spark.sql.shuffle.partitions"] == "10"
    assert loaded.settings.spark.conf["spark.ui.enabled"] == "false"  # the others are kept
    assert loaded.origins["spark.conf.spark.sql.shuffle.partitions"] == "--set"


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("collect.min_birth_date=1900-02-30", "collect.min_birth_date: cannot parse"),
        ("collect.local_time_zones={orders: Europe}", "'Europe' is not an IANA time zone"),
        ('collect.placeholder_patterns=["("]', "'(' is not a valid regular expression"),
        ('identity.blocklist={email: ["("]}', "identity.blocklist.email: '('"),
        (
            'collect.channels=[{channel: social, group: paid, utm_source: ["("]}]',
            "collect.channels[0].utm_source: '('",
        ),
        ("identity.max_iterations=0", "identity.max_iterations: at least 1"),
        ("identity.max_per_person={emial: 2}", "identity.max_per_person: unknown identifier"),
        (
            "identity.evidence_priority=[crm_record, order, login]",
            "identity.evidence_priority: 'email_signup' is not ranked",
        ),
        (
            "identity.evidence_priority=[crm_record, order, login, email_signup, email_click, "
            "ad_match, probabilistic, order]",
            "identity.evidence_priority: 'order' is ranked twice",
        ),
        (
            "identity.evidence_priority=[crm_record, orders, login, email_signup, email_click, "
            "ad_match, probabilistic]",
            "identity.evidence_priority: 'orders' is no kind of evidence",
        ),
    ],
)
def test_bad_values_are_one_error_naming_the_override_before_spark(override, problem):
    with pytest.raises(ConfigError) as err:
        load_settings(profile="local", conf_dir=CONF_DIR, overrides=[override])
    assert str(err.value).startswith("--set: ") or str(err.value).startswith("--set ")
    assert problem in str(err.value)


def test_an_entry_a_profile_adds_to_a_mapping_is_blamed_on_the_profile(tmp_path):
    conf = _conf(tmp_path, profile_text='spark:\n  conf:\n    sql.shuffle.partitions: "4"\n')
    with pytest.raises(ConfigError, match=r"dev\.yaml: spark\.conf: 'sql\.shuffle"):
        load_settings(profile="dev", conf_dir=conf)


def test_a_value_from_the_environment_is_never_quoted_in_an_error():
    env = {"REMOTE": "grpc://host:443/;token=TOPSECRET456"}
    with pytest.raises(ConfigError) as err:
        load_settings(
            profile="local",
            conf_dir=CONF_DIR,
            overrides=["spark.remote=${env:REMOTE}"],
            environ=env,
        )
    assert "TOPSECRET456" not in str(err.value)
    assert "<*** from $REMOTE>" in str(err.value)


def test_an_environment_value_in_a_list_masks_that_item_only():
    loaded = load_settings(
        profile="local",
        conf_dir=CONF_DIR,
        overrides=['collect.site_hosts=[shop.example, "${env:HOST}"]'],
        environ={"HOST": "secret.example"},
    )
    assert loaded.settings.collect.site_hosts == ("shop.example", "secret.example")
    assert loaded.masked()["collect"]["site_hosts"] == ["shop.example", "<*** from $HOST>"]
    assert loaded.redact("at secret.example") == "at <*** from $HOST>"


def test_spark_settings_take_yaml_scalars_as_the_text_spark_reads():
    loaded = load_settings(
        profile="local",
        conf_dir=CONF_DIR,
        overrides=[
            "spark.conf={spark.sql.ansi.enabled: true, spark.sql.shuffle.partitions: 8}",
            "spark.conf.spark.x.mode=0755",
        ],
    )
    conf = loaded.settings.spark.conf
    assert conf["spark.sql.ansi.enabled"] == "true"
    assert conf["spark.sql.shuffle.partitions"] == "8"
    assert conf["spark.x.mode"] == "0755"
    assert all(type(v) is str for v in conf.values())
    with pytest.raises(ConfigError, match=r"spark\.conf\.spark\.a: expected a value"):
        load_settings(profile="local", conf_dir=CONF_DIR, overrides=["spark.conf={spark.a: [1]}"])
