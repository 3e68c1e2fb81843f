"""Typed events and listeners: what a listener hears of a run, in order, on every executor,
what the store keeps of it, and what happens when a listener raises."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import glasspane
from glasspane import log_metric, log_param, pipeline, task
from glasspane.config import load_settings
from glasspane.errors import ConfigError, RunFailed
from glasspane.events import (
    OUTPUT_LIMIT,
    AttemptFinished,
    Event,
    MetricLogged,
    OutputLogged,
    ParamLogged,
    RunFinished,
    RunStarted,
    TaskFinished,
    TaskSkipped,
    TaskStarted,
    from_dict,
)

EXECUTORS = ["inline", "threads", pytest.param("dask", marks=pytest.mark.dask)]


class Collect:
    """A listener that keeps what it hears."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.events.append(event)


@task
def load(n: int) -> list[int]:
    print(f"loading {n} rows")
    return list(range(n))


@task(retries=1)
def flaky(rows: list[int], marker: str) -> int:
    first = not Path(marker).exists()
    Path(marker).touch()
    if first:
        raise ConnectionError("flaky source")
    return len(rows)


@task
def train(rows: list[int], c: float) -> float:
    for step in range(3):
        log_metric("loss", 1.0 / (step + 1), step=step)
    log_param("c", c)
    return sum(rows) * c


@task
def total(scores: list[float], n: int) -> float:
    return sum(scores) + n


@pipeline
def fit(n: int, marker: str, token: SecretStr = SecretStr("hunter2")):
    rows = load(n)
    return total(train.map(rows=rows, c=[0.5, 2.0]), flaky(rows, marker))


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_listener_hears_every_event_of_a_run_in_order(executor: str, tmp_path: Path) -> None:
    heard = Collect()
    result = fit.run(n=4, marker=str(tmp_path / "m"), executor=executor, listeners=[heard])
    assert result.state == "succeeded"
    events = heard.events
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert {e.run_id for e in events} == {result.run_id}
    first, last = events[0], events[-1]
    assert isinstance(first, RunStarted) and isinstance(last, RunFinished)
    assert first.pipeline == "fit" and first.executor == executor and first.nodes == 5
    assert first.params == {"n": 4, "marker": str(tmp_path / "m"), "token": "**********"}
    # how to launch it again: FILE.py:NAME, or module:NAME for an importable module
    assert first.reference in ("test_events:fit", f"{Path(__file__).resolve()}:fit")
    assert (last.state, last.error) == ("succeeded", None) and last.duration > 0

    finished = {e.node: e for e in events if isinstance(e, TaskFinished)}
    assert set(finished) == {"load", "train[0]", "train[1]", "flaky", "total"}
    for node, done in finished.items():
        started = [e for e in events if isinstance(e, TaskStarted) and e.node == node]
        assert started and started[0].seq < done.seq, node
        assert done.state == "succeeded" and len(done.artifacts) == 1
    assert finished["flaky"].attempts == 2
    [retried] = [e for e in events if isinstance(e, AttemptFinished)]
    assert (retried.node, retried.attempt, retried.error) == (
        "flaky", 1, "ConnectionError: flaky source",
    )  # fmt: skip
    assert finished["total"].inputs[0].source in ("train[0]", "train[1]")

    losses = [e for e in events if isinstance(e, MetricLogged) and e.node == "train[1]"]
    assert [(m.key, m.value, m.step) for m in losses] == [
        ("loss", 1.0, 0), ("loss", 0.5, 1), ("loss", pytest.approx(1 / 3), 2),
    ]  # fmt: skip
    assert all(m.seq < finished["train[1]"].seq for m in losses)
    params = [(e.node, e.key, e.value) for e in events if isinstance(e, ParamLogged)]
    assert sorted(params) == [("train[0]", "c", 0.5), ("train[1]", "c", 2.0)]
    output = [e for e in events if isinstance(e, OutputLogged) and e.node == "load"]
    assert "".join(o.text for o in output) == "loading 4 rows\n"
    assert output[0].stream == "stdout" and output[0].seq < finished["load"].seq

    # the store kept the same events, in the same order (artifacts by hash, type and size)
    store = glasspane.api.metadata_store(load_settings())
    stored = [from_dict(p) for p in store.run_events(result.run_id)]
    assert [(e.kind, e.seq, getattr(e, "node", None)) for e in stored] == [
        (e.kind, e.seq, getattr(e, "node", None)) for e in events
    ]
    assert [e for e in stored if not isinstance(e, TaskFinished)] == [
        e for e in events if not isinstance(e, TaskFinished)
    ]
    for kept, heard in zip(stored, events):
        if isinstance(kept, TaskFinished):
            assert isinstance(heard, TaskFinished)
            assert (kept.state, kept.attempts, kept.cached) == (
                heard.state, heard.attempts, heard.cached,
            )  # fmt: skip
            assert [(a.content_hash, a.type_name, a.size) for a in kept.artifacts] == [
                (a.content_hash, a.type_name, a.size) for a in heard.artifacts
            ]
    assert finished["load"].artifacts[0].preview is not None  # listeners get previews


def test_a_cached_rerun_and_a_failed_run_are_heard_too(tmp_path: Path) -> None:
    fit.run(n=3, marker=str(tmp_path / "m"), listeners=[Collect()])
    heard = Collect()
    fit.run(n=3, marker=str(tmp_path / "m"), listeners=[heard])
    finished = [e for e in heard.events if isinstance(e, TaskFinished)]
    assert len(finished) == 5 and all(e.cached for e in finished)

    @task
    def broken(x: int) -> int:
        raise KeyError("missing_key")

    @pipeline
    def bad(x: int = 1):
        return load(broken(x))

    heard = Collect()
    result = bad.run(listeners=[heard], raise_on_failure=False)
    skipped = [e for e in heard.events if isinstance(e, TaskSkipped)]
    assert [(e.node, e.state) for e in skipped] == [("load", "upstream_failed")]
    last = heard.events[-1]
    assert isinstance(last, RunFinished) and last.state == "failed" == result.state
    assert "KeyError" in (last.error or "")


class Raising:
    name = "raises-on-task"

    def __init__(self) -> None:
        self.heard: list[str] = []

    def on_event(self, event: Event) -> None:
        self.heard.append(event.kind)
        if isinstance(event, TaskStarted):
            raise RuntimeError("tracker unreachable")


def test_a_raising_listener_is_logged_by_name_and_dropped_and_the_run_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raising, other = Raising(), Collect()
    with caplog.at_level(logging.WARNING, logger="glasspane.listeners"):
        result = fit.run(n=3, marker=str(tmp_path / "m"), listeners=[raising, other])
    assert result.state == "succeeded"
    assert raising.heard == ["run_started", "task_started"]  # nothing after it raised
    assert isinstance(other.events[-1], RunFinished)  # the others hear the whole run
    [record] = [r for r in caplog.records if "raises-on-task" in r.getMessage()]
    assert "RuntimeError: tracker unreachable" in record.getMessage()
    assert "hears nothing more of this run" in record.getMessage()


def test_strict_listeners_fail_the_run_naming_the_listener(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLASSPANE_STRICT_LISTENERS", "true")
    with pytest.raises(RunFailed) as info:
        fit.run(n=3, marker=str(tmp_path / "m"), listeners=[Raising()])
    assert info.value.result.state == "failed"
    assert "listener `raises-on-task` raised RuntimeError: tracker unreachable" in str(info.value)
    run = glasspane.get_run(info.value.result.run_id)
    assert run["state"] == "failed" and "raises-on-task" in run["error"]


def test_an_object_without_on_event_is_refused_before_the_run() -> None:
    with pytest.raises(ConfigError, match=r"needs a method `on_event\(self, event\)`"):
        fit.run(n=3, marker="m", listeners=[print])
    assert glasspane.runs() == []


@task
def chatty(lines: int) -> int:
    for i in range(lines):
        print(f"line {i}")
    return lines


@pipeline
def talk(lines: int):
    return chatty(lines)


def test_streamed_output_is_capped_per_task_and_the_tail_is_kept() -> None:
    heard = Collect()
    result = talk.run(lines=200_000, listeners=[heard])
    streamed = [e for e in heard.events if isinstance(e, OutputLogged)]
    size = sum(len(e.text.encode()) for e in streamed)
    assert OUTPUT_LIMIT - 100 <= size <= OUTPUT_LIMIT
    assert streamed[-1].truncated and not any(e.truncated for e in streamed[:-1])
    assert streamed[0].text.startswith("line 0\n")
    logs = glasspane.api.task_logs(result.run_id, "chatty")
    assert logs["stdout"].endswith("line 199999\n")  # the stored tail: the last lines


@task
def long_training(gate: str) -> str:
    log_metric("loss", 0.25, step=1)
    print("epoch 1 done")
    deadline = time.time() + 60
    while not Path(gate).exists() and time.time() < deadline:
        time.sleep(0.02)
    return "trained"


@pipeline
def training(gate: str):
    return long_training(gate)


@pytest.mark.parametrize("executor", ["threads", pytest.param("dask", marks=pytest.mark.dask)])
def test_metrics_and_output_reach_the_store_while_the_task_runs(
    executor: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    store = glasspane.api.metadata_store(load_settings())
    started = Collect()
    box: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: box.update(
            result=training.run(gate=str(gate), executor=executor, listeners=[started])
        )
    )
    runner.start()
    try:
        seen: dict[str, float] = {}
        deadline = time.time() + 60
        while len(seen) < 2 and time.time() < deadline:
            run_ids = [e.run_id for e in started.events[:1]]
            for payload in store.run_events(run_ids[0]) if run_ids else []:
                if payload["kind"] in ("metric_logged", "output_logged"):
                    seen.setdefault(payload["kind"], time.time() - payload["ts"])
            time.sleep(0.05)
        assert not gate.exists() and runner.is_alive()  # the task is still running
        assert set(seen) == {"metric_logged", "output_logged"}
        # stored within a second of being logged (output is sent in batches of 0.25 s)
        assert max(seen.values()) < 1.0, seen
    finally:
        gate.touch()
        runner.join(120)
    assert box["result"].state == "succeeded"
