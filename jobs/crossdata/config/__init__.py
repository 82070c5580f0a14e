"""Typed, validated settings from ``conf/*.yaml``: ``load_settings`` is the one entry point."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from crossdata.config.loader import Loaded, default_conf_dir, load
from crossdata.config.schema import Settings


def load_settings(
    profile: str = "local",
    overrides: Sequence[str] = (),
    conf_dir: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Loaded:
    """Read ``base.yaml`` + ``<profile>.yaml`` + ``--set`` overrides into validated Settings."""
    return load(
        Settings,
        Path(conf_dir) if conf_dir else default_conf_dir(),
        profile,
        overrides,
        environ,
    )


__all__ = ["Loaded", "Settings", "load_settings"]
