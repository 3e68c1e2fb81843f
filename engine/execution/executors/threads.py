"""The threads executor: tasks on a pool of threads in the driver process.

No start-up cost and no serialization between tasks, so it is the fastest choice for
pipelines whose tasks release the GIL (NumPy, pandas, scikit-learn) or wait on I/O.
Its threads are daemons: a cancelled or timed-out task cannot be killed, but it never
keeps the process from exiting (``concurrent.futures`` pools are joined at exit).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..job import Emit, Job, NodeValue, RunJob
from .base import Execution, ignore_resources, results_or_errors, run_queue


class DaemonPool:
    """A minimal thread pool whose workers are daemon threads, started on demand."""

    def __init__(self, max_workers: int, name: str) -> None:
        self.max_workers = max_workers
        self.name = name
        self._work: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        future: cf.Future[Any] = cf.Future()
        self._work.put((future, fn, args))
        with self._lock:
            if self._idle == 0 and len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._loop, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1
        return future

    def _loop(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            future, fn, args = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # noqa: BLE001 - handed to the waiter
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1

    def shutdown(self) -> None:
        """Stop idle workers; busy ones finish their task (or are abandoned) and exit."""
        for _ in self._threads:
            self._work.put(None)


class ThreadsExecutor:
    """Runs jobs on up to ``max_workers`` daemon threads."""

    name = "threads"

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or min(32, (os.cpu_count() or 1) + 4)

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
        pool = DaemonPool(self.max_workers, "glasspane-task")

        def spawn(children: list[Job], deps: Mapping[str, NodeValue]) -> list[Any]:
            # children get their own pool: waiting on the run's pool from inside it deadlocks
            child_pool = DaemonPool(self.max_workers, "glasspane-map")
            futures = [child_pool.submit(run_job, c, deps, emit, spawn) for c in children]
            try:
                return results_or_errors(futures)
            finally:
                child_pool.shutdown()

        try:
            return run_queue(jobs, emit, want, cancel, pool.submit, spawn, run_job)
        finally:
            pool.shutdown()

    def close(self) -> None:
        pass
