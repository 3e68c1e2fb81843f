"""A batch of sibling units on a Dask worker, which hands back what it has not started.

The planner (:func:`..fusion.batch_siblings`) batches units that are short by the metadata
store's upper estimates, and units never seen only in large groups; neither can foresee an
element that is slow for the first time. So a batch that has run for longer than
:data:`..fusion.GIVE_BACK_AFTER` gives the units it has not started back to the cluster, in
one message, ahead of other waiting work: idle workers take them, as they would have taken
them from a plain Dask map. The unit it is running finishes where it is. Then the batch
leaves the worker's thread pool (``secede``) while it waits for their results, so its thread
slot runs other tasks, and returns the same tuple as if it had run them all.

A batch that is merely somewhat slower than planned keeps its units when, by the mean of
those it has finished, the rest take less than the budget: handing back costs Dask tasks.
Units go back one Dask task each, unless the finished ones ran quickly: then in smaller
batches of about half the budget by their mean, each of which hands back in turn if it
overruns. One watchdog thread per worker process looks at its batches (a thread of its own
hands back), so a unit that runs for an hour does not keep its siblings waiting behind it:
the most a batch adds to an element is about two budgets, plus submitting it, at each
level. Each unit runs exactly once, here or there; its events reach the driver from
wherever it ran.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any

from ..fusion import GIVE_BACK_AFTER
from ..job import Emit, Job, NodeValue, RunJob, TaskFailed
from .base import results_or_errors

#: Dask priority of handed-back units: they run before batches that have not started
GIVE_BACK_PRIORITY = 100

InputsOf = Callable[[list[Job], Any], dict[str, NodeValue]]
RunUnit = Callable[[list[Job], dict[str, NodeValue]], NodeValue]


def run_siblings(
    units: list[list[Job]],
    picks: tuple[Any, ...],
    inputs_of: InputsOf,
    run_unit: RunUnit,
    emit: Emit,
    run_id: str,
    run_job: RunJob,
    budget: float = GIVE_BACK_AFTER,
) -> tuple[NodeValue | TaskFailed, ...]:
    """Run a batch's units (each a list of jobs) in order; one entry per unit, its value or
    the :class:`TaskFailed` that ended it. A unit whose input failed does not run: it gets
    the failure and the driver is told (``unit_skipped``). Units not started within
    ``budget`` seconds run elsewhere (see the module docstring)."""
    out: list[NodeValue | TaskFailed | None] = [None] * len(units)
    inputs: dict[int, dict[str, NodeValue]] = {}
    for i, (jobs, unit_picks) in enumerate(zip(units, picks)):
        try:
            inputs[i] = inputs_of(jobs, unit_picks)
        except TaskFailed as failed:
            emit({"kind": "unit_skipped", "node": jobs[0].node_id})
            out[i] = failed
    pending = _Pending(list(inputs))
    handed = _HandBack(units, inputs, run_id, run_job, pending, budget)
    _watchdog().watch(handed)
    try:
        while True:
            while (index := pending.take()) is not None:
                handed.running = started = time.monotonic()
                try:
                    out[index] = run_unit(units[index], inputs[index])
                except TaskFailed as failed:
                    out[index] = failed
                handed.running = None
                handed.took.append(time.monotonic() - started)
            handed.close()  # a hand-back under way has submitted, or put its units back
            if pending.empty():
                break
    finally:
        handed.close()
    if handed.futures:
        from distributed import secede

        secede()  # wait outside the thread pool: this slot may run the units handed back
        for chunk, result in zip(handed.chunks, results_or_errors(handed.futures)):
            if len(chunk) > 1 and isinstance(result, tuple):
                for index, one in zip(chunk, result):
                    out[index] = one
            elif isinstance(result, (NodeValue, TaskFailed)):
                out[chunk[0]] = result
            else:  # lost, not failed: no event explains it, the driver reports it
                raise result
    return tuple(out)  # type: ignore[arg-type]  # every entry was set above


class _Pending:
    """The indices of units nobody has started, taken one at a time by the batch or all at
    once by a hand-back."""

    def __init__(self, indices: list[int]) -> None:
        self._lock = threading.Lock()
        self._left = indices[::-1]

    def take(self) -> int | None:
        with self._lock:
            return self._left.pop() if self._left else None

    def take_all(self) -> list[int]:
        with self._lock:
            left, self._left = self._left[::-1], []
            return left

    def put_back(self, indices: list[int]) -> None:
        with self._lock:
            self._left.extend(indices[::-1])

    def empty(self) -> bool:
        return not self.count()

    def count(self) -> int:
        with self._lock:
            return len(self._left)


class _HandBack:
    """A batch as the watchdog sees it; once :meth:`due`, submits the units not yet started
    from a thread of its own, their inputs scattered once. On any error they go back to the
    batch, which runs them."""

    def __init__(
        self,
        units: list[list[Job]],
        inputs: dict[int, dict[str, NodeValue]],
        run_id: str,
        run_job: RunJob,
        pending: _Pending,
        budget: float,
    ) -> None:
        self.units, self.inputs, self.run_id, self.run_job = units, inputs, run_id, run_job
        self.pending, self.budget = pending, budget
        # the worker's context, for the thread that hands back: ``get_client`` finds it there
        self.context = contextvars.copy_context()
        self.started = time.monotonic()
        self.running: float | None = None  # when the unit the batch runs now started
        self.took: list[float] = []  # seconds each finished unit ran, appended by the batch
        self.chunks: list[list[int]] = []
        self.futures: list[Any] = []
        self.scattered: list[Any] = []  # their inputs, held until they have run
        self._lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None

    def due(self) -> bool:
        """Whether the units not started should go: the unit running now has run for the
        whole budget (it may run for an hour), or those left would, by the mean of the units
        finished, take longer than the budget."""
        running = self.running
        if running is not None and time.monotonic() - running >= self.budget:
            return True
        took = list(self.took)
        mean = sum(took) / len(took) if took else self.budget
        return mean * self.pending.count() > self.budget

    def start(self) -> None:
        """Hand back from a new thread, unless the batch has closed."""
        with self._lock:
            if not self._closed:
                self._thread = threading.Thread(target=self.context.run, args=(self._run,))
                self._thread.daemon = True
                self._thread.start()

    def close(self) -> None:
        """Called by the batch when it has nothing left to run: no hand-back starts after
        this, and one under way is waited for."""
        _watchdog().forget(self)
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        left = self.pending.take_all()
        if not left:
            return
        try:
            self.chunks, self.futures = self._submit(chunked(left, self.took, self.budget))
        except Exception:  # noqa: BLE001 - no client (a closing worker): run them here
            self.chunks, self.futures = [], []
            self.pending.put_back(left)

    def _submit(self, chunks: list[list[int]]) -> tuple[list[list[int]], list[Any]]:
        from dask._task_spec import Task, TaskRef
        from distributed import get_client

        from .dask_tasks import PackedUnits, expression, run_batch

        client = get_client()
        values: dict[int, NodeValue] = {}  # id -> a distinct input value, sent once
        for chunk in chunks:
            for i in chunk:
                for value in self.inputs[i].values():
                    values.setdefault(id(value), value)
        order = list(values)
        self.scattered = client.scatter([values[k] for k in order], hash=False) if order else []
        refs = {k: TaskRef(future.key) for k, future in zip(order, self.scattered)}
        dsk: dict[Any, Any] = {}
        for chunk in chunks:
            parts: dict[int, int] = {}  # id of a value -> its position among the chunk's parts
            picks = tuple(
                tuple(
                    (parts.setdefault(id(self.inputs[i][dep]), len(parts)), None)
                    for dep in self.units[i][0].deps
                )
                for i in chunk
            )
            key = _key(self.units[chunk[0]][-1])
            units = PackedUnits([self.units[i] for i in chunk])
            # a "data producer" is queued by the scheduler for the first free thread anywhere,
            # not sent to the worker that holds its inputs (this one, busy with a slow unit)
            args = (self.run_job, units, self.run_id, picks, *[refs[k] for k in parts])
            dsk[key] = Task(key, run_batch, *args, _data_producer=True)
        keys = list(dsk)
        futures = client.get(
            expression(dsk, self.run_id), keys, sync=False, priority=GIVE_BACK_PRIORITY
        )
        return chunks, list(futures)


class _Watchdog:
    """One thread per worker process that looks at every running batch once its budget is
    spent, then every half budget, and starts its hand-back once it is due."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next: dict[_HandBack, float] = {}  # batch -> when to look at it next
        threading.Thread(target=self._loop, name="glasspane-batches", daemon=True).start()

    def watch(self, handed: _HandBack) -> None:
        with self._cond:
            self._next[handed] = handed.started + handed.budget
            self._cond.notify()

    def forget(self, handed: _HandBack) -> None:
        with self._cond:
            self._next.pop(handed, None)

    def _loop(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                soonest = min(self._next.values(), default=None)
                if soonest is None or soonest > now:
                    self._cond.wait(None if soonest is None else soonest - now)
                    continue
                looks = [h for h, at in self._next.items() if at <= now]
                for handed in looks:
                    self._next[handed] = now + handed.budget / 2
            for handed in looks:
                if handed.due():
                    self.forget(handed)
                    handed.start()


_watchdogs: list[_Watchdog] = []
_watchdogs_lock = threading.Lock()


def _watchdog() -> _Watchdog:
    with _watchdogs_lock:
        if not _watchdogs:
            _watchdogs.append(_Watchdog())
        return _watchdogs[0]


def chunked(left: list[int], took: list[float], budget: float) -> list[list[int]]:
    """``left`` in the pieces it goes back in: one unit each, or, when the units finished so
    far ran quickly, consecutive pieces of about half the budget by their mean."""
    size = 1
    if took:
        size = max(1, int(budget / 2 / max(sum(took) / len(took), 1e-4)))
    return [left[i : i + size] for i in range(0, len(left), size)]


def _key(job: Job) -> str | tuple[str, int]:
    """A handed-back piece's key, from its first unit: beside its map's keys, never one of
    the run's graph, nor of another piece."""
    key = job.dask_key
    return (f"{key[0]}-back", key[1]) if isinstance(key, tuple) else f"{key}-back"
