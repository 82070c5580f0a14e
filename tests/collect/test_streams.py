"""How a stream's failure is named: a second job on the same checkpoint is a clear error."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from crossdata.collect.streams import (
    RunningStream,
    _as_crossdata_error,
    claim_query_id,
    query_app_id,
)
from crossdata.errors import ConcurrentWriteError, ReconciliationError

CHECKPOINT = "/lake/_checkpoints/bronze/events"


@pytest.mark.parametrize(
    "spark_text",
    [
        "[CONCURRENT_QUERY] Another instance of this query was just started by a concurrent "
        "session.",
        "[CONCURRENT_STREAM_LOG_UPDATE] Concurrent update to the log. Multiple streaming jobs "
        "detected for 0.",
        # How a running query reports it (seen in CI): the condition's name is not quoted.
        "[STREAM_FAILED] Query [id = 1, runId = 2] terminated with exception: Concurrent "
        "update to the log. Multiple streaming jobs detected for 0 SQLSTATE: XXKST",
        "[STREAM_FAILED] Query [id = 1, runId = 2] terminated with exception: "
        "[STATE_STORE_CHECKPOINT_LOCATION_NOT_EMPTY] The checkpoint location "
        "file:/lake/_checkpoints/bronze/events/offsets should be empty on batch 0",
        "org.apache.hadoop.fs.FileAlreadyExistsException: /lake/_checkpoints/x/offsets/0",
    ],
)
def test_a_second_job_on_the_checkpoint_is_named(spark_text: str) -> None:
    err = _as_crossdata_error(RuntimeError(spark_text), "bronze_events", CHECKPOINT)
    assert isinstance(err, ConcurrentWriteError)
    assert "another job is using its checkpoint" in str(err) and CHECKPOINT in str(err)


def test_our_own_errors_come_back_by_name_and_others_stay_as_they_are() -> None:
    text = (
        "[STREAM_FAILED] terminated with exception: crossdata.errors.ReconciliationError: "
        "source events: 1 file(s) do not reconcile\n  at line 3"
    )
    err = _as_crossdata_error(RuntimeError(text), "bronze_events", CHECKPOINT)
    assert isinstance(err, ReconciliationError)
    assert str(err) == "source events: 1 file(s) do not reconcile"
    other = RuntimeError("[DIVIDE_BY_ZERO] something else")
    assert _as_crossdata_error(other, "bronze_events", CHECKPOINT) is other


def test_jobs_claiming_one_checkpoint_at_once_all_get_the_same_query_id(tmp_path) -> None:
    checkpoint = tmp_path / "_checkpoints" / "bronze" / "events"
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda _: claim_query_id(str(checkpoint)), range(16)))
    assert len(set(ids)) == 1
    assert claim_query_id(checkpoint.as_uri()) == ids[0]  # a file: URI names the same folder
    assert sorted(p.name for p in checkpoint.iterdir()) == ["metadata"]  # no staged file left


def test_spark_runs_the_stream_under_the_claimed_id(spark, tmp_path) -> None:
    source = tmp_path / "in"
    spark.range(5).write.parquet(str(source))
    checkpoint = str(tmp_path / "checkpoint")
    claimed = claim_query_id(checkpoint)
    counts: list[int] = []
    stream = RunningStream(
        spark.readStream.schema("id long").parquet(str(source)),
        lambda batch, _batch_id: counts.append(batch.count()),
        checkpoint,
        "claimed_checkpoint",
    )
    stream.wait()
    assert sum(counts) == 5
    assert str(stream._query.id) == claimed
    assert query_app_id(spark, checkpoint) == claimed


def test_checkpoints_on_other_file_systems_are_left_to_spark(tmp_path) -> None:
    assert claim_query_id("s3a://bucket/_checkpoints/bronze/events") is None
