"""Real pipelines with the MLflow tracker turned on by settings alone, on the threads and the
Dask executors, read back with MlflowClient; and a server that is down during a run, whose
events wait in the outbox until ``sync_trackers`` delivers them."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import glasspane
from glasspane import log_metric, log_param, pipeline, task
from glasspane.config import load_settings
from glasspane.errors import RunFailed
from glasspane.integrations.mlflow_read import HTTP_BOUNDS

pytest.importorskip("mlflow", reason='mlflow is not installed: pip install "glasspane[mlflow]"')

from mlflow.tracking import MlflowClient  # noqa: E402 - after the skip

EPOCHS = 3


@task(cache=False)
def fit(c: float, epochs: int = EPOCHS) -> float:
    for epoch in range(epochs):
        log_metric("loss", c / (epoch + 1), step=epoch)
    log_param("solver", "lbfgs")
    return c / epochs


@task(track=True, cache=False)
def best(scores: list[float], report_dir: str) -> dict[str, float]:
    path = Path(report_dir) / "scores.txt"
    path.write_text(" ".join(str(s) for s in scores))
    glasspane.log_artifact(str(path))
    return {"best": min(scores)}


@pipeline
def mlflow_grid(report_dir: str, grid: list[float] = [0.1, 1.0, 10.0]):  # noqa: B006
    scores = fit.map(c=grid)
    return best(scores, report_dir)


@task(cache=False)
def explode(c: float) -> float:
    log_metric("loss", c, step=0)
    raise ValueError("diverged")


@pipeline
def mlflow_broken(c: float = 1.0):
    return explode(c)


pytestmark = pytest.mark.usefixtures("mlflow_http_env")


def _workspace(uri: str) -> glasspane.Workspace:
    settings = load_settings(trackers=["mlflow"], tracker_options={"mlflow": {"tracking_uri": uri}})
    return glasspane.Workspace(settings)


def _children(client: MlflowClient, parent: Any) -> dict[str, Any]:
    found = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    return {run.info.run_name: run for run in found}


EXECUTORS = ["threads", pytest.param("dask", marks=pytest.mark.dask)]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_grid_search_is_a_parent_with_a_child_per_candidate(
    mlflow_uri: str, tmp_path: Path, executor: str
) -> None:
    client = MlflowClient(tracking_uri=mlflow_uri)
    with _workspace(mlflow_uri) as ws:
        result = ws.run(mlflow_grid, params={"report_dir": str(tmp_path)}, executor=executor)
        (stored,) = ws.store.tracker_links(result.run_id)
    assert result.output == {"best": pytest.approx(0.1 / EPOCHS)}
    assert stored["state"] == "delivered"
    parent = client.get_run(stored["external_id"])
    assert stored["url"] == (
        f"{mlflow_uri}/#/experiments/{parent.info.experiment_id}/runs/{parent.info.run_id}"
    )
    assert client.get_experiment(parent.info.experiment_id).name == "mlflow_grid"
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == f"mlflow_grid-{result.run_id[:8]}"
    assert parent.data.tags["glasspane.run_id"] == result.run_id
    assert parent.data.params == {"report_dir": str(tmp_path), "grid": "[0.1, 1.0, 10.0]"}
    children = _children(client, parent)
    assert sorted(children) == ["fit[0]", "fit[1]", "fit[2]"]
    for index, c in enumerate((0.1, 1.0, 10.0)):
        child = children[f"fit[{index}]"]
        assert child.info.status == "FINISHED"
        assert child.data.params == {"c": str(c), "epochs": str(EPOCHS), "solver": "lbfgs"}
        history = client.get_metric_history(child.info.run_id, "loss")
        assert sorted((m.step, m.value) for m in history) == [
            (epoch, pytest.approx(c / (epoch + 1))) for epoch in range(EPOCHS)
        ]
    listed = {item.path for item in client.list_artifacts(parent.info.run_id, "best")}
    assert "best/scores.txt" in listed and len(listed) == 2  # the file and the tracked output


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_failed_run_is_failed(mlflow_uri: str, executor: str) -> None:
    client = MlflowClient(tracking_uri=mlflow_uri)
    with _workspace(mlflow_uri) as ws:
        with pytest.raises(RunFailed) as caught:
            ws.run(mlflow_broken, executor=executor)
        result = caught.value.result
        (stored,) = ws.store.tracker_links(result.run_id)
    assert result.state == "failed"
    parent = client.get_run(stored["external_id"])
    assert parent.info.status == "FAILED"
    (child,) = _children(client, parent).values()
    assert child.info.run_name == "explode" and child.info.status == "FAILED"


def test_a_run_while_the_server_is_down_is_delivered_by_sync(
    mlflow_server: Any, mlflow_uri: str, tmp_path: Path
) -> None:
    for name in HTTP_BOUNDS:
        os.environ.pop(name, None)  # the tracker's bounded defaults
    client = MlflowClient(tracking_uri=mlflow_uri)
    with _workspace(mlflow_uri) as ws:
        ws.trackers()  # made while the server is up
        mlflow_server.stop()
        try:
            result = ws.run(mlflow_grid, params={"report_dir": str(tmp_path), "grid": [0.5]})
            (stored,) = ws.store.tracker_links(result.run_id)
        finally:
            mlflow_server.start()
        assert result.state == "succeeded"  # the tracker's outage never fails the run
        assert stored["state"] == "pending" and stored["external_id"] is None
        assert "MLflow server at" in stored["error"]
        (done,) = ws.sync_trackers()
        assert done.error is None and done.run_id == result.run_id
        (stored,) = ws.store.tracker_links(result.run_id)
    assert stored["state"] == "delivered"
    parent = client.get_run(stored["external_id"])
    assert parent.info.status == "FINISHED"
    (child,) = _children(client, parent).values()
    history = client.get_metric_history(child.info.run_id, "loss")
    assert sorted(m.step for m in history) == list(range(EPOCHS))


@task(cache=False)
def wait_for(flag: str) -> int:
    log_metric("loss", 1.0, step=0)
    while not Path(flag).exists():
        time.sleep(0.05)
    return 1


@pipeline
def mlflow_waits(flag: str):
    return wait_for(flag)


def test_a_cancelled_run_is_killed(mlflow_uri: str, tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=mlflow_uri)
    flag = tmp_path / "never"
    settings = load_settings(
        trackers=["mlflow"], tracker_options={"mlflow": {"tracking_uri": mlflow_uri}},
        heartbeat_interval=0.2,
    )  # fmt: skip
    with glasspane.Workspace(settings) as ws:
        outcome: dict[str, Any] = {}
        runner = threading.Thread(
            target=lambda: outcome.update(
                result=ws.run(mlflow_waits, {"flag": str(flag)}, raise_on_failure=False)
            )
        )
        runner.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ws.store.list_runs():
            time.sleep(0.05)
        (run,) = ws.store.list_runs()
        while time.monotonic() < deadline and not ws.store.metrics(run["run_id"]):
            time.sleep(0.05)
        assert ws.cancel(run["run_id"])  # as `glasspane cancel` from another shell
        runner.join(60)
        flag.touch()  # the abandoned task thread may end now
        result = outcome["result"]
        (stored,) = ws.store.tracker_links(result.run_id)
    assert result.state == "cancelled"
    parent = client.get_run(stored["external_id"])
    assert parent.info.status == "KILLED"


def test_a_retried_run_is_a_new_mlflow_run_tagged_with_the_run_it_resumed(
    mlflow_uri: str,
) -> None:
    client = MlflowClient(tracking_uri=mlflow_uri)
    with _workspace(mlflow_uri) as ws:
        failed = ws.run(mlflow_broken, raise_on_failure=False)
        retried = ws.retry(failed.run_id, pipeline=mlflow_broken, raise_on_failure=False)
        (first,) = ws.store.tracker_links(failed.run_id)
        (second,) = ws.store.tracker_links(retried.run_id)
    assert first["external_id"] != second["external_id"]
    again = client.get_run(second["external_id"])
    assert again.data.tags["glasspane.resumed_from"] == failed.run_id
    assert again.data.tags["glasspane.trigger"] == "retry"
