"""The executor interface and the one scheduling loop the in-process executors share.

An executor receives the jobs of a run in topological order (each job's ``deps`` name
other jobs in the list) and the worker wrapper to run each with (``run_job``: the run loop
hands it over, so executors only decide where jobs run), runs every job whose dependencies
succeeded, reports events through ``emit`` and returns the values of the nodes the driver
asked for. A job whose
dependency failed is never started; the run loop records it as ``upstream_failed``.
"""

from __future__ import annotations

import concurrent.futures as cf
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..job import Emit, Job, NodeValue, RunJob, TaskFailed


@dataclass
class Execution:
    """What an executor hands back: wanted values, errors that produced no event, and the
    failures tasks reported (with the exception each raised, where it could travel back)."""

    values: dict[str, NodeValue] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    failures: dict[str, TaskFailed] = field(default_factory=dict)
    cancelled: bool = False


class Executor(Protocol):
    """Runs the jobs of one run. Implementations: inline, threads, dask."""

    name: str

    def prepare(self, jobs: Sequence[Job]) -> None:
        """Check, before the run is recorded, that this executor can run ``jobs``: reach its
        cluster, find workers for the resources tasks ask for. Raises
        :class:`~glasspane.errors.ExecutorError` (nothing has been written yet)."""
        ...

    def execute(
        self,
        jobs: Sequence[Job],
        emit: Emit,
        want: set[str],
        cancel: threading.Event,
        run_job: RunJob,
    ) -> Execution:
        """Run ``jobs``, each through ``run_job``; return the values of the node ids in
        ``want`` that succeeded."""
        ...

    def close(self) -> None:
        """Release what the executor started (pools; not shared clusters)."""
        ...


Submit = Callable[..., "cf.Future[NodeValue]"]


def ignore_resources(executor: str, jobs: Sequence[Job]) -> None:
    """Warn, once per task, that an executor without resources runs it all the same."""
    import warnings

    from ...errors import GlasspaneWarning
    from .dask_cluster import show_resources

    seen: set[str] = set()
    for job in jobs:
        resources = job.task.options.resources
        if resources and job.task.name not in seen:
            seen.add(job.task.name)
            warnings.warn(
                f"task `{job.task.name}` asks for resources {show_resources(resources)}, which the "
                f"{executor} executor ignores: it runs every task in this process; run on a "
                "Dask cluster whose workers offer them (--executor tcp://HOST:PORT) to honour "
                "them",
                GlasspaneWarning,
                stacklevel=2,
            )


def results_or_errors(futures: Sequence[Any]) -> list[Any]:
    """Each future's result, or the exception it raised: one entry per expander child."""
    out: list[Any] = []
    for future in futures:
        try:
            out.append(future.result())
        except Exception as exc:  # noqa: BLE001 - the expander reports failed children
            out.append(exc)
    return out


def drain(source: queue.SimpleQueue[Any]) -> list[Any]:
    """Everything ``source`` holds now, without waiting."""
    items = []
    while True:
        try:
            items.append(source.get_nowait())
        except queue.Empty:
            return items


def run_queue(
    jobs: Sequence[Job],
    emit: Emit,
    want: set[str],
    cancel: threading.Event,
    submit: Submit,
    spawn: Callable[[list[Job], Mapping[str, NodeValue]], Any],
    run_job: RunJob,
    poll: float = 0.2,
) -> Execution:
    """Dependency-driven loop: submit each job once all its dependencies have succeeded.

    ``submit(fn, *args)`` returns a ``concurrent.futures.Future``; inline execution
    returns one already done. Values are released as soon as no pending job needs them.
    """
    result = Execution()
    by_id = {job.node_id: job for job in jobs}
    waiting = {job.node_id: set(job.deps) for job in jobs}
    dependents: dict[str, list[str]] = {job.node_id: [] for job in jobs}
    for job in jobs:
        for dep in job.deps:
            dependents[dep].append(job.node_id)
    remaining_uses = {node: len(users) for node, users in dependents.items()}
    values: dict[str, NodeValue] = {}
    running: dict[cf.Future[NodeValue], str] = {}
    dead: set[str] = set()
    # each future reports its own completion: waiting on all running futures at once would
    # cost O(running) per completion, quadratic on a wide map
    completed: queue.SimpleQueue[cf.Future[NodeValue]] = queue.SimpleQueue()

    def launch(node_id: str) -> None:
        job = by_id[node_id]
        deps = {d: values[d] for d in job.deps}
        future = submit(run_job, job, deps, emit, spawn)
        running[future] = node_id
        future.add_done_callback(completed.put)

    def next_done() -> list[cf.Future[NodeValue]]:
        try:
            first = completed.get(timeout=poll)
        except queue.Empty:
            return []
        return [first, *drain(completed)]

    def skip_downstream(node_id: str) -> None:
        stack = list(dependents[node_id])
        while stack:
            child = stack.pop()
            if child not in dead:
                dead.add(child)
                waiting.pop(child, None)
                stack.extend(dependents[child])

    for node_id in [n for n, deps in waiting.items() if not deps]:
        if cancel.is_set():
            break
        waiting.pop(node_id)
        launch(node_id)
    while running:
        if cancel.is_set():
            for future in running:
                future.cancel()
            result.cancelled = True
            break
        for future in next_done():
            node_id = running.pop(future)
            job = by_id[node_id]
            try:
                value = future.result()
            except BaseException as exc:  # noqa: BLE001 - recorded as the node's failure
                if isinstance(exc, TaskFailed):
                    result.failures[node_id] = exc
                else:
                    result.errors[node_id] = exc
                skip_downstream(node_id)
                continue
            if node_id in want:
                result.values[node_id] = value
            if remaining_uses[node_id]:
                values[node_id] = value
            for dep in job.deps:
                remaining_uses[dep] -= 1
                if not remaining_uses[dep]:
                    values.pop(dep, None)
            for child in dependents[node_id]:
                pending = waiting.get(child)
                if pending is None:
                    continue
                pending.discard(node_id)
                if not pending and not cancel.is_set():
                    waiting.pop(child)
                    launch(child)
    if cancel.is_set():
        result.cancelled = True
    return result
