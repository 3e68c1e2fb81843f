"""The MLflow tracker against a real ``mlflow server``: the conformance suite, then what an
MLflow user sees of the events it is fed (runs, tags, params, metrics, nested children,
artifacts, statuses), replaying, a server that goes down, and reading runs back."""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from conformance import *  # noqa: F403 - the suite's tests run against this tracker

from glasspane.artifacts import ArtifactStore
from glasspane.events import (
    ArtifactLogged,
    Event,
    MetricLogged,
    ParamLogged,
    RunFinished,
    RunStarted,
    TaskFinished,
    TaskStarted,
)
from glasspane.integrations.mlflow import MlflowTracker
from glasspane.integrations.mlflow_read import HTTP_BOUNDS
from glasspane.tracking import TrackerContext, TrackerError

pytest.importorskip("mlflow", reason='mlflow is not installed: pip install "glasspane[mlflow]"')

from mlflow.tracking import MlflowClient  # noqa: E402 - after the skip

T0 = 1_700_000_000.0


pytestmark = pytest.mark.usefixtures("mlflow_http_env")


@pytest.fixture
def make_tracker(mlflow_uri: str) -> Any:
    def make(context: TrackerContext) -> MlflowTracker:
        options = {**context.options, "tracking_uri": mlflow_uri}
        return MlflowTracker(dataclasses.replace(context, options=options))

    return make


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "a"))


@pytest.fixture
def ctx(mlflow_uri: str, store: ArtifactStore) -> TrackerContext:
    return TrackerContext(
        name="mlflow",
        options={"tracking_uri": mlflow_uri},
        artifacts=store,
        run_url=lambda run_id: f"http://127.0.0.1:8420/runs/{run_id}",
    )


@pytest.fixture
def client(mlflow_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_uri)


class Run:
    """Events of one glasspane run, numbered as the driver numbers them."""

    def __init__(self, pipeline: str | None = None) -> None:
        self.run_id = uuid.uuid4().hex
        self.pipeline = pipeline or f"mlf_{uuid.uuid4().hex[:10]}"
        self.events: list[Event] = []

    def add(self, cls: type[Event], **values: Any) -> Event:
        seq = len(self.events) + 1
        event = cls(run_id=self.run_id, seq=seq, ts=T0 + seq, **values)
        self.events.append(event)
        return event


def deliver(tracker: MlflowTracker, events: list[Event]) -> None:
    for event in events:
        tracker.on_event(event)


def children_of(client: MlflowClient, parent: Any) -> dict[str, Any]:
    found = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    return {run.info.run_name: run for run in found}


def grid_run(store: ArtifactStore, tmp_path: Path, state: str = "succeeded") -> Run:
    """A grid search over C with a long parameter, a secret, per-epoch metrics, a logged
    parameter, an artifact, and the run's end."""
    run = Run()
    params = {"n_rows": 500, "token": "**********", "notes": "x" * 7000, "grid": [0.1, 1.0]}
    run.add(RunStarted, pipeline=run.pipeline, version="abc123", params=params, trigger="cli")
    for index, c in enumerate((0.1, 1.0)):
        node = f"train[{index}]"
        run.add(TaskStarted, node=node, task="train", map_index=index, params={"C": c})
        for epoch in range(3):
            run.add(MetricLogged, node=node, key="loss", value=c / (epoch + 1), step=epoch)
        run.add(MetricLogged, node=node, key="acc", value=0.5 + c / 10)  # no step
        run.add(ParamLogged, node=node, key="solver", value="lbfgs")
        run.add(TaskFinished, node=node, task="train", state="succeeded", ended=T0 + 50)
    report = tmp_path / "report.txt"
    report.write_text("best C = 1.0\n")
    info = store.put_file(report)
    run.add(ArtifactLogged, node="train[1]", name="report", filename="report.txt", artifact=info)
    run.add(RunFinished, state=state)
    return run


def test_a_run_with_its_tags_params_and_start(
    ctx: TrackerContext, client: MlflowClient, store: ArtifactStore, tmp_path: Path
) -> None:
    run = grid_run(store, tmp_path)
    tracker = MlflowTracker(ctx)
    assert tracker.link(run.run_id) is None
    deliver(tracker, run.events)
    link = tracker.link(run.run_id)
    assert link is not None and link.tracker == "mlflow"
    parent = client.get_run(link.external_id)
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.name == run.pipeline == tracker.experiment_for(run.pipeline)
    base = ctx.options["tracking_uri"]
    expected = f"{base}/#/experiments/{experiment.experiment_id}/runs/{link.external_id}"
    assert link.url == expected
    assert parent.info.run_name == f"{run.pipeline}-{run.run_id[:8]}"
    assert parent.info.start_time == int((T0 + 1) * 1000)
    assert parent.info.end_time == int(run.events[-1].ts * 1000)
    assert parent.info.status == "FINISHED"
    tags = parent.data.tags
    assert tags["glasspane.run_id"] == run.run_id
    assert tags["glasspane.pipeline"] == run.pipeline
    assert tags["glasspane.version"] == "abc123"
    assert tags["glasspane.trigger"] == "cli"
    assert tags["glasspane.url"] == f"http://127.0.0.1:8420/runs/{run.run_id}"
    assert "glasspane.resumed_from" not in tags
    assert tags["glasspane.truncated_params"] == "notes"
    params = parent.data.params
    assert params["n_rows"] == "500" and params["token"] == "**********"
    assert params["grid"] == "[0.1, 1.0]"
    assert params["notes"] == "x" * 6000


def test_a_child_run_per_node_with_constants_metrics_and_status(
    ctx: TrackerContext, client: MlflowClient, store: ArtifactStore, tmp_path: Path
) -> None:
    run = grid_run(store, tmp_path)
    tracker = MlflowTracker(ctx)
    deliver(tracker, run.events)
    link = tracker.link(run.run_id)
    assert link is not None
    parent = client.get_run(link.external_id)
    children = children_of(client, parent)
    assert sorted(children) == ["train[0]", "train[1]"]
    for index, c in enumerate((0.1, 1.0)):
        child = children[f"train[{index}]"]
        assert child.info.experiment_id == parent.info.experiment_id
        assert child.data.tags["glasspane.run_id"] == run.run_id
        assert child.data.tags["glasspane.node"] == f"train[{index}]"
        assert child.data.params == {"C": str(c), "solver": "lbfgs"}
        assert child.info.status == "FINISHED"
        assert child.info.end_time == int((T0 + 50) * 1000)
        history = client.get_metric_history(child.info.run_id, "loss")
        points = sorted((m.step, m.value, m.timestamp) for m in history)
        assert [(step, value) for step, value, _ in points] == [
            (epoch, c / (epoch + 1)) for epoch in range(3)
        ]
        assert all(ts % 1000 == 0 and ts > T0 * 1000 for _, _, ts in points)
        (acc,) = client.get_metric_history(child.info.run_id, "acc")
        assert acc.step == 0 and acc.value == pytest.approx(0.5 + c / 10)
    # a grid search is sortable by metric in MLflow's own search
    best = client.search_runs(
        [parent.info.experiment_id],
        f"tags.mlflow.parentRunId = '{link.external_id}'",
        order_by=["metrics.acc DESC"],
    )
    assert [r.info.run_name for r in best] == ["train[1]", "train[0]"]


def test_artifacts_go_under_the_node_folder(
    ctx: TrackerContext, client: MlflowClient, store: ArtifactStore, tmp_path: Path
) -> None:
    run = grid_run(store, tmp_path)
    tracker = MlflowTracker(ctx)
    deliver(tracker, run.events)
    link = tracker.link(run.run_id)
    assert link is not None
    (folder,) = client.list_artifacts(link.external_id)
    assert folder.is_dir and folder.path == "train[1]"
    (item,) = client.list_artifacts(link.external_id, "train[1]")
    assert item.path == "train[1]/report.txt"
    local = client.download_artifacts(link.external_id, item.path, str(tmp_path / "down"))
    assert Path(local).read_text() == "best C = 1.0\n"
    leftovers = list(Path(ctx.artifacts.root).parent.glob("glasspane-track-*"))
    assert leftovers == []


@pytest.mark.parametrize(
    ("state", "status"),
    [("succeeded", "FINISHED"), ("failed", "FAILED"), ("cancelled", "KILLED"),
     ("timed_out", "FAILED")],
)  # fmt: skip
def test_the_terminal_status_of_the_run_and_of_children_still_running(
    ctx: TrackerContext, client: MlflowClient, state: str, status: str
) -> None:
    run = Run()
    run.add(RunStarted, pipeline=run.pipeline, version="v1")
    run.add(MetricLogged, node="done", key="loss", value=1.0, step=0)
    run.add(TaskFinished, node="done", task="done", state="failed", ended=T0 + 10)
    run.add(MetricLogged, node="busy", key="loss", value=2.0, step=0)  # never finishes
    run.add(RunFinished, state=state)
    tracker = MlflowTracker(ctx)
    deliver(tracker, run.events[:-1])
    link = tracker.link(run.run_id)
    assert link is not None
    assert client.get_run(link.external_id).info.status == "RUNNING"
    deliver(tracker, run.events[-1:])
    parent = client.get_run(link.external_id)
    assert parent.info.status == status
    children = children_of(client, parent)
    assert children["done"].info.status == "FAILED"  # its own end, kept
    assert children["busy"].info.status == status
    assert children["busy"].info.end_time == parent.info.end_time


def test_a_resumed_run_is_a_new_run_tagged_with_the_one_it_resumes(
    ctx: TrackerContext, client: MlflowClient
) -> None:
    first = Run()
    first.add(RunStarted, pipeline=first.pipeline, version="v1")
    first.add(RunFinished, state="failed")
    again = Run(first.pipeline)
    again.add(RunStarted, pipeline=again.pipeline, version="v1", resumed_from=first.run_id)
    tracker = MlflowTracker(ctx)
    deliver(tracker, first.events + again.events)
    old, new = tracker.link(first.run_id), tracker.link(again.run_id)
    assert old is not None and new is not None and old.external_id != new.external_id
    tags = client.get_run(new.external_id).data.tags
    assert tags["glasspane.resumed_from"] == first.run_id


def test_replaying_a_run_in_a_new_tracker_creates_and_duplicates_nothing(
    ctx: TrackerContext, client: MlflowClient, store: ArtifactStore, tmp_path: Path
) -> None:
    run = grid_run(store, tmp_path)
    tracker = MlflowTracker(ctx)
    deliver(tracker, run.events[:9])
    deliver(tracker, run.events[:9])  # redelivered after a failure: skipped
    deliver(tracker, run.events)
    link = tracker.link(run.run_id)
    assert link is not None
    experiment_id = client.get_run(link.external_id).info.experiment_id

    def snapshot() -> dict[str, Any]:
        runs = client.search_runs([experiment_id])
        return {
            r.info.run_id: (
                r.info.status, r.info.end_time, r.data.params,
                sorted((m.step, m.value, m.timestamp)
                       for m in client.get_metric_history(r.info.run_id, "loss")),
            )
            for r in runs
        }  # fmt: skip

    before = snapshot()
    assert len(before) == 3
    fresh = MlflowTracker(ctx)  # `glasspane integrations sync` in another process
    deliver(fresh, run.events)
    assert fresh.link(run.run_id) == link
    assert snapshot() == before
    (item,) = client.list_artifacts(link.external_id, "train[1]")
    assert item.path == "train[1]/report.txt"


def test_a_replay_of_a_run_cut_short_completes_it(
    ctx: TrackerContext, client: MlflowClient
) -> None:
    run = Run()
    run.add(RunStarted, pipeline=run.pipeline, version="v1", params={"a": 1})
    run.add(TaskStarted, node="fit", task="fit", params={"C": 2})
    for step in range(4):
        run.add(MetricLogged, node="fit", key="loss", value=1.0 / (step + 1), step=step)
    run.add(RunFinished, state="succeeded")
    deliver(MlflowTracker(ctx), run.events[:4])  # the process died here
    fresh = MlflowTracker(ctx)
    deliver(fresh, run.events)
    link = fresh.link(run.run_id)
    assert link is not None
    (child,) = children_of(client, client.get_run(link.external_id)).values()
    assert child.data.params == {"C": "2"}
    history = client.get_metric_history(child.info.run_id, "loss")
    assert sorted(m.step for m in history) == [0, 1, 2, 3]
    assert child.info.status == "FINISHED"


def test_a_parameter_logged_again_with_another_value_keeps_the_first(
    ctx: TrackerContext, client: MlflowClient
) -> None:
    run = Run()
    run.add(RunStarted, pipeline=run.pipeline, version="v1")
    run.add(TaskStarted, node="fit", task="fit", params={"C": 1.0})
    run.add(ParamLogged, node="fit", key="solver", value="lbfgs")
    run.add(ParamLogged, node="fit", key="solver", value="saga")
    run.add(ParamLogged, node="fit", key="C", value=5)  # clashes with the node's constant
    run.add(ParamLogged, node="fit", key="bad key?", value="x" * 7000)
    tracker = MlflowTracker(ctx)
    deliver(tracker, run.events)
    deliver(MlflowTracker(ctx), run.events)  # a new process knows nothing of the first value
    link = tracker.link(run.run_id)
    assert link is not None
    (child,) = children_of(client, client.get_run(link.external_id)).values()
    assert child.data.params == {"C": "1.0", "solver": "lbfgs", "bad key_": "x" * 6000}
    assert child.data.tags["glasspane.param_conflict.solver"] == "saga"
    assert child.data.tags["glasspane.param_conflict.C"] == "5"
    assert child.data.tags["glasspane.truncated_params"] == "bad key_"


def test_a_stopped_server_fails_delivery_quickly_then_delivery_resumes(
    mlflow_server: Any, ctx: TrackerContext, client: MlflowClient
) -> None:
    for variable in HTTP_BOUNDS:
        os.environ.pop(variable, None)  # the tracker's defaults (restored by mlflow_http_env)
    run, other = Run(), Run()
    run.add(RunStarted, pipeline=run.pipeline, version="v1")
    metric = run.add(MetricLogged, node="fit", key="loss", value=0.5, step=1)
    other.add(RunStarted, pipeline=other.pipeline, version="v1")
    tracker = MlflowTracker(ctx)
    deliver(tracker, run.events[:1])
    mlflow_server.stop()
    try:
        started = time.monotonic()
        with pytest.raises(TrackerError) as caught:
            tracker.on_event(metric)
        elapsed = time.monotonic() - started
        with pytest.raises(TrackerError, match="could not start MLflow run of glasspane run"):
            tracker.on_event(other.events[0])
    finally:
        mlflow_server.start()
    assert elapsed < 15, f"a stopped server took {elapsed:.1f} s to fail"
    message = str(caught.value)
    assert message.startswith(
        f"tracker `mlflow` could not take metric_logged #2 of run {run.run_id} on the MLflow "
        f"server at {mlflow_server.uri} ("
    )
    assert message.endswith(
        "check that the server is up and reachable (`tracking_uri` in "
        "[tool.glasspane.mlflow], or MLFLOW_TRACKING_URI); glasspane keeps what it could not "
        "deliver and sends it again later"
    )
    assert tracker.link(other.run_id) is None
    tracker.on_event(metric)  # delivered again, as the outbox does
    tracker.on_event(other.events[0])
    assert tracker.link(other.run_id) is not None
    link = tracker.link(run.run_id)
    assert link is not None
    (child,) = children_of(client, client.get_run(link.external_id)).values()
    history = client.get_metric_history(child.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.5)]
