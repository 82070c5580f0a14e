"""The ``crossdata`` command: one entry point for the console script and spark-submit.

Settings are loaded and validated before any Spark session exists; a CrossdataError ends the
command with its one-line message and its own exit code, anything else is a bug and keeps its
stack trace. Every command accepts the common options (--profile, --set, --conf-dir,
--log-level) before or after its name.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from crossdata import __version__
from crossdata.config import Loaded, load_settings
from crossdata.errors import CrossdataError

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace, Loaded], int]


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("common options")
    g.add_argument(
        "--profile", default=argparse.SUPPRESS, help="conf/<profile>.yaml overlay (local)"
    )
    g.add_argument(
        "--set",
        dest="overrides",
        action="append",
        metavar="SECTION.KEY=VALUE",
        default=argparse.SUPPRESS,
        help="override one setting (repeatable)",
    )
    g.add_argument("--conf-dir", default=argparse.SUPPRESS, help="folder holding base.yaml")
    g.add_argument(
        "--log-level",
        default=argparse.SUPPRESS,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="override logging.level",
    )
    return common


class _Commands(argparse._SubParsersAction):
    """Sub-commands whose ``--set`` overrides add to those given before the command's name.

    argparse parses a sub-command's options into a namespace of its own, then copies it over
    the caller's: ``crossdata --set a=1 ingest --set b=2`` would keep only ``b=2``.
    """

    def __call__(self, parser, namespace, values, option_string=None):
        before = getattr(namespace, "overrides", None)
        super().__call__(parser, namespace, values, option_string)
        after = getattr(namespace, "overrides", None)
        if before is not None and after is not before:
            namespace.overrides = [*before, *(after or [])]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose sub-command parsers (of its class too) keep every ``--set``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Commands)


def build_parser() -> argparse.ArgumentParser:
    from crossdata.cli import commands

    common = _common()
    parser = _Parser(
        prog="crossdata",
        description="Spark-native customer data platform on Delta Lake.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"crossdata {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.register(sub, common)
    return parser


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_crossdata", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
        handler._crossdata = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("py4j", "urllib3", "alembic", "mlflow", "git"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        extra = args.extra_overrides(args) if hasattr(args, "extra_overrides") else []
        loaded = load_settings(
            profile=getattr(args, "profile", "local"),
            overrides=[*getattr(args, "overrides", []), *extra],
            conf_dir=getattr(args, "conf_dir", None),
        )
        configure_logging(getattr(args, "log_level", None) or loaded.settings.logging.level)
        return handler(args, loaded)
    except CrossdataError as exc:
        print(f"crossdata: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("crossdata: interrupted", file=sys.stderr)
        return 130


__all__ = ["build_parser", "main"]
