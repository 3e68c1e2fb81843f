"""Never lose a metric: a real `mlflow server` stopped in the middle of a run and started
again; what it missed is delivered by `glasspane integrations sync`, in order, once."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures_mlflow import MlflowServer

import glasspane
from glasspane import log_metric, pipeline, task
from glasspane.config import load_settings

#: the server the running task stops (set by the test)
SERVER: dict[str, Any] = {}
EPOCHS = 5


def _history(uri: str, run_id: str) -> list[tuple[int, float]]:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("outage_training")
    if experiment is None:  # the tracker has not created it yet
        return []
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`glasspane.run_id` = '{run_id}' and tags.`glasspane.node` = 'train'",
    )
    if not runs:
        return []
    points = client.get_metric_history(runs[0].info.run_id, "loss")
    return sorted((p.step, p.value) for p in points)


@task
def train(epochs: int) -> int:
    server: MlflowServer = SERVER["server"]
    run_id = glasspane.context().run_id
    for epoch in range(epochs):
        log_metric("loss", 1.0 / (epoch + 1), step=epoch)
        if epoch == 0:  # the first loss reaches MLflow while the task runs, then it goes down
            deadline = time.monotonic() + 30
            while not _history(server.uri, run_id) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _history(server.uri, run_id) == [(0, 1.0)]
            server.stop()
    return epochs


@pipeline
def outage_training(epochs: int = EPOCHS):
    return train(epochs)


def test_a_server_stopped_mid_run_gets_every_metric_once_after_sync(
    mlflow_server: MlflowServer,
    mlflow_uri: str,
    caplog: pytest.LogCaptureFixture,
    glasspane_cmd: list[str],
    glasspane_home: Path,
) -> None:
    SERVER["server"] = mlflow_server
    settings = load_settings(trackers=["mlflow"], tracker_options={"mlflow": {}})
    env = {"GLASSPANE_HOME": str(glasspane_home), "GLASSPANE_TRACKERS": "mlflow"}
    try:
        with glasspane.Workspace(settings) as ws, caplog.at_level(logging.WARNING):
            began = time.monotonic()
            result = ws.run(outage_training, executor="threads")
            took = time.monotonic() - began
            (row,) = ws.store.tracker_links(result.run_id)
        still_down = subprocess.run(
            [*glasspane_cmd, "integrations", "sync"],
            capture_output=True, text=True, timeout=120,
            env={**_base_env(), **env, "MLFLOW_TRACKING_URI": mlflow_uri},
        )  # fmt: skip
    finally:
        mlflow_server.start()
    assert still_down.returncode == 1  # the run still waits, and the command says why
    assert f"run {result.run_id}: `mlflow` still unreachable: " in still_down.stdout
    assert result.state == "succeeded"  # the run went on without its tracker
    assert took < 60, f"a stopped tracker held the run up for {took:.0f} s"
    said = [r.getMessage() for r in caplog.records if "could not take" in r.getMessage()]
    assert len(said) == 1 and "waits in the outbox" in said[0]
    assert row["state"] == "pending" and row["error"]
    assert _history(mlflow_uri, result.run_id) == [(0, 1.0)]  # only what came before the outage

    synced = subprocess.run(
        [*glasspane_cmd, "integrations", "sync"],
        capture_output=True, text=True, timeout=120,
        env={**_base_env(), **env, "MLFLOW_TRACKING_URI": mlflow_uri},
    )  # fmt: skip
    assert synced.returncode == 0, synced.stderr
    assert f"run {result.run_id}: delivered to `mlflow`" in synced.stdout
    expected = [(epoch, 1.0 / (epoch + 1)) for epoch in range(EPOCHS)]
    assert _history(mlflow_uri, result.run_id) == expected  # in order, nothing twice

    from mlflow import MlflowClient

    client = MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("outage_training").experiment_id
    parents = client.search_runs(
        [experiment],
        filter_string=f"tags.`glasspane.run_id` = '{result.run_id}'",
    )
    assert len([r for r in parents if "mlflow.parentRunId" not in r.data.tags]) == 1
    (parent,) = [r for r in parents if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FINISHED"
    again = subprocess.run(
        [*glasspane_cmd, "integrations", "sync"],
        capture_output=True, text=True, timeout=120,
        env={**_base_env(), **env, "MLFLOW_TRACKING_URI": mlflow_uri},
    )  # fmt: skip
    assert (again.returncode, again.stdout) == (0, "nothing waits for a tracker\n")
    assert _history(mlflow_uri, result.run_id) == expected


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("GLASSPANE_")}
