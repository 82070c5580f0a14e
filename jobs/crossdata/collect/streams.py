"""Run a foreachBatch body as an ``availableNow`` streaming query, and get its errors back.

Used for raw files -> bronze and bronze -> silver alike. A query's checkpoint remembers what
it consumed; ``query_app_id`` gives the id Delta's idempotent writes are keyed by, taken from
the checkpoint itself so a fresh checkpoint can never be mistaken for an old one.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from crossdata.errors import (
    ConcurrentWriteError,
    ConfigError,
    DataQualityError,
    InputContractError,
    InvariantViolation,
    ReconciliationError,
)
from crossdata.spark.session import local_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

BatchFn = Callable[["DataFrame", int], None]


class _Guarded:
    """Keeps the first exception the batch body raised, so the job can re-raise it as is."""

    def __init__(self, body: BatchFn) -> None:
        self.body = body
        self.error: BaseException | None = None

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        try:
            self.body(batch, batch_id)
        except BaseException as exc:
            self.error = self.error or exc
            raise


def query_app_id(spark: SparkSession, checkpoint: str) -> str:
    """The streaming query id stored in ``<checkpoint>/metadata`` (written before batch 0)."""
    folder = local_path(checkpoint)
    if folder is not None:  # a local file: read it here rather than in a Spark job
        return str(json.loads((folder / "metadata").read_text(encoding="utf-8"))["id"])
    row = spark.read.json(f"{checkpoint.rstrip('/')}/metadata").select("id").first()
    if row is None or not row["id"]:
        raise RuntimeError(f"no query id in {checkpoint}/metadata")
    return str(row["id"])


def claim_query_id(checkpoint: str) -> str | None:
    """Write ``<checkpoint>/metadata`` (the query id) before Spark does, atomically.

    Two jobs starting the same stream at once both find no metadata and both write it. On a
    local disk Hadoop renames the file and its checksum one after the other, so the two
    writers can leave one job's id beside the other's checksum: every later read of the
    checkpoint then fails on a checksum error, and the stream cannot run again. Here the file
    is linked into place in one step that fails when it exists, so exactly one id is written
    (without a checksum file, which Hadoop then does not check) and Spark reads it instead of
    writing its own. Returns the id in the file; None for checkpoints on other file systems,
    where Spark writes the metadata itself.
    """
    folder = local_path(checkpoint)
    if folder is None:
        return None
    target = folder / "metadata"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        staged = folder / f".metadata.{uuid.uuid4()}.tmp"
        staged.write_text(json.dumps({"id": str(uuid.uuid4())}, separators=(",", ":")))
        try:
            os.link(staged, target)  # atomic; the job that loses keeps the winner's id
        except FileExistsError:
            pass
        finally:
            staged.unlink(missing_ok=True)
    return str(json.loads(target.read_text(encoding="utf-8"))["id"])


class RunningStream:
    """A started ``availableNow`` query; ``wait`` returns when it is done or raises its error."""

    def __init__(self, stream: DataFrame, body: BatchFn, checkpoint: str, name: str) -> None:
        self.name = name
        self.checkpoint = checkpoint
        self._guarded = _Guarded(body)
        self._query = None
        self._start_error: Exception | None = None
        try:
            claim_query_id(checkpoint)
            self._query = (
                stream.writeStream.foreachBatch(self._guarded)
                .option("checkpointLocation", checkpoint)
                .queryName(name)
                .trigger(availableNow=True)
                .start()
            )
        except Exception as exc:  # surfaced by wait(), so concurrent starts all get a chance
            self._start_error = exc

    def wait(self) -> None:
        try:
            if self._start_error is not None:
                raise self._start_error
            assert self._query is not None
            self._query.awaitTermination()
        except Exception as exc:
            if self._guarded.error is not None:
                raise self._guarded.error from None
            raise _as_crossdata_error(exc, self.name, self.checkpoint) from exc
        if self._guarded.error is not None:
            raise self._guarded.error


def run_available_now(stream: DataFrame, body: BatchFn, checkpoint: str, name: str) -> None:
    """Process everything available now in micro-batches, then return (or raise)."""
    RunningStream(stream, body, checkpoint, name).wait()


# Two processes on one checkpoint: Spark refuses the second (at start, racing to write the
# checkpoint's metadata or offsets, or while running).
_CONCURRENT_STREAM = (
    "ConcurrentModificationException",
    "concurrently using",
    "CONCURRENT_QUERY",
    # Both wrote the same batch id to the offset log (CONCURRENT_STREAM_LOG_UPDATE). Matched on
    # its message: a failed query's STREAM_FAILED text quotes it without the condition's name.
    "Multiple streaming jobs detected for",
    # Both found an empty checkpoint and started at batch 0; the later one finds offsets there.
    "STATE_STORE_CHECKPOINT_LOCATION_NOT_EMPTY",
    "FileAlreadyExistsException",
)


def _as_crossdata_error(exc: Exception, name: str, checkpoint: str) -> Exception:
    """Name the failure when it is one of ours or a known one; else keep Spark's error.

    Over Spark Connect the batch body runs on the server, so its error only arrives as text.
    """
    text = str(exc)
    if any(marker in text for marker in _CONCURRENT_STREAM):
        return ConcurrentWriteError(
            f"stream {name}: another job is using its checkpoint {checkpoint}; "
            "wait for it to finish, then run again (nothing was lost)"
        )
    for cls in (
        ConfigError,
        InputContractError,
        ReconciliationError,
        DataQualityError,
        ConcurrentWriteError,
        InvariantViolation,
    ):
        marker = f"{cls.__name__}: "
        if marker in text:
            message = text.split(marker, 1)[1].strip().splitlines()[0]
            return cls(message)
    return exc
