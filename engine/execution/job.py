"""What the driver hands an executor: picklable jobs, and the values they return.

A :class:`Job` is everything a worker needs to run one node without the database: the
task, its argument template, where each upstream value comes from (a dependency passed
in by the executor, or an artifact already in the store) and where to store the result.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from ..types import ArtifactInfo

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

    def output(self, index: int | None) -> Any:
        return self.values[0] if index is None else self.values[index]

    def output_hash(self, index: int | None) -> str:
        return self.hashes[0] if index is None else self.hashes[index]


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
        n_outputs: see :class:`~glasspane.graph.Node`.
        expand_arg: the argument expanded at run time, for an expander node.
        reuse: node id -> outputs to reuse without running (children of a resumed expander).
        parent / map_index: set on the children of an expander.
        tee: also print captured output (inline executor, for debugging).
    """

    run_id: str
    node_id: str
    task: TaskDef[Any, Any]
    args: Mapping[str, Any]
    deps: tuple[str, ...]
    stored: dict[OutputKey, ArtifactInfo]
    const_digests: dict[str, Any]
    store_root: str
    n_outputs: int | None = None
    expand_arg: str | None = None
    reuse: dict[str, list[ArtifactInfo]] = field(default_factory=dict)
    parent: str | None = None
    map_index: int | None = None
    tee: bool = False

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
        # job; it is serialized once per task definition, not once per job.
        # (arguments may be a read-only mapping view, which plain pickle cannot take)
        fields = tuple(
            dict(self.args) if name == "args" else getattr(self, name) for name in _JOB_FIELDS
        )
        return (_rebuild_job, (task_blob(self.task), *fields))


_JOB_FIELDS = (
    "run_id",
    "node_id",
    "args",
    "deps",
    "stored",
    "const_digests",
    "store_root",
    "n_outputs",
    "expand_arg",
    "reuse",
    "parent",
    "map_index",
    "tee",
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


def _rebuild_job(blob: bytes, *fields: Any) -> Job:
    task = _loaded.get(blob)
    if task is None:
        import pickle

        if len(_loaded) >= _LOADED_MAX:
            _loaded.clear()
        task = _loaded[blob] = pickle.loads(blob)
    values = dict(zip(_JOB_FIELDS, fields))
    return Job(task=task, **values)


class TaskFailed(Exception):
    """Raised by the worker wrapper after it has reported a failed task.

    Executors use it to skip the task's dependents; the failure itself is already in the
    events, so the message is short.
    """

    def __init__(self, node_id: str, state: str, error: str) -> None:
        super().__init__(f"task `{node_id}` {state}: {error}")
        self.node_id = node_id
        self.state = state
        self.error = error

    def __reduce__(self) -> Any:
        return (TaskFailed, (self.node_id, self.state, self.error))


#: runs an expander's children with the expander's dependency values; one result per child
Spawn = Callable[[list[Job], Mapping[str, NodeValue]], list["NodeValue | BaseException"]]
