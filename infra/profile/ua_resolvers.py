"""What a distinct user agent costs silver, with each of ua-parser's resolvers.

Run from the repository root, after `make setup`:

    .venv/bin/python infra/profile/ua_resolvers.py --distinct 20000 --rows 1000000

The sample world speaks with a few dozen user agents, so its silver batches parse almost
nothing; real traffic brings thousands of distinct ones a day (every browser and OS version).
This makes ``--distinct`` agents of the shapes browsers send (versions drawn at random), spreads
them over ``--rows`` rows, and runs the silver events flow's own pandas function
(``classify_series``, in Arrow-sized batches of 10,000 rows) over them once per resolver, each
time with empty caches (``classify_user_agent``'s and ua-parser's), as a fresh Python worker
starts. It prints one line per resolver with the ratio to the pure Python one, measured in the
same run, and checks that both classify every agent the same way.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import pandas as pd
import ua_parser
from ua_parser import BasicResolver, Parser, load_builtins, load_lazy_builtins

from crossdata.collect import user_agents

BATCH = 10_000  # spark.sql.execution.arrow.maxRecordsPerBatch, Spark's default


def sample_agents(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct user agents of the common browser shapes."""
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        chrome = f"{rng.randint(100, 131)}.0.{rng.randint(4000, 6999)}.{rng.randint(0, 250)}"
        shape = rng.random()
        if shape < 0.35:
            ua = (
                f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                f"(KHTML, like Gecko) Chrome/{chrome} Safari/537.36"
            )
        elif shape < 0.6:
            ua = (
                f"Mozilla/5.0 (Linux; Android {rng.randint(10, 15)}; SM-S{rng.randint(100, 999)}B) "
                f"AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{chrome} Mobile Safari/537.36"
            )
        elif shape < 0.85:
            ios = f"{rng.randint(15, 18)}_{rng.randint(0, 7)}"
            ua = (
                f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 "
                f"(KHTML, like Gecko) Version/{ios.split('_')[0]}.{rng.randint(0, 7)} "
                f"Mobile/15E{rng.randint(100, 999)} Safari/604.1"
            )
        else:
            ua = (
                f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_{rng.randint(0, 7)}; "
                f"rv:{rng.randint(100, 133)}.0) Gecko/20100101 Firefox/{rng.randint(100, 133)}.0"
            )
        out.add(ua)
    return sorted(out)


def run(make_parser: Callable[[], Parser], column: pd.Series) -> tuple[float, pd.DataFrame]:
    """Seconds for the flow's function over ``column``, from empty caches."""
    ua_parser.parser = make_parser()  # what ua_parser.parse, so classify_user_agent, uses
    user_agents.classify_user_agent.cache_clear()
    start = time.perf_counter()
    parts = [
        user_agents.classify_series(column.iloc[i : i + BATCH])
        for i in range(0, len(column), BATCH)
    ]
    return time.perf_counter() - start, pd.concat(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--distinct", type=int, default=20_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    agents = sample_agents(args.distinct)
    rng = random.Random(11)
    column = pd.Series([agents[rng.randrange(len(agents))] for _ in range(args.rows)])
    distinct = column.nunique()
    best = ua_parser.BestAvailableResolver.__module__.rsplit(".", 1)[-1]
    parsers: dict[str, Callable[[], Parser]] = {
        "pure Python (basic)": lambda: Parser(BasicResolver(load_builtins())),
        # ua-parser's own default stack: the best resolver installed behind its cache
        f"installed default ({best})": lambda: Parser.from_matchers(load_lazy_builtins()),
    }
    results = {name: run(make, column) for name, make in parsers.items()}
    reference, expected = next(iter(results.values()))
    print(f"{args.rows:,} rows, {distinct:,} distinct user agents, batches of {BATCH:,}")
    print("| resolver | s | ms per distinct agent | ratio to pure Python |")
    print("| --- | --- | --- | --- |")
    for name, (seconds, frame) in results.items():
        assert frame.equals(expected), f"{name} classifies some agents differently"
        per = seconds / distinct * 1000
        print(f"| {name} | {seconds:.2f} | {per:.3f} | {seconds / reference:.2f}x |")


if __name__ == "__main__":
    main()
