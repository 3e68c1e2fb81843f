"""Grouping a run's jobs into executor tasks: linear chains fused, wide fan-ins gathered.

On a distributed scheduler every task costs a round trip (the scheduler batches its sends
to workers every few milliseconds), so a chain of small tasks is dominated by waiting.
A *unit* is a run of jobs that can only execute one after another: each job's single
dependency is the previous job, which nothing else needs. Running a unit as one executor
task changes no result and loses no parallelism; every job in it is still cached,
retried, recorded and shown on its own by :func:`~glasspane.execution.worker.execute_job`.

A job gathering many upstream values in one task makes a single worker fetch them all; a
*gather tree* of small tasks in front of it collects them in parallel, ``fan_in`` at a time.
Pure functions of the job list: no executor or Dask import here.
"""

from __future__ import annotations

from collections.abc import Sequence
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


#: a unit estimated to run for less than this may share a Dask task with its siblings
SHORT_UNIT = 0.02
#: seconds of work a batch of sibling units aims at
BATCH_TARGET = 0.1
#: most units of unknown duration in one batch
UNKNOWN_BATCH = 16


class Durations:
    """Per-process running estimates of how long each task takes, by task identity.

    Fed from the task_finished events of earlier runs in this process; a task never seen
    has no estimate (see :func:`batch_siblings` for what that allows).
    """

    def __init__(self, cap: int = 4096) -> None:
        self._mean: dict[str, float] = {}
        self._cap = cap

    def observe(self, identity: str, seconds: float) -> None:
        old = self._mean.get(identity)
        if old is None and len(self._mean) >= self._cap:
            self._mean.pop(next(iter(self._mean)))
        self._mean[identity] = seconds if old is None else 0.7 * old + 0.3 * seconds

    def estimate(self, identity: str) -> float | None:
        return self._mean.get(identity)

    def clear(self) -> None:
        self._mean.clear()


DURATIONS = Durations()


def batch_siblings(
    units: Sequence[Unit], keep: set[str], slots: int, durations: Durations = DURATIONS
) -> list[list[Unit]]:
    """Group sibling units into batches, each run as one executor task.

    Siblings are units whose inputs come from the same groups of units: the elements of a
    map over one value, or a layer of tasks each reading some of the previous layer. A
    batch runs its units one after another, each still cached, retried and recorded on its
    own; a failed unit does not stop its siblings. ``slots`` is the number of worker threads.

    - Units whose every task is known to be short (``SHORT_UNIT``, from ``durations``) go
      in batches of about ``BATCH_TARGET`` seconds, never fewer than ``2 * slots`` of them.
    - Units of unknown duration are batched only in large groups: at most
      ``UNKNOWN_BATCH`` per batch and never fewer than ``64 * slots`` batches, so even long
      tasks keep every thread busy until the last few batches.
    - Units known to be long, holding a value in ``keep``, expanding a map or asking for
      resources stay on their own.

    Batches come in topological order: a group's batches sit where its first unit was, and
    every group reads only groups made before it.
    """
    groups: list[list[Unit]] = []
    estimates: list[float | None] = []
    by_inputs: dict[tuple[int, ...], int] = {}  # input groups -> the group of their siblings
    group_of: dict[str, int] = {}  # node id -> its group
    for unit in units:
        estimate = _estimate(unit, durations)
        if _batchable(unit, keep) and (estimate is None or estimate < SHORT_UNIT):
            inputs = tuple(sorted({group_of[dep] for dep in unit.head.deps}))
            index = by_inputs.get(inputs)
            if index is None:
                index = by_inputs[inputs] = len(groups)
                groups.append([])
                estimates.append(estimate)
            else:
                known = estimates[index]
                estimates[index] = (
                    None if estimate is None or known is None else max(known, estimate)
                )
        else:
            index = len(groups)
            groups.append([])
            estimates.append(None)
        groups[index].append(unit)
        for job in unit.jobs:
            group_of[job.node_id] = index
    slots = max(slots, 1)
    batches: list[list[Unit]] = []
    for group, estimate in zip(groups, estimates):
        if len(group) == 1:
            size = 1
        elif estimate is None:
            size = max(1, min(UNKNOWN_BATCH, len(group) // (64 * slots)))
        else:
            widest = max(1, -(-len(group) // (2 * slots)))
            size = max(1, min(int(BATCH_TARGET / max(estimate, 1e-4)), widest))
        batches.extend(group[i : i + size] for i in range(0, len(group), size))
    return batches


def _batchable(unit: Unit, keep: set[str]) -> bool:
    if unit.tail.node_id in keep or unit.head.expand_arg is not None:
        return False
    return not any(job.task.options.resources for job in unit.jobs)


def _estimate(unit: Unit, durations: Durations) -> float | None:
    """The unit's estimated duration, or ``None`` when one of its tasks was never seen."""
    total = 0.0
    for job in unit.jobs:
        estimate = durations.estimate(job.task.identity)
        if estimate is None:
            return None
        total += estimate
    return total
