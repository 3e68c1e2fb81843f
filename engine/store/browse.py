"""Read-side SQL behind :mod:`glasspane.queries`: pages of runs, one run, pipelines, metrics,
artifacts by hash.

Every function takes a connection inside a read transaction (:meth:`MetadataStore.read`) and
issues only ``SELECT`` statements. Results are plain dicts holding Python values (timestamps
as aware UTC datetimes); :mod:`glasspane.queries` turns them into its pydantic records.

Invariants:

- Runs are ordered newest first by ``(created_at, id)``, both descending: ``created_at`` is
  set once at creation and never changes, so a page boundary (the keyset cursor) stays put
  while runs are added.
- The run detail reads only the light columns of its task runs (no captured text), so a run
  of thousands of nodes stays one quick query; :func:`task_run` reads one in full.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, and_, cast, func, or_, select

from ..errors import NotFound
from .models import (
    ArtifactRow,
    LineageEdgeRow,
    MetricRow,
    PipelineVersionRow,
    RunEventRow,
    RunRow,
    TaskRunRow,
)
from .queries import artifact_info, attempts, resolve_run_id, task_counts, task_run_id

_RUN_COLUMNS = (
    RunRow.id,
    RunRow.pipeline_name,
    PipelineVersionRow.hash.label("version_hash"),
    RunRow.state,
    RunRow.trigger,
    RunRow.schedule_name.label("schedule"),
    RunRow.scheduled_for,
    RunRow.upstream_run_id,
    RunRow.resumed_from,
    RunRow.executor,
    RunRow.created_at,
    RunRow.started_at,
    RunRow.ended_at,
    RunRow.params,
)
_TASK_COLUMNS = (
    TaskRunRow.node_id.label("node"),
    TaskRunRow.task_name.label("task"),
    TaskRunRow.state,
    TaskRunRow.cached,
    TaskRunRow.attempts,
    TaskRunRow.started_at,
    TaskRunRow.ended_at,
    TaskRunRow.duration,
    TaskRunRow.error,
    TaskRunRow.note,
    TaskRunRow.parent_node,
    TaskRunRow.map_index,
)
_NO_COUNTS = {"n_tasks": 0, "n_succeeded": 0, "n_failed": 0, "n_cached": 0}


def _run_dict(row: Any, counts: dict[str, int] | None) -> dict[str, Any]:
    data = dict(row._mapping)
    data["run_id"] = data.pop("id")
    data["pipeline"] = data.pop("pipeline_name")
    data["params"] = data["params"] or {}
    start, end = data["started_at"], data["ended_at"]
    data["duration"] = None if start is None or end is None else (end - start).total_seconds()
    data.update(counts or _NO_COUNTS)
    return data


# ---- runs ------------------------------------------------------------------------------------


def run_page(
    conn: Connection,
    *,
    limit: int,
    pipeline: str | None = None,
    states: tuple[str, ...] = (),
    triggers: tuple[str, ...] = (),
    schedule: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    version_ids: list[int] | None = None,
    after: tuple[datetime, str] | None = None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` run summaries, newest first, strictly after the ``after`` boundary.

    Args:
        schedule: only runs the schedule of this name launched.
        since: only runs created at or after this time.
        until: only runs created before this time.
        version_ids: only runs of these pipeline versions (None: any).
        after: ``(created_at, run id)`` of the last run of the previous page.
    """
    query = select(*_RUN_COLUMNS).outerjoin(  # a queued run has no version yet
        PipelineVersionRow, PipelineVersionRow.id == RunRow.version_id
    )
    if pipeline is not None:
        query = query.where(RunRow.pipeline_name == pipeline)
    if states:
        query = query.where(RunRow.state.in_(states))
    if triggers:
        query = query.where(RunRow.trigger.in_(triggers))
    if schedule is not None:
        query = query.where(RunRow.schedule_name == schedule)
    if since is not None:
        query = query.where(RunRow.created_at >= since)
    if until is not None:
        query = query.where(RunRow.created_at < until)
    if version_ids is not None:
        query = query.where(RunRow.version_id.in_(version_ids))
    if after is not None:
        at, run_id = after
        query = query.where(
            or_(RunRow.created_at < at, and_(RunRow.created_at == at, RunRow.id < run_id))
        )
    rows = conn.execute(
        query.order_by(RunRow.created_at.desc(), RunRow.id.desc()).limit(limit)
    ).all()
    counts = task_counts(conn, [row.id for row in rows])
    return [_run_dict(row, counts.get(row.id)) for row in rows]


def tagged_versions(conn: Connection, tag: str) -> list[int]:
    """The ids of pipeline versions with a task tagged ``tag`` (in their graph JSON)."""
    needle = json.dumps(tag)
    rows = conn.execute(
        select(PipelineVersionRow.id, PipelineVersionRow.graph_json).where(
            cast(PipelineVersionRow.graph_json, Text).contains(needle, autoescape=True)
        )
    )
    return [
        row.id
        for row in rows
        if any(tag in (node.get("tags") or ()) for node in (row.graph_json or {}).get("nodes", ()))
    ]


def run(conn: Connection, run_id: str) -> dict[str, Any]:
    """One run's summary and other columns; under ``tasks``, its task runs' light columns
    (``node``, ``task``, state, timings, error, note...) in creation order.

    Raises:
        NotFound: no run matches ``run_id`` (or its unique prefix).
    """
    run_id = resolve_run_id(conn, run_id)
    # first: events stored after it are replayed over what is read below (a follower
    # applying them again is harmless; one missed would be stale forever)
    last_seq = (
        conn.execute(
            select(func.max(RunEventRow.last_seq)).where(RunEventRow.run_id == run_id)
        ).scalar()
        or 0
    )
    row = conn.execute(
        select(*_RUN_COLUMNS, RunRow.pipeline_ref, RunRow.error, RunRow.output, RunRow.heartbeat_at)
        .outerjoin(PipelineVersionRow, PipelineVersionRow.id == RunRow.version_id)
        .where(RunRow.id == run_id)
    ).one()
    tasks = [
        dict(task._mapping)
        for task in conn.execute(
            select(*_TASK_COLUMNS).where(TaskRunRow.run_id == run_id).order_by(TaskRunRow.id)
        )
    ]
    data = _run_dict(row, task_counts(conn, [run_id]).get(run_id))
    data["tasks"] = tasks
    data["last_seq"] = last_seq
    return data


def graph_json(conn: Connection, run_id: str) -> tuple[str, Any]:
    """``(full run id, graph JSON of the run's pipeline version)``."""
    run_id = resolve_run_id(conn, run_id)
    graph = conn.execute(
        select(PipelineVersionRow.graph_json)
        .join(RunRow, RunRow.version_id == PipelineVersionRow.id)
        .where(RunRow.id == run_id)
    ).scalar()
    return run_id, graph


def task_run(conn: Connection, run_id: str, node_id: str) -> dict[str, Any]:
    """One task run in full: its row, attempts, input and output artifacts, metrics, params.

    Raises:
        NotFound: no such run, or the run has no such node (the message names its nodes).
    """
    run_id = resolve_run_id(conn, run_id)
    key = task_run_id(conn, run_id, node_id)
    row = conn.execute(select(TaskRunRow).where(TaskRunRow.id == key)).one()
    data = dict(row._mapping)
    data["attempt_rows"] = attempts(conn, run_id, node_id)
    edges = conn.execute(
        select(LineageEdgeRow.direction, LineageEdgeRow.name, ArtifactRow)
        .join(ArtifactRow, ArtifactRow.id == LineageEdgeRow.artifact_id)
        .where(LineageEdgeRow.task_run_id == key)
        .order_by(LineageEdgeRow.id)
    )
    data["inputs"], data["outputs"] = [], []
    for edge in edges:
        data[f"{edge.direction}s"].append({"name": edge.name, **artifact_info(edge).to_dict()})
    data["metrics"], data["params"] = {}, {}
    for metric in conn.execute(
        select(MetricRow.kind, MetricRow.key, MetricRow.value, MetricRow.value_json)
        .where(MetricRow.task_run_id == key)
        .order_by(MetricRow.id)
    ):
        if metric.kind == "metric":
            data["metrics"][metric.key] = metric.value
        else:
            data["params"][metric.key] = metric.value_json
    return data


def output_hashes(conn: Connection, run_id: str) -> dict[str, list[str]]:
    """node id -> content hashes of its outputs, in output order, for one (full) run id."""
    rows = conn.execute(
        select(TaskRunRow.node_id, LineageEdgeRow.name, ArtifactRow.content_hash)
        .join(LineageEdgeRow, LineageEdgeRow.task_run_id == TaskRunRow.id)
        .join(ArtifactRow, ArtifactRow.id == LineageEdgeRow.artifact_id)
        .where(TaskRunRow.run_id == run_id, LineageEdgeRow.direction == "output")
    )
    found: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for row in rows:
        found[row.node_id].append((int(row.name) if row.name.isdigit() else 0, row.content_hash))
    return {node: [h for _, h in sorted(items)] for node, items in found.items()}


# ---- metrics ---------------------------------------------------------------------------------


def pipeline_metric(conn: Connection, pipeline: str, key: str, limit: int) -> list[dict[str, Any]]:
    """The last value of metric ``key`` in each of the newest ``limit`` runs of ``pipeline``
    that logged it, oldest run first, with the run's id, creation time and state."""
    recent = (
        select(RunRow.id)
        .where(
            RunRow.pipeline_name == pipeline,
            select(MetricRow.id)
            .where(MetricRow.run_id == RunRow.id, MetricRow.kind == "metric", MetricRow.key == key)
            .exists(),
        )
        .order_by(RunRow.created_at.desc(), RunRow.id.desc())
        .limit(limit)
        .subquery()
    )
    rows = conn.execute(
        select(
            RunRow.id,
            RunRow.created_at,
            RunRow.state,
            TaskRunRow.node_id,
            MetricRow.value,
            MetricRow.step,
            MetricRow.ts,
        )
        .join(RunRow, RunRow.id == MetricRow.run_id)
        .outerjoin(TaskRunRow, TaskRunRow.id == MetricRow.task_run_id)
        .where(
            MetricRow.run_id.in_(select(recent.c.id)),
            MetricRow.kind == "metric",
            MetricRow.key == key,
        )
        .order_by(RunRow.created_at, RunRow.id, MetricRow.id)
    )
    last: dict[str, dict[str, Any]] = {}
    for row in rows:  # in logging order: the last row of each run wins
        last[row.id] = {
            "run_id": row.id,
            "created_at": row.created_at,
            "state": row.state,
            "node": row.node_id,
            "value": row.value,
            "step": row.step,
            "ts": row.ts,
        }
    return list(last.values())


# ---- artifacts -------------------------------------------------------------------------------


def artifact(conn: Connection, content_hash: str) -> dict[str, Any]:
    """The artifact with ``content_hash`` (or a unique prefix of at least 8 characters), with
    the task runs that output it and those that consumed it (``(run id, node, cached)``).

    Raises:
        NotFound: no artifact matches, or the prefix matches several.
    """
    query = select(ArtifactRow)
    if len(content_hash) < 8:
        query = query.where(ArtifactRow.content_hash == content_hash)
    else:
        query = query.where(ArtifactRow.content_hash.startswith(content_hash, autoescape=True))
    rows = conn.execute(query.order_by(ArtifactRow.content_hash).limit(2)).all()
    if len(rows) != 1:
        problem = "is ambiguous: it matches several" if rows else "matches no artifact"
        raise NotFound(
            f"artifact hash `{content_hash}` {problem}; give the full content hash, as run "
            "details and lineage show it"
        )
    row = rows[0]
    data = {**artifact_info(row).to_dict(), "created_at": row.created_at}
    users = conn.execute(
        select(LineageEdgeRow.direction, TaskRunRow.run_id, TaskRunRow.node_id, TaskRunRow.cached)
        .join(TaskRunRow, TaskRunRow.id == LineageEdgeRow.task_run_id)
        .where(LineageEdgeRow.artifact_id == row.id)
        .order_by(LineageEdgeRow.id)
    ).all()
    for direction, key in (("output", "produced_by"), ("input", "consumed_by")):
        data[key] = [
            {"run_id": u.run_id, "node": u.node_id, "cached": u.cached}
            for u in users
            if u.direction == direction
        ]
    return data
