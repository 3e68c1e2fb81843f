"""The dask executor: the whole run submitted to a Dask cluster as one graph.

The jobs that are not already resolved on the driver are grouped (:mod:`..fusion`): a
linear chain runs as one Dask task, and short siblings (map elements whose tasks earlier
runs showed to be short) share tasks in batches; every job is still cached, retried and
recorded on its own. Keys are unique per run (Dask silently returns an earlier value for
a reused key). Values move worker to worker, through a tree of gathers for wide fan-ins,
and the driver gathers only the pipeline's outputs. Outcome events travel separately,
batched per worker through ``Worker.log_event`` on one topic the driver subscribes to once
per client, each message naming its run.

Without an address the embedded ``LocalCluster`` of :mod:`.dask_cluster` is used. Before a
run starts, :meth:`DaskExecutor.prepare` connects and checks that some worker offers each
task's resources; while it runs, a :class:`~.dask_cluster.ClusterWatch` ends it with an
error when the cluster can no longer finish it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...errors import ExecutorError
from ...types import CRASHED, SUCCEEDED
from ..fusion import Unit, batch_siblings, fuse_chains
from ..job import BY_VALUE, Emit, Job, RunJob, TaskFailed
from .base import Execution
from .dask_cluster import (
    ClusterWatch,
    check_address,
    close_embedded,
    embedded_cluster,
    lock,
    resources_advice,
    resources_needed,
    short_logs,
    unmet_resources,
)
from .dask_tasks import TOPIC, expression, share_artifacts, task_graph, unpack_events

_EVENT_GRACE = 15.0


class DaskExecutor:
    """Runs jobs as Dask futures on an embedded LocalCluster or an existing scheduler."""

    name = "dask"

    def __init__(
        self,
        address: str | None = None,
        n_workers: int = 2,
        connect_timeout: float = 5.0,
        lost_after: float = 60.0,
    ) -> None:
        self.address = check_address(address) if address else None
        self.n_workers = n_workers
        self.connect_timeout = connect_timeout
        self.lost_after = lost_after
        self._client: Any = None
        self._cluster: Any = None  # the embedded cluster this executor started, if any
        self._listening: Any = None  # the client whose event topic _dispatch receives
        self._routes: dict[str, Callable[[dict[str, Any]], None]] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            from distributed import Client

            if self.address:
                try:
                    with short_logs():
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
                if self._cluster is None or self._cluster.status.name in (
                    "closed", "closing", "failed",
                ):  # fmt: skip
                    self._cluster = embedded_cluster(self.n_workers)
                with short_logs():
                    self._client = Client(self._cluster, set_as_default=False)
        return self._client

    def prepare(self, jobs: Sequence[Job]) -> None:
        """Connect, and check that some worker offers each task's resources: a task no
        worker can take would wait forever. Raises :class:`ExecutorError` saying which
        task asks for what, and what each worker offers."""
        needed = resources_needed(jobs)
        client = self.client
        if not needed:
            return
        try:
            workers = client.scheduler_info(n_workers=-1).get("workers", {})
        except TypeError:  # an older distributed: no n_workers argument
            workers = client.scheduler_info().get("workers", {})
        unmet = unmet_resources(workers, needed)
        if unmet is not None:
            asked = next(iter(needed.values()))
            raise ExecutorError(f"{unmet}; {resources_advice(self.address, asked)}")

    def execute(
        self,
        jobs: Sequence[Job],
        emit: Emit,
        want: set[str],
        cancel: threading.Event,
        run_job: RunJob,
    ) -> Execution:
        result = Execution()
        if not jobs:
            return result
        client = self.client
        run_id = jobs[0].run_id
        finished: dict[str, str] = {}  # node -> state of its task_finished event
        unit_skipped: set[str] = set()  # first nodes of batched units whose input failed
        lock = threading.Lock()
        ledger = AttemptLedger()
        artifacts: dict[str, dict[str, Any]] = {}  # content hash -> an output's artifact dict

        def handler(msg: dict[str, Any]) -> None:
            for one in unpack_events(msg):
                if one.get("kind") == "unit_skipped":  # for this executor, not the record
                    with lock:
                        unit_skipped.add(one["node"])
                    continue
                share_artifacts(one, artifacts)
                if one.get("kind") == "task_finished" and one.get("parent") is None:
                    with lock:
                        finished[one["node"]] = one["state"]
                for out in ledger.renumber(one):
                    emit(out)

        ship_user_code(jobs)
        batches = batch_siblings(fuse_chains(jobs, want), want, self._slots(client))
        graph, keys, resources = task_graph(batches, run_id, run_job)
        self._subscribe(client)
        self._routes[run_id] = handler
        watch = ClusterWatch(client, self.address, resources_needed(jobs), self.lost_after)
        futures: list[Any] = []
        all_done = threading.Event()
        remaining = [len(batches)]

        def done(_future: Any) -> None:
            with lock:
                remaining[0] -= 1
                if remaining[0] == 0:
                    all_done.set()

        try:
            # the whole run is one graph: one message to the scheduler, not one per task
            futures = client.get(expression(graph, run_id), keys, sync=False, resources=resources)
            del graph  # serialized and sent: the driver keeps no copy of the Dask graph
            for future in futures:
                future.add_done_callback(done)
            # one callback per future instead of polling every pending future
            while not all_done.wait(0.25):
                if cancel.is_set():
                    client.cancel(futures, force=True)
                    result.cancelled = True
                    return result
                watch.check()  # raises when the cluster can no longer finish the run
            reports = self._collect(client, batches, futures, want, result)
            # events travel beside the results: wait until each finished task has reported
            deadline = time.monotonic() + _EVENT_GRACE
            while reports and time.monotonic() < deadline:
                with lock:
                    reports = [r for r in reports if not r.complete(finished, unit_skipped)]
                if reports:
                    time.sleep(0.005)
            return result
        except BaseException:  # Ctrl-C, SIGTERM, a lost scheduler: leave nothing running
            if futures:
                with contextlib.suppress(Exception):
                    client.cancel(futures, force=True)
            raise
        finally:
            self._routes.pop(run_id, None)

    def _subscribe(self, client: Any) -> None:
        """Listen to the workers' events once per client; each run takes its own."""
        with lock:
            if self._listening is not client:
                client.subscribe_topic(TOPIC, self._dispatch)
                self._listening = client

    def _dispatch(self, event: Any) -> None:
        msg = event[1] if isinstance(event, tuple) else event
        run_id = msg.get("run") if isinstance(msg, dict) else None
        route = self._routes.get(run_id) if isinstance(run_id, str) else None
        if route is not None:  # events of a run that already ended are dropped
            route(msg)

    def _slots(self, client: Any) -> int:
        """Worker threads in the cluster (batches are cut so that each has work)."""
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # noqa: BLE001 - a cluster that cannot say: assume a small one
            return self.n_workers

    def _collect(
        self,
        client: Any,
        batches: Sequence[list[Unit]],
        futures: Sequence[Any],
        want: set[str],
        result: Execution,
    ) -> list[_Reports]:
        """Gather the wanted values and keep errors that no task event will explain.

        Returns what must still be reported: per unit, the nodes whose ``task_finished``
        events must arrive before the run can be settled.
        """
        wanted = [
            (batch[0].tail.node_id, f)
            for batch, f in zip(batches, futures)
            if len(batch) == 1 and batch[0].tail.node_id in want and f.status == "finished"
        ]
        if wanted:
            values = client.gather([f for _, f in wanted])
            for (node_id, _), value in zip(wanted, values):
                result.values[node_id] = value
        reports: list[_Reports] = []
        for batch, future in zip(batches, futures):
            if future.status == "finished":
                # every unit ran; in a batch, each until its first failed job
                reports.extend(_Reports(unit.node_ids) for unit in batch)
            elif future.status == "error":
                exc = future.exception()
                nodes = batch[0].node_ids
                if isinstance(exc, TaskFailed):
                    result.failures[exc.node_id] = exc
                if isinstance(exc, TaskFailed) and len(batch) == 1 and exc.node_id in nodes:
                    # the jobs before the failed one, and the failed one, have reported
                    reports.append(_Reports(nodes[: nodes.index(exc.node_id) + 1]))
                elif not isinstance(exc, TaskFailed):  # e.g. KilledWorker: no event was sent
                    for unit in batch:
                        for node_id in unit.node_ids:
                            result.errors[node_id] = exc
            else:  # cancelled or lost: the scheduler went away under it
                lost = ExecutorError(
                    f"the Dask scheduler at {self.address or 'the embedded cluster'} lost "
                    f"this task ({future.status}; the client is {client.status}); check that "
                    "the scheduler runs, then resume the run with `glasspane retry`"
                )
                for unit in batch:
                    for node_id in unit.node_ids:
                        result.errors[node_id] = lost
        return reports

    def close(self) -> None:
        """Close the client, and the embedded cluster when this executor started one."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            close_embedded(self._cluster)
            self._cluster = None


class _Reports:
    """The nodes of one unit whose outcome events are due, in order: the wait ends at the
    last node or at the first that did not succeed (the unit stopped there)."""

    def __init__(self, nodes: list[str]) -> None:
        self.nodes = nodes
        self.next = 0

    def complete(self, finished: Mapping[str, str], skipped: set[str]) -> bool:
        if self.next == 0 and self.nodes[0] in skipped:  # its input failed: it never ran
            return True
        while self.next < len(self.nodes):
            state = finished.get(self.nodes[self.next])
            if state is None:
                return False
            self.next += 1
            if state != SUCCEEDED:
                return True
        return True


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

    That is every user module a task's code reaches (see :func:`~glasspane.fingerprint.
    user_modules`: the task's module, the helpers it imports from beside it, ...).
    Installed packages, the standard library and glasspane are pickled by reference: the
    workers must have them installed.
    """
    import cloudpickle

    from ...fingerprint import user_modules

    seen: set[int] = set()
    for job in jobs:
        if id(job.task) in seen:
            continue
        seen.add(id(job.task))
        for name in user_modules(job.task.fn):
            if name in BY_VALUE or name in ("__main__", "__mp_main__") or name not in sys.modules:
                continue
            cloudpickle.register_pickle_by_value(sys.modules[name])
            BY_VALUE.add(name)
