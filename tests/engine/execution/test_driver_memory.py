"""What the driver (and the embedded Dask scheduler living in it) keeps while a run goes on.

A large map must not cost the driver a copy of every job in the scheduler, a tree of dicts
per event in the scheduler's logs, or the graph's JSON for the whole run; and nothing of the
record may change for it: every task is still recorded, with its lineage.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import glasspane
import glasspane.execution.job as job_module
from glasspane import pipeline, task
from glasspane.execution.executors.dask_tasks import (
    TOPIC,
    PackedUnits,
    pack_events,
    task_graph,
    unpack_events,
)
from glasspane.execution.fusion import batch_siblings, fuse_chains
from glasspane.execution.job import Job, task_blob
from glasspane.execution.planner import plan_run
from glasspane.execution.worker import artifact_store, execute_job
from glasspane.types import SUCCEEDED


@task
def source(seed: str) -> str:
    return seed


@task
def element(src: str, i: int) -> str:
    return f"{src}-{i}"


@task
def total(parts: list[str]) -> int:
    return len(parts)


@pipeline
def fan(seed: str, n: int = 30):
    return total(element.map(source(seed), i=list(range(n))))


def _jobs(tmp_path: Path, n: int = 6) -> list[Job]:
    graph = fan.compile(seed="s", n=n)
    return plan_run(graph, "run1", artifact_store(str(tmp_path / "artifacts"))).jobs


def test_a_dask_tasks_jobs_stay_bytes_until_a_worker_loads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = _jobs(tmp_path)
    sent = pickle.dumps(PackedUnits([[job] for job in jobs[1:4]]))
    rebuilt: list[str] = []
    rebuild = job_module._rebuild_job

    def counting(blob: bytes, name: str, data: bytes) -> Job:
        rebuilt.append(name)
        return rebuild(blob, name, data)

    monkeypatch.setattr(job_module, "_rebuild_job", counting)  # what unpickling a job calls
    on_scheduler = pickle.loads(sent)  # what the scheduler does with the graph it receives
    assert rebuilt == []  # no job built there: it keeps the bytes
    assert pickle.dumps(on_scheduler) == sent  # and passes them on to the worker as they came
    on_worker = pickle.loads(pickle.dumps(on_scheduler)).load()
    assert rebuilt == ["element"] * 3
    assert [[job.node_id for job in unit] for unit in on_worker] == [
        ["element[0]"],
        ["element[1]"],
        ["element[2]"],
    ]
    assert [unit[0].args["i"] for unit in on_worker] == [0, 1, 2]


def test_a_graph_of_packed_units_holds_each_task_definition_once(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path, n=40)
    batches = batch_siblings(fuse_chains(jobs, set()), set(), 1)
    dsk, _, _ = task_graph(batches, "run1", execute_job)
    packed = [arg for spec in dsk.values() for arg in spec.args if isinstance(arg, PackedUnits)]
    assert len(packed) == len(batches) > 2  # every Dask task's jobs travel packed
    data = pickle.dumps(packed)  # the client pickles the whole graph in one go
    assert data.count(task_blob(jobs[1].task)) == 1
    loaded = [unit for one in pickle.loads(data) for unit in one.load()]
    assert [job.node_id for unit in loaded for job in unit] == [job.node_id for job in jobs]


def test_events_travel_as_one_compressed_piece() -> None:
    events: list[dict[str, Any]] = [
        {"kind": "task_started", "node": f"element[{i}]", "attempt": 1, "ts": 1.5}
        for i in range(50)
    ]
    message = pack_events("run1", events)
    assert message["kind"] == "batch" and message["run"] == "run1"
    assert {type(value) for value in message.values()} == {str, bytes}  # no tree of dicts
    assert len(message["packed"]) < len(json.dumps(events)) / 4
    assert unpack_events(message) == events
    assert unpack_events({"kind": "batch", "run": "run1", "events": events}) == events


@pytest.mark.dask
def test_on_dask_the_scheduler_keeps_packed_events_and_every_task_is_recorded() -> None:
    from glasspane.execution.executors import make_executor

    executor = make_executor("dask")
    result = fan.run(seed="packed", n=30, executor="dask")
    assert result.output == 30 and all(t.state == SUCCEEDED for t in result.tasks)
    messages = [msg for _, msg in executor.client.get_events(TOPIC)]  # type: ignore[attr-defined]
    mine = [msg for msg in messages if msg.get("run") == result.run_id]
    assert mine and all(isinstance(msg["packed"], bytes) and "events" not in msg for msg in mine)
    run = glasspane.get_run(result.run_id)
    assert len(run["tasks"]) == 32 and all(t["state"] == SUCCEEDED for t in run["tasks"])
    reduce = next(t for t in run["tasks"] if t["node"] == "total")
    assert len(reduce["inputs"]) == 30  # the lineage of the fan-in, element by element
    up = glasspane.lineage(result.run_id, "total", direction="upstream")
    assert {t["node"] for t in up["task_runs"]} == {"source", "total"} | {
        f"element[{i}]" for i in range(30)
    }


def test_the_graph_json_is_stored_whole_and_not_kept_after_the_run() -> None:
    result = fan.run(seed="json", n=12, executor="inline")
    graph = fan.compile(seed="json", n=12)
    with sqlite3.connect(Path(os.environ["GLASSPANE_HOME"]) / "glasspane.db") as db:
        (stored,) = db.execute("SELECT graph_json FROM pipeline_versions").fetchone()
    assert json.loads(stored) == json.loads(json.dumps(graph.to_json()))
    assert result.ok
    gc.collect()
    kept = [
        o
        for o in gc.get_objects()
        if type(o) is dict and o.get("id") == "element[7]" and "identity" in o
    ]
    assert kept == []  # no node of the stored JSON stays in memory (statement caches)


def test_a_maps_elements_share_what_they_read_and_describe_the_same() -> None:
    graph = fan.compile(seed="s", n=5)
    first, second = graph["element[0]"], graph["element[1]"]
    assert first.refs is second.refs and first.upstream is second.upstream == ("source",)
    assert graph["total"].upstream == tuple(f"element[{i}]" for i in range(5))
    described = graph.to_json()
    again = json.loads(json.dumps(described))
    assert again["nodes"][1]["args"] == ["src", "i"] and again["edges"][0]["args"] == ["src"]
    assert [n["id"] for n in again["nodes"]] == [
        "source",
        *(f"element[{i}]" for i in range(5)),
        "total",
    ]
    assert len(again["edges"]) == 10 and again["layers"] == [
        ["source"],
        [f"element[{i}]" for i in range(5)],
        ["total"],
    ]


def test_a_fan_ins_inputs_share_the_artifact_dicts_of_their_producers_outputs() -> None:
    from glasspane.execution.executors.dask_tasks import share_artifacts

    art = {"content_hash": "h1", "uri": "/a/h1.json", "digest": "d1", "size": 3, "preview": None}
    known: dict[str, dict[str, Any]] = {}
    produced = {"kind": "task_finished", "node": "a", "inputs": [], "outputs": [{"artifact": art}]}
    share_artifacts(produced, known)
    inputs = [
        {"name": "x", "source": "a", "artifact": dict(art)},
        {"name": "y", "source": "c", "artifact": {**art, "uri": "/elsewhere/h1.json"}},
        {"name": "z", "source": "d", "artifact": {**art, "content_hash": "h2"}},
    ]
    consumer = {"kind": "task_finished", "node": "b", "inputs": inputs, "outputs": []}
    share_artifacts(consumer, known)
    assert consumer["inputs"][0]["artifact"] is art  # the very same dict: held once
    assert consumer["inputs"][1]["artifact"]["uri"] == "/elsewhere/h1.json"  # not equal: kept
    assert consumer["inputs"][2]["artifact"]["content_hash"] == "h2"
    assert [i["source"] for i in consumer["inputs"]] == ["a", "c", "d"]


def test_dask_sees_the_size_of_a_tasks_outputs() -> None:
    """Dask places a task beside its largest inputs and manages workers' memory by the size
    it sees: a 40 MB output reported as 56 bytes could be moved between workers for nothing,
    and never counted against a worker's memory limit."""
    import numpy as np
    from dask.sizeof import sizeof

    from glasspane.execution.job import NodeValue

    big = np.zeros(5_000_000)
    assert sizeof(NodeValue((big, "x"), ("h1", "h2"))) >= big.nbytes
