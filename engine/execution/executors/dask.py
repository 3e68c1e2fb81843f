"""The dask executor: the whole run submitted to a Dask cluster at once.

Every job that is not already resolved on the driver becomes one Dask future keyed
``<node>-<run id>`` (Dask silently returns an earlier value for a reused key, so keys
are unique per run), with its dependency futures as arguments: values move worker to
worker and the driver gathers only the pipeline's outputs. Outcome events travel
separately, through ``Worker.log_event`` on a per-run topic that the driver subscribes to.

Without an address an embedded ``LocalCluster`` bound to 127.0.0.1 (no dashboard) is
started once per process and reused across runs.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import ConfigError, ExecutorError
from ...types import CRASHED
from ..job import Emit, Job, NodeValue, TaskFailed
from ..worker import execute_job
from .base import Execution, results_or_errors

_ADDRESS = re.compile(r"^tcp://(?P<host>[A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})$")
_EVENT_GRACE = 15.0

# Run in each embedded worker process. Ctrl-C reaches the whole process group: the driver
# cancels the run and closes the cluster, so a worker must not die of it (nor print a
# KeyboardInterrupt traceback). A worker whose driver was killed exits by death_timeout.
_IGNORE_SIGINT = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"

_embedded_lock = threading.Lock()
_embedded: dict[int, Any] = {}


def check_address(address: str) -> str:
    """Validate a ``tcp://host:port`` scheduler address (no I/O)."""
    match = _ADDRESS.match(address.strip())
    if not match or not 0 < int(match["port"]) < 65536:
        raise ConfigError(
            f"malformed Dask scheduler address `{address}`; expected tcp://HOST:PORT, "
            "for example tcp://127.0.0.1:8786"
        )
    return address.strip()


def embedded_cluster(n_workers: int) -> Any:
    """The process's embedded LocalCluster, started on first use and reused."""
    with _embedded_lock:
        cluster = _embedded.get(n_workers)
        if cluster is None or cluster.status.name in ("closed", "closing", "failed"):
            from distributed import LocalCluster

            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",  # loopback, a free port: never 0.0.0.0
                silence_logs=50,
                death_timeout=10,
                preload=[_IGNORE_SIGINT],
            )
            _embedded[n_workers] = cluster
            atexit.register(_close_embedded)
        return cluster


def _close_embedded() -> None:
    with _embedded_lock:
        for cluster in list(_embedded.values()):
            try:
                cluster.close(timeout=10)
            except Exception:  # noqa: BLE001 - best effort at interpreter exit
                pass
        _embedded.clear()


class DaskExecutor:
    """Runs jobs as Dask futures on an embedded LocalCluster or an existing scheduler."""

    name = "dask"

    def __init__(
        self, address: str | None = None, n_workers: int = 2, connect_timeout: float = 5.0
    ) -> None:
        self.address = check_address(address) if address else None
        self.n_workers = n_workers
        self.connect_timeout = connect_timeout
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from distributed import Client

            if self.address:
                try:
                    self._client = Client(
                        self.address, timeout=self.connect_timeout, set_as_default=False
                    )
                except (OSError, TimeoutError) as exc:
                    raise ExecutorError(
                        f"cannot reach the Dask scheduler at {self.address} within "
                        f"{self.connect_timeout:g}s ({type(exc).__name__}); start it with "
                        "`dask scheduler`, check the address, or run with --executor threads"
                    ) from None
            else:
                self._client = Client(embedded_cluster(self.n_workers), set_as_default=False)
        return self._client

    def execute(
        self, jobs: Sequence[Job], emit: Emit, want: set[str], cancel: threading.Event
    ) -> Execution:
        result = Execution()
        if not jobs:
            return result
        client = self.client
        run_id = jobs[0].run_id
        topic = f"glasspane-{run_id}"
        finished: set[str] = set()
        lock = threading.Lock()

        ledger = AttemptLedger()

        def handler(event: Any) -> None:
            msg = event[1] if isinstance(event, tuple) else event
            if msg.get("kind") == "task_finished" and msg.get("parent") is None:
                with lock:
                    finished.add(msg["node"])
            for out in ledger.renumber(msg):
                emit(out)

        ship_user_code(jobs)
        client.subscribe_topic(topic, handler)
        futures: dict[str, Any] = {}
        all_done = threading.Event()
        remaining = [len(jobs)]

        def done(_future: Any) -> None:
            with lock:
                remaining[0] -= 1
                if remaining[0] == 0:
                    all_done.set()

        try:
            for job in jobs:
                resources = dict(job.task.options.resources) or None
                future = client.submit(
                    _dask_entry,
                    job,
                    topic,
                    *[futures[d] for d in job.deps],
                    key=job.dask_key,
                    pure=False,
                    resources=resources,
                )
                futures[job.node_id] = future
                future.add_done_callback(done)
            # one callback per future instead of polling every pending future
            while not all_done.wait(0.25):
                if cancel.is_set():
                    client.cancel(list(futures.values()), force=True)
                    result.cancelled = True
                    return result
            self._collect(client, futures, want, result)
            expect = {n for n, f in futures.items() if _reports(n, f)}
            # events travel beside the results: wait until each finished task has reported
            deadline = time.monotonic() + _EVENT_GRACE
            while time.monotonic() < deadline:
                with lock:
                    if expect <= finished:
                        break
                time.sleep(0.01)
            return result
        except BaseException:  # Ctrl-C, SIGTERM, a lost scheduler: leave nothing running
            if futures:
                with contextlib.suppress(Exception):
                    client.cancel(list(futures.values()), force=True)
            raise
        finally:
            with contextlib.suppress(Exception):
                client.unsubscribe_topic(topic)

    @staticmethod
    def _collect(
        client: Any, futures: Mapping[str, Any], want: set[str], result: Execution
    ) -> None:
        """Gather the wanted values; keep errors that no task event will explain."""
        wanted = {n: f for n, f in futures.items() if n in want and f.status == "finished"}
        if wanted:
            for node_id, value in zip(wanted, client.gather(list(wanted.values()))):
                result.values[node_id] = value
        for node_id, future in futures.items():
            if future.status == "error":
                exc = future.exception()
                if not isinstance(exc, TaskFailed):  # e.g. KilledWorker: no event was sent
                    result.errors[node_id] = exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class AttemptLedger:
    """Numbers attempts across executions of one task on different Dask workers.

    When a worker dies mid-task, Dask runs the task again elsewhere, and the wrapper there
    starts counting attempts from 1. The driver sees a second ``task_started`` for attempt
    1 of a node: it closes the lost attempt as ``crashed`` and shifts the new execution's
    attempt numbers past it, so the record shows every attempt. Pure: events in, events out.
    (If the dead worker's ``task_started`` never reached the driver, its attempt is unseen.)
    """

    def __init__(self) -> None:
        self._base: dict[str, int] = {}  # node -> attempts used by earlier executions
        self._last: dict[str, int] = {}  # node -> last attempt number emitted
        self._open: set[str] = set()  # nodes with a started attempt not yet finished

    def renumber(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind, node = event.get("kind"), event.get("node")
        if not isinstance(node, str):
            return [event]
        out: list[dict[str, Any]] = []
        if kind == "task_started":
            attempt = int(event.get("attempt") or 1)
            if attempt == 1 and node in self._last:  # Dask runs it again: a worker was lost
                if node in self._open:
                    out.append(
                        {
                            "kind": "attempt_finished",
                            "node": node,
                            "attempt": self._last[node],
                            "state": CRASHED,
                            "ts": event.get("ts") or time.time(),
                            "error": "the Dask worker running this attempt died; Dask ran the "
                            "task again on another worker",
                        }
                    )
                self._base[node] = self._last[node]
            event = {**event, "attempt": self._base.get(node, 0) + attempt}
            self._last[node] = event["attempt"]
            self._open.add(node)
        elif kind == "attempt_finished":
            event = {**event, "attempt": self._base.get(node, 0) + int(event["attempt"])}
            self._open.discard(node)
        elif kind == "task_finished":
            if self._base.get(node) and event.get("attempts"):
                event = {**event, "attempts": self._base[node] + int(event["attempts"])}
            self._open.discard(node)
        out.append(event)
        return out


def _reports(node_id: str, future: Any) -> bool:
    """Whether the wrapper ran for this node and so sent a task_finished event."""
    if future.status == "finished":
        return True
    if future.status == "error":
        exc = future.exception()
        return isinstance(exc, TaskFailed) and exc.node_id == node_id
    return False


def ship_user_code(jobs: Sequence[Job]) -> None:
    """Pickle the user's own modules by value, so workers need not be able to import them.

    Installed packages (under ``sys.prefix``) and glasspane itself are pickled by reference.
    """
    import cloudpickle

    prefixes = tuple({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})
    for name in {job.task.fn.__module__ for job in jobs}:
        if name in _shipped or name == "__main__" or name.split(".")[0] == "glasspane":
            continue
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if module is None or path is None:
            continue
        if os.path.realpath(path).startswith(prefixes):
            continue
        cloudpickle.register_pickle_by_value(module)
        _shipped.add(name)


_shipped: set[str] = set()


def _dask_entry(job: Job, topic: str, *dep_values: NodeValue) -> NodeValue:
    """Runs on a Dask worker: the shared wrapper, reporting through the worker's events."""
    from distributed import get_worker

    worker = get_worker()

    def emit(event: dict[str, Any]) -> None:
        worker.log_event(topic, event)

    def spawn(children: list[Job], deps: Mapping[str, NodeValue]) -> list[Any]:
        from distributed import worker_client

        with worker_client() as client:
            futures = [
                client.submit(_dask_child, child, topic, dict(deps), key=child.dask_key, pure=False)
                for child in children
            ]
            return results_or_errors(futures)

    return execute_job(job, dict(zip(job.deps, dep_values)), emit, spawn)


def _dask_child(job: Job, topic: str, deps: dict[str, NodeValue]) -> NodeValue:
    from distributed import get_worker

    worker = get_worker()
    return execute_job(job, deps, lambda event: worker.log_event(topic, event))
