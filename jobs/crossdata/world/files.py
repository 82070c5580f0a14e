"""Writing files from executors, with deterministic names and bytes.

Spark's own writers name files with random UUIDs, so each landing file (and each truth part)
is written by the executor task holding its group, with plain file I/O (binary), or through
``pyarrow.fs`` when the output is a URI. Writes go to a temporary name first and are renamed
into place, so a retried task never leaves half a file. The writer returns small rows
(manifest, bad-record truth...) for the driver to aggregate.

A local landing file's modification time is set to when it was delivered: just after the end
of its folder's day, a second apart per file, sources a minute apart, and a redelivered copy
after its original. A stream taking the oldest files first then takes the days in the order
they arrived, as it would on a landing zone filled day by day. (On an object store the
store sets the time when the file is written.)

The world's web server rotates its access log with gzip every other day: the access-log files
of odd delivery days land as ``.log.gz`` (a redelivered copy as its original), so that both
kinds of file go through ingestion. Their bytes do not depend on when they were written (no
time in the gzip header).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from crossdata import contracts
from crossdata.world import faults, formats, truth
from crossdata.world.hashing import group_rng
from crossdata.world.model import DAY_MS, WorldParams
from crossdata.world.sources import crm_columns, unpack

SOURCE_NUMBER = {name: i for i, name in enumerate(contracts.SOURCES)}
RESULT_COLUMNS = ("table", "bucket", "line", "n")
DUPLICATE_SPREAD = 30  # a repeated record lands within this many lines after its original


class Sink:
    """A root folder (local path or any pyarrow filesystem URI) to write files under."""

    def __init__(self, root: str):
        self.root = root
        self._fs = None
        if "://" in root and not root.startswith("file://"):
            self._base = root
        else:
            local = root[len("file://") :] if root.startswith("file://") else root
            self._base = str(Path(local).expanduser().resolve())

    @property
    def is_local(self) -> bool:
        """True for a local folder (plain file I/O)."""
        return "://" not in self._base

    def _filesystem(self):
        if self._fs is None:
            from pyarrow import fs

            self._fs, self._path = fs.FileSystem.from_uri(self._base)
        return self._fs

    def write(self, relative: str, data: bytes, modified_ms: int | None = None) -> None:
        """Write ``data`` to ``relative`` atomically (temporary name, then rename); a local
        file gets ``modified_ms`` (epoch milliseconds) as its modification time."""
        if self.is_local:
            path = Path(self._base) / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
            if modified_ms is not None:
                ns = modified_ms * 1_000_000
                os.utime(tmp, ns=(ns, ns))
            os.replace(tmp, path)
            return
        fs = self._filesystem()
        target = f"{self._path.rstrip('/')}/{relative}"
        fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        with fs.open_output_stream(target) as out:
            out.write(data)

    def remove(self, relative: str) -> None:
        """Delete a folder this generator owns (a source folder, ``_truth``)."""
        if self.is_local:
            import shutil

            shutil.rmtree(Path(self._base) / relative, ignore_errors=True)
            return
        fs = self._filesystem()
        from pyarrow import fs as pafs

        target = f"{self._path.rstrip('/')}/{relative}"
        if fs.get_file_info(target).type != pafs.FileType.NotFound:
            fs.delete_dir(target)

    def exists(self, relative: str) -> bool:
        """Whether ``relative`` exists under the root."""
        if self.is_local:
            return (Path(self._base) / relative).exists()
        from pyarrow import fs as pafs

        target = f"{self._path.rstrip('/')}/{relative}"
        return self._filesystem().get_file_info(target).type != pafs.FileType.NotFound

    def __getstate__(self) -> dict:
        return {"root": self.root}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["root"])  # type: ignore[misc]


# Sources whose files of odd delivery days are gzipped, as a rotated web server log is.
GZIPPED_SOURCES = frozenset({"access_log"})


def file_suffix(source: str, day: int) -> str:
    """How the names of ``source``'s files delivered on ``day`` end."""
    ext = contracts.SOURCES[source].extension
    return f"{ext}.gz" if source in GZIPPED_SOURCES and day % 2 else ext


def landing_name(P: WorldParams, source: str, day: int, shard: int) -> str:
    """A landing file's path: <source>/<date>/<source>-<shard><ext>."""
    return f"{source}/{P.day_text(day)}/{source}-{shard:04d}{file_suffix(source, day)}"


def copy_name(P: WorldParams, source: str, day: int, shard: int, copy_day: int) -> str:
    """A redelivered copy: another name (sorting after the original's), maybe a later folder."""
    ext = file_suffix(source, day)  # the original's bytes, so its compression too
    stamp = P.day_text(day).replace("-", "")
    return f"{source}/{P.day_text(copy_day)}/{source}-{shard:04d}.resent-{stamp}{ext}"


def delivered_ms(
    P: WorldParams, source: str, delivery_day: int, shard: int, copy_of: int | None = None
) -> int:
    """When a landing file arrived (epoch ms): after its folder's day, each file at its own
    time; a copy of day ``copy_of``'s file half a second (plus that day in ms) after it."""
    offset = SOURCE_NUMBER[source] * 60_000 + shard * 1_000
    if copy_of is not None:
        offset += 500 + int(copy_of)
    return P.start_wall_ms + (int(delivery_day) + 1) * DAY_MS + offset


def _result(table: str, bucket: int, line: str, n: int = 0) -> tuple[str, int, str, int]:
    return (table, bucket, line, n)


def _bucket(P: WorldParams, table: str, file: str) -> int:
    return zlib.crc32(file.encode()) % P.truth_parts[table]


def sorted_lines(pdf: pd.DataFrame) -> pd.DataFrame:
    """Lines in (time, record key) order, ties broken by the text: the same order on any run."""
    ms, key = pdf["sort_ms"].to_numpy(), pdf["sort_key"].to_numpy()
    order = np.lexsort((key, ms))
    same = (np.diff(ms[order]) == 0) & (np.diff(key[order]) == 0)
    if same.any():  # only when two lines share time and key (never for records with ids)
        return pdf.sort_values(["sort_ms", "sort_key", "line"], kind="mergesort")
    return pdf.iloc[order]


def write_landing(
    P: WorldParams, sink: Sink, source: str, day: int, shard: int, pdf: pd.DataFrame
) -> list[tuple]:
    """Write one landing file (and its redelivered copy) with its faults and duplicates."""
    contract = contracts.SOURCES[source]
    pdf = sorted_lines(pdf)
    lines: list[str] = pdf["line"].tolist()
    late = pdf["late"].to_numpy()
    placeholders: list[str] = pdf["placeholders"].tolist()
    n = len(lines)
    name = landing_name(P, source, day, shard)
    header: tuple[str, ...] = ()
    if contract.format == "csv":
        header = (
            *contract.field_names,
            *(crm_columns(P, day) if source == "crm_customers" else ()),
        )
    layout = faults.Layout(
        source, header, formats.separator(source), formats.file_encoding(source, day)
    )
    rng = group_rng(P.seed, SOURCE_NUMBER[source], day, shard, 0xFA)
    # A record whose quoted cell holds a line break is never made bad: a fault in one of its
    # lines would split it back into lines, each a record of its own, not one bad record.
    spans = np.array(["\n" in text for text in lines], dtype=bool)
    bad = (rng.random(n) < P.fault_rate) & ~spans
    dup = (rng.random(n) < P.fault_rate) & ~bad & bool(contract.record_key)
    spread = rng.integers(1, DUPLICATE_SPREAD + 1, n)
    after: dict[int, list[int]] = {}
    for i in np.flatnonzero(dup).tolist():
        after.setdefault(min(n - 1, i + int(spread[i])), []).append(i)

    out: list[bytes] = []
    rows: list[tuple] = []
    physical = 0  # lines written so far; a record is numbered by its first line

    def put(data: bytes) -> int:
        nonlocal physical
        out.append(data)
        first = physical + 1
        physical += 1 + data.count(b"\n")
        return first

    if header:
        put(layout.encode(layout.sep.join(header)))
    line_of: dict[int, int] = {}
    counts: Counter[tuple[str, str]] = Counter()
    for i, text in enumerate(lines):
        if bad[i]:
            rid = faults.record_key(layout, text)
            data, reason = faults.inject(P, layout, day, text, rng)
            at = put(data)
            rows.append(
                _result(
                    "bad_records",
                    _bucket(P, "bad_records", name),
                    formats.csv_line([source, name, str(at), reason, rid]),
                )
            )
        else:
            line_of[i] = at = put(layout.encode(text))
            if placeholders[i]:
                for item in placeholders[i].split(";"):
                    field, _, value = item.partition("=")
                    counts[(field, value)] += 1
            if late[i] > 0:
                rows.append(
                    _result(
                        "late_records",
                        _bucket(P, "late_records", name),
                        formats.csv_line(
                            [
                                source,
                                faults.record_key(layout, text),
                                name,
                                str(at),
                                P.day_text(day - int(late[i])),
                                P.day_text(day),
                                str(int(late[i])),
                            ]
                        ),
                    )
                )
        for j in after.get(i, ()):
            again = put(layout.encode(lines[j]))  # the same record again, byte for byte
            rows.append(
                _result(
                    "duplicates",
                    _bucket(P, "duplicates", name),
                    formats.csv_line(
                        [
                            source,
                            faults.record_key(layout, lines[j]),
                            name,
                            str(again),
                            "duplicate_record",
                            name,
                            str(line_of[j]),
                        ]
                    ),
                )
            )
    data = b"\n".join(out) + b"\n"
    if name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    sink.write(name, data, delivered_ms(P, source, day, shard))
    digest = hashlib.sha256(data).hexdigest()
    delivery = P.day_text(day)
    records = str(len(out) - (1 if header else 0))

    def listed(file: str, delivered: str, kind: str) -> tuple:
        cells = [file, source, delivered, str(physical), str(len(data)), digest, kind, records]
        return _result("manifest", 0, formats.csv_line(cells), physical)

    rows.append(listed(name, delivery, "original"))
    copy_day = P.redeliveries.get((source, day, shard))
    if copy_day is not None:
        copy = copy_name(P, source, day, shard, copy_day)
        sink.write(copy, data, delivered_ms(P, source, copy_day, shard, day))
        rows.append(listed(copy, P.day_text(copy_day), "redelivered"))
        rows.append(_result("redelivered_files", 0, formats.csv_line([source, copy, name])))
    for (field, value), count in sorted(counts.items()):
        rows.append(_result("placeholders", 0, formats.csv_line([source, field, value]), count))
    return rows


def write_truth_part(sink: Sink, table: str, part: int, lines_in: list[str]) -> list[tuple]:
    """One part of a truth table: header, then its distinct rows in sorted order."""
    lines = sorted(set(lines_in))
    path = truth.part_path(table, part)
    sink.write(path, ("\n".join([truth.header_line(table), *lines]) + "\n").encode("utf-8"))
    return [_result("truth_part", 0, path, len(lines))]


def _results(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS)).astype(
        {"table": object, "bucket": np.int32, "line": object, "n": np.int64}
    )


def write_group(P: WorldParams, sink: Sink, packed: pd.DataFrame) -> pd.DataFrame:
    """applyInPandas body: one group = one landing file, one truth part, or one statistic."""
    kind = str(packed["kind"].iloc[0])
    source = str(packed["source"].iloc[0])
    day, shard = int(packed["day"].iloc[0]), int(packed["shard"].iloc[0])
    records = unpack(packed["payload"].tolist())
    if kind == "landing":
        rows = write_landing(P, sink, source, day, shard, records)
    elif kind == "truth":
        rows = write_truth_part(sink, source, shard, records["line"].tolist())
    else:
        rows = [_result("stat", 0, source, int(records["sort_ms"].sum()))]
    return _results(rows)


def write_truth_rows(sink: Sink, pdf: pd.DataFrame) -> pd.DataFrame:
    """applyInPandas body for truth the file writers reported (bad records, duplicates...)."""
    table, part = str(pdf["table"].iloc[0]), int(pdf["bucket"].iloc[0])
    return _results(write_truth_part(sink, table, part, pdf["line"].tolist()))
