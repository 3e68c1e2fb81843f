"""Lineage across runs: what one task run was computed from, or what consumed its outputs.

The walk itself is the store's (:mod:`glasspane.store.lineage`): an input leads to the task
run that produced it, and an output to the task runs that consumed it, here and in later runs
that reused it from the cache.
"""

from __future__ import annotations

from typing import Literal

from ..store import MetadataStore
from .records import Lineage, LineageArtifact, LineageEdge, LineageTaskRun, TaskRunRef


def lineage(
    metadata: MetadataStore,
    run_id: str,
    node: str,
    *,
    direction: Literal["upstream", "downstream"] = "upstream",
    depth: int | None = None,
) -> Lineage:
    """The task runs and artifacts upstream or downstream of one task run, across runs.

    Args:
        run_id: the run's id or a unique prefix of it.
        node: the node whose task run is the root.
        direction: ``upstream`` (what it was computed from) or ``downstream`` (what consumed
            its outputs, in this run and later ones).
        depth: follow at most this many task-run hops; None for all.

    Raises:
        NotFound: no such run, or the run has no such node (the message names its nodes).
        InvalidArgument: ``direction`` or ``depth`` is invalid.
    """
    walk = metadata.lineage(run_id, node, direction=direction, depth=depth)
    task_runs = {(t["run_id"], t["node"]): t for t in walk["task_runs"]}
    root = walk["root"]
    return Lineage(
        root=TaskRunRef(
            run_id=root["run_id"],
            node=root["node"],
            cached=bool(task_runs[(root["run_id"], root["node"])]["cached"]),
        ),
        direction=walk["direction"],
        task_runs=[LineageTaskRun(**t) for t in walk["task_runs"]],
        artifacts=[
            LineageArtifact(
                content_hash=a["content_hash"],
                uri=a["uri"],
                type_name=a["type_name"],
                size=a["size"],
                summary=a["preview"],
                produced_by=_producer(a["produced_by"], task_runs),
            )
            for a in walk["artifacts"]
        ],
        edges=[LineageEdge(source=e["from"], target=e["to"]) for e in walk["edges"]],
    )


def _producer(ref: dict | None, task_runs: dict) -> TaskRunRef | None:
    if ref is None:
        return None
    task_run = task_runs.get((ref["run_id"], ref["node"]))
    return TaskRunRef(**ref, cached=bool(task_run and task_run["cached"]))
