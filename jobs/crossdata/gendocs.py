"""Write the reference pages that are generated from code: ``python -m crossdata.gendocs``.

``docs/inputs.md`` comes from the input contracts (``crossdata.contracts``) and
``docs/tables.md`` from the table registry (``crossdata.lakehouse.tables``). With ``--check``
nothing is written and the exit status says whether the committed pages are current (a test
runs the same comparison).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from crossdata.contracts import to_markdown as inputs_markdown
from crossdata.lakehouse.tables import catalog_markdown

PAGES: dict[str, Callable[[], str]] = {
    "inputs.md": inputs_markdown,
    "tables.md": catalog_markdown,
}
DOCS = Path(__file__).resolve().parents[2] / "docs"


def stale(folder: Path) -> list[str]:
    """The generated pages in ``folder`` that differ from what the code produces."""
    out = []
    for name, render in PAGES.items():
        page = folder / name
        if not page.is_file() or page.read_text(encoding="utf-8") != render():
            out.append(name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crossdata.gendocs", description=__doc__)
    parser.add_argument("folder", nargs="?", type=Path, default=DOCS, help="docs folder")
    parser.add_argument("--check", action="store_true", help="only report stale pages")
    args = parser.parse_args(argv)
    if args.check:
        behind = stale(args.folder)
        for name in behind:
            print(f"{args.folder / name} is not current: run python -m crossdata.gendocs")
        return 1 if behind else 0
    for name, render in PAGES.items():
        (args.folder / name).write_text(render(), encoding="utf-8")
        print(f"wrote {args.folder / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
