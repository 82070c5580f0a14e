"""The stages of the customer data journey, in order, each run as one recorded job.

A stage is a named function ``(ctx, run) -> None``. ``pipeline run`` runs them in this order;
a later stage (attribute, predict, activate) joins by adding one entry to ``STAGES``. A stage
may also name a preflight, ``(settings) -> None``: a check of its inputs that needs no Spark
(a landing folder that is not there), run for every chosen stage before the session starts.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from crossdata.config.schema import Settings
from crossdata.errors import CrossdataError
from crossdata.ops import Context, JobRun, job_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    name: str
    target: str  # "module:function", imported only when the stage runs
    description: str
    preflight: str | None = None  # "module:function" taking the settings; raises when unfit

    def load(self) -> Callable[[Context, JobRun], None]:
        return _resolve(self.target)

    def check(self, settings: Settings) -> None:
        if self.preflight is not None:
            _resolve(self.preflight)(settings)


def _resolve(target: str) -> Callable:
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


STAGES: tuple[Stage, ...] = (
    Stage(
        "ingest",
        "crossdata.collect.ingest:ingest_stage",
        "collect: landing files -> bronze (quarantine, ledger) -> silver -> sessions",
        preflight="crossdata.collect.ingest:preflight",
    ),
    Stage(
        "identity",
        "crossdata.identity.resolve:resolve_stage",
        "resolve: silver identifiers -> identity graph -> stable customer keys, golden records",
    ),
)


def chosen_stages(only: Sequence[str] | None = None) -> list[Stage]:
    """The stages to run (all, or those named), in pipeline order; an unknown name is refused."""
    known = [s.name for s in STAGES]
    if only:
        unknown = [name for name in only if name not in known]
        if unknown:
            raise CrossdataError(
                f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(known) or 'none yet'}"
            )
    return [s for s in STAGES if not only or s.name in only]


def preflight(settings: Settings, only: Sequence[str] | None = None) -> None:
    """Check, without Spark, what the chosen stages need; the CLI runs this before the session."""
    for stage in chosen_stages(only):
        stage.check(settings)


def run_pipeline(ctx: Context, only: Sequence[str] | None = None) -> list[str]:
    """Run the stages (all, or those named, always in pipeline order); return what ran."""
    chosen = chosen_stages(only)
    for i, stage in enumerate(chosen, 1):
        log.info("pipeline stage=%d/%d name=%s", i, len(chosen), stage.name)
        with job_run(ctx, stage.name) as run:
            stage.load()(ctx, run)
    return [s.name for s in chosen]
