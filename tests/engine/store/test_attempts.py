"""Per-attempt records: each attempt keeps its own captured text, read back by ``attempts``."""

from __future__ import annotations

from typing import Any

import pytest

from glasspane.errors import NotFound
from glasspane.store import MetadataStore

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20+00:00


def new_run(store: MetadataStore, run_id: str) -> None:
    version = store.ensure_pipeline_version("retrain", "v1hash", {"nodes": ["load", "train"]})
    store.create_run(
        run_id=run_id, pipeline_name="retrain", version_id=version, pipeline_ref=None,
        params={}, executor="threads", nodes=[("load", "load"), ("train", "train")],
    )  # fmt: skip


def started(node: str, attempt: int, ts: float) -> dict[str, Any]:
    return {"kind": "task_started", "node": node, "task": node, "attempt": attempt, "ts": ts}


def attempt_failed(node: str, attempt: int, ts: float, **text: Any) -> dict[str, Any]:
    return {"kind": "attempt_finished", "node": node, "attempt": attempt, "state": "failed",
            "ts": ts, "error": f"RuntimeError: try {attempt}", **text}  # fmt: skip


def finished(node: str, attempts: int, **fields: Any) -> dict[str, Any]:
    event = {
        "kind": "task_finished", "node": node, "task": node, "state": "succeeded",
        "cached": False, "cache_key": None, "attempts": attempts, "started": T0,
        "ended": T0 + 10, "error": None, "traceback": None, "stdout": "", "stderr": "",
        "log_tail": "", "note": None, "inputs": [], "outputs": [], "metrics": [], "params": [],
    }  # fmt: skip
    event.update(fields)
    return event


def test_each_attempt_keeps_its_own_text(store: MetadataStore) -> None:
    new_run(store, "run00001")
    store.record_events("run00001", [started("load", 1, T0)])
    store.record_events(
        "run00001",
        [
            attempt_failed(
                "load", 1, T0 + 2, stdout="out 1\n", stderr="err 1\n", log_tail="INFO log 1",
                traceback="Traceback (most recent call last):\nRuntimeError: try 1\n",
            ),
            started("load", 2, T0 + 3),
        ],
    )  # fmt: skip
    store.record_events(
        "run00001",
        [
            finished(
                "load", 2, stdout="out 1\nout 2\n", stderr="err 1\nerr 2\n",
                log_tail="INFO log 1\nINFO log 2", attempt_stdout="out 2\n",
                attempt_stderr="err 2\n", attempt_log_tail="INFO log 2",
            )
        ],
    )  # fmt: skip
    first, second = store.attempts("run0", "load")
    assert first == {
        "attempt": 1,
        "state": "failed",
        "started_at": "2023-11-14T22:13:20+00:00",
        "ended_at": "2023-11-14T22:13:22+00:00",
        "duration": 2.0,
        "error": "RuntimeError: try 1",
        "stdout": "out 1\n",
        "stderr": "err 1\n",
        "log_tail": "INFO log 1",
        "traceback": "Traceback (most recent call last):\nRuntimeError: try 1\n",
    }
    assert (second["attempt"], second["state"], second["error"]) == (2, "succeeded", None)
    assert (second["stdout"], second["stderr"], second["log_tail"], second["traceback"]) == (
        "out 2\n",
        "err 2\n",
        "INFO log 2",
        None,
    )
    assert second["duration"] == 7.0
    # the task run keeps the text of every attempt together
    [task, _] = store.get_run("run00001")["tasks"]
    assert (task["stdout"], task["log_tail"]) == ("out 1\nout 2\n", "INFO log 1\nINFO log 2")


def test_a_final_attempt_started_in_the_same_batch_keeps_its_text(store: MetadataStore) -> None:
    new_run(store, "run00002")
    store.record_events(
        "run00002",
        [
            started("load", 1, T0),
            finished("load", 1, state="failed", error="ValueError: bad",
                     traceback="Traceback (most recent call last):\nValueError: bad\n",
                     stdout="hello\n", attempt_stdout="hello\n"),
            started("train", 1, T0),
            finished("train", 1, attempt_stdout="train out\n"),
        ],
    )  # fmt: skip
    [load] = store.attempts("run00002", "load")
    assert (load["state"], load["stdout"], load["traceback"]) == (
        "failed",
        "hello\n",
        "Traceback (most recent call last):\nValueError: bad\n",
    )
    assert [a["stdout"] for a in store.attempts("run00002", "train")] == ["train out\n"]


def test_events_without_attempt_text_store_none(store: MetadataStore) -> None:
    new_run(store, "run00003")
    store.record_events("run00003", [started("load", 1, T0)])
    store.record_events(
        "run00003",
        [
            {"kind": "attempt_finished", "node": "load", "attempt": 1, "state": "failed",
             "ts": T0 + 1, "error": "boom"},
            started("load", 2, T0 + 2),
        ],
    )  # fmt: skip
    store.record_events("run00003", [finished("load", 2, stdout="all of it")])
    assert [(a["state"], a["stdout"], a["stderr"], a["log_tail"], a["traceback"])
            for a in store.attempts("run00003", "load")] == [
        ("failed", None, None, None, None), ("succeeded", None, None, None, None),
    ]  # fmt: skip


def test_attempt_text_keeps_the_last_64_kib(store: MetadataStore) -> None:
    new_run(store, "run00004")
    big = "x" * 100_000 + "THE END"
    store.record_events(
        "run00004", [started("load", 1, T0), finished("load", 1, attempt_stdout=big)]
    )
    [attempt] = store.attempts("run00004", "load")
    assert attempt["stdout"].startswith("[... ")
    assert attempt["stdout"].endswith("THE END")
    assert len(attempt["stdout"].encode()) <= 64 * 1024


def test_a_cached_task_run_has_no_attempts(store: MetadataStore) -> None:
    new_run(store, "run00005")
    store.record_events("run00005", [finished("load", 0, cached=True, started=None)])
    assert store.attempts("run00005", "load") == []
    assert store.attempts("run00005", "train") == []  # pending: never started


def test_attempts_of_an_unknown_node_or_run(store: MetadataStore) -> None:
    new_run(store, "run00006")
    with pytest.raises(NotFound) as info:
        store.attempts("run00006", "lod")
    assert str(info.value) == "run run00006 has no node `lod`; its nodes are: load, train"
    with pytest.raises(NotFound, match=r"^no run `nope0000`; list runs with"):
        store.attempts("nope0000", "load")
