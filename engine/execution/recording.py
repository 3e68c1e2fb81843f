"""The driver's record of a run: events in, sequenced, stored, then heard by listeners.

Jobs report what they do as wire dicts (:func:`glasspane.events.wire`), from any thread or,
on Dask, through the scheduler. The :class:`Recorder` takes them from one queue on its own
thread, in batches, and numbers each event. Its first listener is the
:class:`MetadataWriter`, which hears every batch before anyone else and stores it in one
write transaction (task tables and the run's event log together); then the batch goes to
the run's other listeners through its :class:`~glasspane.listeners.Dispatcher`. So
listeners hear events in sequence order, after they are stored, and never on a task's
thread. The :class:`Heartbeat` keeps the run marked alive.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from ..events import Event, log_payload
from ..listeners import Dispatcher
from ..store import MetadataStore, event_log
from ..store.events import EVENT_KINDS
from .executors.base import drain

#: seconds the recorder collects events into one transaction (a transaction per event would
#: cost more than the events' rows)
BATCH_WINDOW = 0.02

#: the task_finished fields the run loop reads after recording (see runner._settle, _result)
_KEPT = (
    "node", "task", "state", "cached", "attempts", "error", "started", "ended", "note",
    "parent", "outputs",
)  # fmt: skip
_TABLE_KINDS = frozenset(EVENT_KINDS)


class MetadataWriter:
    """The listener that stores a run's events in the metadata store.

    A listener like the others (``on_event`` takes one typed event), with one difference
    that makes the store the record the others can trust: the recorder calls it first, on
    its own thread, with each whole batch (:meth:`on_batch`: the jobs' reports and their
    event log payloads), and hands the batch to the other listeners only once it returned.
    A batch is one transaction; an error is kept (``error``) and raised when the run's
    recording closes, since the run must then fail saying its record is incomplete.
    """

    name = "metadata"

    def __init__(self, store: MetadataStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.error: BaseException | None = None

    def on_batch(self, reports: list[dict[str, Any]], payloads: list[dict[str, Any]]) -> None:
        """Store one batch: the reports' effects on the task tables, and the log payloads."""
        try:
            self.store.record_events(
                self.run_id, [r for r in reports if r["kind"] in _TABLE_KINDS], payloads
            )
        except Exception as exc:  # noqa: BLE001 - surfaced by Recorder.close()
            self.error = exc

    def on_event(self, event: Event) -> None:
        """Store one typed event in the run's event log (the run's last, ``RunFinished``,
        when the final state was not stored with it)."""
        self.store.record_events(self.run_id, [], [event.to_dict()])


class Recorder:
    """Drains events from a queue in batches, on its own thread: numbers them, has the
    :class:`MetadataWriter` store them, then hands them to the run's other listeners."""

    def __init__(self, store: MetadataStore, run_id: str, dispatcher: Dispatcher) -> None:
        self.writer = MetadataWriter(store, run_id)
        self.run_id = run_id
        self.dispatcher = dispatcher
        self.seq = 0
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()  # event dicts; None stops
        self.finished: dict[str, dict[str, Any]] = {}
        #: the nodes whose finished records keep their outputs (the pipeline's outputs, which
        #: the run loads); None keeps every node's. A large map's records stay small.
        self.keep_outputs: set[str] | None = None
        self.attempts: dict[str, int] = {}
        self.skipped: dict[str, dict[str, Any]] = {}
        # set by barrier() and close(): ends the batch window at once
        self._urgent = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="glasspane-recorder", daemon=True)
        self._thread.start()

    def emit(self, event: dict[str, Any]) -> None:
        self.queue.put(event)

    def _loop(self) -> None:
        stop = False
        while not stop:
            batch = self._next_batch()
            if None in batch:
                stop = True
            flushes = [e["done"] for e in batch if e is not None and e["kind"] == "_flush"]
            batch = [e for e in batch if e is not None and e["kind"] != "_flush"]
            for event in batch:
                if event["kind"] == "task_finished":
                    # only what the run's outcome needs: not inputs, captured text, metrics
                    record = {k: event.get(k) for k in _KEPT}
                    if self.keep_outputs is not None and event["node"] not in self.keep_outputs:
                        del record["outputs"]  # ~2 KB per task (artifacts with previews)
                    self.finished[event["node"]] = record
                elif event["kind"] == "task_started":
                    self.attempts[event["node"]] = event["attempt"]
                elif event["kind"] == "task_skipped":
                    self.skipped[event["node"]] = event
            if batch:
                logged = self._number(batch)
                self.writer.on_batch(batch, logged)
                if self.dispatcher.listening:  # the reports, previews and all, numbered
                    self.dispatcher.deliver(
                        [
                            {**r, "run_id": self.run_id, "seq": p["seq"]}
                            for r, p in zip(batch, logged)
                        ]
                    )
            for done in flushes:
                done.set()

    def _number(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The batch's reports as event log payloads, numbered in order."""
        logged = []
        for report in batch:
            self.seq += 1
            logged.append(log_payload(self.run_id, self.seq, report))
        return logged

    def _next_batch(self) -> list[Any]:
        """Events for one transaction: what arrives within ``BATCH_WINDOW`` of the first.

        The recorder sleeps through the window and then takes everything queued, rather than
        waking for each event: a wake-up per event would take the GIL from the tasks' threads
        twice per task. A flush or stop request ends the window at once, so nobody waits on
        the window.
        """
        first = self.queue.get()
        if first is not None and first["kind"] != "_flush":
            self._urgent.wait(BATCH_WINDOW)
        # cleared before draining: a request set after this is in the queue by then, or
        # ends the next window
        self._urgent.clear()
        return [first, *drain(self.queue)]

    def barrier(self) -> None:
        """Wait until every event queued so far has been recorded."""
        done = threading.Event()
        self.queue.put({"kind": "_flush", "done": done})
        self._urgent.set()
        done.wait(timeout=60)

    def close(self) -> None:
        self.queue.put(None)
        self._urgent.set()
        self._thread.join()
        if self.writer.error is not None:
            raise self.writer.error

    def finish(self, event: Event, logged: bool = False) -> None:
        """Deliver the run's last event (numbered ``seq + 1``, after the final state is
        committed), logging it first unless the caller stored it with the state (``logged``).

        Call after :meth:`close`; a store error here is not raised (the state is stored).
        """
        self.seq = event.seq
        if not logged:
            try:
                self.writer.on_event(event)
            except Exception:  # noqa: BLE001 - the state is committed; listeners still hear
                pass
        self.dispatcher.deliver([event])


class Heartbeat:
    """Touches the run's heartbeat every ``interval`` seconds; calls ``on_stop`` when the run
    was ended by someone else (then ``lost`` is set) or another process asked to cancel it
    (``glasspane cancel``)."""

    def __init__(
        self, store: MetadataStore, run_id: str, interval: float, on_stop: Callable[[], None]
    ) -> None:
        self._stop = threading.Event()
        self.lost = False

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    alive = store.heartbeat(run_id)
                    cancel = alive and store.read(event_log.cancel_requested, run_id)
                except Exception:  # noqa: BLE001 - a transient DB error must not kill a run
                    continue
                if not alive or cancel:
                    self.lost = not alive
                    on_stop()
                    return

        self._thread = threading.Thread(target=beat, name="glasspane-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
