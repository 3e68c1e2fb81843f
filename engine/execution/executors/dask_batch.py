"""A batch of sibling units on a Dask worker, which hands back what it has not started.

The planner (:func:`..fusion.batch_siblings`) batches units that are short by the metadata
store's upper estimates, and units never seen only in large groups; neither can foresee an
element that is slow for the first time. So a batch that has run for longer than
:data:`..fusion.GIVE_BACK_AFTER` gives every unit it has not started back to the cluster,
as one Dask task each, ahead of other waiting work: idle workers take them, as they would
have taken them from a plain Dask map. The unit it is running finishes where it is. Then
the batch leaves the worker's thread pool (``secede``) while it waits for their results, so
its thread slot runs other tasks, and returns the same tuple as if it had run them all.

A timer thread does the handing back, so a unit that runs for an hour does not keep its
siblings waiting behind it: the worst a batch adds to an element is the budget, plus
submitting it. Each unit runs exactly once, here or there; its events reach the driver
from wherever it ran.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any

from ..fusion import GIVE_BACK_AFTER
from ..job import Emit, Job, NodeValue, TaskFailed
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
    budget: float = GIVE_BACK_AFTER,
) -> tuple[NodeValue | TaskFailed, ...]:
    """Run a batch's units (each a list of jobs) in order; one entry per unit, its value or
    the :class:`TaskFailed` that ended it. A unit whose input failed does not run: it gets
    the failure and the driver is told (``unit_skipped``). Units not started within
    ``budget`` seconds run as Dask tasks of their own (see the module docstring)."""
    out: list[NodeValue | TaskFailed | None] = [None] * len(units)
    inputs: dict[int, dict[str, NodeValue]] = {}
    for i, (jobs, unit_picks) in enumerate(zip(units, picks)):
        try:
            inputs[i] = inputs_of(jobs, unit_picks)
        except TaskFailed as failed:
            emit({"kind": "unit_skipped", "node": jobs[0].node_id})
            out[i] = failed
    pending = _Pending(list(inputs))
    handed = _HandBack(units, inputs, run_id, pending)
    timer = threading.Timer(budget, contextvars.copy_context().run, (handed,))
    timer.daemon = True  # the worker's context: ``get_client`` finds the worker there
    timer.start()
    try:
        while True:
            while (index := pending.take()) is not None:
                try:
                    out[index] = run_unit(units[index], inputs[index])
                except TaskFailed as failed:
                    out[index] = failed
            timer.cancel()
            timer.join()  # a hand-back under way has submitted, or put its units back
            if pending.empty():
                break
    finally:
        timer.cancel()
    if handed.futures:
        from distributed import secede

        secede()  # wait outside the thread pool: this slot may run the units handed back
        results = results_or_errors(list(handed.futures.values()))
        for index, result in zip(handed.futures, results):
            if not isinstance(result, (NodeValue, TaskFailed)):
                raise result  # lost, not failed: no event explains it; the driver reports it
            out[index] = result
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
        with self._lock:
            return not self._left


class _HandBack:
    """Called once by the batch's timer: submits every unit not yet started as a Dask task
    of its own, its inputs scattered once; on any error the units go back to the batch."""

    def __init__(
        self,
        units: list[list[Job]],
        inputs: dict[int, dict[str, NodeValue]],
        run_id: str,
        pending: _Pending,
    ) -> None:
        self.units, self.inputs, self.run_id, self.pending = units, inputs, run_id, pending
        self.futures: dict[int, Any] = {}

    def __call__(self) -> None:
        left = self.pending.take_all()
        if not left:
            return
        try:
            self.futures = self._submit(left)
        except Exception:  # noqa: BLE001 - no client (a closing worker): run them here
            self.futures = {}
            self.pending.put_back(left)

    def _submit(self, left: list[int]) -> dict[int, Any]:
        from distributed import get_client

        client = get_client()
        values: dict[int, NodeValue] = {}  # id -> a distinct input value, sent once
        for i in left:
            for value in self.inputs[i].values():
                values.setdefault(id(value), value)
        order = list(values)
        scattered = client.scatter([values[k] for k in order], hash=False) if order else []
        refs = dict(zip(order, scattered))
        units = [self.units[i] for i in left]
        parts = [[refs[id(self.inputs[i][dep])] for dep in self.units[i][0].deps] for i in left]
        # one message: the scheduler sees them as one group and queues them for idle threads
        futures = client.map(
            run_handed_back,
            units,
            [self.run_id] * len(left),
            parts,
            key=[_key(jobs[-1]) for jobs in units],
            pure=False,
            priority=GIVE_BACK_PRIORITY,
        )
        return dict(zip(left, futures))


def run_handed_back(jobs: list[Job], run_id: str, values: list[NodeValue]) -> NodeValue:
    """Runs on a Dask worker: one unit handed back by a batch, with its input values."""
    from .dask_tasks import run_batch

    picks = (tuple((position, None) for position in range(len(values))),)
    value = run_batch([jobs], run_id, picks, *values)
    assert isinstance(value, NodeValue)  # one unit: its value, or it raised
    return value


def _key(job: Job) -> str | tuple[str, int]:
    """A handed-back unit's key: beside its map's keys, never one of the run's graph."""
    key = job.dask_key
    return (f"{key[0]}-back", key[1]) if isinstance(key, tuple) else f"{key}-back"
