"""Walk lineage edges from one task run to the task runs and artifacts it depends on or feeds.

Upstream: a task run's input artifacts, the task run that *produced* each of them, their
inputs, and so on. An input edge names its producer exactly (``source_task_run_id``: the task
run of the same run whose output it was, cached or not; a cached one has its own input edges,
so the walk goes on through it). Only edges without a source (recorded from events that did
not say) fall back to content hashes: the producer is a task run that output an equal value
and actually computed it (``cached`` false), earliest first, in any run.

Downstream: a task run's output artifacts and the task runs that consumed them: those whose
input edge names it as the source, and, across runs, those whose source is a *cached* task
run of the same node that output an equal value (a later run reused its output from the cache
or on resume), and so on. Input edges without a source count when their artifact is one of
the outputs (the content-hash fallback).

Edges always point the way data flows (producer -> artifact -> consumer), whatever the
direction of the walk; task runs are named ``"<run_id>/<node>"`` and artifacts by content
hash, so equal values output by different task runs share one artifact entry, whose
``produced_by`` is the first producer the walk found. Every task run is visited once, so
shared ancestry and cycles across runs terminate.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Connection, select

from ..errors import InvalidArgument, NotFound
from .events import chunks
from .models import ArtifactRow, LineageEdgeRow, TaskRunRow

DIRECTIONS = ("upstream", "downstream")

_TASK_COLUMNS = (
    TaskRunRow.id,
    TaskRunRow.run_id,
    TaskRunRow.node_id,
    TaskRunRow.task_name,
    TaskRunRow.state,
    TaskRunRow.cached,
)
_EDGE_COLUMNS = (
    LineageEdgeRow.id,
    LineageEdgeRow.task_run_id,
    LineageEdgeRow.artifact_id,
    LineageEdgeRow.source_task_run_id,
)


class Edge(NamedTuple):
    """One ``lineage_edges`` row, as far as the walk needs it."""

    id: int
    task_run_id: int
    artifact_id: int
    source_task_run_id: int | None


def task_key(run_id: str, node: str) -> str:
    return f"{run_id}/{node}"


class LineageWalk:
    """One lineage query: collects task runs, artifacts and edges as it walks."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.task_runs: dict[int, dict[str, Any]] = {}
        self.artifacts: dict[int, dict[str, Any]] = {}
        # artifact id -> its content-hash producer, for input edges without a source
        self.hash_producers: dict[int, int | None] = {}
        self.edges: dict[tuple[str, str], None] = {}  # ordered set

    def run(self, run_id: str, node_id: str, direction: str, depth: int | None) -> dict[str, Any]:
        if direction not in DIRECTIONS:
            raise InvalidArgument(
                f"lineage direction `{direction}` is not known; use `upstream` or `downstream`"
            )
        if depth is not None and depth < 0:
            raise InvalidArgument(f"lineage depth must be 0 or more (or None for all), not {depth}")
        root = self.conn.execute(
            select(*_TASK_COLUMNS).where(TaskRunRow.run_id == run_id, TaskRunRow.node_id == node_id)
        ).first()
        if root is None:
            raise NotFound(self._no_node(run_id, node_id))
        self._add_task_runs([root], 0)
        frontier, level = [root.id], 0
        step = self._step_upstream if direction == "upstream" else self._step_downstream
        while frontier and (depth is None or level < depth):
            level += 1
            frontier = step(frontier, level)
        return {
            "root": {"run_id": root.run_id, "node": root.node_id, "task": root.task_name},
            "direction": direction,
            "task_runs": [
                {k: v for k, v in entry.items() if k != "key"} for entry in self.task_runs.values()
            ],
            "artifacts": [self._artifact_entry(a) for a in self.artifacts.values()],
            "edges": [{"from": src, "to": dst} for src, dst in self.edges],
        }

    # ---- one level of the walk ---------------------------------------------------------------

    def _step_upstream(self, frontier: list[int], level: int) -> list[int]:
        consumed = self._select_edges(
            LineageEdgeRow.task_run_id, frontier, LineageEdgeRow.direction == "input"
        )
        self._add_artifacts([edge.artifact_id for edge in consumed])
        self._resolve_hash_producers(
            [edge.artifact_id for edge in consumed if edge.source_task_run_id is None]
        )
        links: list[tuple[int, int]] = []  # (producer, artifact)
        for edge in consumed:
            self._consumed(edge)
            producer = edge.source_task_run_id
            if producer is None:
                producer = self.hash_producers[edge.artifact_id]
            if producer is not None:
                links.append((producer, edge.artifact_id))
        new = self._load_task_runs([producer for producer, _ in links], level)
        for producer, artifact in links:
            if producer in self.task_runs:
                self._produced(producer, artifact)
        return new

    def _step_downstream(self, frontier: list[int], level: int) -> list[int]:
        produced = self._select_edges(
            LineageEdgeRow.task_run_id, frontier, LineageEdgeRow.direction == "output"
        )
        self._add_artifacts([edge.artifact_id for edge in produced])
        for edge in produced:
            self._produced(edge.task_run_id, edge.artifact_id)
        outputs = {edge.artifact_id for edge in produced}
        copies = self._cached_copies(
            {(self.task_runs[edge.task_run_id]["node"], edge.artifact_id) for edge in produced}
        )
        direct = set(frontier)
        sourced = self._select_edges(
            LineageEdgeRow.source_task_run_id,
            [*frontier, *sorted({copy for copy, _ in copies} - direct)],
            LineageEdgeRow.direction == "input",
        )
        unsourced = self._select_edges(
            LineageEdgeRow.artifact_id,
            sorted(outputs),
            LineageEdgeRow.direction == "input",
            LineageEdgeRow.source_task_run_id.is_(None),
        )
        consumers = [
            edge
            for edge in sourced
            if edge.source_task_run_id in direct
            or (edge.source_task_run_id, edge.artifact_id) in copies
        ]
        consumers = sorted([*consumers, *unsourced])
        new = self._load_task_runs([edge.task_run_id for edge in consumers], level)
        self._add_artifacts([edge.artifact_id for edge in consumers])
        for edge in consumers:
            self._consumed(edge)
        return new

    # ---- queries -----------------------------------------------------------------------------

    def _select_edges(self, column: Any, ids: list[int], *where: Any) -> list[Edge]:
        """The edges whose ``column`` is in ``ids`` and that match ``where``, in id order."""
        found: list[Edge] = []
        for part in chunks(ids):
            rows = self.conn.execute(select(*_EDGE_COLUMNS).where(column.in_(part), *where))
            found.extend(Edge(*row) for row in rows)
        return sorted(found)

    def _cached_copies(self, outputs: set[tuple[str, int]]) -> set[tuple[int, int]]:
        """``(task run, artifact)`` of cached task runs that output ``(node, artifact)`` pairs.

        ``outputs`` holds ``(node id, artifact id)`` pairs; a cached task run of the same node
        that output the same artifact reused that value (from the cache or a resumed run).
        """
        copies: set[tuple[int, int]] = set()
        for part in chunks(sorted({artifact for _, artifact in outputs})):
            rows = self.conn.execute(
                select(LineageEdgeRow.task_run_id, LineageEdgeRow.artifact_id, TaskRunRow.node_id)
                .join(TaskRunRow, TaskRunRow.id == LineageEdgeRow.task_run_id)
                .where(
                    LineageEdgeRow.artifact_id.in_(part),
                    LineageEdgeRow.direction == "output",
                    TaskRunRow.cached.is_(True),
                )
            )
            for row in rows:
                if (row.node_id, row.artifact_id) in outputs:
                    copies.add((row.task_run_id, row.artifact_id))
        return copies

    def _add_artifacts(self, ids: list[int]) -> None:
        new = list(dict.fromkeys(i for i in ids if i not in self.artifacts))
        for part in chunks(new):
            rows = self.conn.execute(
                select(
                    ArtifactRow.id,
                    ArtifactRow.content_hash,
                    ArtifactRow.uri,
                    ArtifactRow.type_name,
                    ArtifactRow.size,
                    ArtifactRow.preview,
                ).where(ArtifactRow.id.in_(part))
            )
            for row in rows:
                self.artifacts[row.id] = {**row._mapping, "produced_by": None}

    def _load_task_runs(self, ids: list[int], level: int) -> list[int]:
        """Add the task runs ``ids`` not seen yet at ``level``; return those new ids."""
        new = list(dict.fromkeys(i for i in ids if i not in self.task_runs))
        rows: list[Any] = []
        for part in chunks(new):
            rows.extend(self.conn.execute(select(*_TASK_COLUMNS).where(TaskRunRow.id.in_(part))))
        position = {task_run_id: n for n, task_run_id in enumerate(new)}
        self._add_task_runs(sorted(rows, key=lambda row: position[row.id]), level)
        return [task_run_id for task_run_id in new if task_run_id in self.task_runs]

    def _add_task_runs(self, rows: list[Any], level: int) -> None:
        for row in rows:
            self.task_runs[row.id] = {
                "key": task_key(row.run_id, row.node_id),
                "run_id": row.run_id,
                "node": row.node_id,
                "task": row.task_name,
                "state": row.state,
                "cached": bool(row.cached),
                "depth": level,
            }

    def _resolve_hash_producers(self, artifact_ids: list[int]) -> None:
        """The content-hash producer of each artifact: computed (not cached), then earliest."""
        todo = list(dict.fromkeys(i for i in artifact_ids if i not in self.hash_producers))
        for part in chunks(todo):
            rows = self.conn.execute(
                select(LineageEdgeRow.artifact_id, LineageEdgeRow.task_run_id)
                .join(TaskRunRow, TaskRunRow.id == LineageEdgeRow.task_run_id)
                .where(LineageEdgeRow.artifact_id.in_(part), LineageEdgeRow.direction == "output")
                .order_by(LineageEdgeRow.artifact_id, TaskRunRow.cached, TaskRunRow.id)
            )
            for row in rows:
                self.hash_producers.setdefault(row.artifact_id, row.task_run_id)
        for artifact in todo:
            self.hash_producers.setdefault(artifact, None)

    # ---- output ------------------------------------------------------------------------------

    def _produced(self, task_run_id: int, artifact_id: int) -> None:
        task_run, artifact = self.task_runs[task_run_id], self.artifacts[artifact_id]
        self.edges[(task_run["key"], artifact["content_hash"])] = None
        if artifact["produced_by"] is None:
            artifact["produced_by"] = {"run_id": task_run["run_id"], "node": task_run["node"]}

    def _consumed(self, edge: Edge) -> None:
        artifact = self.artifacts[edge.artifact_id]["content_hash"]
        self.edges[(artifact, self.task_runs[edge.task_run_id]["key"])] = None

    def _artifact_entry(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "content_hash": row["content_hash"],
            "uri": row["uri"],
            "type_name": row["type_name"],
            "size": row["size"],
            "preview": row["preview"],
            "produced_by": row["produced_by"],
        }

    def _no_node(self, run_id: str, node_id: str) -> str:
        nodes = (
            self.conn.execute(
                select(TaskRunRow.node_id)
                .where(TaskRunRow.run_id == run_id)
                .order_by(TaskRunRow.id)
            )
            .scalars()
            .all()
        )
        if not nodes:
            return f"no task `{node_id}` in run `{run_id}`: the run has no task runs recorded"
        shown = ", ".join(nodes[:10]) + (f" and {len(nodes) - 10} more" if len(nodes) > 10 else "")
        return f"no task `{node_id}` in run `{run_id}`; its nodes are: {shown}"
