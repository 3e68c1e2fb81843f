"""The recorder's batching: events arriving together are stored in one transaction, in
order; a barrier or close never waits out the batch window."""

from __future__ import annotations

import threading
from typing import Any

from glasspane.execution import recording
from glasspane.execution.recording import Recorder
from glasspane.listeners import Dispatcher


class FakeStore:
    """Keeps each batch ``record_events`` is given."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.logged: list[int] = []
        self.lock = threading.Lock()

    def record_events(
        self, run_id: str, events: list[dict[str, Any]], log: list[dict[str, Any]]
    ) -> None:
        with self.lock:
            self.batches.append(events)
            self.logged.extend(p["seq"] for p in log)


def started(node: str) -> dict[str, Any]:
    return {"kind": "task_started", "node": node, "task": "t", "attempt": 1, "ts": 1.0}


def test_events_emitted_together_are_one_batch_numbered_in_order(monkeypatch: Any) -> None:
    monkeypatch.setattr(recording, "BATCH_WINDOW", 5.0)  # longer than the test: only a
    store = FakeStore()  # barrier can end the window
    recorder = Recorder(store, "run-1", Dispatcher("run-1", []))  # type: ignore[arg-type]
    try:
        for i in range(50):
            recorder.emit(started(f"n{i}"))
        recorder.barrier()
        assert [len(b) for b in store.batches] == [50]
        assert [e["node"] for e in store.batches[0]] == [f"n{i}" for i in range(50)]
        assert store.logged == list(range(1, 51))
        assert recorder.attempts == {f"n{i}": 1 for i in range(50)}
    finally:
        recorder.close()


def test_events_from_many_threads_are_all_recorded_once(monkeypatch: Any) -> None:
    monkeypatch.setattr(recording, "BATCH_WINDOW", 0.001)
    store = FakeStore()
    recorder = Recorder(store, "run-1", Dispatcher("run-1", []))  # type: ignore[arg-type]

    def work(k: int) -> None:
        for i in range(200):
            recorder.emit(started(f"t{k}-{i}"))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorder.close()  # stops after everything queued before it
    nodes = [e["node"] for b in store.batches for e in b]
    assert sorted(nodes) == sorted(f"t{k}-{i}" for k in range(4) for i in range(200))
    assert store.logged == list(range(1, 801))
    for k in range(4):  # each thread's events stay in the order it emitted them
        mine = [n for n in nodes if n.startswith(f"t{k}-")]
        assert mine == [f"t{k}-{i}" for i in range(200)]


def test_close_does_not_wait_out_the_window(monkeypatch: Any) -> None:
    monkeypatch.setattr(recording, "BATCH_WINDOW", 30.0)
    store = FakeStore()
    recorder = Recorder(store, "run-1", Dispatcher("run-1", []))  # type: ignore[arg-type]
    recorder.emit(started("a"))
    done = threading.Event()

    def close() -> None:
        recorder.close()
        done.set()

    threading.Thread(target=close, daemon=True).start()
    assert done.wait(10), "close() waited for the 30 s batch window"
    assert [e["node"] for b in store.batches for e in b] == ["a"]
