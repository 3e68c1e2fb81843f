"""Walk lineage edges from one task run to the task runs and artifacts it depends on or feeds.

Upstream: a task run's input artifacts, the task run that *produced* each of them, their
inputs, and so on. An artifact shared by content hash may be output by many task runs (every
cache hit records one); its producer is the one that actually computed it (``cached`` false),
earliest first, in any run. Downstream: a task run's output artifacts, every task run in any
run that consumed one of them, and so on.

Edges always point the way data flows (producer -> artifact -> consumer), whatever the
direction of the walk; task runs are named ``"<run_id>/<node>"`` and artifacts by content
hash. Every row is visited once, so shared ancestry and cycles across runs terminate.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from ..errors import NotFound
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


def task_key(run_id: str, node: str) -> str:
    return f"{run_id}/{node}"


class LineageWalk:
    """One lineage query: collects task runs, artifacts and edges as it walks."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.task_runs: dict[int, dict[str, Any]] = {}
        self.artifacts: dict[int, dict[str, Any]] = {}
        self.producers: dict[int, int | None] = {}  # artifact id -> producing task run id
        self.edges: dict[tuple[str, str], None] = {}  # ordered set

    def run(self, run_id: str, node_id: str, direction: str, depth: int | None) -> dict[str, Any]:
        if direction not in DIRECTIONS:
            raise ValueError(
                f"lineage direction `{direction}` is not known; use `upstream` or `downstream`"
            )
        if depth is not None and depth < 0:
            raise ValueError(f"lineage depth must be 0 or more (or None for all), not {depth}")
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
        self._resolve_producers(list(self.artifacts))
        return {
            "root": {"run_id": root.run_id, "node": root.node_id, "task": root.task_name},
            "direction": direction,
            "task_runs": [
                {k: v for k, v in entry.items() if k != "key"} for entry in self.task_runs.values()
            ],
            "artifacts": [self._artifact_entry(i, a) for i, a in self.artifacts.items()],
            "edges": [{"from": src, "to": dst} for src, dst in self.edges],
        }

    # ---- one level of the walk ---------------------------------------------------------------

    def _step_upstream(self, frontier: list[int], level: int) -> list[int]:
        consumed = self._edges(LineageEdgeRow.task_run_id, frontier, "input")
        new_artifacts = self._add_artifacts([artifact for _, artifact in consumed])
        for task_run, artifact in consumed:
            self._edge(self.artifacts[artifact]["content_hash"], self.task_runs[task_run]["key"])
        self._resolve_producers(new_artifacts)
        found = []
        for artifact in new_artifacts:
            producer = self.producers.get(artifact)
            if producer is not None:
                found.append(producer)
        new = self._load_task_runs(found, level)
        for artifact in new_artifacts:
            producer = self.producers.get(artifact)
            if producer is not None:
                self._edge(
                    self.task_runs[producer]["key"], self.artifacts[artifact]["content_hash"]
                )
        return new

    def _step_downstream(self, frontier: list[int], level: int) -> list[int]:
        produced = self._edges(LineageEdgeRow.task_run_id, frontier, "output")
        new_artifacts = self._add_artifacts([artifact for _, artifact in produced])
        for task_run, artifact in produced:
            self._edge(self.task_runs[task_run]["key"], self.artifacts[artifact]["content_hash"])
        consumers = self._edges(LineageEdgeRow.artifact_id, new_artifacts, "input")
        new = self._load_task_runs([task_run for task_run, _ in consumers], level)
        for task_run, artifact in consumers:
            self._edge(self.artifacts[artifact]["content_hash"], self.task_runs[task_run]["key"])
        return new

    # ---- queries -----------------------------------------------------------------------------

    def _edges(self, column: Any, ids: list[int], direction: str) -> list[tuple[int, int]]:
        """``(task_run_id, artifact_id)`` of the edges whose ``column`` is in ``ids``."""
        pairs: list[tuple[int, int]] = []
        for part in chunks(ids):
            rows = self.conn.execute(
                select(LineageEdgeRow.task_run_id, LineageEdgeRow.artifact_id)
                .where(column.in_(part), LineageEdgeRow.direction == direction)
                .order_by(LineageEdgeRow.id)
            )
            pairs.extend((row.task_run_id, row.artifact_id) for row in rows)
        return pairs

    def _add_artifacts(self, ids: list[int]) -> list[int]:
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
                self.artifacts[row.id] = dict(row._mapping)
        return new

    def _load_task_runs(self, ids: list[int], level: int) -> list[int]:
        """Add the task runs ``ids`` not seen yet at ``level``; return those new ids."""
        new = list(dict.fromkeys(i for i in ids if i not in self.task_runs))
        rows: list[Any] = []
        for part in chunks(new):
            rows.extend(self.conn.execute(select(*_TASK_COLUMNS).where(TaskRunRow.id.in_(part))))
        position = {task_run_id: n for n, task_run_id in enumerate(new)}
        self._add_task_runs(sorted(rows, key=lambda row: position[row.id]), level)
        return new

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

    def _resolve_producers(self, artifact_ids: list[int]) -> None:
        """Find the producing task run of each artifact: computed (not cached), then earliest."""
        todo = [i for i in artifact_ids if i not in self.producers]
        for part in chunks(todo):
            rows = self.conn.execute(
                select(
                    LineageEdgeRow.artifact_id, TaskRunRow.id, TaskRunRow.run_id, TaskRunRow.node_id
                )
                .join(TaskRunRow, TaskRunRow.id == LineageEdgeRow.task_run_id)
                .where(LineageEdgeRow.artifact_id.in_(part), LineageEdgeRow.direction == "output")
                .order_by(LineageEdgeRow.artifact_id, TaskRunRow.cached, TaskRunRow.id)
            )
            for row in rows:
                if row.artifact_id not in self.producers:
                    self.producers[row.artifact_id] = row.id
                    self.artifacts.get(row.artifact_id, {}).setdefault(
                        "produced_by", {"run_id": row.run_id, "node": row.node_id}
                    )
        for artifact in todo:
            self.producers.setdefault(artifact, None)

    # ---- output ------------------------------------------------------------------------------

    def _edge(self, src: str, dst: str) -> None:
        self.edges[(src, dst)] = None

    def _artifact_entry(self, artifact_id: int, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "content_hash": row["content_hash"],
            "uri": row["uri"],
            "type_name": row["type_name"],
            "size": row["size"],
            "preview": row["preview"],
            "produced_by": row.get("produced_by"),
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
