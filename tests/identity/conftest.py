"""The stage world resolved once, shared by the identity tests that score it."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def resolved_world(ingested_world):
    """``ingested_world`` after one run of the identity job, scored against its truth.

    The identity job and the scoring are the costly part of the stage tests: they run once,
    through the same function ``crossdata bench identity --world`` reports with.
    """
    from crossdata.identity.bench import world_accuracy

    world, ctx, _ = ingested_world
    return world, ctx, world_accuracy(ctx, world.root, ingest=False)
