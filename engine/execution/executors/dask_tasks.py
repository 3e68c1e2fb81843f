"""The Dask graph of a run, and the functions its tasks run on the workers.

Each Dask task runs one unit (a fused chain, see :mod:`..fusion`) or a batch of sibling
units; wide fan-ins read their inputs through a tree of small gather tasks. Keys are unique
per run: a unit's key is its last job's :attr:`~..job.Job.dask_key`, a batch's that of its
first unit. Workers report events through a per-process :class:`Outbox`, on one topic for
every run (:data:`TOPIC`; each message names its run), so a run leaves no topic behind on
the scheduler.

What the scheduler keeps stays small, since with the embedded cluster it lives in the
driver: each task's jobs travel as one :class:`PackedUnits` (bytes, unpickled only by the
worker that runs them), and each message of events as compressed bytes (the scheduler keeps
its last messages per topic, and its comms their last batches, as they are).
"""

from __future__ import annotations

import io
import pickle
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from ..fusion import Unit, gather_tree
from ..job import Job, NodeValue, RunJob, TaskFailed, task_blob
from .base import results_or_errors
from .dask_batch import run_siblings

#: the event topic every run's workers publish on
TOPIC = "glasspane-events"
#: most events in one message (the scheduler keeps its last messages per topic)
EVENTS_PER_MESSAGE = 200

#: (position among the task's distinct inputs, index inside a batch's result or None)
Pick = tuple[int, "int | None"]


def task_graph(
    batches: Sequence[list[Unit]],
    run_id: str,
    run_job: RunJob,
    external: Mapping[str, NodeValue] | None = None,
    name: str = "",
) -> tuple[dict[Any, Any], list[Any], Any]:
    """The run (or an expander's children) as one Dask graph, each job run by ``run_job``
    (the worker wrapper, pickled by reference).

    ``external`` are values of nodes outside the graph that its jobs depend on (an expander's
    dependencies, for its children): each goes into the graph once, as data. ``name``
    makes the keys of gathers and inputs unique when one run submits several graphs.

    Returns the graph, the key of each batch (in order) and per-key resources for
    ``Client.get`` (a function of the key, or ``None`` when no task asks for any).
    """
    from dask._task_spec import DataNode, Task, TaskRef

    dsk: dict[Any, Any] = {}
    keys: list[Any] = []
    where: dict[str, tuple[Any, int | None]] = {}  # node -> (key, index inside a batch)
    for node_id, value in (external or {}).items():
        data_key = f"glasspane-input{name}-{node_id}-{run_id}"
        dsk[data_key] = DataNode(data_key, value)
        where[node_id] = (data_key, None)
    resources: dict[Any, dict[str, float]] = {}
    gather_name = f"glasspane-gather{name}-{run_id}"
    n_gathers = 0
    for batch in batches:
        inputs: dict[Any, int] = {}  # distinct input keys, in first-use order
        picks: list[tuple[Pick, ...]] = []  # per unit: where each of its inputs is
        for unit in batch:
            unit_picks = []
            for dep in unit.head.deps:
                key, index = where[dep]
                unit_picks.append((inputs.setdefault(key, len(inputs)), index))
            picks.append(tuple(unit_picks))
        parts: list[Any] = [TaskRef(key) for key in inputs]
        for level in gather_tree(len(parts)):
            gathered = []
            for start, stop in level:
                gkey = (gather_name, n_gathers)
                n_gathers += 1
                dsk[gkey] = Task(gkey, gather, *parts[start:stop])
                gathered.append(TaskRef(gkey))
            parts = gathered
        key = batch[0].tail.dask_key
        for index, unit in enumerate(batch):
            for job in unit.jobs:  # a unit on its own returns its value, a batch a tuple
                where[job.node_id] = (key, index if len(batch) > 1 else None)
        jobs = PackedUnits([unit.jobs for unit in batch])
        dsk[key] = Task(key, run_batch, run_job, jobs, run_id, tuple(picks), *parts)
        keys.append(key)
        if batch[0].head.task.options.resources:
            resources[key] = dict(batch[0].head.task.options.resources)
    # annotations are evaluated per key on the scheduler: no glasspane import needed there
    by_key = (lambda key, _r=resources: _r.get(key, {})) if resources else None
    return dsk, keys, by_key


def expression(dsk: dict[Any, Any], run_id: str) -> Any:
    """The graph as Dask's expression with a token of its own: keys are unique per run, and
    without one Dask tokenizes (pickles) every job to name the graph."""
    import uuid

    try:
        from dask._expr import LLGExpr

        return LLGExpr(dsk, _determ_token=f"glasspane-{run_id}-{uuid.uuid4().hex}")
    except (ImportError, TypeError):  # a Dask without expressions takes the plain dict
        return dsk


def gather(*parts: Any) -> list[Any]:
    """Runs on a Dask worker: one node of a gather tree."""
    return list(parts)


def _flatten(parts: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for part in parts:
        if isinstance(part, list):  # a gather's output; a batch's result is a tuple
            out.extend(_flatten(part))
        else:
            out.append(part)
    return out


class PackedUnits:
    """One Dask task's units of jobs, pickled and compressed in one piece that only the
    worker running them unpickles: the scheduler holds (and forwards) bytes, not a copy of
    every job.

    The task definitions' blobs (:func:`~..job.task_blob`) stay outside the piece, so a
    graph pickled in one go holds each once, however many tasks use it.
    """

    __slots__ = ("_units", "_blobs", "_data")

    def __init__(self, units: list[list[Job]]) -> None:
        self._units: list[list[Job]] | None = units
        self._blobs: tuple[bytes, ...] = ()
        self._data = b""

    def __reduce__(self) -> Any:
        if self._units is None:  # not loaded here (the scheduler): passed on as it came
            return (_packed_units, (self._blobs, self._data))
        blobs: dict[int, int] = {}  # id of a task blob -> its position
        table: list[bytes] = []
        for unit in self._units:
            for job in unit:
                raw = job.__dict__.get("_raw")  # a job not loadable here keeps its bytes
                blob = task_blob(job.task) if raw is None else raw[0]
                if id(blob) not in blobs:
                    blobs[id(blob)] = len(table)
                    table.append(blob)

        def blob_id(obj: Any) -> int | None:
            return blobs.get(id(obj)) if type(obj) is bytes else None

        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=5)
        pickler.persistent_id = blob_id  # type: ignore[method-assign]
        pickler.dump(self._units)
        # compressed: sibling jobs repeat their run, store, code version and metadata URL
        return (_packed_units, (tuple(table), zlib.compress(buffer.getvalue(), 1)))

    def load(self) -> list[list[Job]]:
        """The units, unpickled on first use."""
        if self._units is None:
            unpickler = pickle.Unpickler(io.BytesIO(zlib.decompress(self._data)))
            unpickler.persistent_load = self._blobs.__getitem__  # type: ignore[method-assign]
            self._units = unpickler.load()
            self._blobs, self._data = (), b""
        return self._units


def _packed_units(blobs: tuple[bytes, ...], data: bytes) -> PackedUnits:
    packed = PackedUnits.__new__(PackedUnits)
    packed._units, packed._blobs, packed._data = None, blobs, data
    return packed


def run_batch(
    run_job: RunJob,
    units: PackedUnits | list[list[Job]],
    run_id: str,
    picks: tuple[tuple[Pick, ...], ...],
    *parts: Any,
) -> NodeValue | tuple[NodeValue | TaskFailed, ...]:
    """Runs on a Dask worker: each unit's jobs in order, through the shared wrapper.

    A unit on its own returns its last value, or raises :class:`TaskFailed` (after the job
    reported), which Dask hands to its dependents. A batch returns one entry per unit, a
    value or the :class:`TaskFailed` that ended it, so one failed unit does not fail its
    siblings. A unit that picks a failed input does not run: on its own it raises that
    failure; in a batch it gets it as its entry and the driver is told (``unit_skipped``).
    """
    from distributed import get_worker

    worker = get_worker()
    outbox = _outbox(worker)
    if isinstance(units, PackedUnits):
        units = units.load()

    def emit(event: dict[str, Any]) -> None:
        outbox.put(run_id, event)

    flat = _flatten(parts)

    def inputs_of(jobs: list[Job], unit_picks: tuple[Pick, ...]) -> dict[str, NodeValue]:
        values = []
        for position, index in unit_picks:
            value = flat[position] if index is None else flat[position][index]
            if isinstance(value, TaskFailed):  # an upstream unit of a batch failed
                raise value
            values.append(value)
        return dict(zip(jobs[0].deps, values))

    def run_unit(jobs: list[Job], deps: dict[str, NodeValue]) -> NodeValue:
        value: NodeValue | None = None
        for job in jobs:
            spawn = None
            if job.expand_arg is not None:  # its children get the estimates it carries
                spawn = partial(
                    spawn_children, run_id=run_id, run_job=run_job, estimates=job.child_estimates
                )
            value = run_job(job, deps, emit, spawn)
            deps = {job.node_id: value}
        assert value is not None
        return value

    if len(units) == 1:
        return run_unit(units[0], inputs_of(units[0], picks[0]))
    # a batch that outlasts its budget hands the units it has not started back to the cluster
    return run_siblings(units, picks, inputs_of, run_unit, emit, run_id, run_job)


def spawn_children(
    children: list[Job],
    deps: Mapping[str, NodeValue],
    run_id: str,
    run_job: RunJob,
    estimates: Mapping[str, float] | None = None,
) -> list[NodeValue | BaseException]:
    """Runs on a Dask worker, inside an expander: its children as one graph, batched as the
    elements of a static map are, submitted in one message; one result per child.

    ``estimates`` are the children's upper duration estimates that the driver read from the
    store (the expander's :attr:`~..job.Job.child_estimates`), so they are batched as the
    driver would batch them. The expander's task leaves the worker's thread pool while it
    waits (``worker_client``), so its own thread runs children too.
    """
    import uuid

    from distributed import worker_client

    from ..fusion import batch_siblings, child_estimate, fuse_chains

    for child in children:
        child.estimate = child_estimate(child, estimates)
    with worker_client() as client:
        slots = max(1, sum(client.nthreads().values()))
        batches = batch_siblings(fuse_chains(children, set()), set(), slots)
        name = f"-{children[0].parent}-{uuid.uuid4().hex[:8]}"
        dsk, keys, resources = task_graph(batches, run_id, run_job, deps, name)
        futures = client.get(expression(dsk, run_id), keys, sync=False, resources=resources)
        found: dict[str, NodeValue | BaseException] = {}
        for batch, outcome in zip(batches, results_or_errors(futures)):
            if len(batch) == 1:
                found[batch[0].tail.node_id] = outcome
            elif isinstance(outcome, BaseException):
                for unit in batch:
                    found[unit.tail.node_id] = outcome
            else:
                for unit, one in zip(batch, outcome):
                    found[unit.tail.node_id] = one
        return [found[child.node_id] for child in children]


#: seconds a worker lets events accumulate after sending a batch
EVENT_BATCH = 0.005


class Outbox:
    """A worker's events, sent to the scheduler in batches by one thread.

    An event that finds the sender idle goes at once (a task's start is seen as it
    happens); events arriving while a batch is in flight wait at most ``EVENT_BATCH``
    and travel together, one message for many tasks.
    """

    def __init__(self, worker: Any) -> None:
        self._worker = worker
        self._cond = threading.Condition()
        self._pending: dict[str, list[dict[str, Any]]] = {}
        threading.Thread(target=self._loop, name="glasspane-events", daemon=True).start()

    def put(self, run_id: str, event: dict[str, Any]) -> None:
        with self._cond:
            self._pending.setdefault(run_id, []).append(event)
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                pending, self._pending = self._pending, {}
            for run_id, events in pending.items():
                for start in range(0, len(events), EVENTS_PER_MESSAGE):
                    message = pack_events(run_id, events[start : start + EVENTS_PER_MESSAGE])
                    try:
                        self._worker.log_event(TOPIC, message)
                    except Exception:  # noqa: BLE001 - a closing worker; the driver times out
                        pass
            time.sleep(EVENT_BATCH)


def pack_events(run_id: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """One message of a run's events: compressed bytes, which the scheduler (and its comms'
    logs of recent messages) keep as one small object instead of a tree of dicts."""
    data = zlib.compress(pickle.dumps(events, protocol=5), 1)
    return {"kind": "batch", "run": run_id, "packed": data}


def unpack_events(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The events of a message of :func:`pack_events` (or of a worker that sent them as they
    are)."""
    if "events" in message:
        return list(message["events"])
    return pickle.loads(zlib.decompress(message["packed"]))  # type: ignore[no-any-return]


def share_artifacts(event: dict[str, Any], known: dict[str, dict[str, Any]]) -> None:
    """Point the input records of a ``task_finished`` event at the equal artifact dicts of
    outputs reported earlier in the run (``known``, by content hash, which this extends): a
    fan-in's inputs are its producers' outputs, so the driver holds one dict per artifact
    rather than one more per input while the event is recorded."""
    if event.get("kind") != "task_finished":
        return
    for item in event.get("inputs") or ():
        artifact = item.get("artifact")
        if isinstance(artifact, dict):
            same = known.get(artifact.get("content_hash"))  # type: ignore[arg-type]
            if same is not None and same == artifact:
                item["artifact"] = same
    for item in event.get("outputs") or ():
        artifact = item.get("artifact")
        if isinstance(artifact, dict) and isinstance(artifact.get("content_hash"), str):
            known.setdefault(artifact["content_hash"], artifact)


_outboxes: dict[str, Outbox] = {}
_outboxes_lock = threading.Lock()


def _outbox(worker: Any) -> Outbox:
    with _outboxes_lock:
        box = _outboxes.get(worker.address)
        if box is None:
            box = _outboxes[worker.address] = Outbox(worker)
        return box
