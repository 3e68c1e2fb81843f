"""MetadataStore: writes, reads, compare-and-set, crash sweeps, lineage and concurrency."""

from __future__ import annotations

import multiprocessing
import time
import traceback
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, inspect, select, text, update

from glasspane.errors import ConfigError, InvalidArgument, NotFound
from glasspane.store import MetadataStore
from glasspane.store.models import (
    ArtifactRow,
    AttemptRow,
    LineageEdgeRow,
    MetricRow,
    RunRow,
    TaskRunRow,
)
from glasspane.types import ArtifactInfo

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20+00:00
T0_ISO = "2023-11-14T22:13:20+00:00"
NODES = [("load", "load"), ("split", "split"), ("train", "train")]


# ---- event builders ------------------------------------------------------------------------


def art(content_hash: str, *, uri: str | None = "auto", **fields: Any) -> dict[str, Any]:
    info = {
        "content_hash": content_hash,
        "uri": f"file:///artifacts/{content_hash}" if uri == "auto" else uri,
        "digest": f"sha256-{content_hash}",
        "type_name": "builtins.int",
        "materializer": "pickle",
        "size": 8,
        "preview": {"repr": content_hash},
    }
    info.update(fields)
    return info


def started(node: str, attempt: int = 1, ts: float = T0, **fields: Any) -> dict[str, Any]:
    event = {"kind": "task_started", "node": node, "task": node, "attempt": attempt, "ts": ts}
    event.update({"parent": None, "map_index": None, **fields})
    return event


def attempt_done(node: str, attempt: int, state: str, ts: float, error: str | None = None):
    return {"kind": "attempt_finished", "node": node, "attempt": attempt, "state": state,
            "ts": ts, "error": error}  # fmt: skip


def finished(
    node: str,
    *,
    state: str = "succeeded",
    cached: bool = False,
    inputs: dict[str, dict] | None = None,
    outputs: list[dict] | None = None,
    sources: dict[str, str] | None = None,
    start: float | None = T0,
    end: float = T0 + 2.5,
    **fields: Any,
) -> dict[str, Any]:
    """A ``task_finished`` event; ``sources`` maps input names to the nodes that output them."""
    event = {
        "kind": "task_finished", "node": node, "task": node, "state": state, "cached": cached,
        "cache_key": f"key-{node}", "attempts": 1, "started": start, "ended": end,
        "error": None, "traceback": None, "stdout": "", "stderr": "", "log_tail": "",
        "note": None, "parent": None, "map_index": None,
        "inputs": [{"name": name, "artifact": a} for name, a in (inputs or {}).items()],
        "outputs": [{"name": str(i), "artifact": a} for i, a in enumerate(outputs or [])],
        "metrics": [], "params": [],
    }  # fmt: skip
    for item in event["inputs"]:
        if sources and item["name"] in sources:
            item["source"] = sources[item["name"]]
    event.update(fields)
    return event


def skipped(node: str, state: str = "upstream_failed", error: str | None = None):
    return {"kind": "task_skipped", "node": node, "task": node, "state": state, "ts": T0 + 9,
            "error": error}  # fmt: skip


def new_run(
    store: MetadataStore,
    run_id: str,
    nodes: list[tuple[str, str]] = NODES,
    *,
    pipeline: str = "retrain",
    **kwargs: Any,
) -> None:
    version_id = store.ensure_pipeline_version(pipeline, "v1hash", {"nodes": [n for n, _ in nodes]})
    store.create_run(
        run_id=run_id,
        pipeline_name=pipeline,
        version_id=version_id,
        pipeline_ref="examples/retrain.py:retrain",
        params={"n_rows": 500, "C": 1.0},
        executor="threads",
        nodes=nodes,
        **kwargs,
    )


def count(engine: Engine, model: type, *where: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


# ---- round trip ----------------------------------------------------------------------------


def test_pipeline_versions_are_idempotent(store: MetadataStore) -> None:
    first = store.ensure_pipeline_version("retrain", "aaa", {"nodes": ["load"]})
    assert store.ensure_pipeline_version("retrain", "aaa", {"nodes": ["load"]}) == first
    assert store.ensure_pipeline_version("retrain", "bbb", {}) != first
    assert store.ensure_pipeline_version("other", "aaa", {}) not in (first,)


def test_create_run_and_events_round_trip(store: MetadataStore, raw_engine: Engine) -> None:
    new_run(store, "run00001")
    run = store.get_run("run00001")
    assert run["state"] == "pending"
    assert [(t["node"], t["state"], t["attempts"]) for t in run["tasks"]] == [
        ("load", "pending", 0), ("split", "pending", 0), ("train", "pending", 0),
    ]  # fmt: skip
    assert run["heartbeat_at"] == run["created_at"]

    data, left, right = art("h-data"), art("h-left"), art("h-right")
    store.set_run_state("run00001", "running")
    store.record_events(
        "run00001",
        [
            started("load"),
            attempt_done("load", 1, "failed", T0 + 1, "ConnectionError: flaky"),
            started("load", attempt=2, ts=T0 + 1.5),
            attempt_done("load", 2, "succeeded", T0 + 2.5),
            finished(
                "load",
                outputs=[data],
                attempts=2,
                stdout="loading\n",
                log_tail="INFO loaded 500 rows",
                metrics=[
                    {"key": "rows", "value": 400.0, "step": 0, "ts": T0 + 1},
                    {"key": "rows", "value": 500.0, "step": 1, "ts": T0 + 2},
                ],
                params=[{"key": "source", "value": {"name": "iris", "version": 2}}],
            ),
            started("split", ts=T0 + 3),
            finished("split", inputs={"df": data}, outputs=[left, right], start=T0 + 3, end=T0 + 4),
            skipped("train", error="upstream task `split` failed"),
        ],
    )
    assert store.set_run_state("run00001", "failed", error="task `train` failed", output=[1, 2])

    run = store.get_run("run00001")
    assert run["run_id"] == "run00001"
    assert run["pipeline"] == "retrain"
    assert run["pipeline_ref"] == "examples/retrain.py:retrain"
    assert run["version_hash"] == "v1hash"
    assert run["graph"] == {"nodes": ["load", "split", "train"]}
    assert run["params"] == {"n_rows": 500, "C": 1.0}
    assert (run["state"], run["trigger"], run["executor"]) == ("failed", "manual", "threads")
    assert (run["error"], run["output"], run["resumed_from"]) == (
        "task `train` failed",
        [1, 2],
        None,
    )
    assert run["duration"] >= 0
    assert datetime.fromisoformat(run["ended_at"]).tzinfo == timezone.utc
    assert (run["n_tasks"], run["n_succeeded"], run["n_failed"], run["n_cached"]) == (3, 2, 0, 0)

    load, split, train = run["tasks"]
    assert load["state"] == "succeeded"
    assert load["attempts"] == 2
    assert load["started_at"] == T0_ISO
    assert load["ended_at"] == "2023-11-14T22:13:22.500000+00:00"
    assert load["duration"] == pytest.approx(2.5)
    assert (load["stdout"], load["log_tail"], load["cache_key"]) == (
        "loading\n", "INFO loaded 500 rows", "key-load",
    )  # fmt: skip
    assert load["inputs"] == []
    assert load["outputs"] == [{"name": "0", **data}]
    assert load["metrics"] == {"rows": 500.0}
    assert load["params"] == {"source": {"name": "iris", "version": 2}}
    assert split["inputs"] == [{"name": "df", **data}]
    assert [o["content_hash"] for o in split["outputs"]] == ["h-left", "h-right"]
    assert train["state"] == "upstream_failed"
    assert train["error"] == "upstream task `split` failed"

    with raw_engine.connect() as conn:
        attempts = conn.execute(
            select(AttemptRow.attempt, AttemptRow.state, AttemptRow.error)
            .join(TaskRunRow, TaskRunRow.id == AttemptRow.task_run_id)
            .where(TaskRunRow.node_id == "load")
            .order_by(AttemptRow.attempt)
        ).all()
    assert [tuple(a) for a in attempts] == [
        (1, "failed", "ConnectionError: flaky"), (2, "succeeded", None),
    ]  # fmt: skip

    assert store.metrics("run00001") == [
        {"node": "load", "kind": "metric", "key": "rows", "value": 400.0, "step": 0,
         "ts": "2023-11-14T22:13:21+00:00"},
        {"node": "load", "kind": "metric", "key": "rows", "value": 500.0, "step": 1,
         "ts": "2023-11-14T22:13:22+00:00"},
        {"node": "load", "kind": "param", "key": "source", "value": {"name": "iris", "version": 2},
         "step": None, "ts": "2023-11-14T22:13:22.500000+00:00"},
    ]  # fmt: skip

    [summary] = store.list_runs()
    assert {k: summary[k] for k in ("run_id", "state", "n_tasks", "n_succeeded")} == {
        "run_id": "run00001", "state": "failed", "n_tasks": 3, "n_succeeded": 2,
    }  # fmt: skip
    assert set(summary) == {
        "run_id", "pipeline", "state", "trigger", "schedule", "scheduled_for", "upstream_run_id",
        "resumed_from", "executor", "created_at", "started_at", "ended_at", "duration", "params",
        "n_tasks", "n_succeeded", "n_failed", "n_cached",
    }  # fmt: skip
    assert (summary["schedule"], summary["scheduled_for"], summary["upstream_run_id"]) == (
        None, None, None,
    )  # fmt: skip


def test_retry_attempt_marks_task_retrying(store: MetadataStore) -> None:
    new_run(store, "run00001")
    store.record_events("run00001", [started("load"), started("load", attempt=2, ts=T0 + 5)])
    load = store.get_run("run00001")["tasks"][0]
    assert (load["state"], load["attempts"], load["started_at"]) == ("retrying", 2, T0_ISO)


def test_dynamic_map_children_are_created_on_first_event(store: MetadataStore) -> None:
    new_run(store, "run00001")
    events = []
    for i in range(3):
        node = f"train[{i}]"
        events += [
            started(node, parent="train", map_index=i),
            finished(node, parent="train", map_index=i, outputs=[art(f"model-{i}")]),
        ]
    store.record_events("run00001", events)
    tasks = {t["node"]: t for t in store.get_run("run00001")["tasks"]}
    assert [(tasks[f"train[{i}]"]["parent_node"], tasks[f"train[{i}]"]["map_index"])
            for i in range(3)] == [("train", 0), ("train", 1), ("train", 2)]  # fmt: skip
    assert tasks["train[2]"]["state"] == "succeeded"


def test_task_outputs_are_in_output_order_for_succeeded_tasks(store: MetadataStore) -> None:
    new_run(store, "run00001")
    many = [art(f"part-{i}") for i in range(12)]
    store.record_events(
        "run00001",
        [
            finished("load", outputs=many),
            finished("split", state="failed", outputs=[art("partial")], error="ValueError"),
        ],
    )
    outputs = store.task_outputs("run00001")
    assert list(outputs) == ["load"]
    assert outputs["load"] == [ArtifactInfo.from_dict(a) for a in many]


def test_task_durations_are_the_longest_executed_run_of_each_node_in_recent_runs(
    store: MetadataStore,
) -> None:
    nodes = [*NODES, ("train[0]", "train"), ("train[1]", "train")]
    for i, seconds in enumerate([9.0, 1.0, 3.0, 2.0]):  # the oldest run falls out
        run_id = f"run0000{i}"
        new_run(store, run_id, nodes)
        store.record_events(
            run_id,
            [
                finished("load", start=T0, end=T0 + seconds),
                finished("split", cached=True, start=T0, end=T0 + 50),  # a cache hit: no
                finished("train", state="crashed", start=T0, end=T0 + 70, error="lost"),
                finished("train[0]", start=T0, end=T0 + 0.01, parent="train", map_index=0),
                finished("train[1]", state="timed_out", start=T0, end=T0 + 5 + i, error="timeout"),
            ],
        )
        time.sleep(0.01)  # distinct creation times
    new_run(store, "cached01")  # a later run that executed nothing does not count
    store.record_events("cached01", [finished("load", cached=True, start=T0, end=T0 + 1)])
    new_run(store, "other001", pipeline="other")
    store.record_events("other001", [finished("load", start=T0, end=T0 + 100)])
    assert store.task_durations("retrain") == {
        "load": pytest.approx(3.0),  # the longest, not the mean
        "train[0]": pytest.approx(0.01),
        "train[1]": pytest.approx(8.0),  # it held its worker until it timed out
    }
    assert store.task_durations("retrain", runs=1) == {
        "load": pytest.approx(2.0),
        "train[0]": pytest.approx(0.01),
        "train[1]": pytest.approx(8.0),
    }
    assert store.task_durations("missing") == {}


def test_artifacts_are_shared_by_content_hash_and_uri_filled_later(
    store: MetadataStore, raw_engine: Engine
) -> None:
    new_run(store, "run00001")
    new_run(store, "run00002")
    store.record_events("run00001", [finished("load", outputs=[art("same", uri=None)])])
    store.record_events("run00002", [finished("load", outputs=[art("same")])])
    assert count(raw_engine, ArtifactRow) == 1
    [info] = store.task_outputs("run00001")["load"]
    assert info.uri == "file:///artifacts/same"


def test_captured_text_keeps_the_last_64_kib(store: MetadataStore) -> None:
    new_run(store, "run00001")
    stdout = "é" * 50_000 + "THE END"
    store.record_events("run00001", [finished("load", stdout=stdout, traceback="x" * 70_000)])
    load = store.get_run("run00001")["tasks"][0]
    assert len(load["stdout"].encode()) <= 64 * 1024
    assert load["stdout"].startswith("[... ")
    assert load["stdout"].endswith("é" * 100 + "THE END")
    assert len(load["traceback"].encode()) <= 64 * 1024


def test_json_values_are_stored_strictly(store: MetadataStore) -> None:
    new_run(store, "run00001")
    store.record_events(
        "run00001", [finished("load", outputs=[art("nan", preview={"mean": float("nan")})])]
    )
    [info] = store.task_outputs("run00001")["load"]
    assert info.preview == {"mean": None}


def test_record_events_rejects_unknown_kinds_before_writing(
    store: MetadataStore, raw_engine: Engine
) -> None:
    new_run(store, "run00001")
    with pytest.raises(
        InvalidArgument, match=r"event #1 has kind `task_exploded`, which the metadata"
    ):
        store.record_events("run00001", [started("load"), {"kind": "task_exploded"}])
    assert store.get_run("run00001")["tasks"][0]["state"] == "pending"


def test_record_events_rejects_events_without_node(store: MetadataStore) -> None:
    new_run(store, "run00001")
    with pytest.raises(
        InvalidArgument, match=r"^event #0 \(task_skipped\) has no `node`; every event"
    ):
        store.record_events("run00001", [{"kind": "task_skipped", "state": "cancelled"}])


def test_record_events_for_unknown_run(store: MetadataStore) -> None:
    with pytest.raises(NotFound, match=r"^no run `nope`; create it with create_run first$"):
        store.record_events("nope", [started("load")])


def test_create_run_errors(store: MetadataStore) -> None:
    new_run(store, "run00001")
    with pytest.raises(InvalidArgument, match=r"run id `run00001` is already used"):
        new_run(store, "run00001")
    with pytest.raises(InvalidArgument, match=r"must have 1 to 32 characters"):
        new_run(store, "x" * 33)
    with pytest.raises(NotFound, match=r"no pipeline version 999 for run `run00002`"):
        store.create_run(
            run_id="run00002", pipeline_name="p", version_id=999, pipeline_ref=None,
            params={}, executor="inline", nodes=[],
        )  # fmt: skip
    with pytest.raises(NotFound, match=r"^no run `gone`"):
        new_run(store, "run00003", resumed_from="gone")
    new_run(store, "run00004", resumed_from="run00001", trigger="retry")
    assert store.get_run("run00004")["resumed_from"] == "run00001"
    assert store.get_run("run00004")["trigger"] == "retry"


def test_list_runs_filters_and_orders_newest_first(store: MetadataStore) -> None:
    new_run(store, "run00001")
    new_run(store, "run00002", pipeline="other")
    new_run(store, "run00003")
    store.set_run_state("run00003", "succeeded")
    assert [r["run_id"] for r in store.list_runs()] == ["run00003", "run00002", "run00001"]
    assert [r["run_id"] for r in store.list_runs(limit=2)] == ["run00003", "run00002"]
    assert [r["run_id"] for r in store.list_runs(pipeline="retrain")] == ["run00003", "run00001"]
    assert [r["run_id"] for r in store.list_runs(state="succeeded")] == ["run00003"]
    with pytest.raises(InvalidArgument, match=r"^list_runs limit must be 1 or more, not 0$"):
        store.list_runs(limit=0)


# ---- lookup by prefix ----------------------------------------------------------------------


def test_get_run_by_unique_prefix(store: MetadataStore) -> None:
    for run_id in ("abcd1111", "abcd2222", "abc", "a_c%9999"):
        new_run(store, run_id)
    assert store.get_run("abcd1")["run_id"] == "abcd1111"
    assert store.get_run("abc")["run_id"] == "abc"  # an exact id wins even when short
    assert store.metrics("abcd2") == []
    with pytest.raises(NotFound) as info:
        store.get_run("abcd")
    assert str(info.value) == (
        "run id prefix `abcd` is ambiguous: it matches abcd1111, abcd2222; give more characters"
    )
    with pytest.raises(NotFound) as info:
        store.get_run("zzzz")
    assert str(info.value) == "no run `zzzz`; list runs with `glasspane runs list`"
    with pytest.raises(NotFound) as info:
        store.get_run("ab")
    assert str(info.value) == (
        "no run `ab`; give the full id or at least 4 characters of it, "
        "list runs with `glasspane runs list`"
    )
    # LIKE wildcards in a prefix are matched literally.
    with pytest.raises(NotFound, match=r"^no run `a_c%x`"):
        store.get_run("a_c%x")
    assert store.get_run("a_c%")["run_id"] == "a_c%9999"


# ---- compare-and-set -----------------------------------------------------------------------


def test_terminal_run_state_is_never_overwritten(store: MetadataStore) -> None:
    new_run(store, "run00001")
    assert store.heartbeat("run00001") is True
    assert store.set_run_state("run00001", "running") is True
    started_at = store.get_run("run00001")["started_at"]
    assert started_at is not None
    assert store.set_run_state("run00001", "running") is True
    assert store.get_run("run00001")["started_at"] == started_at  # kept from the first move
    assert store.set_run_state("run00001", "succeeded", output={"acc": 0.9}) is True
    assert store.set_run_state("run00001", "failed", error="late") is False
    assert store.set_run_state("run00001", "running") is False
    assert store.heartbeat("run00001") is False
    run = store.get_run("run00001")
    assert (run["state"], run["error"], run["output"]) == ("succeeded", None, {"acc": 0.9})
    assert store.set_run_state("no-such-run", "running") is False
    assert store.heartbeat("no-such-run") is False
    with pytest.raises(
        InvalidArgument, match=r"unknown run state `done`; use one of queued, pending"
    ):
        store.set_run_state("run00001", "done")


def test_terminal_task_run_is_never_overwritten(store: MetadataStore, raw_engine: Engine) -> None:
    new_run(store, "run00001")
    done = finished("load", outputs=[art("data")], metrics=[{"key": "m", "value": 1.0,
                    "step": None, "ts": T0}])  # fmt: skip
    store.record_events("run00001", [done])
    # A duplicated or late delivery changes nothing and adds no edges or metrics.
    store.record_events(
        "run00001",
        [done, started("load", attempt=3), skipped("load", "cancelled"),
         finished("load", state="failed", error="late")],
    )  # fmt: skip
    load = store.get_run("run00001")["tasks"][0]
    assert (load["state"], load["error"], load["attempts"]) == ("succeeded", None, 1)
    assert count(raw_engine, LineageEdgeRow) == 1
    assert count(raw_engine, MetricRow) == 1
    # the first task_finished closed (here: created) its final attempt; late events add none
    assert count(raw_engine, AttemptRow) == 1


# ---- crash sweep ---------------------------------------------------------------------------


def age(engine: Engine, run_id: str, seconds: float, column: str = "heartbeat_at") -> None:
    when = datetime.now(timezone.utc) - timedelta(seconds=seconds)
    with engine.begin() as conn:
        conn.execute(update(RunRow).where(RunRow.id == run_id).values({column: when}))


def test_mark_crashed_sweeps_stale_runs(store: MetadataStore, raw_engine: Engine) -> None:
    for run_id in ("stale001", "fresh001", "done0001", "nohb0001"):
        new_run(store, run_id)
    store.set_run_state("stale001", "running")
    store.record_events("stale001", [finished("load"), started("split")])
    store.set_run_state("done0001", "succeeded")
    age(raw_engine, "stale001", 120)
    age(raw_engine, "done0001", 120)
    age(raw_engine, "nohb0001", 120, "created_at")
    with raw_engine.begin() as conn:
        conn.execute(update(RunRow).where(RunRow.id == "nohb0001").values(heartbeat_at=None))

    assert sorted(store.mark_crashed(stale_after=60)) == ["nohb0001", "stale001"]

    run = store.get_run("stale001")
    assert run["state"] == "crashed"
    assert run["ended_at"] is not None
    assert run["error"].startswith("no heartbeat for more than 60s: the process driving the run")
    assert {t["node"]: t["state"] for t in run["tasks"]} == {
        "load": "succeeded", "split": "crashed", "train": "crashed",
    }  # fmt: skip
    with raw_engine.connect() as conn:
        states = conn.execute(select(AttemptRow.state).order_by(AttemptRow.id)).scalars().all()
    assert sorted(states) == ["crashed", "succeeded"]  # load's finished attempt stays as it ended
    assert store.get_run("fresh001")["state"] == "pending"
    assert store.get_run("done0001")["state"] == "succeeded"
    # The driver of a swept run learns it from its next heartbeat and cannot revive it.
    assert store.heartbeat("stale001") is False
    assert store.set_run_state("stale001", "succeeded") is False
    store.record_events("stale001", [finished("split")])
    assert store.get_run("stale001")["tasks"][1]["state"] == "crashed"
    assert store.mark_crashed(stale_after=60) == []


# ---- lineage -------------------------------------------------------------------------------


@pytest.fixture
def two_runs(store: MetadataStore) -> MetadataStore:
    """run 1 computes data -> model; run 2 gets data from cache and trains and evaluates again."""
    nodes = [("load", "load"), ("train", "train"), ("evaluate", "evaluate")]
    new_run(store, "run1", nodes)
    store.record_events(
        "run1",
        [
            finished("load", outputs=[art("data")]),
            finished("train", inputs={"df": art("data")}, outputs=[art("model-1")]),
            finished("evaluate", inputs={"model": art("model-1")}, outputs=[art("score-1")]),
        ],
    )
    new_run(store, "run2", nodes)
    store.record_events(
        "run2",
        [
            finished("load", cached=True, outputs=[art("data")], start=None),
            finished("train", inputs={"df": art("data")}, outputs=[art("model-2")]),
            finished("evaluate", inputs={"model": art("model-2")}, outputs=[art("score-2")]),
        ],
    )
    return store


def test_lineage_upstream_crosses_runs_to_the_computing_task(two_runs: MetadataStore) -> None:
    lineage = two_runs.lineage("run2", "evaluate")
    assert lineage["root"] == {"run_id": "run2", "node": "evaluate", "task": "evaluate"}
    assert lineage["direction"] == "upstream"
    assert [(t["run_id"], t["node"], t["depth"], t["cached"]) for t in lineage["task_runs"]] == [
        ("run2", "evaluate", 0, False), ("run2", "train", 1, False), ("run1", "load", 2, False),
    ]  # fmt: skip
    artifacts = {a["content_hash"]: a for a in lineage["artifacts"]}
    assert set(artifacts) == {"model-2", "data"}
    assert artifacts["data"]["produced_by"] == {"run_id": "run1", "node": "load"}
    assert artifacts["data"]["uri"] == "file:///artifacts/data"
    assert {(e["from"], e["to"]) for e in lineage["edges"]} == {
        ("model-2", "run2/evaluate"), ("run2/train", "model-2"),
        ("data", "run2/train"), ("run1/load", "data"),
    }  # fmt: skip
    shallow = two_runs.lineage("run2", "evaluate", depth=1)
    assert [t["node"] for t in shallow["task_runs"]] == ["evaluate", "train"]
    assert [a["content_hash"] for a in shallow["artifacts"]] == ["model-2"]


def test_lineage_downstream_reaches_consumers_in_every_run(two_runs: MetadataStore) -> None:
    lineage = two_runs.lineage("run1", "load", direction="downstream")
    assert [(t["run_id"], t["node"], t["depth"]) for t in lineage["task_runs"]] == [
        ("run1", "load", 0), ("run1", "train", 1), ("run2", "train", 1),
        ("run1", "evaluate", 2), ("run2", "evaluate", 2),
    ]  # fmt: skip
    assert {(e["from"], e["to"]) for e in lineage["edges"]} == {
        ("run1/load", "data"), ("data", "run1/train"), ("data", "run2/train"),
        ("run1/train", "model-1"), ("run2/train", "model-2"),
        ("model-1", "run1/evaluate"), ("model-2", "run2/evaluate"),
        ("run1/evaluate", "score-1"), ("run2/evaluate", "score-2"),
    }  # fmt: skip
    produced = {a["content_hash"]: a["produced_by"] for a in lineage["artifacts"]}
    assert produced["model-2"] == {"run_id": "run2", "node": "train"}
    one_hop = two_runs.lineage("run1", "load", direction="downstream", depth=1)
    assert {t["run_id"] + "/" + t["node"] for t in one_hop["task_runs"]} == {
        "run1/load", "run1/train", "run2/train",
    }  # fmt: skip


def test_lineage_errors(two_runs: MetadataStore) -> None:
    with pytest.raises(NotFound) as info:
        two_runs.lineage("run1", "deploy")
    assert str(info.value) == "no task `deploy` in run `run1`; its nodes are: load, train, evaluate"
    with pytest.raises(InvalidArgument, match=r"lineage direction `sideways` is not known"):
        two_runs.lineage("run1", "load", direction="sideways")
    with pytest.raises(NotFound, match=r"^no run `nope`"):
        two_runs.lineage("nope", "load")


PARITY = [("source", "source"), ("parity", "parity"), ("report", "report")]


def parity_events(
    cached: tuple[str, ...] = (), value: str = "one", bit: str = "one"
) -> list[dict[str, Any]]:
    """``report(parity(source(x)))``: with x = 1, source and parity both output the value 1."""
    return [
        finished("source", cached="source" in cached, outputs=[art(value)]),
        finished(
            "parity",
            cached="parity" in cached,
            inputs={"v": art(value)},
            sources={"v": "source"},
            outputs=[art(bit)],
        ),
        finished(
            "report",
            cached="report" in cached,
            inputs={"p": art(bit)},
            sources={"p": "parity"},
            outputs=[art("odd")],
        ),
    ]


def walked(lineage: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(t["run_id"], t["node"], t["depth"]) for t in lineage["task_runs"]]


def test_lineage_follows_exact_producers_of_equal_values(
    store: MetadataStore, raw_engine: Engine
) -> None:
    new_run(store, "run1", PARITY, pipeline="parity")
    store.record_events("run1", parity_events()[:1])  # source is found in an earlier batch
    store.record_events("run1", parity_events()[1:])
    # equal values computed elsewhere: another pipeline, and another run of this one
    new_run(store, "other", [("make", "make"), ("use", "use")], pipeline="other")
    store.record_events(
        "other",
        [
            finished("make", outputs=[art("one")]),
            finished("use", inputs={"n": art("one")}, sources={"n": "make"}, outputs=[art("u")]),
        ],
    )
    new_run(store, "run3", PARITY, pipeline="parity")
    store.record_events("run3", parity_events(value="three"))

    with raw_engine.connect() as conn:
        source = TaskRunRow.__table__.alias("source")
        rows = conn.execute(
            select(TaskRunRow.node_id, LineageEdgeRow.name, source.c.node_id)
            .join(TaskRunRow, TaskRunRow.id == LineageEdgeRow.task_run_id)
            .join(source, source.c.id == LineageEdgeRow.source_task_run_id, isouter=True)
            .where(TaskRunRow.run_id == "run1", LineageEdgeRow.direction == "input")
            .order_by(LineageEdgeRow.id)
        ).all()
    assert [tuple(row) for row in rows] == [("parity", "v", "source"), ("report", "p", "parity")]

    up = store.lineage("run1", "report")
    assert walked(up) == [("run1", "report", 0), ("run1", "parity", 1), ("run1", "source", 2)]
    assert [(a["content_hash"], a["produced_by"]) for a in up["artifacts"]] == [
        ("one", {"run_id": "run1", "node": "parity"})
    ]
    assert {(e["from"], e["to"]) for e in up["edges"]} == {
        ("one", "run1/report"), ("run1/parity", "one"),
        ("one", "run1/parity"), ("run1/source", "one"),
    }  # fmt: skip
    assert walked(store.lineage("run1", "report", depth=1)) == [
        ("run1", "report", 0), ("run1", "parity", 1),
    ]  # fmt: skip

    down = store.lineage("run1", "source", direction="downstream")
    assert walked(down) == [("run1", "source", 0), ("run1", "parity", 1), ("run1", "report", 2)]
    assert [(a["content_hash"], a["produced_by"]) for a in down["artifacts"]] == [
        ("one", {"run_id": "run1", "node": "source"}),
        ("odd", {"run_id": "run1", "node": "report"}),
    ]
    down = store.lineage("run1", "parity", direction="downstream")
    assert walked(down) == [("run1", "parity", 0), ("run1", "report", 1)]
    down = store.lineage("other", "make", direction="downstream")
    assert walked(down) == [("other", "make", 0), ("other", "use", 1)]


def test_lineage_downstream_follows_cached_reuse_into_later_runs(store: MetadataStore) -> None:
    new_run(store, "run1", PARITY, pipeline="parity")
    store.record_events("run1", parity_events())
    # run2 reuses source from the cache and recomputes the rest
    new_run(store, "run2", PARITY, pipeline="parity")
    store.record_events("run2", parity_events(cached=("source",)))
    # run3 is a cache hit of source with another value; run4's cached `seed` (another node)
    # output an equal value: neither reused run1/source's output
    new_run(store, "run3", PARITY, pipeline="parity")
    store.record_events("run3", parity_events(cached=("source",), value="three"))
    new_run(store, "run4", [("seed", "seed"), ("use", "use")], pipeline="other")
    store.record_events(
        "run4",
        [
            finished("seed", cached=True, outputs=[art("one")]),
            finished("use", inputs={"n": art("one")}, sources={"n": "seed"}, outputs=[art("u")]),
        ],
    )

    down = store.lineage("run1", "source", direction="downstream")
    assert walked(down) == [
        ("run1", "source", 0), ("run1", "parity", 1), ("run2", "parity", 1),
        ("run1", "report", 2), ("run2", "report", 2),
    ]  # fmt: skip
    assert {(e["from"], e["to"]) for e in down["edges"]} == {
        ("run1/source", "one"), ("one", "run1/parity"), ("one", "run2/parity"),
        ("run1/parity", "one"), ("run2/parity", "one"),
        ("one", "run1/report"), ("one", "run2/report"),
        ("run1/report", "odd"), ("run2/report", "odd"),
    }  # fmt: skip
    assert walked(store.lineage("run1", "source", direction="downstream", depth=1)) == [
        ("run1", "source", 0), ("run1", "parity", 1), ("run2", "parity", 1),
    ]  # fmt: skip
    # from the cached task run itself: only its own run's consumers
    assert walked(store.lineage("run2", "source", direction="downstream")) == [
        ("run2", "source", 0), ("run2", "parity", 1), ("run2", "report", 2),
    ]  # fmt: skip
    # upstream stays in the run: the cached task run is the producer, and ends the walk
    up = store.lineage("run2", "report")
    assert walked(up) == [("run2", "report", 0), ("run2", "parity", 1), ("run2", "source", 2)]
    assert [t["cached"] for t in up["task_runs"]] == [False, False, True]


def test_lineage_falls_back_to_content_hashes_for_inputs_without_a_source(
    store: MetadataStore, raw_engine: Engine
) -> None:
    new_run(store, "run1", PARITY, pipeline="parity")
    events = parity_events()
    for event in events:
        for item in event["inputs"]:
            del item["source"]
    events[2]["inputs"][0]["source"] = "ghost"  # a node without a task run: unknown
    store.record_events("run1", events)
    with raw_engine.connect() as conn:
        sources = conn.execute(
            select(LineageEdgeRow.source_task_run_id).where(LineageEdgeRow.direction == "input")
        ).all()
    assert [tuple(row) for row in sources] == [(None,), (None,)]

    # the earliest computed output of an equal value: source, not parity
    up = store.lineage("run1", "report")
    assert walked(up) == [("run1", "report", 0), ("run1", "source", 1)]
    assert [(a["content_hash"], a["produced_by"]) for a in up["artifacts"]] == [
        ("one", {"run_id": "run1", "node": "source"})
    ]
    down = store.lineage("run1", "source", direction="downstream")
    assert walked(down) == [("run1", "source", 0), ("run1", "parity", 1), ("run1", "report", 1)]


def test_lineage_sources_of_map_children_created_in_the_same_batch(
    store: MetadataStore,
) -> None:
    new_run(store, "run1", [("split", "split"), ("best", "best")])
    store.record_events(
        "run1",
        [
            finished("split", outputs=[art("rows")]),
            finished(
                "train[0]",
                parent="train",
                map_index=0,
                inputs={"rows": art("rows")},
                sources={"rows": "split"},
                outputs=[art("model")],
            ),
            finished(
                "best",
                inputs={"models": art("model")},
                sources={"models": "train[0]"},
                outputs=[art("score")],
            ),
        ],
    )
    assert walked(store.lineage("run1", "best")) == [
        ("run1", "best", 0), ("run1", "train[0]", 1), ("run1", "split", 2),
    ]  # fmt: skip


# ---- opening -------------------------------------------------------------------------------

HINT = (
    "; set GLASSPANE_DATABASE_URL to a SQLAlchemy URL such as sqlite:////path/glasspane.db "
    "or postgresql://user@host/db"
)


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("not a url", "Could not parse SQLAlchemy URL from given URL string"),
        ("nosuchdb://host/db", "Can't load plugin: sqlalchemy.dialects:nosuchdb"),
    ],
)
def test_bad_url_raises_config_error(url: str, cause: str) -> None:
    with pytest.raises(ConfigError) as info:
        MetadataStore(url)
    assert str(info.value) == f"cannot open metadata database `{url}`: {cause}{HINT}"


def test_unopenable_database_raises_config_error_with_password_masked() -> None:
    url = "postgresql://user:s3cret@127.0.0.1:1/glasspane"
    with pytest.raises(ConfigError) as info:
        MetadataStore(url)
    message = str(info.value)
    assert message.startswith(
        "cannot open metadata database `postgresql://user:***@127.0.0.1:1/glasspane`: "
    )
    assert message.endswith(HINT)
    assert "s3cret" not in message


def test_sqlite_file_under_a_file_raises_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    url = f"sqlite:///{tmp_path}/file/glasspane.db"
    with pytest.raises(
        ConfigError, match=r"^cannot open metadata database `sqlite:///.*file/glass"
    ):
        MetadataStore(url)


def test_a_reader_creates_no_database(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "glasspane.db"
    with pytest.raises(NotFound) as info:
        MetadataStore(f"sqlite:///{path}", create=False)
    assert str(info.value) == (
        f"no glasspane database exists at {path}; run a pipeline first (that creates it), "
        "or point GLASSPANE_DATABASE_URL or GLASSPANE_HOME at the database you mean"
    )
    assert not (tmp_path / "typo").exists()


def test_a_reader_opens_an_existing_database(db_url: str) -> None:
    with MetadataStore(db_url) as writer:
        new_run(writer, "run00001")
    with MetadataStore(db_url, create=False) as reader:
        assert [r["run_id"] for r in reader.list_runs()] == ["run00001"]


def test_a_reader_refuses_a_database_without_glasspane_tables(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE unrelated (id INTEGER)"))
    finally:
        engine.dispose()
    with pytest.raises(NotFound, match=r"^no glasspane database exists at "):
        MetadataStore(db_url, create=False)
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert not inspect(conn).has_table("runs")
    finally:
        engine.dispose()


def test_in_memory_sqlite() -> None:
    with MetadataStore("sqlite://") as store:
        new_run(store, "run00001")
        store.record_events("run00001", [finished("load", outputs=[art("data")])])
        assert store.get_run("run0")["tasks"][0]["outputs"][0]["content_hash"] == "data"


def test_sqlite_reads_do_not_wait_for_the_write_lock(
    store: MetadataStore, db_url: str, is_sqlite: bool
) -> None:
    if not is_sqlite:
        pytest.skip("SQLite locking only")
    new_run(store, "run00001")
    engine = create_engine(db_url, connect_args={"isolation_level": None})
    try:
        with engine.connect() as other:
            other.exec_driver_sql("BEGIN IMMEDIATE")  # another process holds the write lock
            other.execute(update(RunRow).values(trigger="held"))
            began = time.monotonic()
            assert store.get_run("run00001")["trigger"] == "manual"
            assert time.monotonic() - began < 1.0
            other.exec_driver_sql("ROLLBACK")
        with store._engines.read.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
    finally:
        engine.dispose()


# ---- concurrency ---------------------------------------------------------------------------

WRITERS = 4
WRITES = 100


def _writer(url: str, worker: int, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(timeout=60)
        store = MetadataStore(url)
        run_id = f"worker{worker}"
        version = store.ensure_pipeline_version("concurrent", "hash", {"nodes": []})
        store.create_run(
            run_id=run_id, pipeline_name="concurrent", version_id=version, pipeline_ref=None,
            params={}, executor="threads", nodes=[],
        )  # fmt: skip
        for i in range(WRITES):
            node = f"node{i}"
            store.record_events(
                run_id,
                [
                    started(node),
                    finished(
                        node,
                        inputs={"shared": art("shared-input")},
                        outputs=[art(f"out-{worker}-{i}")],
                        metrics=[{"key": "i", "value": float(i), "step": i, "ts": T0}],
                    ),
                ],
            )
            if i % 10 == 0:
                store.heartbeat(run_id)
                store.list_runs()
        store.set_run_state(run_id, "succeeded")
        store.close()
        results.put((worker, None))
    except BaseException:
        results.put((worker, traceback.format_exc()))


def test_concurrent_writers_from_several_processes(db_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(WRITERS), context.Queue()
    processes = [
        context.Process(target=_writer, args=(db_url, n, barrier, results)) for n in range(WRITERS)
    ]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=240) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    errors = {worker: error for worker, error in outcomes.items() if error}
    assert not any("database is locked" in error for error in errors.values()), errors
    assert errors == {}
    engine = create_engine(db_url)
    try:
        assert count(engine, TaskRunRow) == WRITERS * WRITES
        assert count(engine, MetricRow) == WRITERS * WRITES
        assert count(engine, ArtifactRow) == WRITERS * WRITES + 1
        assert count(engine, LineageEdgeRow) == 2 * WRITERS * WRITES
        assert count(engine, TaskRunRow, TaskRunRow.state != "succeeded") == 0
    finally:
        engine.dispose()
    with MetadataStore(db_url) as store:
        runs = store.list_runs()
        assert len(runs) == WRITERS
        assert {r["state"] for r in runs} == {"succeeded"}
        assert {r["n_succeeded"] for r in runs} == {WRITES}


def test_relative_sqlite_path_is_pinned_at_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with MetadataStore("sqlite:///rel/glasspane.db") as store:
        monkeypatch.chdir("/")
        new_run(store, "run00001")
        assert store.get_run("run00001")["state"] == "pending"
    assert (tmp_path / "rel" / "glasspane.db").is_file()


def test_task_finished_closes_the_final_attempt(store: MetadataStore, raw_engine: Engine) -> None:
    new_run(store, "run00002")
    store.record_events("run00002", [started("load", attempt=1)])
    store.record_events(
        "run00002",
        [
            {"kind": "attempt_finished", "node": "load", "attempt": 1, "state": "failed",
             "ts": T0 + 1, "error": "boom"},
            started("load", attempt=2),
        ],
    )  # fmt: skip
    store.record_events("run00002", [finished("load", attempts=2)])
    with raw_engine.connect() as conn:
        rows = conn.execute(
            select(AttemptRow.attempt, AttemptRow.state, AttemptRow.error).order_by(
                AttemptRow.attempt
            )
        ).all()
    assert [tuple(r) for r in rows] == [(1, "failed", "boom"), (2, "succeeded", None)]


def test_start_and_finish_in_one_batch_record_one_complete_attempt(
    store: MetadataStore, raw_engine: Engine
) -> None:
    new_run(store, "run00003")
    store.record_events("run00003", [started("load", ts=T0), finished("load", attempts=1)])
    with raw_engine.connect() as conn:
        rows = conn.execute(
            select(AttemptRow.attempt, AttemptRow.state, AttemptRow.started_at)
        ).all()
    assert len(rows) == 1
    attempt, state, started_at = rows[0]
    assert (attempt, state) == (1, "succeeded")
    assert started_at is not None and abs(started_at.timestamp() - T0) < 1e-3
    task = store.get_run("run00003")["tasks"][0]
    assert task["state"] == "succeeded" and task["started_at"] is not None


def test_list_runs_takes_any_large_limit_and_only_known_states(store: MetadataStore) -> None:
    new_run(store, "run00001")
    assert [r["run_id"] for r in store.list_runs(limit=10**30)] == ["run00001"]
    with pytest.raises(
        InvalidArgument, match=r"^unknown run state `bogus`; use one of queued, pending, "
    ):
        store.list_runs(state="bogus")
