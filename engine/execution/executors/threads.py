"""The threads executor: tasks on a pool of threads in the driver process.

No start-up cost and no serialization between tasks, so it is the fastest choice for
pipelines whose tasks release the GIL (NumPy, pandas, scikit-learn) or wait on I/O.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ..job import Emit, Job, NodeValue
from ..worker import execute_job
from .base import Execution, run_queue


class ThreadsExecutor:
    """Runs jobs on a thread pool of ``max_workers`` threads."""

    name = "threads"

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or min(32, (os.cpu_count() or 1) + 4)

    def execute(
        self, jobs: Sequence[Job], emit: Emit, want: set[str], cancel: threading.Event
    ) -> Execution:
        pool = cf.ThreadPoolExecutor(self.max_workers, thread_name_prefix="glasspane-task")

        def spawn(children: list[Job], deps: Mapping[str, NodeValue]) -> list[Any]:
            # children get their own pool: waiting on the run's pool from inside it deadlocks
            with cf.ThreadPoolExecutor(
                self.max_workers, thread_name_prefix="glasspane-map"
            ) as child_pool:
                futures = [child_pool.submit(execute_job, c, deps, emit, spawn) for c in children]
                out: list[Any] = []
                for future in futures:
                    try:
                        out.append(future.result())
                    except Exception as exc:  # noqa: BLE001 - one result per child
                        out.append(exc)
                return out

        try:
            return run_queue(jobs, emit, want, cancel, pool.submit, spawn)
        finally:
            # abandoned (timed-out or cancelled) threads must not hold the process open
            pool.shutdown(wait=not cancel.is_set(), cancel_futures=True)

    def close(self) -> None:
        pass
