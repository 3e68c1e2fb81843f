"""`glasspane server`'s maintenance tick delivers what a tracker missed (the outbox)."""

from __future__ import annotations

import pytest

import glasspane
from glasspane import log_metric, pipeline, task
from glasspane.events import Event
from glasspane.integrations.memory import MemoryBackend, MemoryTracker
from glasspane.outbox import TrackerRelay
from glasspane.tracking import TrackerContext, TrackerError
from glasspane.ui.server import sweep


class DownTracker(MemoryTracker):
    """The in-memory tracker behind a connection that always fails."""

    def on_event(self, event: Event) -> None:
        raise TrackerError("connection refused")


@task
def fit() -> float:
    log_metric("loss", 0.25, step=0)
    return 0.25


@pipeline
def tracked():
    return fit()


def test_the_tick_delivers_a_run_the_tracker_missed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with glasspane.Workspace() as driver:  # the run's process: its tracker is down
        tracker = DownTracker(TrackerContext("memory"), MemoryBackend())
        down = TrackerRelay(tracker, lambda: driver.store)
        result = driver.run(tracked, listeners=[down])
        assert driver.store.tracker_links(result.run_id)[0]["state"] == "pending"
    monkeypatch.setenv("GLASSPANE_TRACKERS", "memory")
    with glasspane.Workspace() as ws:  # the server's, with the tracker back
        sweep(ws)
        assert f"run {result.run_id}: delivered to tracker `memory`" in capsys.readouterr().out
        (relay,) = ws.trackers()
        assert isinstance(relay.tracker, MemoryTracker)
        link = relay.tracker.link(result.run_id)
        assert link is not None
        (child,) = relay.tracker.child_runs(link.external_id)
        assert [p.value for p in relay.tracker.metric_history(child.external_id, "loss")] == [0.25]
        assert ws.store.tracker_links(result.run_id)[0]["state"] == "delivered"
        sweep(ws)  # nothing left: nothing said
        assert "delivered" not in capsys.readouterr().out
