"""Read-side queries of the metadata store: run summaries, run details, outputs and metrics.

Every function takes a connection inside a read transaction and returns plain dicts of JSON
types (timestamps as ISO 8601 strings in UTC), the shapes the CLI, the UI and the run loop
consume. Run ids may be given as a unique prefix of at least :data:`MIN_PREFIX` characters.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, case, func, select

from ..errors import NotFound
from ..types import FAILED, SUCCEEDED, TIMED_OUT, ArtifactInfo
from .events import chunks
from .models import (
    ArtifactRow,
    AttemptRow,
    LineageEdgeRow,
    MetricRow,
    PipelineVersionRow,
    RunRow,
    TaskRunRow,
)

MIN_PREFIX = 4
_LIST_HINT = "list runs with `glasspane runs list`"


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


def resolve_run_id(conn: Connection, run_id: str) -> str:
    """The full id of the run ``run_id`` names exactly or as a unique prefix.

    Raises:
        NotFound: no run matches, the prefix is shorter than :data:`MIN_PREFIX`, or it
            matches several runs (the message names them).
    """
    if conn.execute(select(RunRow.id).where(RunRow.id == run_id)).first() is not None:
        return run_id
    if len(run_id) < MIN_PREFIX:
        raise NotFound(
            f"no run `{run_id}`; give the full id or at least {MIN_PREFIX} characters of it, "
            f"{_LIST_HINT}"
        )
    matches = (
        conn.execute(
            select(RunRow.id)
            .where(RunRow.id.startswith(run_id, autoescape=True))
            .order_by(RunRow.id)
            .limit(11)
        )
        .scalars()
        .all()
    )
    if not matches:
        raise NotFound(f"no run `{run_id}`; {_LIST_HINT}")
    if len(matches) > 1:
        shown = ", ".join(matches[:10]) + (" and more" if len(matches) > 10 else "")
        raise NotFound(
            f"run id prefix `{run_id}` is ambiguous: it matches {shown}; give more characters"
        )
    return matches[0]


# ---- run summaries ---------------------------------------------------------------------------


def list_runs(
    conn: Connection,
    *,
    limit: int,
    pipeline: str | None,
    state: str | None,
    triggers: tuple[str, ...] = (),
    schedule: str | None = None,
) -> list[dict[str, Any]]:
    """Run summaries, newest first (see :meth:`MetadataStore.list_runs`)."""
    query = select(RunRow).order_by(RunRow.created_at.desc(), RunRow.id.desc()).limit(limit)
    if pipeline is not None:
        query = query.where(RunRow.pipeline_name == pipeline)
    if state is not None:
        query = query.where(RunRow.state == state)
    if triggers:
        query = query.where(RunRow.trigger.in_(triggers))
    if schedule is not None:
        query = query.where(RunRow.schedule_name == schedule)
    runs = conn.execute(query).all()
    counts = task_counts(conn, [run.id for run in runs])
    return [summary(run, counts.get(run.id)) for run in runs]


def task_counts(conn: Connection, run_ids: list[str]) -> dict[str, dict[str, int]]:
    """``n_tasks``, ``n_succeeded``, ``n_failed`` and ``n_cached`` per run, in one query."""

    def count(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    counts: dict[str, dict[str, int]] = {}
    for part in chunks(run_ids):
        rows = conn.execute(
            select(
                TaskRunRow.run_id,
                func.count().label("n_tasks"),
                count(TaskRunRow.state == SUCCEEDED).label("n_succeeded"),
                count(TaskRunRow.state.in_((FAILED, TIMED_OUT))).label("n_failed"),
                count(TaskRunRow.cached.is_(True)).label("n_cached"),
            )
            .where(TaskRunRow.run_id.in_(part))
            .group_by(TaskRunRow.run_id)
        )
        for row in rows:
            counts[row.run_id] = {
                key: int(getattr(row, key))
                for key in ("n_tasks", "n_succeeded", "n_failed", "n_cached")
            }
    return counts


def summary(run: Row[Any], counts: dict[str, int] | None) -> dict[str, Any]:
    """The summary dict of one ``runs`` row."""
    return {
        "run_id": run.id,
        "pipeline": run.pipeline_name,
        "state": run.state,
        "trigger": run.trigger,
        "schedule": run.schedule_name,
        "scheduled_for": iso(run.scheduled_for),
        "upstream_run_id": run.upstream_run_id,
        "resumed_from": run.resumed_from,
        "executor": run.executor,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "ended_at": iso(run.ended_at),
        "duration": seconds(run.started_at, run.ended_at),
        "params": run.params,
        **(counts or {"n_tasks": 0, "n_succeeded": 0, "n_failed": 0, "n_cached": 0}),
    }


# ---- one run in full -------------------------------------------------------------------------


def get_run(conn: Connection, run_id: str) -> dict[str, Any]:
    """Everything about one run (see :meth:`MetadataStore.get_run`)."""
    run_id = resolve_run_id(conn, run_id)
    run = conn.execute(
        select(RunRow, PipelineVersionRow.hash, PipelineVersionRow.graph_json)
        .outerjoin(PipelineVersionRow, PipelineVersionRow.id == RunRow.version_id)  # queued
        .where(RunRow.id == run_id)
    ).one()
    task_runs = conn.execute(
        select(TaskRunRow).where(TaskRunRow.run_id == run_id).order_by(TaskRunRow.id)
    ).all()
    edges = artifact_edges(conn, run_id)
    metrics: dict[int, dict[str, Any]] = defaultdict(dict)
    params: dict[int, dict[str, Any]] = defaultdict(dict)
    rows = conn.execute(
        select(
            MetricRow.task_run_id,
            MetricRow.kind,
            MetricRow.key,
            MetricRow.value,
            MetricRow.value_json,
        )
        .where(MetricRow.run_id == run_id)
        .order_by(MetricRow.id)
    )
    for row in rows:
        if row.kind == "metric":
            metrics[row.task_run_id][row.key] = row.value
        else:
            params[row.task_run_id][row.key] = row.value_json
    counts = {
        "n_tasks": len(task_runs),
        "n_succeeded": sum(t.state == SUCCEEDED for t in task_runs),
        "n_failed": sum(t.state in (FAILED, TIMED_OUT) for t in task_runs),
        "n_cached": sum(bool(t.cached) for t in task_runs),
    }
    detail = summary(run, counts)
    detail.update(
        pipeline_ref=run.pipeline_ref,
        version_hash=run.hash,
        graph=run.graph_json,
        error=run.error,
        output=run.output,
        heartbeat_at=iso(run.heartbeat_at),
        tasks=[
            task_detail(t, edges.get(t.id, {}), metrics.get(t.id, {}), params.get(t.id, {}))
            for t in task_runs
        ],
    )
    return detail


def task_detail(
    task: Row[Any],
    edges: dict[str, list[dict[str, Any]]],
    metrics: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """The dict of one task run inside :func:`get_run`."""
    return {
        "node": task.node_id,
        "task": task.task_name,
        "state": task.state,
        "cached": bool(task.cached),
        "attempts": task.attempts,
        "cache_key": task.cache_key,
        "started_at": iso(task.started_at),
        "ended_at": iso(task.ended_at),
        "duration": task.duration,
        "error": task.error,
        "traceback": task.traceback,
        "stdout": task.stdout,
        "stderr": task.stderr,
        "log_tail": task.log_tail,
        "note": task.note,
        "parent_node": task.parent_node,
        "map_index": task.map_index,
        "inputs": edges.get("input", []),
        "outputs": edges.get("output", []),
        "metrics": metrics,
        "params": params,
    }


def task_run_id(conn: Connection, run_id: str, node_id: str) -> int:
    """The id of the task run of ``node_id`` in the run with the full id ``run_id``.

    Raises:
        NotFound: the run has no such node (the message names the nodes it has).
    """
    found = conn.execute(
        select(TaskRunRow.id).where(TaskRunRow.run_id == run_id, TaskRunRow.node_id == node_id)
    ).scalar()
    if found is None:
        nodes = sorted(
            conn.execute(select(TaskRunRow.node_id).where(TaskRunRow.run_id == run_id)).scalars()
        )
        more = f" and {len(nodes) - 30} more" if len(nodes) > 30 else ""
        raise NotFound(
            f"run {run_id} has no node `{node_id}`; its nodes are: "
            f"{', '.join(nodes[:30]) or 'none'}{more}"
        )
    return int(found)


def attempts(conn: Connection, run_id: str, node_id: str) -> list[dict[str, Any]]:
    """Every attempt of one task run, first first (see :meth:`MetadataStore.attempts`)."""
    run_id = resolve_run_id(conn, run_id)
    rows = conn.execute(
        select(AttemptRow)
        .where(AttemptRow.task_run_id == task_run_id(conn, run_id, node_id))
        .order_by(AttemptRow.attempt)
    )
    return [
        {
            "attempt": row.attempt,
            "state": row.state,
            "started_at": iso(row.started_at),
            "ended_at": iso(row.ended_at),
            "duration": seconds(row.started_at, row.ended_at),
            "error": row.error,
            "stdout": row.stdout,
            "stderr": row.stderr,
            "log_tail": row.log_tail,
            "traceback": row.traceback,
        }
        for row in rows
    ]


def artifact_edges(conn: Connection, run_id: str) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """task run id -> direction -> ``[{"name", **ArtifactInfo.to_dict()}]`` for one run.

    Outputs are ordered by output index, inputs by the order they were recorded.
    """
    rows = conn.execute(
        select(
            LineageEdgeRow.task_run_id, LineageEdgeRow.direction, LineageEdgeRow.name, ArtifactRow
        )
        .join(ArtifactRow, ArtifactRow.id == LineageEdgeRow.artifact_id)
        .join(TaskRunRow, TaskRunRow.id == LineageEdgeRow.task_run_id)
        .where(TaskRunRow.run_id == run_id)
        .order_by(LineageEdgeRow.id)
    )
    edges: dict[int, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        edges[row.task_run_id][row.direction].append(
            {"name": row.name, **artifact_info(row).to_dict()}
        )
    for by_direction in edges.values():
        by_direction["output"].sort(key=lambda item: _output_index(item["name"]))
    return edges


def artifact_info(row: Any) -> ArtifactInfo:
    """The :class:`ArtifactInfo` of a result row holding the ``artifacts`` columns."""
    return ArtifactInfo(
        content_hash=row.content_hash,
        uri=row.uri,
        digest=row.digest,
        type_name=row.type_name,
        materializer=row.materializer,
        size=row.size,
        preview=row.preview,
    )


def _output_index(name: str) -> tuple[int, int | str]:
    # "10" sorts after "9"; a non-numeric name (should not happen) sorts last, by name.
    return (0, int(name)) if name.isdigit() else (1, name)


def task_outputs(conn: Connection, run_id: str) -> dict[str, list[ArtifactInfo]]:
    """node id -> output artifacts in output order, for the run's succeeded task runs."""
    run_id = resolve_run_id(conn, run_id)
    rows = conn.execute(
        select(TaskRunRow.node_id, LineageEdgeRow.name, ArtifactRow)
        .join(LineageEdgeRow, LineageEdgeRow.task_run_id == TaskRunRow.id)
        .join(ArtifactRow, ArtifactRow.id == LineageEdgeRow.artifact_id)
        .where(
            TaskRunRow.run_id == run_id,
            TaskRunRow.state == SUCCEEDED,
            LineageEdgeRow.direction == "output",
        )
        .order_by(TaskRunRow.id, LineageEdgeRow.id)
    )
    outputs: dict[str, list[tuple[tuple[int, int | str], ArtifactInfo]]] = defaultdict(list)
    for row in rows:
        outputs[row.node_id].append((_output_index(row.name), artifact_info(row)))
    return {
        node: [info for _, info in sorted(items, key=lambda item: item[0])]
        for node, items in outputs.items()
    }


def metrics(conn: Connection, run_id: str) -> list[dict[str, Any]]:
    """Every metric and param row of a run, in the order they were recorded."""
    run_id = resolve_run_id(conn, run_id)
    rows = conn.execute(
        select(
            TaskRunRow.node_id,
            MetricRow.kind,
            MetricRow.key,
            MetricRow.value,
            MetricRow.value_json,
            MetricRow.step,
            MetricRow.ts,
        )
        .outerjoin(TaskRunRow, TaskRunRow.id == MetricRow.task_run_id)
        .where(MetricRow.run_id == run_id)
        .order_by(MetricRow.id)
    )
    return [
        {
            "node": row.node_id,
            "kind": row.kind,
            "key": row.key,
            "value": row.value if row.kind == "metric" else row.value_json,
            "step": row.step,
            "ts": iso(row.ts),
        }
        for row in rows
    ]
