"""The pipeline: stages in order, each importable, each recorded as a job."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

from crossdata.errors import ConfigError, CrossdataError
from crossdata.pipeline import STAGES, preflight, run_pipeline

from .conftest import REPO, make_settings


def test_stages_are_in_journey_order_and_load() -> None:
    assert [s.name for s in STAGES][:2] == ["ingest", "identity"]
    for stage in STAGES:
        func = stage.load()
        assert callable(func)
        assert list(inspect.signature(func).parameters) == ["ctx", "run"]


def test_unknown_stage_is_a_clear_error() -> None:
    with pytest.raises(CrossdataError, match=r"unknown stage.*attribute.*ingest, identity"):
        run_pipeline(None, ["attribute"])  # type: ignore[arg-type]  # fails before any use


def test_stages_with_a_preflight_name_a_function_of_the_settings() -> None:
    for stage in STAGES:
        if stage.preflight is not None:
            module, _, func = stage.preflight.partition(":")
            check = getattr(importlib.import_module(module), func)
            assert list(inspect.signature(check).parameters) == ["settings"]


def test_preflight_refuses_a_missing_landing_folder_for_the_ingest_stage_only(tmp_path) -> None:
    settings = make_settings(tmp_path, f"collect.landing={tmp_path / 'nowhere'}").settings
    with pytest.raises(ConfigError, match=r"landing folder .*nowhere does not exist"):
        preflight(settings)
    with pytest.raises(ConfigError, match=r"landing folder"):
        preflight(settings, ["ingest"])
    preflight(settings, ["identity"])  # reads silver, not the landing: nothing to refuse
    with pytest.raises(CrossdataError, match=r"unknown stage\(s\) ingset"):
        preflight(settings, ["ingset"])


def test_pipeline_command_checks_its_stages_before_starting_spark(tmp_path) -> None:
    lake = tmp_path / "lakehouse"
    for args, code, message in (
        (["--stages", "ingest,atribute"], 1, "unknown stage(s) atribute"),
        (["--set", f"collect.landing={tmp_path / 'nowhere'}"], 2, "does not exist"),
    ):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "crossdata",
                "pipeline",
                "run",
                *args,
                "--set",
                f"lakehouse.root={lake}",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == code, out.stderr[-2000:]
        [line] = out.stderr.strip().splitlines()
        assert line.startswith("crossdata: error: ") and message in line
    assert not lake.exists()  # no session was built, no job run recorded
