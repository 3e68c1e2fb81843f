"""The MLflow tracker's reading side (runs glasspane did not create, page by page), its
options, and what happens without the mlflow package."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

from glasspane.errors import ConfigError, NotFound
from glasspane.events import MetricLogged, RunStarted
from glasspane.integrations.mlflow import MlflowTracker
from glasspane.integrations.mlflow_read import HTTP_BOUNDS
from glasspane.tracking import TrackerContext, make

pytest.importorskip("mlflow", reason='mlflow is not installed: pip install "glasspane[mlflow]"')

from mlflow.entities import Metric  # noqa: E402 - after the skip
from mlflow.tracking import MlflowClient  # noqa: E402

T0 = 1_700_000_000_000  # ms


pytestmark = pytest.mark.usefixtures("mlflow_http_env")


@pytest.fixture
def tracker(mlflow_uri: str) -> MlflowTracker:
    return MlflowTracker(TrackerContext(name="mlflow", options={"tracking_uri": mlflow_uri}))


@pytest.fixture
def client(mlflow_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_uri)


def test_search_pages_through_runs_glasspane_did_not_create(
    tracker: MlflowTracker, client: MlflowClient, mlflow_uri: str
) -> None:
    name = f"outside_{uuid.uuid4().hex[:8]}"
    experiment_id = client.create_experiment(name)
    made = []
    for index in range(5):
        run = client.create_run(experiment_id, start_time=T0 + index * 1000, run_name=f"r{index}")
        client.log_param(run.info.run_id, "alpha", str(index))
        client.log_metric(run.info.run_id, "rmse", 1.0 / (index + 1), step=index)
        made.append(run.info.run_id)
    client.set_terminated(made[0], "FAILED", end_time=T0 + 500)
    pages, token = [], None
    while True:
        page = tracker.search_runs(name, page_token=token, max_results=2)
        pages.append([run.external_id for run in page.runs])
        token = page.next_page_token
        if token is None:
            break
    newest = made[::-1]
    assert pages == [newest[:2], newest[2:4], newest[4:]]
    oldest = tracker.get_run(made[0])
    assert oldest.tracker == "mlflow" and oldest.name == "r0" and oldest.experiment == name
    assert oldest.status == "FAILED"
    assert oldest.start_time is not None and oldest.start_time.timestamp() == T0 / 1000
    assert oldest.end_time is not None and oldest.end_time.timestamp() == (T0 + 500) / 1000
    assert oldest.params == {"alpha": "0"} and oldest.metrics == {"rmse": 1.0}
    assert oldest.glasspane_run_id is None and oldest.parent_id is None
    assert oldest.url == f"{mlflow_uri}/#/experiments/{experiment_id}/runs/{made[0]}"


def test_an_unknown_experiment_is_an_empty_page(tracker: MlflowTracker) -> None:
    page = tracker.search_runs(f"nothing_{uuid.uuid4().hex[:8]}")
    assert page.runs == [] and page.next_page_token is None


def test_a_missing_run_is_not_found(tracker: MlflowTracker, mlflow_uri: str) -> None:
    with pytest.raises(NotFound) as caught:
        tracker.get_run("0" * 32)
    assert str(caught.value) == (
        f"tracker `mlflow` has no run {'0' * 32} on the MLflow server at {mlflow_uri}; list "
        "the experiment's runs to find its id"
    )


def test_children_metric_history_and_glasspane_ids(
    tracker: MlflowTracker, client: MlflowClient
) -> None:
    name = f"nested_{uuid.uuid4().hex[:8]}"
    experiment_id = client.create_experiment(name)
    parent = client.create_run(experiment_id, tags={"glasspane.run_id": "abc"}, run_name="p")
    parent_id = parent.info.run_id
    for node in ("a", "b"):
        client.create_run(
            experiment_id, tags={"mlflow.parentRunId": parent_id}, run_name=node
        )  # fmt: skip
    metrics = [Metric("loss", 1.0 / (s + 1), T0 + s, s) for s in (2, 0, 1)]
    client.log_batch(parent_id, metrics=metrics)
    children = tracker.child_runs(parent_id)
    assert [child.name for child in children] == ["a", "b"]
    assert {child.parent_id for child in children} == {parent_id}
    assert tracker.get_run(parent_id).glasspane_run_id == "abc"
    history = tracker.metric_history(parent_id, "loss")
    assert [(p.step, p.value) for p in history] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert history[0].timestamp is not None and history[0].timestamp.timestamp() == T0 / 1000
    assert tracker.metric_history(parent_id, "missing") == []


def test_the_experiment_is_a_template_of_the_pipeline(mlflow_uri: str) -> None:
    options = {"tracking_uri": mlflow_uri, "experiment": "team/{pipeline}"}
    tracker = MlflowTracker(TrackerContext(name="mlflow", options=options))
    assert tracker.experiment_for("retrain") == "team/retrain"
    run_id = uuid.uuid4().hex
    pipeline = f"tmpl_{run_id[:8]}"
    tracker.on_event(RunStarted(run_id=run_id, seq=1, pipeline=pipeline, version="v"))
    page = tracker.search_runs(f"team/{pipeline}")
    assert [run.glasspane_run_id for run in page.runs] == [run_id]


def test_only_a_web_server_has_run_urls(tracker: MlflowTracker, mlflow_uri: str) -> None:
    assert tracker.uri == mlflow_uri
    assert tracker.url_of("1", "abc") == f"{mlflow_uri}/#/experiments/1/runs/abc"
    tracker.uri = "sqlite:///mlflow.db"  # a local store: no page to link to
    assert tracker.url_of("1", "abc") is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"experiment": "{pipline}"},
            "tracker `mlflow`: option `experiment` = '{pipline}' is not a template of "
            "{pipeline} (KeyError('pipline')); use e.g. \"glasspane/{pipeline}\"",
        ),
        (
            {"request_timeout": "soon"},
            "tracker `mlflow`: option `request_timeout` is 'soon'; give a whole number of at "
            "least 0 in [tool.glasspane.mlflow]",
        ),
    ],
)
def test_unusable_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MlflowTracker(TrackerContext(name="mlflow", options=options))
    assert str(caught.value) == message


def test_http_bounds_keep_the_users_own_values_unless_an_option_names_one(
    monkeypatch: pytest.MonkeyPatch, mlflow_uri: str
) -> None:
    for name in HTTP_BOUNDS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    options = {"tracking_uri": mlflow_uri, "max_retries": 0}
    MlflowTracker(TrackerContext(name="mlflow", options=options))
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "30"  # the user's
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"  # the option's
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"  # the tracker's default


def test_the_entry_point_makes_it(mlflow_uri: str) -> None:
    tracker = make("mlflow", TrackerContext(name="mlflow", options={"tracking_uri": mlflow_uri}))
    assert isinstance(tracker, MlflowTracker) and tracker.name == "mlflow"


def test_without_mlflow_the_module_imports_and_the_extra_is_named() -> None:
    script = """
import sys
sys.modules["mlflow"] = None  # as if it were not installed
import glasspane.integrations.mlflow as adapter
from glasspane.errors import ConfigError
from glasspane.tracking import TrackerContext, make
try:
    adapter.MlflowTracker(TrackerContext(name="mlflow"))
except ModuleNotFoundError as exc:
    print("missing", exc.name)
try:
    make("mlflow", TrackerContext(name="mlflow"))
except ConfigError as exc:
    print(exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines() == [
        "missing mlflow",
        "tracker `mlflow` needs the `mlflow` package, which is not installed: "
        'pip install "glasspane[mlflow]"',
    ]


def test_a_metric_before_the_run_started_is_ignored(tracker: MlflowTracker) -> None:
    event = MetricLogged(run_id=uuid.uuid4().hex, seq=5, node="fit", key="loss", value=1.0)
    tracker.on_event(event)  # a tracker added mid-run: nothing to attach it to
    assert tracker.link(event.run_id) is None
