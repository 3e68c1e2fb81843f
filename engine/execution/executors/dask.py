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
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import ConfigError, ExecutorError
from ...types import CRASHED
from ..fusion import Unit, fuse_chains, gather_tree
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
            for one in msg["events"] if msg.get("kind") == "batch" else [msg]:
                if one.get("kind") == "task_finished" and one.get("parent") is None:
                    with lock:
                        finished.add(one["node"])
                for out in ledger.renumber(one):
                    emit(out)

        ship_user_code(jobs)
        units = fuse_chains(jobs, want)
        dsk, keys, resources = _task_graph(units, topic, run_id)
        client.subscribe_topic(topic, handler)
        futures: list[Any] = []
        all_done = threading.Event()
        remaining = [len(units)]

        def done(_future: Any) -> None:
            with lock:
                remaining[0] -= 1
                if remaining[0] == 0:
                    all_done.set()

        try:
            # the whole run is one graph: one message to the scheduler, not one per task
            from dask._expr import LLGExpr

            # keys are unique per run: a token spares Dask tokenizing (pickling) every job
            graph = LLGExpr(dsk, _determ_token=f"{topic}-{uuid.uuid4().hex}")
            futures = client.get(graph, keys, sync=False, resources=resources)
            for future in futures:
                future.add_done_callback(done)
            # one callback per future instead of polling every pending future
            while not all_done.wait(0.25):
                if cancel.is_set():
                    client.cancel(futures, force=True)
                    result.cancelled = True
                    return result
            expect = self._collect(client, units, futures, want, result)
            # events travel beside the results: wait until each finished task has reported
            deadline = time.monotonic() + _EVENT_GRACE
            while time.monotonic() < deadline:
                with lock:
                    if expect <= finished:
                        break
                time.sleep(0.005)
            return result
        except BaseException:  # Ctrl-C, SIGTERM, a lost scheduler: leave nothing running
            if futures:
                with contextlib.suppress(Exception):
                    client.cancel(futures, force=True)
            raise
        finally:
            with contextlib.suppress(Exception):
                client.unsubscribe_topic(topic)

    @staticmethod
    def _collect(
        client: Any,
        units: Sequence[Unit],
        futures: Sequence[Any],
        want: set[str],
        result: Execution,
    ) -> set[str]:
        """Gather the wanted values and keep errors that no task event will explain.

        Returns the nodes whose ``task_finished`` event must arrive.
        """
        wanted = [
            (u.tail.node_id, f)
            for u, f in zip(units, futures)
            if u.tail.node_id in want and f.status == "finished"
        ]
        if wanted:
            values = client.gather([f for _, f in wanted])
            for (node_id, _), value in zip(wanted, values):
                result.values[node_id] = value
        expect: set[str] = set()
        for unit, future in zip(units, futures):
            nodes = unit.node_ids
            if future.status == "finished":
                expect.update(nodes)
            elif future.status == "error":
                exc = future.exception()
                if isinstance(exc, TaskFailed) and exc.node_id in nodes:
                    # the jobs before the failed one, and the failed one, have reported
                    expect.update(nodes[: nodes.index(exc.node_id) + 1])
                elif not isinstance(exc, TaskFailed):  # e.g. KilledWorker: no event was sent
                    for node_id in nodes:
                        result.errors[node_id] = exc
        return expect

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


def _task_graph(
    units: Sequence[Unit], topic: str, run_id: str
) -> tuple[dict[Any, Any], list[Any], Any]:
    """The run as one Dask graph: a task per unit (keyed by its last job), gather trees in
    front of wide fan-ins; the keys of the units, in order; per-key resources or ``None``."""
    from dask._task_spec import Task, TaskRef

    dsk: dict[Any, Any] = {}
    keys: list[Any] = []
    key_of: dict[str, Any] = {}
    resources: dict[Any, dict[str, float]] = {}
    gather_name = f"glasspane-gather-{run_id}"
    n_gathers = 0
    for unit in units:
        parts: list[Any] = [TaskRef(key_of[dep]) for dep in unit.head.deps]
        for level in gather_tree(len(parts)):
            gathered = []
            for start, stop in level:
                gkey = (gather_name, n_gathers)
                n_gathers += 1
                dsk[gkey] = Task(gkey, _gather, *parts[start:stop])
                gathered.append(TaskRef(gkey))
            parts = gathered
        key = unit.tail.dask_key
        dsk[key] = Task(key, _run_unit, unit.jobs, topic, *parts)
        keys.append(key)
        for job in unit.jobs:
            key_of[job.node_id] = key
        if unit.head.task.options.resources:
            resources[key] = dict(unit.head.task.options.resources)
    # annotations are evaluated per key on the scheduler: no glasspane import needed there
    by_key = (lambda key, _r=resources: _r.get(key, {})) if resources else None
    return dsk, keys, by_key


def _gather(*parts: Any) -> list[Any]:
    """Runs on a Dask worker: one node of a gather tree."""
    return list(parts)


def _flatten(parts: Sequence[Any]) -> list[NodeValue]:
    out: list[NodeValue] = []
    for part in parts:
        if isinstance(part, list):
            out.extend(_flatten(part))
        else:
            out.append(part)
    return out


def _run_unit(jobs: list[Job], topic: str, *parts: Any) -> NodeValue:
    """Runs on a Dask worker: the jobs of one unit in order, each through the shared wrapper.

    A failed job raises :class:`TaskFailed` (after reporting), which ends the unit; the
    jobs after it never start, and the driver records them as upstream failed.
    """
    from distributed import get_worker

    worker = get_worker()
    outbox = _outbox(worker)

    def emit(event: dict[str, Any]) -> None:
        outbox.put(topic, event)

    def spawn(children: list[Job], deps: Mapping[str, NodeValue]) -> list[Any]:
        from distributed import worker_client

        with worker_client() as client:
            futures = [
                client.submit(_dask_child, child, topic, dict(deps), key=child.dask_key, pure=False)
                for child in children
            ]
            return results_or_errors(futures)

    deps = dict(zip(jobs[0].deps, _flatten(parts)))
    value: NodeValue | None = None
    for job in jobs:
        value = execute_job(job, deps, emit, spawn if job.expand_arg is not None else None)
        deps = {job.node_id: value}
    assert value is not None
    return value


def _dask_child(job: Job, topic: str, deps: dict[str, NodeValue]) -> NodeValue:
    from distributed import get_worker

    outbox = _outbox(get_worker())
    return execute_job(job, deps, lambda event: outbox.put(topic, event))


#: seconds a worker lets events accumulate after sending a batch
_EVENT_BATCH = 0.005


class _Outbox:
    """A worker's events, sent to the scheduler in batches by one thread.

    An event that finds the sender idle goes at once (a task's start is seen as it
    happens); events arriving while a batch is in flight wait at most ``_EVENT_BATCH``
    and travel together, one message for many tasks.
    """

    def __init__(self, worker: Any) -> None:
        self._worker = worker
        self._cond = threading.Condition()
        self._pending: dict[str, list[dict[str, Any]]] = {}
        threading.Thread(target=self._loop, name="glasspane-events", daemon=True).start()

    def put(self, topic: str, event: dict[str, Any]) -> None:
        with self._cond:
            self._pending.setdefault(topic, []).append(event)
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                pending, self._pending = self._pending, {}
            for topic, events in pending.items():
                try:
                    self._worker.log_event(topic, {"kind": "batch", "events": events})
                except Exception:  # noqa: BLE001 - a closing worker; the driver times out
                    pass
            time.sleep(_EVENT_BATCH)


_outboxes: dict[str, _Outbox] = {}
_outboxes_lock = threading.Lock()


def _outbox(worker: Any) -> _Outbox:
    with _outboxes_lock:
        box = _outboxes.get(worker.address)
        if box is None:
            box = _outboxes[worker.address] = _Outbox(worker)
        return box
