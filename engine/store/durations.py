"""How long each node of a pipeline ran in its recent runs: what the run loop plans batching
on Dask from (:meth:`MetadataStore.task_durations`).

A read inside a read transaction, like :mod:`.queries`; every process planning a run of the
same pipeline reads the same history, so they plan it alike.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import aliased

from ..types import FAILED, SUCCEEDED, TIMED_OUT
from .models import RunRow, TaskRunRow


def task_durations(conn: Connection, pipeline_name: str, runs: int = 3) -> dict[str, float]:
    """The longest each node ran in the pipeline's last ``runs`` runs that executed any task,
    in seconds, by node id (map elements and an expander's children by their own ids).

    Only task runs that executed count (a cache hit says nothing of how long the task takes),
    and that ended on a worker: succeeded, failed or timed out, each having held its worker
    that long. The longest, not a mean or a quantile: whether siblings may share an
    executor task depends on the slowest of them, which a mean hides.
    """

    def executed(row: Any) -> tuple[Any, ...]:
        return (
            row.cached.is_(False),
            row.duration.is_not(None),
            row.state.in_((SUCCEEDED, FAILED, TIMED_OUT)),
        )

    other = aliased(TaskRunRow)
    recent = (
        select(RunRow.id)
        .where(
            RunRow.pipeline_name == pipeline_name,
            select(other.id).where(other.run_id == RunRow.id, *executed(other)).exists(),
        )
        .order_by(RunRow.created_at.desc())
        .limit(runs)
        .scalar_subquery()
    )
    rows = conn.execute(
        select(TaskRunRow.node_id, func.max(TaskRunRow.duration))
        .where(TaskRunRow.run_id.in_(recent), *executed(TaskRunRow))
        .group_by(TaskRunRow.node_id)
    )
    return {node: float(longest) for node, longest in rows if longest is not None}
