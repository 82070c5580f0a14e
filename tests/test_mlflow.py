"""MLflow for real: a Spark ML model logged and loaded back, and crossdata's experiment set-up
on a local store and on a tracking server started here."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import mlflow.spark
import pytest
from mlflow.tracking import MlflowClient
from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler

from crossdata.config.schema import MlflowSettings
from crossdata.errors import CrossdataError
from crossdata.tracking import use_experiment

from .conftest import make_settings
from .helpers import free_port


def test_run_logs_and_reloads_a_spark_model(spark, tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = mlflow.create_experiment("foundation", artifact_location=(tmp_path / "art").as_uri())
    train = spark.createDataFrame(
        [(float(x), float(x % 3), 1.0 if x > 10 else 0.0) for x in range(24)],
        "a DOUBLE, b DOUBLE, label DOUBLE",
    )
    model = Pipeline(
        stages=[
            VectorAssembler(inputCols=["a", "b"], outputCol="features"),
            LogisticRegression(maxIter=20),
        ]
    ).fit(train)
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_param("max_iter", 20)
        mlflow.log_metric("train_rows", train.count())
        mlflow.spark.log_model(model, artifact_path="model")
    reloaded = mlflow.spark.load_model(f"runs:/{run.info.run_id}/model")
    before = model.transform(train).select("prediction").collect()
    after = reloaded.transform(train).select("prediction").collect()
    assert before == after
    data = mlflow.get_run(run.info.run_id).data
    assert data.params["max_iter"] == "20"
    assert data.metrics["train_rows"] == 24.0
    # the model really separates the classes, so a broken reload could not pass by accident
    assert {r.prediction for r in after} == {0.0, 1.0}


def _mlflow_settings(tmp_path: Path, tracking_uri: str) -> MlflowSettings:
    loaded = make_settings(tmp_path, f"mlflow.tracking_uri={tracking_uri}")
    return loaded.settings.mlflow


def test_a_deleted_experiment_is_one_clear_error(tmp_path):
    settings = _mlflow_settings(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = use_experiment(settings)
    MlflowClient(tracking_uri=settings.tracking_uri).delete_experiment(experiment_id)
    with pytest.raises(CrossdataError, match=rf"'crossdata' \(id {experiment_id}\) is deleted"):
        use_experiment(settings)


@pytest.fixture
def tracking_server(tmp_path):
    """An MLflow tracking server on loopback that keeps artifacts in its own store."""
    port, store = free_port(), tmp_path / "server-artifacts"
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(store), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("the MLflow server did not start")
        yield url, store
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_experiments_on_a_tracking_server_keep_artifacts_in_its_store(
    tracking_server, tmp_path, monkeypatch
):
    url, store = tracking_server
    client_dir = tmp_path / "laptop"
    client_dir.mkdir()
    monkeypatch.chdir(client_dir)
    settings = _mlflow_settings(tmp_path, url)
    local = Path(settings.artifact_location or "")
    assert local.is_absolute()  # a folder on this machine, as the local profile gives
    experiment_id = use_experiment(settings)
    experiment = MlflowClient(tracking_uri=url).get_experiment(experiment_id)
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.log_text("hello", "note.txt")
    assert [p.name for p in store.rglob("note.txt")] == ["note.txt"]
    assert list(client_dir.iterdir()) == [] and not local.exists()
