"""The tracker outbox: a tracker that fails never stops a run nor loses an event; what it
missed is delivered in order, once, when it is back (during the run, by the sync, or after the
run's driver died)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

import glasspane
from glasspane import log_metric, pipeline, task
from glasspane.errors import NotFound, RunFailed
from glasspane.events import Event
from glasspane.integrations.memory import MemoryBackend, MemoryTracker
from glasspane.outbox import TrackerRelay, deliver_pending
from glasspane.tracking import TrackerContext, TrackerError

#: the tracker "server" is down while this is set (the pipeline's task flips it)
DOWN = threading.Event()
#: set once the tracker took a metric (the task waits for it before the outage)
HEARD = threading.Event()


class OutageTracker(MemoryTracker):
    """The in-memory tracker behind a connection that fails while ``DOWN`` is set."""

    def on_event(self, event: Event) -> None:
        if DOWN.is_set():
            raise TrackerError(f"connection refused (delivering {event.kind} #{event.seq})")
        super().on_event(event)
        if event.kind == "metric_logged":
            HEARD.set()


@task
def train(epochs: int, outage: str) -> int:
    for epoch in range(epochs):
        if epoch == 1 and outage != "none":
            assert HEARD.wait(10)  # the first loss reached the tracker
            DOWN.set()  # then it goes down during training
        if epoch == 3 and outage == "during":
            DOWN.clear()  # and comes back before the run ends
            time.sleep(0.3)
        log_metric("loss", 1.0 / (epoch + 1), step=epoch)
    return epochs


@pipeline
def training(epochs: int = 5, outage: str = "none"):
    return train(epochs, outage)


@pytest.fixture(autouse=True)
def tracker_up() -> None:
    DOWN.clear()
    HEARD.clear()
    yield
    DOWN.clear()


def _relay(ws: glasspane.Workspace, strict: bool = False) -> TrackerRelay:
    return TrackerRelay(
        OutageTracker(TrackerContext("memory"), MemoryBackend()), lambda: ws.store, strict=strict
    )


def _losses(tracker: MemoryTracker, run_id: str) -> list[tuple[int, float]]:
    link = tracker.link(run_id)
    assert link is not None
    (child,) = tracker.child_runs(link.external_id)
    return [(p.step, p.value) for p in tracker.metric_history(child.external_id, "loss")]


EXPECTED = [(epoch, 1.0 / (epoch + 1)) for epoch in range(5)]


def test_a_tracker_down_mid_run_gets_everything_once_from_the_sync(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with glasspane.Workspace() as ws:
        relay = _relay(ws)
        tracker = relay.tracker
        assert isinstance(tracker, MemoryTracker)
        with caplog.at_level(logging.WARNING, logger="glasspane.trackers"):
            result = ws.run(training, {"outage": "after"}, listeners=[relay])
        assert result.state == "succeeded"  # the run went on
        warnings = [r.getMessage() for r in caplog.records if "could not take" in r.getMessage()]
        assert len(warnings) == 1, warnings  # said once per run
        assert f"run {result.run_id}" in warnings[0] and "outbox" in warnings[0]
        assert _losses(tracker, result.run_id) == EXPECTED[:1]
        (row,) = ws.store.tracker_links(result.run_id)
        assert row["state"] == "pending" and "connection refused" in row["error"]
        assert deliver_pending(ws.store, [tracker])[0].error is not None  # still down: waits
        DOWN.clear()
        (done,) = deliver_pending(ws.store, [tracker])
        assert done.error is None and done.run_id == result.run_id
        assert _losses(tracker, result.run_id) == EXPECTED  # in order, nothing twice
        assert tracker.get_run(tracker.link(result.run_id).external_id).status == "FINISHED"
        (row,) = ws.store.tracker_links(result.run_id)
        assert row["state"] == "delivered" and row["error"] is None
        assert deliver_pending(ws.store, [tracker]) == []  # nothing left


def test_a_tracker_back_during_the_run_is_caught_up_by_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("glasspane.outbox.RETRY_EVERY", 0.1)
    with glasspane.Workspace() as ws:
        relay = _relay(ws)
        result = ws.run(training, {"outage": "during"}, listeners=[relay])
        assert isinstance(relay.tracker, MemoryTracker)
        assert _losses(relay.tracker, result.run_id) == EXPECTED
        (row,) = ws.store.tracker_links(result.run_id)
        assert row["state"] == "delivered"


def test_a_strict_tracker_that_fails_fails_the_run_and_keeps_the_events() -> None:
    with glasspane.Workspace() as ws:
        relay = _relay(ws, strict=True)
        with pytest.raises(RunFailed) as caught:
            ws.run(training, {"outage": "after"}, listeners=[relay])
        message = str(caught.value)
        assert "tracker `memory` could not take" in message
        assert "strict = true in [tool.glasspane.memory]" in message
        (row,) = ws.store.tracker_links(caught.value.result.run_id)
        assert row["state"] == "pending"


PIPELINE = """
import time
from glasspane import log_metric, pipeline, task

@task
def slow() -> int:
    log_metric("loss", 0.5, step=0)
    time.sleep(60)
    return 1

@pipeline
def stuck():
    return slow()
"""


def test_a_run_whose_driver_died_is_delivered_ended_as_failed(
    tmp_path: Path,
    cli_env: dict[str, str],
    glasspane_cmd: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "stuck.py").write_text(textwrap.dedent(PIPELINE))
    env = {**cli_env, "GLASSPANE_TRACKERS": "memory", "GLASSPANE_HEARTBEAT_INTERVAL": "0.2"}
    monkeypatch.setenv("GLASSPANE_TRACKERS", "memory")  # the sync's tracker, in this process
    child = subprocess.Popen(
        [*glasspane_cmd, "run", "stuck.py:stuck", "--executor", "threads"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        with glasspane.Workspace() as ws:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    runs = ws.reader().list_runs()
                except NotFound:  # the child has not created the database yet
                    runs = []
                links = ws.store.tracker_links(runs[0]["run_id"]) if runs else []
                if links and links[0]["delivered_seq"] > 0:  # the tracker heard the metric
                    break
                time.sleep(0.2)
            else:
                pytest.fail("the run never started")
            os.killpg(child.pid, signal.SIGKILL)  # the driver dies mid-run
            child.wait(10)
            run_id = runs[0]["run_id"]
            (row,) = ws.store.tracker_links(run_id)
            assert row["state"] == "live" and row["delivered_seq"] > 0
            ws.settings.crash_after = 0.5
            ws.settings.heartbeat_interval = 0.1
            time.sleep(1.0)
            assert ws.sweep() == [run_id]
            (done,) = ws.sync_trackers()
            assert done.error is None and done.run_id == run_id
            tracker = ws.trackers()[0].tracker
            assert isinstance(tracker, MemoryTracker)
            link = tracker.link(run_id)
            assert link is not None
            assert tracker.get_run(link.external_id).status == "FAILED"
            assert _losses(tracker, run_id) == [(0, 0.5)]
            assert ws.store.tracker_links(run_id)[0]["state"] == "delivered"
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)
