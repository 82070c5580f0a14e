"""MLflow set-up shared by every stage that logs: one tracking store, one experiment per conf.

The embedded default is a sqlite store (``sqlite:///mlflow.db``) with artifacts in a local
folder; on a cluster ``mlflow.tracking_uri`` points at a tracking server (credentials come from
MLflow's own environment variables, never from conf).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from crossdata.config.schema import MlflowSettings
from crossdata.errors import CrossdataError

log = logging.getLogger(__name__)


def safe_uri(uri: str) -> str:
    """``uri`` fit to print: a tracking URI may embed credentials (https://user:token@host)."""
    return re.sub(r"//[^/@\s]+@", "//***@", uri)


def _artifact_uri(location: str | None) -> str | None:
    if location is None or "://" in location:
        return location
    return Path(location).expanduser().resolve().as_uri()


# Tracking URIs of a server, which stores the artifacts of the experiments it creates itself.
SERVER_SCHEMES = ("http://", "https://", "databricks")


def experiment_artifacts(settings: MlflowSettings) -> str | None:
    """Where a new experiment keeps its artifacts: ``artifact_location`` as a URI, except a
    local folder when the tracking store is a server (None: the server's own artifact store;
    a folder on the machine that happened to create the experiment would be its artifact
    root for good, out of every other machine's reach)."""
    location = settings.artifact_location
    if location is None or "://" in location:
        return location
    if settings.tracking_uri.startswith(SERVER_SCHEMES):
        log.info("mlflow: artifacts in the tracking server's store, not in %s", location)
        return None
    return _artifact_uri(location)


def use_experiment(settings: MlflowSettings) -> str:
    """Point MLflow at the configured store and experiment (created if missing); its id."""
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)
    if settings.registry_uri:
        mlflow.set_registry_uri(settings.registry_uri)
    found = mlflow.get_experiment_by_name(settings.experiment)
    if found is not None and found.lifecycle_stage == "deleted":
        raise CrossdataError(
            f"the MLflow experiment {settings.experiment!r} (id {found.experiment_id}) is "
            f"deleted in {safe_uri(settings.tracking_uri)}: restore it (`mlflow experiments "
            f"restore --experiment-id {found.experiment_id}`) or set mlflow.experiment to "
            "another name"
        )
    if found is not None:
        experiment_id: str = found.experiment_id
    else:
        experiment_id = mlflow.create_experiment(
            settings.experiment, artifact_location=experiment_artifacts(settings)
        )
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id
