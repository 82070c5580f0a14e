"""How a stream's failure is named: a second job on the same checkpoint is a clear error."""

from __future__ import annotations

import pytest

from crossdata.collect.streams import _as_crossdata_error
from crossdata.errors import ConcurrentWriteError, ReconciliationError

CHECKPOINT = "/lake/_checkpoints/bronze/events"


@pytest.mark.parametrize(
    "spark_text",
    [
        "[CONCURRENT_QUERY] Another instance of this query was just started by a concurrent "
        "session.",
        "[CONCURRENT_STREAM_LOG_UPDATE] Concurrent update to the log. Multiple streaming jobs "
        "detected for 0.",
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
