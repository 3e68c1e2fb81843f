"""What a task run's cache explanation compares it with: the last earlier run of the same
node of the same pipeline, and the task run that computed an output.

Read-only (see :mod:`glasspane.queries.cache_reasons`, which decides the reasons).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from .models import ArtifactRow, LineageEdgeRow, RunRow, TaskRunRow


def input_hashes(conn: Connection, task_run_id: int) -> dict[str, list[str]]:
    """Argument name -> content hashes of the inputs a task run consumed."""
    found: dict[str, list[str]] = defaultdict(list)
    for row in conn.execute(
        select(LineageEdgeRow.name, ArtifactRow.content_hash)
        .join(ArtifactRow, ArtifactRow.id == LineageEdgeRow.artifact_id)
        .where(LineageEdgeRow.task_run_id == task_run_id, LineageEdgeRow.direction == "input")
        .order_by(LineageEdgeRow.id)
    ):
        found[row.name].append(row.content_hash)
    return dict(found)


def earlier_task_run(conn: Connection, run_id: str, node_id: str) -> dict[str, Any] | None:
    """The last task run of ``node_id`` in an earlier run of the same pipeline that recorded a
    cache key (``None``: there is none), with its inputs' content hashes."""
    run = conn.execute(
        select(RunRow.pipeline_name, RunRow.created_at).where(RunRow.id == run_id)
    ).one()
    row = conn.execute(
        select(
            TaskRunRow.id,
            TaskRunRow.run_id,
            TaskRunRow.state,
            TaskRunRow.cached,
            TaskRunRow.cache_key,
            TaskRunRow.key_parts,
        )  # fmt: skip
        .join(RunRow, RunRow.id == TaskRunRow.run_id)
        .where(
            RunRow.pipeline_name == run.pipeline_name,
            or_(
                RunRow.created_at < run.created_at,
                and_(RunRow.created_at == run.created_at, RunRow.id < run_id),
            ),
            TaskRunRow.node_id == node_id,
            TaskRunRow.cache_key.is_not(None),
        )
        .order_by(RunRow.created_at.desc(), RunRow.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return {**row._mapping, "inputs": input_hashes(conn, row.id)}


def producer(conn: Connection, content_hash: str) -> tuple[str, str] | None:
    """(run id, node) of the first task run that computed the artifact ``content_hash``
    (not reused it), or ``None``."""
    row = conn.execute(
        select(TaskRunRow.run_id, TaskRunRow.node_id)
        .join(LineageEdgeRow, LineageEdgeRow.task_run_id == TaskRunRow.id)
        .join(ArtifactRow, ArtifactRow.id == LineageEdgeRow.artifact_id)
        .where(
            ArtifactRow.content_hash == content_hash,
            LineageEdgeRow.direction == "output",
            TaskRunRow.cached.is_(False),
        )
        .order_by(TaskRunRow.id)
        .limit(1)
    ).first()
    return None if row is None else (row.run_id, row.node_id)
