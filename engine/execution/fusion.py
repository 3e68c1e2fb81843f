"""Grouping a run's jobs into executor tasks: linear chains fused, wide fan-ins gathered.

On a distributed scheduler every task costs a round trip (the scheduler batches its sends
to workers every few milliseconds), so a chain of small tasks is dominated by waiting.
A *unit* is a run of jobs that can only execute one after another: each job's single
dependency is the previous job, which nothing else needs. Running a unit as one executor
task changes no result and loses no parallelism; every job in it is still cached,
retried, recorded and shown on its own by :func:`~glasspane.execution.worker.execute_job`.

A job gathering many upstream values in one task makes a single worker fetch them all; a
*gather tree* of small tasks in front of it collects them in parallel, ``fan_in`` at a time.

Sibling units (the elements of a map) may share a task too, in *batches*, when the metadata
store says they are short: each job carries an upper estimate of its duration, the longest
the store has recorded for its node (:func:`assign_estimates`), so every process plans the
same batches for the same history. An element slow for the first time is the executor's to
handle: a batch that outlasts ``GIVE_BACK_AFTER`` hands back what it has not started.
Pure functions of the job list: no executor or Dask import here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .job import Job

#: most values one task gathers before a tree of gather tasks is put in front of it
FAN_IN = 32


@dataclass
class Unit:
    """Jobs that run one after another in one executor task; ``jobs[0]`` takes ``deps``."""

    jobs: list[Job]

    @property
    def head(self) -> Job:
        return self.jobs[0]

    @property
    def tail(self) -> Job:
        return self.jobs[-1]

    @property
    def node_ids(self) -> list[str]:
        return [job.node_id for job in self.jobs]


def fuse_chains(jobs: Sequence[Job], keep: set[str]) -> list[Unit]:
    """Group ``jobs`` (in topological order) into units, in topological order.

    A job joins the unit of its dependency when that dependency is its only one, ends its
    unit, has no other dependent and is not in ``keep`` (values the driver collects end a
    unit, so they are an executor result). Expanders (``.map(expand(...))``, which start
    child jobs) and jobs asking for different resources stay on their own.
    """
    dependents: dict[str, int] = {}
    for job in jobs:
        for dep in job.deps:
            dependents[dep] = dependents.get(dep, 0) + 1
    units: list[Unit] = []
    unit_of: dict[str, Unit] = {}
    for job in jobs:
        unit = None
        if len(job.deps) == 1 and job.expand_arg is None:
            dep = job.deps[0]
            candidate = unit_of.get(dep)
            if (
                candidate is not None
                and candidate.tail.node_id == dep
                and dependents.get(dep) == 1
                and dep not in keep
                and candidate.tail.expand_arg is None
                and dict(candidate.tail.task.options.resources) == dict(job.task.options.resources)
            ):
                unit = candidate
        if unit is None:
            unit = Unit([job])
            units.append(unit)
        else:
            unit.jobs.append(job)
        unit_of[job.node_id] = unit
    return units


def gather_tree(n: int, fan_in: int = FAN_IN) -> list[list[tuple[int, int]]]:
    """Levels of a gather tree over ``n`` inputs, each gather taking at most ``fan_in``.

    Level 0 groups the inputs, level ``k`` groups the gathers of level ``k - 1``; each group
    is ``(start, stop)`` over the previous level, in order, so flattening the last level's
    outputs gives the inputs in their original order. Empty when ``n <= fan_in``.
    """
    levels: list[list[tuple[int, int]]] = []
    width = n
    while width > fan_in:
        groups = [(i, min(i + fan_in, width)) for i in range(0, width, fan_in)]
        levels.append(groups)
        width = len(groups)
    return levels


#: a unit whose upper estimate is under this may share an executor task with its siblings
SHORT_UNIT = 0.02
#: seconds of work (by upper estimates) a batch of short units holds at most
BATCH_TARGET = 0.1
#: most units of unknown duration in one batch
UNKNOWN_BATCH = 16
#: units of unknown duration are batched only into at least this many batches per thread
UNKNOWN_SPREAD = 8
#: seconds a batch runs before it hands the units it has not started back to the cluster
GIVE_BACK_AFTER = 0.1


def assign_estimates(jobs: Sequence[Job], durations: Mapping[str, float]) -> None:
    """Give each job the upper estimate of its duration that decides batching.

    ``durations`` is the longest recorded run of each node in the pipeline's recent runs, by
    node id (:meth:`~glasspane.store.MetadataStore.task_durations`): the same in every process
    that plans the run. A node seen there gets its own; a node never seen (a new element of a
    map) the longest of its task's nodes that were; a task never seen, ``None``. An expander
    gets its children's, by child id (:attr:`~.job.Job.child_estimates`).
    """
    by_task: dict[str, float] = {}
    for job in jobs:
        seen = durations.get(job.node_id)
        if job.expand_arg is None and seen is not None:
            by_task[job.task.identity] = max(by_task.get(job.task.identity, 0.0), seen)
    children: dict[str, dict[str, float]] = {}
    for node_id, seconds in durations.items():
        parent, bracket, index = node_id.rpartition("[")
        if bracket and index[:-1].isdigit() and index.endswith("]"):
            children.setdefault(parent, {})[node_id] = seconds
    for job in jobs:
        if job.expand_arg is not None:
            job.child_estimates = children.get(job.node_id, {})
        else:
            job.estimate = durations.get(job.node_id, by_task.get(job.task.identity))


def child_estimate(child: Job, estimates: Mapping[str, float] | None) -> float | None:
    """A child's upper estimate from its expander's :attr:`~.job.Job.child_estimates`: its
    own, else the longest of its siblings that were seen, else ``None``."""
    if not estimates:
        return None
    return estimates.get(child.node_id, max(estimates.values()))


def batch_siblings(units: Sequence[Unit], keep: set[str], slots: int) -> list[list[Unit]]:
    """Group sibling units into batches, each run as one executor task.

    Siblings are units whose inputs come from the same groups of units: the elements of a
    map over one value, or a layer of tasks each reading some of the previous layer. A
    batch runs its units one after another, each still cached, retried and recorded on its
    own; a failed unit does not stop its siblings. ``slots`` is the number of worker threads.
    The plan depends only on the units and their jobs' upper estimates
    (:func:`assign_estimates`), never on what the planning process has run before.

    - Units whose every job is short by its upper estimate (under ``SHORT_UNIT``) are packed
      in order into batches whose estimates add up to at most ``BATCH_TARGET``, never fewer
      than ``2 * slots`` batches.
    - Units of unknown duration are batched only in large groups: at most ``UNKNOWN_BATCH``
      per batch and never fewer than ``UNKNOWN_SPREAD * slots`` batches.
    - Units that may be long (one slow run is enough), holding a value in ``keep``,
      expanding a map or asking for resources stay on their own.

    Estimates cannot foresee an element that is slow for the first time: at run time a batch
    that outlasts ``GIVE_BACK_AFTER`` hands the units it has not started back to the
    executor (see :mod:`.executors.dask_batch`), so such an element holds up no sibling.

    Batches come in topological order: a group's batches sit where its first unit was, and
    every group reads only groups made before it.
    """
    groups: list[list[tuple[Unit, float | None]]] = []
    by_inputs: dict[tuple[int, ...], int] = {}  # input groups -> the group of their siblings
    group_of: dict[str, int] = {}  # node id -> its group
    for unit in units:
        estimate = _estimate(unit)
        if _batchable(unit, keep) and (estimate is None or estimate < SHORT_UNIT):
            inputs = tuple(sorted({group_of[dep] for dep in unit.head.deps}))
            index = by_inputs.get(inputs)
            if index is None:
                index = by_inputs[inputs] = len(groups)
                groups.append([])
        else:
            index = len(groups)
            groups.append([])
        groups[index].append((unit, estimate))
        for job in unit.jobs:
            group_of[job.node_id] = index
    slots = max(slots, 1)
    batches: list[list[Unit]] = []
    for group in groups:
        if len(group) == 1:
            batches.append([group[0][0]])
        elif any(estimate is None for _, estimate in group):
            size = max(1, min(UNKNOWN_BATCH, len(group) // (UNKNOWN_SPREAD * slots)))
            batches.extend([u for u, _ in group[i : i + size]] for i in range(0, len(group), size))
        else:
            batches.extend(_pack(group, widest=-(-len(group) // (2 * slots))))
    return batches


def _pack(group: list[tuple[Unit, float | None]], widest: int) -> list[list[Unit]]:
    """Consecutive units in batches of at most ``widest`` whose estimates add up to at most
    ``BATCH_TARGET`` (a unit alone may exceed it)."""
    batches: list[list[Unit]] = []
    batch: list[Unit] = []
    total = 0.0
    for unit, estimate in group:
        seconds = estimate or 0.0
        if batch and (len(batch) >= widest or total + seconds > BATCH_TARGET):
            batches.append(batch)
            batch, total = [], 0.0
        batch.append(unit)
        total += seconds
    if batch:
        batches.append(batch)
    return batches


def _batchable(unit: Unit, keep: set[str]) -> bool:
    if unit.tail.node_id in keep or unit.head.expand_arg is not None:
        return False
    return not any(job.task.options.resources for job in unit.jobs)


def _estimate(unit: Unit) -> float | None:
    """The unit's upper estimate, or ``None`` when one of its jobs' tasks was never seen."""
    total = 0.0
    for job in unit.jobs:
        if job.estimate is None:
            return None
        total += job.estimate
    return total
