"""What the driver hands an executor: picklable jobs, and the values they return.

A :class:`Job` is everything a worker needs to run one node without the database: the
task, its argument template, where each upstream value comes from (a dependency passed
in by the executor, or an artifact already in the store) and where to store the result.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from ..types import ArtifactInfo
from .resume import Reusable

if TYPE_CHECKING:
    from ..dsl.task import TaskDef

#: key of one upstream output: (node id, output index or None)
OutputKey = tuple[str, Optional[int]]

Emit = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class NodeValue:
    """A node's outputs as they move between workers: values plus their content hashes."""

    values: tuple[Any, ...]
    hashes: tuple[str, ...]
    artifacts: tuple[ArtifactInfo, ...] = ()
    cache_key: str | None = None
    #: the models the task loaded (records of :func:`.model_reads.load_record`)
    models: tuple[dict[str, Any], ...] = ()

    def output(self, index: int | None) -> Any:
        return self.values[0] if index is None else self.values[index]

    def output_hash(self, index: int | None) -> str:
        return self.hashes[0] if index is None else self.hashes[index]

    def __sizeof__(self) -> int:
        """The size of the values too (Dask's ``sizeof`` reads it: it places tasks beside
        their largest inputs and counts what each worker holds by it)."""
        try:
            from dask.sizeof import sizeof
        except ImportError:  # no Dask here: only the values' own sizes
            return object.__sizeof__(self) + sum(sys.getsizeof(v) for v in self.values)
        return object.__sizeof__(self) + sum(sizeof(v) for v in self.values)


@dataclass
class Job:
    """One node to execute.

    Attributes:
        run_id: the run this job belongs to.
        node_id: node id, unique in the run.
        task: the task definition (function + options).
        args: argument template (constants and refs).
        deps: node ids whose :class:`NodeValue` the executor passes to the job, in order.
        stored: upstream outputs already in the artifact store, by (node, output).
        const_digests: cache-key digests of ref-free arguments, computed once.
        store_root: artifact store URL.
        cache_version: the task's code fingerprint or version when the graph was compiled
            (see :attr:`~glasspane.graph.Node.code`): the worker keys the cache with it, never
            with what it would compute from the code it unpickled.
        n_outputs: see :class:`~glasspane.graph.Node`.
        expand_arg: the argument expanded at run time, for an expander node.
        reuse: node id -> the resumed run's task run, for this node (and an expander's
            children): reused when its cache key is this job's (see :mod:`.resume`).
        parent / map_index: set on the children of an expander.
        tee: also print captured output (inline executor, for debugging).
        element: on an expander's child, the input record of its element of the list (the
            list's producer is its source), so lineage links the child to it.
        unloadable: set where the task definition or the arguments could not be unpickled
            (a Dask worker without the user's module): why, for the task's error.
        estimate: the upper estimate of how long this job runs, in seconds, from the
            metadata store when the run was planned (see :func:`~.fusion.assign_estimates`);
            ``None`` when its task was never seen. It decides batching on Dask.
        child_estimates: on an expander, the same for its children, by child node id.
        metadata_url: the run's metadata store, which ``glasspane.load_model`` in the task
            reads the registry from (see :mod:`.model_reads`); set by the run loop.
    """

    run_id: str
    node_id: str
    task: TaskDef[Any, Any]
    args: Mapping[str, Any]
    deps: tuple[str, ...]
    stored: dict[OutputKey, ArtifactInfo]
    const_digests: dict[str, Any]
    store_root: str
    cache_version: str = ""
    n_outputs: int | None = None
    expand_arg: str | None = None
    reuse: dict[str, Reusable] = field(default_factory=dict)
    parent: str | None = None
    map_index: int | None = None
    tee: bool = False
    element: dict[str, Any] | None = None
    unloadable: str | None = None
    estimate: float | None = None
    child_estimates: dict[str, float] | None = None
    metadata_url: str | None = None

    @property
    def dask_key(self) -> str | tuple[str, int]:
        """Unique per run. Map elements share a name (one Dask task group per map, not one
        per element: the scheduler walks its groups on every submit)."""
        if self.map_index is None:
            return f"{self.node_id}-{self.run_id}"
        base = self.node_id.rsplit("[", 1)[0]
        group = f"{base}-{self.run_id}" if self.parent is None else f"{base}.map-{self.run_id}"
        return (group, self.map_index)

    def __reduce__(self) -> Any:
        # The task (a function, often pickled by value, plus its options) is the bulk of a
        # job; it is serialized once per task definition, not once per job. Everything that
        # may hold the user's objects travels as bytes that the worker loads inside
        # ``_rebuild_job``: a worker that cannot load them gets a job that fails with the
        # reason, instead of a task Dask cannot deserialize (which leaves it waiting forever).
        # (arguments may be a read-only mapping view, which plain pickle cannot take)
        raw = self.__dict__.get("_raw")
        if raw is not None:  # not loadable here: passed on as it came, for another process
            return (_rebuild_job, raw)
        fields = tuple(
            dict(self.args) if name == "args" else getattr(self, name) for name in _JOB_FIELDS
        )
        return (_rebuild_job, (task_blob(self.task), self.task.name, _dumps(fields)))


_JOB_FIELDS = (
    "run_id",
    "node_id",
    "args",
    "deps",
    "stored",
    "const_digests",
    "store_root",
    "cache_version",
    "n_outputs",
    "expand_arg",
    "reuse",
    "parent",
    "map_index",
    "tee",
    "element",
    "estimate",
    "child_estimates",
    "metadata_url",
)
_blobs: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()
_loaded: dict[bytes, Any] = {}
_LOADED_MAX = 512


def task_blob(task: TaskDef[Any, Any]) -> bytes:
    """The task definition pickled once (cloudpickle) and reused for every job of that task."""
    blob = _blobs.get(task)
    if blob is None:
        import cloudpickle

        blob = _blobs[task] = cloudpickle.dumps(task)
    return blob


def _dumps(fields: tuple[Any, ...]) -> bytes:
    """Plain pickle where it is enough (fast), cloudpickle for what plain pickle would only
    name: objects of ``__main__`` and of modules shipped by value to the workers."""
    import pickle

    try:
        data = pickle.dumps(fields, protocol=5)
    except Exception:  # noqa: BLE001 - a lambda or a local class: cloudpickle takes it
        data = b"__main__"
    if b"__main__" in data or any(name.encode() in data for name in BY_VALUE):
        import cloudpickle

        data = cloudpickle.dumps(fields, protocol=5)
    return data


#: names of the user modules registered with cloudpickle to be pickled by value
BY_VALUE: set[str] = set()


def _rebuild_job(blob: bytes, name: str, data: bytes) -> Job:
    from ..artifacts import unpickle  # imports without lock cycles, on any worker thread

    values: dict[str, Any] = {}
    try:
        values = dict(zip(_JOB_FIELDS, unpickle(data)))
        task = _loaded.get(blob)
        if task is None:
            if len(_loaded) >= _LOADED_MAX:
                _loaded.clear()
            task = _loaded[blob] = unpickle(blob)
    except Exception as exc:  # noqa: BLE001 - reported as the task's failure by the worker
        job = _unloadable_job(name, values, exc)
        # the Dask scheduler may unpickle a graph where the user's packages are missing and
        # pickle it again for a worker that has them: it gets the original bytes
        job.__dict__["_raw"] = (blob, name, data)
        return job
    return Job(task=task, **values)


def _unloadable_job(name: str, values: dict[str, Any], exc: Exception) -> Job:
    from ..options import TaskOptions

    class Unloaded:  # stands in for the task: enough for the worker to report the failure
        options = TaskOptions()
        identity = name

    Unloaded.name = name  # type: ignore[attr-defined]
    module = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
    if module:
        advice = (
            f"the worker cannot import module `{module}`: install it where the Dask workers "
            "run (the same version as here), or keep your own modules beside the pipeline "
            "file or in a package of your project so glasspane can ship them to the workers"
        )
    else:
        advice = "check that the workers run the same Python packages as this machine"
    reason = f"{type(exc).__name__}: {exc}; {advice}"
    defaults: dict[str, Any] = {
        "run_id": "",
        "node_id": name,
        "args": {},
        "deps": (),
        "stored": {},
        "const_digests": {},
        "store_root": "",
    }
    return Job(task=Unloaded(), **{**defaults, **values}, unloadable=reason)  # type: ignore[arg-type]


def unloadable_error(job: Job) -> str:
    """The error of a job whose task could not be loaded where it was to run."""
    return f"task `{job.task.name}` could not be loaded {_where()}: {job.unloadable}"


def _where() -> str:
    try:
        from distributed import get_worker

        return f"on Dask worker {get_worker().address}"
    except Exception:  # noqa: BLE001 - not on a worker
        return "here"


class TaskFailed(Exception):
    """Raised by the worker wrapper after it has reported a failed task.

    Executors use it to skip the task's dependents; the failure itself is already in the
    events, so the message is short. ``cause`` is the exception the task raised (with its
    traceback where it was raised in this process), for ``RunFailed`` to chain.
    """

    def __init__(
        self,
        node_id: str,
        state: str,
        error: str,
        cause: BaseException | None = None,
        traceback: str | None = None,
    ) -> None:
        super().__init__(f"task `{node_id}` {state}: {error}")
        self.node_id = node_id
        self.state = state
        self.error = error
        self.cause = cause
        self.traceback = traceback

    def __reduce__(self) -> Any:
        return (
            _rebuild_failure,
            (self.node_id, self.state, self.error, _portable(self.cause), self.traceback),
        )


def _portable(cause: BaseException | None) -> BaseException | None:
    """``cause`` if it survives pickling (to leave a Dask worker), else ``None``."""
    if cause is None:
        return None
    import cloudpickle

    try:
        cloudpickle.loads(cloudpickle.dumps(cause))
    except Exception:  # noqa: BLE001 - the failure is still reported, as text
        return None
    return cause


def _rebuild_failure(
    node_id: str, state: str, error: str, cause: BaseException | None, traceback: str | None
) -> TaskFailed:
    if cause is not None and traceback and hasattr(cause, "add_note"):
        notes = getattr(cause, "__notes__", [])
        if not any(n.startswith("the task's traceback") for n in notes):
            cause.add_note(f"the task's traceback, where it ran:\n{traceback.rstrip()}")
    return TaskFailed(node_id, state, error, cause, traceback)


#: runs an expander's children with the expander's dependency values; one result per child
Spawn = Callable[[list[Job], Mapping[str, NodeValue]], list["NodeValue | BaseException"]]
#: the worker wrapper the run loop hands each executor (``worker.execute_job``): runs one job
#: with its dependencies' values, reporting through ``emit``; ``spawn`` runs an expander's
#: children
RunJob = Callable[[Job, Mapping[str, NodeValue], Emit, "Spawn | None"], NodeValue]
