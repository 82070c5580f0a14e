"""The crossdata command as a user meets it: one-line errors, masked secrets, doctor."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import REPO
from .helpers import free_port


def _crossdata(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crossdata", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_bad_config_key_is_a_one_line_error_naming_it():
    out = _crossdata("config", "show", "--set", "lakehouse.rot=/tmp/x")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines == [
        "crossdata: error: --set: lakehouse.rot: unknown key (did you mean 'root'?); "
        "allowed here: register_tables, retry_backoff_seconds, root, write_retries"
    ]


def test_config_show_masks_values_from_the_environment():
    env = {
        "CROSSDATA_CHECKPOINT_DIR": "/chk",
        "CROSSDATA_LAKEHOUSE_ROOT": "/lake",
        "MLFLOW_TRACKING_URI": "https://bob:hunter2@tracking.example",
    }
    out = _crossdata("config", "show", "--profile", "cluster", env=env)
    assert out.returncode == 0, out.stderr
    assert "hunter2" not in out.stdout
    assert "tracking_uri: <*** from $MLFLOW_TRACKING_URI>" in out.stdout
    assert "master: yarn" in out.stdout


def test_doctor_without_spark_prints_the_version_matrix():
    out = _crossdata("doctor", "--no-spark")
    assert out.returncode == 0, out.stdout + out.stderr
    for component in (
        "java",
        "pyspark",
        "delta-spark",
        "graphframes-py",
        "mlflow",
        "jar delta-spark_4.2_2.13",
    ):
        assert component in out.stdout
    assert "doctor: ready" in out.stdout


def test_doctor_fails_clearly_when_the_jar_cache_is_empty(tmp_path):
    out = _crossdata("doctor", "--no-spark", "--set", f"spark.jars.cache_dir={tmp_path}")
    assert out.returncode == 3
    assert "doctor: NOT READY: jar delta-spark_4.2_2.13: run `make setup`" in out.stdout


def test_doctor_names_a_graphframes_jar_that_is_not_the_pinned_one(tmp_path):
    from crossdata import stack

    (tmp_path / stack.DELTA_JAR.jar_name).write_bytes(b"")
    (tmp_path / "graphframes-spark4_2.13-src-e49a655b9393.jar").write_bytes(b"")
    out = _crossdata("doctor", "--no-spark", "--set", f"spark.jars.cache_dir={tmp_path}")
    assert out.returncode == 0, out.stdout + out.stderr
    row = next(r for r in out.stdout.splitlines() if r.startswith("jar graphframes-spark4_2.13"))
    assert row.split()[2:5] == [stack.GRAPHFRAMES_VERSION, "src-e49a655b9393", "warn"]
    assert "not the pin: graphframes-spark4_2.13-src-e49a655b9393.jar" in row


def test_ingest_from_a_missing_landing_folder_is_a_one_line_error_before_spark(tmp_path):
    lake = tmp_path / "lakehouse"
    missing = tmp_path / "landnig"  # a typo of the folder the user meant
    out = _crossdata("ingest", "--input", str(missing), "--set", f"lakehouse.root={lake}")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"crossdata: error: landing folder {missing} does not exist (collect.landing, or ingest "
        "--input): point it at the folder holding <source>/<YYYY-MM-DD>/ deliveries"
    ]
    assert not lake.exists()  # no session, no job run row: nothing was started

    a_file = tmp_path / "events.jsonl"
    a_file.write_text("{}\n")
    out = _crossdata("ingest", "--input", str(a_file), "--set", f"lakehouse.root={lake}")
    assert out.returncode == 2
    assert f"landing folder {a_file} is not a folder" in out.stderr


def test_bad_sizes_and_world_flags_are_one_line_errors_before_spark(tmp_path):
    for args, message in (
        (("bench", "ingest", "--sizes", "1M,0"), "argument --sizes: '0' is not a size"),
        (("bench", "identity", "--world", "lots"), "argument --world: 'lots' is not a size"),
        (("generate", "--days", "-1"), "error: --set: world.days: must be at least 1, not -1"),
        (("generate", "--persons", "0"), "error: --set: world.persons: must be at least 1, not 0"),
    ):
        out = _crossdata(*args, "--set", f"lakehouse.root={tmp_path}")
        assert out.returncode == 2, out.stderr
        assert message in out.stderr.strip().splitlines()[-1]
        assert "Traceback" not in out.stderr
    assert not any(tmp_path.iterdir())  # nothing ran


def test_sizes_are_whole_counts_and_are_written_back_in_their_own_unit():
    from crossdata.bench import human, parse_size

    assert [parse_size(t) for t in ("5000", "2.5k", "1M", "1e3", " 10_000 ")] == [
        5000,
        2500,
        1_000_000,
        1000,
        10_000,
    ]
    for text in ("2.5", "1.9", "0", "-3k", "nan", "inf", "1x", ""):
        with pytest.raises(ValueError, match="is not a size"):
            parse_size(text)
    written = [human(n) for n in (0.5, 999, 999.6, 12_345, 999_499, 999_500, 1_050_000, 2.5e9)]
    assert written == ["0.5", "999", "1k", "12.3k", "999k", "1M", "1.05M", "2.5G"]


def test_a_relative_jar_cache_is_named_with_the_folder_it_was_looked_for_in(tmp_path):
    # run from another folder: the default cache (.cache/jars) is looked for under it
    out = subprocess.run(
        [
            *(sys.executable, "-m", "crossdata", "ingest", "--input", str(tmp_path)),
            *("--conf-dir", str(REPO / "conf"), "--set", f"lakehouse.root={tmp_path / 'lake'}"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 3
    [line] = out.stderr.strip().splitlines()
    assert line.startswith(
        f"crossdata: error: jar cache .cache/jars (relative to the current folder {tmp_path}) "
        "lacks delta-spark_4.2_2.13"
    )
    assert "spark.jars.cache_dir" in line


def test_the_demo_world_size_gives_way_to_what_the_user_asked_for():
    from crossdata.cli import build_parser
    from crossdata.config import load_settings
    from crossdata.demo import DEMO_DAYS, DEMO_PERSONS

    def world(*argv: str) -> tuple[int, int]:
        args = build_parser().parse_args(["demo", *argv])
        overrides = [*getattr(args, "overrides", []), *args.extra_overrides(args)]
        w = load_settings(profile="local", overrides=overrides).settings.world
        return w.persons, w.days

    assert world() == (DEMO_PERSONS, DEMO_DAYS)
    assert world("--set", "world.persons=40") == (40, DEMO_DAYS)
    assert world("--set", "world.days=3", "--persons", "50") == (50, 3)
    assert world("--set", "world.persons=40", "--persons", "50", "--days", "2") == (50, 2)


def test_every_set_counts_before_and_after_the_command_name(tmp_path):
    out = _crossdata(
        "--set",
        f"lakehouse.root={tmp_path / 'lake'}",
        "config",
        "--set",
        "spark.master=local[1]",
        "show",
        "--set",
        "spark.app_name=mine",
        "--format",
        "json",
        "--origins",
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)  # one JSON document, the origins inside it
    settings = doc["settings"]
    assert settings["lakehouse"]["root"] == str(tmp_path / "lake")
    assert (settings["spark"]["master"], settings["spark"]["app_name"]) == ("local[1]", "mine")
    assert doc["origins"]["lakehouse.root"] == "--set"


def test_an_input_path_is_taken_exactly_as_given(tmp_path):
    missing = tmp_path / "land #2"  # YAML would have cut it at " #"
    out = _crossdata("ingest", "--input", str(missing), "--set", f"lakehouse.root={tmp_path}")
    assert out.returncode == 2
    assert f"landing folder {missing} does not exist" in out.stderr


def test_doctor_never_prints_credentials_of_an_unreachable_store(tmp_path):
    env = {
        "MLTOK": "http://alice:TOPSECRET789@127.0.0.1:9",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }
    out = _crossdata("doctor", "--no-spark", "--set", "mlflow.tracking_uri=${env:MLTOK}", env=env)
    assert out.returncode == 3
    assert "mlflow store" in out.stdout
    assert "TOPSECRET789" not in out.stdout + out.stderr


def test_doctor_says_at_once_that_no_spark_connect_server_answers():
    port = free_port()
    out = _crossdata("doctor", "--set", f"spark.remote=sc://127.0.0.1:{port}/;token=TOPSECRET1")
    assert out.returncode == 3
    assert f"nothing answers at 127.0.0.1:{port}" in out.stdout
    assert "TOPSECRET1" not in out.stdout + out.stderr


def test_generate_refuses_a_start_date_its_own_records_would_contradict(tmp_path):
    out = _crossdata("generate", "--start-date", "1999-12-30", "--out", str(tmp_path / "w"))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "crossdata: error: world.start_date: 1999-12-30 is too early: the world's CRM history "
        "begins 700 days before it, and collect.min_timestamp (2000-01-02) would refuse those "
        "times; start after 2001-12-02"
    ]
    assert not (tmp_path / "w").exists()


def test_demo_fresh_deletes_checkpoints_kept_apart_and_the_tour_hides_credentials(tmp_path):
    from crossdata.config import load_settings
    from crossdata.demo import _mlflow_hint, fresh_folders

    def loaded(*overrides: str, env: dict[str, str] | None = None):
        base = [f"world.out={tmp_path / 'w'}", f"lakehouse.root={tmp_path / 'lake'}"]
        return load_settings(overrides=[*base, *overrides], environ=env)

    inside = fresh_folders(loaded().settings)
    assert inside == [tmp_path / "w", tmp_path / "lake"]  # checkpoints in the lakehouse
    apart = fresh_folders(loaded(f"collect.checkpoint_dir={tmp_path / 'chk'}").settings)
    assert apart == [tmp_path / "w", tmp_path / "lake", tmp_path / "chk"]

    server = loaded("mlflow.tracking_uri=https://bot:s3cr3t@mlflow.example")
    assert _mlflow_hint(server) == "open https://***@mlflow.example"
    env = {"TRACK": "https://bot:t0ken@mlflow.example"}
    from_env = loaded("mlflow.tracking_uri=${env:TRACK}", env=env)
    assert "t0ken" not in _mlflow_hint(from_env)
    local = loaded(f"mlflow.tracking_uri=sqlite:///{tmp_path / 'm.db'}")
    assert _mlflow_hint(local) == f"mlflow ui --backend-store-uri sqlite:///{tmp_path / 'm.db'}"
