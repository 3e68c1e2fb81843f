"""The inline executor: every task in the calling thread, one after another.

Meant for debugging: ``breakpoint()`` inside a task stops in your terminal, tracebacks
are plain, and captured output is also printed as it is written.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..job import Emit, Job, NodeValue, RunJob
from .base import Execution, ignore_resources, run_queue


def _run_now(fn: Callable[..., NodeValue], *args: Any) -> cf.Future[NodeValue]:
    future: cf.Future[NodeValue] = cf.Future()
    try:
        future.set_result(fn(*args))
    except BaseException as exc:  # noqa: BLE001 - stored in the future like a pool would
        if isinstance(exc, KeyboardInterrupt):
            raise
        future.set_exception(exc)
    return future


def spawn_serial(
    emit: Emit, run_job: RunJob
) -> Callable[[list[Job], Mapping[str, NodeValue]], list[Any]]:
    def spawn(children: list[Job], deps: Mapping[str, NodeValue]) -> list[Any]:
        results: list[Any] = []
        for child in children:
            try:
                results.append(run_job(child, deps, emit, spawn))
            except Exception as exc:  # noqa: BLE001 - one result per child
                results.append(exc)
        return results

    return spawn


class InlineExecutor:
    """Runs jobs in the calling thread, in topological order."""

    name = "inline"

    def prepare(self, jobs: Sequence[Job]) -> None:
        ignore_resources(self.name, jobs)

    def execute(
        self,
        jobs: Sequence[Job],
        emit: Emit,
        want: set[str],
        cancel: threading.Event,
        run_job: RunJob,
    ) -> Execution:
        for job in jobs:
            job.tee = True
        spawn = spawn_serial(emit, run_job)
        return run_queue(jobs, emit, want, cancel, _run_now, spawn, run_job)

    def close(self) -> None:
        pass
