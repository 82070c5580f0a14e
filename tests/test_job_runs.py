"""Every job run leaves one row in ops.job_runs, failures included."""

from __future__ import annotations

import pytest

from crossdata import __version__
from crossdata.ops import job_run


class Boom(RuntimeError):
    pass


def test_successful_run_is_recorded_with_counts_and_provenance(ctx):
    with job_run(ctx, "unit-ok") as run:
        run.count(input_rows=10, output_rows=7)
        run.details["note"] = "x"
    row = ctx.lake.read("ops.job_runs").where("job = 'unit-ok'").collect()
    assert len(row) == 1
    r = row[0]
    assert (r.run_id, r.status, r.input_rows, r.output_rows) == (run.run_id, "succeeded", 10, 7)
    assert r.package_version == __version__
    assert r.config_hash == ctx.loaded.fingerprint()
    assert r.git_commit
    assert r.ended_at >= r.started_at
    assert r.error_message is None
    assert r.details == {"note": "x"}


def test_failed_run_is_recorded_then_the_error_propagates(ctx):
    with pytest.raises(Boom), job_run(ctx, "unit-fail"):
        raise Boom("the input folder was empty")
    rows = ctx.lake.read("ops.job_runs").where("job = 'unit-fail'").collect()
    assert [(r.status, r.error_message) for r in rows] == [
        ("failed", "Boom: the input folder was empty")
    ]


def test_each_run_appends_its_own_row(ctx):
    for _ in range(3):
        with job_run(ctx, "unit-repeat"):
            pass
    runs = ctx.lake.read("ops.job_runs").where("job = 'unit-repeat'")
    assert runs.select("run_id").distinct().count() == 3


def test_a_failed_run_keeps_sparks_error_without_the_row_values_it_quotes(ctx):
    # Spark names the value it could not cast; ops.job_runs and the log must not keep it.
    with pytest.raises(Exception, match="CAST_INVALID_INPUT"), job_run(ctx, "unit-cast"):
        ctx.spark.sql("SELECT CAST('alice@example.com' AS BIGINT)").collect()
    (row,) = ctx.lake.read("ops.job_runs").where("job = 'unit-cast'").collect()
    assert "CAST_INVALID_INPUT" in row.error_message
    assert "alice@example.com" not in row.error_message
    assert "'<withheld>'" in row.error_message


def test_job_runs_is_created_with_its_declared_not_null_columns(ctx):
    with job_run(ctx, "unit-schema"):
        pass
    nullable = {f.name: f.nullable for f in ctx.lake.read("ops.job_runs").schema.fields}
    assert not nullable["run_id"] and not nullable["status"] and not nullable["started_at"]
    assert nullable["error_message"] and nullable["ended_at"]
