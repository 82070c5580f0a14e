"""What every benchmark shares: parse sizes, time a step, print a table with ratios.

A benchmark measures crossdata beside a reference run on the same data in the same process
(plain Spark, scipy, ...), so the ratio means something on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import re
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def parse_size(text: str) -> int:
    """'1M' -> 1_000_000, '250k' -> 250_000, '3' -> 3; ValueError unless a count of at least 1."""
    t = text.strip().lower().replace("_", "")
    mult = 1
    for suffix, factor in (("g", 10**9), ("m", 10**6), ("k", 10**3)):
        if t.endswith(suffix):
            t, mult = t[:-1], factor
            break
    try:
        exact = float(t) * mult
    except ValueError:  # not a number
        exact = 0.0
    # nan and inf fail the first test; 2.5 is no count of people or events (2.5k is)
    if not 1 <= exact < float("inf") or exact != int(exact):
        raise ValueError(f"{text!r} is not a size: write a count such as 5000, 250k or 1M")
    return int(exact)


def parse_sizes(text: str | None, default: Sequence[str]) -> list[int]:
    return [parse_size(s) for s in (text.split(",") if text else default)]


def sizes_argument(text: str) -> str:
    """An argparse ``type`` for ``--sizes``: the text as given, once every size in it reads."""
    try:
        parse_sizes(text, ())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def human(n: float) -> str:
    """Three significant digits and a unit: 1.05M, 999k, 12.3. The largest unit in which the
    rounded value is at least 1 says it, so 999,600 is 1M, not 1e+03k."""
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        text = f"{n / div:.3g}"
        if abs(float(text)) >= 1:
            return f"{text}{unit}"
    return f"{n:.3g}"


@dataclass
class Timer:
    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Timer]:
    t = Timer()
    start = time.perf_counter()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - start


def proc_status_kb(pid: int | str, key: str) -> int | None:
    """A ``kB`` field of ``/proc/PID/status`` (``VmHWM``: peak RSS); None where unreadable."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    found = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) if found else None


def jvm_pid(spark: Any) -> int | None:
    """The local Spark JVM's process id (None over Spark Connect: no JVM within reach)."""
    try:
        return int(spark._jvm.java.lang.ProcessHandle.current().pid())
    except Exception:
        return None


def driver_peak_rss_mb() -> float:
    """Peak resident memory of this (driver) process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Table:
    title: str
    columns: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        head = "| " + " | ".join(self.columns) + " |"
        sep = "| " + " | ".join("---" for _ in self.columns) + " |"
        body = ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join([f"### {self.title}", "", head, sep, *body, ""])

    def emit(self, output: str | None, out: Callable[[str], None] = print) -> None:
        text = self.markdown()
        out(text)
        if output:
            path = Path(output)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                fh.write("\n" + text)
