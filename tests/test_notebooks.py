"""The notebooks in ``notebooks/`` run, cell after cell, on a lakehouse the pipeline filled.

Each notebook's code cells are executed in order in one namespace, as a kernel would, in this
test session (a notebook's ``Context.create`` reuses the active session). The kernel starts in
the ``notebooks/`` folder of a checkout-like folder whose only other content is a ``lakehouse``
link to the resolved stage world, so the notebook's own settings (``load_settings(profile=
"local")``, lakehouse ``./lakehouse``) find it as they would find the one ``make demo`` leaves
in the repository root.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from .conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def code_cells(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def run_notebook(notebook: Path) -> dict:
    """Execute the code cells of ``notebook`` in order; returns the namespace they shared."""
    namespace: dict = {"__name__": "__main__"}
    for i, source in enumerate(code_cells(notebook), 1):
        exec(compile(source, f"{notebook.name} code cell {i}", "exec"), namespace)
    return namespace


def test_every_notebook_is_run_here() -> None:
    assert [n.name for n in NOTEBOOKS] == ["quickstart.ipynb"]
    assert all(code_cells(n) for n in NOTEBOOKS)


@pytest.fixture
def in_a_filled_folder(resolved_world, tmp_path: Path, monkeypatch):
    """A checkout-like folder whose ``./lakehouse`` is the resolved stage world's, with the
    kernel in its ``notebooks/`` folder, where Jupyter starts a notebook's kernel."""
    _, ctx, _ = resolved_world
    (tmp_path / "lakehouse").symlink_to(ctx.settings.lakehouse.root, target_is_directory=True)
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    return ctx


def test_quickstart_runs_on_the_lakehouse_the_pipeline_filled(in_a_filled_folder, capsys) -> None:
    ctx = in_a_filled_folder
    namespace = run_notebook(REPO / "notebooks" / "quickstart.ipynb")
    shown = capsys.readouterr().out
    compact = shown.replace(" ", "")  # the tables .show() prints, without their padding

    # It opened the lakehouse of the working folder, and registered its layers for SQL.
    assert Path(namespace["ctx"].lake.root).resolve() == Path(ctx.lake.root).resolve()
    databases = {d.name for d in ctx.spark.catalog.listDatabases()}
    assert {"bronze", "silver", "gold", "ops"} <= databases

    # Every quarantine reason of the world is in the table the notebook shows.
    reasons = ctx.lake.read("bronze.quarantine").select("reason").distinct()
    expected = [r["reason"] for r in reasons.collect()]  # a few reason codes
    assert expected
    for reason in expected:
        assert f"|{reason}" in compact
    assert "|ingest|" in compact  # ops.job_runs
    assert "n_cookie_ids" in shown  # a golden record, shown vertically
    shown_types = ctx.lake.read("gold.identity_map").select("id_type").distinct().collect()
    for r in shown_types:
        assert f"|{r['id_type']}" in compact

    # The standalone pairs: four identifiers, linked into one customer, the email normalised.
    identities = namespace["folder"] / "out" / "identities.csv"
    rows = list(csv.DictReader(io.StringIO(identities.read_text(encoding="utf-8"))))
    assert {(r["id_type"], r["id_value"]) for r in rows} == {
        ("cookie_id", "ck-1"),
        ("user_id", "u-1"),
        ("email", "jane.doe@example.com"),
        ("device_id", "d-9"),
    }
    assert len({r["customer_id"] for r in rows}) == 1
    assert identities.read_text(encoding="utf-8") in shown

    # The sessions per channel it shows are the table's.
    per_channel = ctx.lake.read("silver.sessions").groupBy("channel").count().collect()
    assert per_channel  # a few channels
    for r in per_channel:
        channel = "NULL" if r["channel"] is None else r["channel"]
        assert f"|{channel}|{r['count']}|" in compact
