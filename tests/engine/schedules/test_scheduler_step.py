"""The scheduler loop at given instants: what one pass launches, skips and records, with a
real store and real launched runs (child processes), but no sleeping: the clock is passed in."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from glasspane import Schedule, Workspace, scheduling
from glasspane.scheduler import SETTLE_AFTER, Scheduler

UTC = timezone.utc
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CREATED = T0 + timedelta(minutes=1)  # registered a minute after a fire time

FLOWS = """
from datetime import datetime

from glasspane import pipeline, task


@task
def stamp(when: datetime | None, label: str) -> str:
    return f"{label}:{when.isoformat() if when else None}"


@pipeline
def report(scheduled_for: datetime | None = None, label: str = "r"):
    return stamp(scheduled_for, label)


@pipeline
def features(n: int = 1):
    return stamp(None, f"features{n}")
"""


def wait_over(ws: Workspace, run_id: str, timeout: float = 90) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = ws.store.get_run(run_id)
        if run["state"] not in ("queued", "pending", "running"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} still {run['state']}")


@pytest.fixture
def ws(tmp_path: Path):
    (tmp_path / "flows.py").write_text(FLOWS)
    with Workspace(home=tmp_path / "home") as workspace:
        yield workspace


def ref(ws: Workspace, name: str = "report") -> str:
    return f"{ws.settings.home.parent / 'flows.py'}:{name}"


def register(ws: Workspace, created: datetime, **spec: object) -> None:
    scheduling.register(ws.store, ref(ws), Schedule(name="hourly", **spec), now=created)


def test_a_due_fire_time_launches_one_run_that_receives_it(ws: Workspace) -> None:
    register(ws, CREATED, every="1h", params={"label": "nightly"})
    scheduler = Scheduler(ws, clock=lambda: T0)
    assert scheduler.step(T0 + timedelta(minutes=30)) == []  # nothing due yet
    fired = scheduler.step(T0 + timedelta(hours=1, seconds=1))
    assert [(f.state, f.fire_at) for f in fired] == [("launched", T0 + timedelta(hours=1))]
    assert scheduler.step(T0 + timedelta(hours=1, seconds=2)) == []  # claimed once
    run = wait_over(ws, fired[0].run_id)
    assert run["state"] == "succeeded"
    assert run["output"] == "nightly:2026-03-01T13:00:00+00:00"  # the fire time, aware
    assert run["trigger"] == "schedule"
    ticks = ws.store.schedule_ticks("hourly")
    assert [(t["fire_at"], t["state"], t["run_id"]) for t in ticks] == [
        (T0 + timedelta(hours=1), "launched", fired[0].run_id)
    ]
    row = ws.store.get_schedule("hourly")
    assert row["next_fire_at"] == T0 + timedelta(hours=2)


@pytest.mark.parametrize(
    ("catchup", "launched"),
    [("latest", [5]), ("all", [4, 5]), ("none", [])],
)
def test_missed_fire_times_follow_the_catch_up_policy(
    ws: Workspace, catchup: str, launched: list[int]
) -> None:
    register(ws, CREATED, every="1h", catchup=catchup, max_catchup=2, max_active=5)
    fired = Scheduler(ws).step(T0 + timedelta(hours=5, minutes=10))  # down for five hours
    hours = {round((f.fire_at - T0).total_seconds() / 3600): f for f in fired}
    assert sorted(hours) == [1, 2, 3, 4, 5]  # each evaluated once, none before creation
    assert sorted(h for h, f in hours.items() if f.state == "launched") == launched
    for hour, item in hours.items():
        if hour not in launched:
            assert item.state == "skipped" and f"catchup `{catchup}`" in item.reason
    for item in fired:
        if item.run_id:
            wait_over(ws, item.run_id)
    assert ws.store.get_schedule("hourly")["next_fire_at"] == T0 + timedelta(hours=6)


def test_max_active_skips_a_tick_while_a_run_is_active_and_says_so(ws: Workspace) -> None:
    register(ws, CREATED, every="1h")
    scheduler = Scheduler(ws)
    ws.store.queue_run(
        run_id="a" * 12, pipeline_name="report", pipeline_ref=ref(ws), params={},
        trigger="schedule", executor=None, schedule_name="hourly",
        scheduled_for=T0 - timedelta(hours=1),
    )  # fmt: skip
    (item,) = scheduler.step(T0 + timedelta(hours=1))
    assert item.state == "skipped" and "max_active 1 reached" in item.reason
    assert ws.store.schedule_ticks("hourly")[0]["reason"] == item.reason


def test_a_paused_schedule_fires_nothing_and_resumes_without_catching_up(ws: Workspace) -> None:
    register(ws, CREATED, every="1h")
    ws.store.pause_schedule("hourly")
    scheduler = Scheduler(ws)
    assert scheduler.step(T0 + timedelta(hours=3)) == []
    assert scheduling.resume(ws.store, "hourly", now=T0 + timedelta(hours=3, minutes=5))
    assert scheduler.step(T0 + timedelta(hours=3, minutes=30)) == []  # nothing from the pause
    row = ws.store.get_schedule("hourly")
    assert row["next_fire_at"] == T0 + timedelta(hours=4)


def test_two_schedulers_at_the_same_instant_launch_once(ws: Workspace) -> None:
    register(ws, CREATED, every="1h")
    at = T0 + timedelta(hours=1)
    first, second = Scheduler(ws), Scheduler(ws)
    fired = first.step(at) + second.step(at)
    assert [f.state for f in fired] == ["launched"]
    wait_over(ws, fired[0].run_id)


def test_an_after_schedule_runs_once_per_successful_upstream_run(ws: Workspace) -> None:
    scheduling.register(ws.store, ref(ws), Schedule(name="train", after="features"))
    upstream = ws.launch(ref(ws, "features"), {"n": 7})
    assert wait_over(ws, upstream)["state"] == "succeeded"
    scheduler = Scheduler(ws)
    (item,) = scheduler.step(datetime.now(UTC))
    assert item.state == "launched" and item.upstream_run_id == upstream
    assert scheduler.step(datetime.now(UTC)) == []  # once per upstream run, ever
    run = wait_over(ws, item.run_id)
    assert run["state"] == "succeeded" and run["trigger"] == "after"


def test_on_sqlite_a_standby_takes_the_lease_when_the_holder_stops(ws: Workspace) -> None:
    now = [T0]
    clock = lambda: now[0]  # noqa: E731
    lines: list[str] = []
    first = Scheduler(ws, clock=clock, stale_after=5)
    second = Scheduler(ws, clock=clock, stale_after=5, on_status=lines.append)
    assert first._lead(now[0]) and not second._lead(now[0])
    assert any("standby" in line for line in lines)
    now[0] += timedelta(seconds=4)
    assert first._lead(now[0]) and not second._lead(now[0])  # heart-beating: held
    now[0] += timedelta(seconds=6)  # the first stopped heart-beating
    assert second._lead(now[0])
    assert "holds the lease" in lines[-1]
    assert not first._lead(now[0])  # it would only do the work twice


def test_a_claim_left_by_a_killed_scheduler_is_settled_as_failed(ws: Workspace) -> None:
    register(ws, CREATED, every="1h")
    fire_at = T0 + timedelta(hours=1)
    assert ws.store.claim_tick("hourly", fire_at)  # claimed, then the scheduler died
    lines: list[str] = []
    Scheduler(ws, on_status=lines.append)._maintain(datetime.now(UTC) + SETTLE_AFTER * 2)
    (tick,) = ws.store.schedule_ticks("hourly")
    assert tick["state"] == "failed" and "stopped after claiming" in tick["reason"]
    assert any("settled" in line for line in lines)


def test_a_failing_pass_is_reported_and_retried_not_fatal(ws: Workspace) -> None:
    register(ws, CREATED, every="1h")
    lines: list[str] = []
    stop = threading.Event()
    calls = {"n": 0}
    scheduler = Scheduler(ws, poll=0.05, on_status=lines.append)
    real_step = scheduler.step

    def flaky(now: datetime) -> list:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("database unreachable")
        stop.set()
        return real_step(now)

    scheduler.step = flaky  # type: ignore[method-assign]
    runner = threading.Thread(target=scheduler.run, args=(stop,))
    runner.start()
    runner.join(timeout=30)
    assert not runner.is_alive() and calls["n"] == 2
    assert any("pass failed (ConnectionError: database unreachable); retrying" in x for x in lines)
