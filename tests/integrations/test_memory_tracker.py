"""The in-memory tracker, the protocol's reference: the conformance suite, and trackers turned
on by configuration alone (environment, glasspane.toml, [tool.glasspane]) for a real run."""

from __future__ import annotations

from pathlib import Path

import pytest
from conformance import *  # noqa: F403 - the suite's tests run against this tracker

import glasspane
from glasspane import log_metric, log_param, pipeline, task
from glasspane.config import load_settings
from glasspane.errors import ConfigError
from glasspane.integrations.memory import MemoryBackend, MemoryTracker
from glasspane.tracking import TrackerContext


@pytest.fixture
def make_tracker() -> object:
    backend = MemoryBackend()  # one "server" for every tracker object of the test
    return lambda context: MemoryTracker(context, backend)


@task
def fit(c: float, epochs: int = 3) -> float:
    for epoch in range(epochs):
        log_metric("loss", c / (epoch + 1), step=epoch)
    log_param("solver", "lbfgs")
    return c / epochs


@task(track=True)
def best(scores: list[float]) -> dict[str, float]:
    glasspane.log_artifact({"best": min(scores)}, name="summary")
    return {"best": min(scores)}


@pipeline
def grid(n: int = 3):
    scores = fit.map(c=[0.1, 1.0, 10.0][:n])
    return best(scores)


def _memory(ws: glasspane.Workspace) -> MemoryTracker:
    (relay,) = ws.trackers()
    assert isinstance(relay.tracker, MemoryTracker)
    return relay.tracker


EXECUTORS = ["inline", "threads", pytest.param("dask", marks=pytest.mark.dask)]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_grid_search_is_one_run_with_a_child_per_candidate(
    monkeypatch: pytest.MonkeyPatch, executor: str
) -> None:
    monkeypatch.setenv("GLASSPANE_TRACKERS", "memory")
    with glasspane.Workspace() as ws:
        result = ws.run(grid, executor=executor)
        tracker = _memory(ws)
        link = tracker.link(result.run_id)
        assert link is not None
        run = tracker.get_run(link.external_id)
        assert run.status == "FINISHED" and run.params == {"n": "3"}
        children = {child.name: child for child in tracker.child_runs(link.external_id)}
        assert sorted(children) == ["fit[0]", "fit[1]", "fit[2]"]
        assert children["fit[2]"].params == {"c": "10.0", "epochs": "3", "solver": "lbfgs"}
        history = tracker.metric_history(children["fit[1]"].external_id, "loss")
        assert [(p.step, p.value) for p in history] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
        artifacts = tracker.runs[link.external_id]["artifacts"]
        assert sorted(artifacts) == ["best/best.json", "best/summary.json"]
        (stored,) = ws.store.tracker_links(result.run_id)
        assert stored["state"] == "delivered" and stored["external_id"] == link.external_id
        assert stored["url"] == f"memory://{link.external_id}"


def test_trackers_come_from_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.glasspane]\ntrackers = ["memory"]\n\n[tool.glasspane.memory]\nstrict = true\n'
    )
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.trackers == ["memory"]
    assert settings.tracker_options == {"memory": {"strict": True}}
    with glasspane.Workspace(settings) as ws:
        (relay,) = ws.trackers()
        assert relay.strict


def test_an_unknown_tracker_is_refused_before_anything_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GLASSPANE_TRACKERS", "memroy")
    with glasspane.Workspace() as ws:
        with pytest.raises(ConfigError) as caught:
            ws.run(grid)
        assert ws.store.list_runs() == []
    message = str(caught.value)
    assert "tracker `memroy` (in the `trackers` setting) is not installed" in message
    assert "memory" in message and "mlflow" in message


def test_a_table_for_no_tracker_is_still_an_unknown_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "glasspane.toml").write_text("[mlfow]\ntracking_uri = 'http://x'\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="unknown glasspane setting `mlfow`"):
        load_settings()


def test_the_context_names_the_run_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLASSPANE_UI_URL", "https://ml.example.com/")
    from glasspane.tracking import context_for

    context = context_for("memory", load_settings())
    assert isinstance(context, TrackerContext)
    assert context.run_url("abc") == "https://ml.example.com/runs/abc"
