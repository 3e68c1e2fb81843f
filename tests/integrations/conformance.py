"""The Tracker protocol's conformance suite, run against every tracker that can be read back.

A test module imports these tests (``from conformance import *``) and defines the fixture
``make_tracker``: a function of a :class:`~glasspane.tracking.TrackerContext` returning a new
tracker object on the *same* backing store (the same server, the same in-memory backend), as
``glasspane integrations sync`` makes one in a new process. Each test feeds the tracker the
events of a small grid-search run and reads back, through the tracker's
:class:`~glasspane.tracking.TrackerReader` side, what a user of the tracker would see.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from glasspane.artifacts import ArtifactStore
from glasspane.events import (
    Event,
    MetricLogged,
    ParamLogged,
    RunFinished,
    RunStarted,
    TaskFinished,
    TaskStarted,
)
from glasspane.tracking import Tracker, TrackerContext, TrackerReader

MakeTracker = Callable[[TrackerContext], Tracker]
CANDIDATES = (0.1, 1.0, 10.0)
EPOCHS = 3


def grid_search_events(run_id: str, pipeline: str, state: str = "succeeded") -> list[Event]:
    """A run of ``pipeline``: a parameter, a secret (masked, as the engine sends it), one
    ``train`` node per candidate logging a loss per epoch and a parameter, then the end."""
    events: list[Event] = []

    def add(cls: type[Event], **values: object) -> None:
        events.append(
            cls(run_id=run_id, seq=len(events) + 1, ts=1_700_000_000.0 + len(events), **values)
        )  # type: ignore[arg-type]  # noqa: E501

    add(RunStarted, pipeline=pipeline, version="v1", params={"n_rows": 500, "token": "***"})
    for index, c in enumerate(CANDIDATES):
        node = f"train[{index}]"
        add(TaskStarted, node=node, task="train", map_index=index, params={"C": c, "seed": 0})
        for epoch in range(EPOCHS):
            add(MetricLogged, node=node, key="loss", value=c / (epoch + 1), step=epoch)
        add(ParamLogged, node=node, key="solver", value="lbfgs")
        task_state = "failed" if state == "failed" and index == 2 else "succeeded"
        add(TaskFinished, node=node, task="train", state=task_state)
    add(RunFinished, state=state)
    return events


@pytest.fixture
def context(tmp_path: Path) -> TrackerContext:
    return TrackerContext(
        name="conformance",
        artifacts=ArtifactStore(str(tmp_path / "artifacts")),
        run_url=lambda run_id: f"http://127.0.0.1:8420/runs/{run_id}",
    )


def _reader(tracker: Tracker) -> TrackerReader:
    assert isinstance(tracker, TrackerReader)
    return tracker


def _deliver(tracker: Tracker, events: list[Event]) -> None:
    for event in events:
        tracker.on_event(event)


def _pipeline() -> str:
    return f"conf_{uuid.uuid4().hex[:10]}"


def test_one_tracker_run_per_glasspane_run(
    make_tracker: MakeTracker, context: TrackerContext
) -> None:
    tracker, pipeline, run_id = make_tracker(context), _pipeline(), uuid.uuid4().hex
    _deliver(tracker, grid_search_events(run_id, pipeline))
    link = tracker.link(run_id)
    assert link is not None and link.tracker == context.name
    reader = _reader(tracker)
    page = reader.search_runs(reader.experiment_for(pipeline))
    parents = [run for run in page.runs if run.parent_id is None]
    assert [run.external_id for run in parents] == [link.external_id]
    run = reader.get_run(link.external_id)
    assert run.name == f"{pipeline}-{run_id[:8]}"
    assert run.status == "FINISHED"
    assert run.glasspane_run_id == run_id
    assert run.tags["glasspane.pipeline"] == pipeline
    assert run.params["n_rows"] == "500"
    assert run.params["token"] == "***"


def test_a_child_run_per_task_that_logs(make_tracker: MakeTracker, context: TrackerContext) -> None:
    tracker, pipeline, run_id = make_tracker(context), _pipeline(), uuid.uuid4().hex
    _deliver(tracker, grid_search_events(run_id, pipeline))
    reader = _reader(tracker)
    link = tracker.link(run_id)
    assert link is not None
    children = {run.name: run for run in reader.child_runs(link.external_id)}
    assert sorted(children) == ["train[0]", "train[1]", "train[2]"]
    for index, c in enumerate(CANDIDATES):
        child = children[f"train[{index}]"]
        assert child.parent_id == link.external_id
        assert float(child.params["C"]) == c
        assert child.params["solver"] == "lbfgs"
        history = reader.metric_history(child.external_id, "loss")
        assert [(p.step, p.value) for p in history] == [
            (epoch, c / (epoch + 1)) for epoch in range(EPOCHS)
        ]
        assert child.metrics["loss"] == pytest.approx(c / EPOCHS)


def test_delivering_again_duplicates_nothing(
    make_tracker: MakeTracker, context: TrackerContext
) -> None:
    tracker, pipeline, run_id = make_tracker(context), _pipeline(), uuid.uuid4().hex
    events = grid_search_events(run_id, pipeline)
    _deliver(tracker, events[:7])
    _deliver(tracker, events[:7])  # the same events again, as after a failed delivery
    _deliver(tracker, events)
    fresh = make_tracker(context)  # another process replays the whole run
    _deliver(fresh, events)
    reader = _reader(fresh)
    page = reader.search_runs(reader.experiment_for(pipeline))
    assert len([run for run in page.runs if run.parent_id is None]) == 1
    link = fresh.link(run_id)
    assert link is not None and link == tracker.link(run_id)
    for child in reader.child_runs(link.external_id):
        history = reader.metric_history(child.external_id, "loss")
        assert [p.step for p in history] == list(range(EPOCHS))
    assert len(reader.child_runs(link.external_id)) == len(CANDIDATES)


@pytest.mark.parametrize(
    ("state", "status"), [("failed", "FAILED"), ("cancelled", "KILLED"), ("crashed", "FAILED")]
)
def test_the_status_comes_from_the_run_end(
    make_tracker: MakeTracker, context: TrackerContext, state: str, status: str
) -> None:
    tracker, pipeline, run_id = make_tracker(context), _pipeline(), uuid.uuid4().hex
    events = grid_search_events(run_id, pipeline, state)
    _deliver(tracker, events[:-1])
    link = tracker.link(run_id)
    assert link is not None
    reader = _reader(tracker)
    assert reader.get_run(link.external_id).status == "RUNNING"  # no per-task hook ends it
    _deliver(tracker, events[-1:])
    assert reader.get_run(link.external_id).status == status


def test_an_unknown_experiment_is_an_empty_page(
    make_tracker: MakeTracker, context: TrackerContext
) -> None:
    reader = _reader(make_tracker(context))
    page = reader.search_runs(f"never_{uuid.uuid4().hex[:8]}")
    assert page.runs == [] and page.next_page_token is None


def test_runs_are_paged_newest_first(make_tracker: MakeTracker, context: TrackerContext) -> None:
    tracker, pipeline = make_tracker(context), _pipeline()
    run_ids = [uuid.uuid4().hex for _ in range(3)]
    for run_id in run_ids:
        _deliver(tracker, grid_search_events(run_id, pipeline)[:1])
    reader = _reader(tracker)
    experiment = reader.experiment_for(pipeline)
    seen, token = [], None
    for _ in range(10):
        page = reader.search_runs(experiment, page_token=token, max_results=2)
        seen += [run.glasspane_run_id for run in page.runs if run.parent_id is None]
        token = page.next_page_token
        if token is None:
            break
    assert sorted(seen) == sorted(run_ids) and len(seen) == 3
