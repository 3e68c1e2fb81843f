"""Runs: pages of summaries with keyset pagination and filters, one run, its graph, one task.

Invariants:

- Reads never write: nothing here sweeps crashed runs (that is ``glasspane runs sweep``), so a
  run whose driver died shows ``running`` until a sweep marks it.
- A page's cursor names the last run on it, ``(created_at, run id)``; the next page holds the
  runs strictly older than that in the same order, so runs started meanwhile never shift a
  page and no run is shown twice or skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timezone
from typing import Any

from ..errors import InvalidArgument
from ..store import MetadataStore, browse
from ..types import PENDING, STATES
from .cache_reasons import explain_cache
from .records import (
    ArtifactRef,
    Attempt,
    RunDetail,
    RunGraph,
    RunPage,
    RunSummary,
    TaskDetail,
)

MAX_PAGE = 500


def encode_cursor(created_at: datetime, run_id: str) -> str:
    """The opaque cursor naming a page boundary (URL-safe text)."""
    raw = json.dumps([created_at.astimezone(timezone.utc).isoformat(), run_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The ``(created_at, run id)`` of a cursor from :func:`encode_cursor`.

    Raises:
        InvalidArgument: the cursor was not made by :func:`encode_cursor`.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, run_id = json.loads(raw)
        return datetime.fromisoformat(at), str(run_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidArgument(
            f"cursor `{cursor}` is not one a page of runs returned; pass `next_cursor` "
            "of the previous page as it is, or no cursor for the first page"
        ) from exc


def _states(
    values: str | list[str] | tuple[str, ...] | None, known: tuple[str, ...] | None
) -> tuple[str, ...]:
    chosen = (values,) if isinstance(values, str) else tuple(values or ())
    if known is not None:
        unknown = [value for value in chosen if value not in known]
        if unknown:
            raise InvalidArgument(
                f"unknown run state `{unknown[0]}`; use one of {', '.join(known)}"
            )
    return chosen


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidArgument(f"`{name}` must be timezone-aware, e.g. datetime.now(timezone.utc)")
    return value


def list_runs(
    metadata: MetadataStore,
    *,
    limit: int = 50,
    cursor: str | None = None,
    pipeline: str | None = None,
    state: str | list[str] | None = None,
    trigger: str | list[str] | None = None,
    schedule: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tag: str | None = None,
) -> RunPage:
    """One page of run summaries, newest first.

    Args:
        metadata: the metadata store to read.
        limit: at most this many runs on the page, 1 to :data:`MAX_PAGE`.
        cursor: ``next_cursor`` of the previous page; None for the first page.
        pipeline: only runs of the pipeline with this name.
        state: only runs in this state (or any of these states).
        trigger: only runs started this way (``manual``, ``retry``, ``schedule``,
            ``backfill``, ``after``...), or any of several.
        schedule: only runs the schedule of this name launched.
        since: only runs created at or after this (timezone-aware) time.
        until: only runs created before this (timezone-aware) time.
        tag: only runs of a pipeline version with a task tagged ``tag``.

    Raises:
        InvalidArgument: ``limit`` is out of range, a state is unknown, a time is naive, or the
            cursor is not one a page returned.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument(f"a page holds 1 to {MAX_PAGE} runs, not {limit}")
    filters: dict[str, Any] = {
        "pipeline": pipeline,
        "states": _states(state, STATES),
        "triggers": _states(trigger, None),
        "schedule": schedule,
        "since": _aware(since, "since"),
        "until": _aware(until, "until"),
        "after": None if cursor is None else decode_cursor(cursor),
    }
    if tag is not None:
        filters["version_ids"] = metadata.read(browse.tagged_versions, tag)
    rows = metadata.read(browse.run_page, limit=limit + 1, **filters)
    more = len(rows) > limit
    runs = [RunSummary(**row) for row in rows[:limit]]
    last = runs[-1] if more else None
    return RunPage(
        runs=runs, next_cursor=None if last is None else encode_cursor(last.created_at, last.run_id)
    )


def get_run(metadata: MetadataStore, run_id: str) -> RunDetail:
    """One run with every task run's outcome and timings (no captured text: see
    :func:`task_detail`).

    Args:
        run_id: the run's id or a unique prefix of it (at least 4 characters).

    Raises:
        NotFound: no run matches, or the prefix matches several (they are named).
    """
    return RunDetail.model_validate(metadata.read(browse.run, run_id))


def run_graph(metadata: MetadataStore, run_id: str) -> RunGraph:
    """The graph of a run's pipeline version, each node with its task run's state.

    Raises:
        NotFound: no run matches ``run_id`` (or its unique prefix).
    """
    run = metadata.read(browse.run, run_id)  # the records are validated once, below
    _, graph = metadata.read(browse.graph_json, run["run_id"])
    graph = graph or {}
    tasks = {task["node"]: task for task in run["tasks"]}
    nodes: list[dict[str, Any]] = []
    for spec in graph.get("nodes", ()):
        task = tasks.pop(spec["id"], None) or {}
        nodes.append(
            {
                "id": spec["id"],
                "task": spec["task"],
                "state": task.get("state", PENDING),
                "cached": bool(task.get("cached")),
                "duration": task.get("duration"),
                "map_index": spec.get("map_index"),
                "parent_node": task.get("parent_node"),
                "tags": spec.get("tags") or [],
            }
        )
    edges = list(graph.get("edges", ()))
    for task in tasks.values():  # created at run time by an expander
        nodes.append(
            {
                "id": task["node"],
                "task": task["task"],
                "state": task["state"],
                "cached": bool(task["cached"]),
                "duration": task["duration"],
                "map_index": task["map_index"],
                "parent_node": task["parent_node"],
                "tags": [],
            }
        )
        if task["parent_node"] is not None:
            edges.append({"source": task["parent_node"], "target": task["node"], "args": []})
    return RunGraph.model_validate(
        {
            "run_id": run["run_id"],
            "pipeline": run["pipeline"],
            "version_hash": run["version_hash"],
            "nodes": nodes,
            "edges": edges,
            "output": list(graph.get("output", ())),
        }
    )


def _artifact_ref(item: dict[str, Any]) -> ArtifactRef:
    return ArtifactRef(
        name=item["name"],
        content_hash=item["content_hash"],
        type_name=item["type_name"],
        materializer=item["materializer"],
        size=item["size"],
        uri=item["uri"],
        summary=item["preview"],
    )


def task_detail(metadata: MetadataStore, run_id: str, node: str) -> TaskDetail:
    """One task run in full: attempts, error and traceback, captured output and log tail,
    cache key and whether it hit, input and output artifacts, metrics and params.

    Args:
        run_id: the run's id or a unique prefix of it.
        node: the node id of the task run.

    Raises:
        NotFound: no such run, or the run has no such node (the message names its nodes).
    """
    row = metadata.read(browse.task_run, run_id, node)
    return TaskDetail(
        run_id=row["run_id"],
        node=row["node_id"],
        task=row["task_name"],
        state=row["state"],
        cache_key=row["cache_key"],
        cache_hit=bool(row["cached"]),
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        duration=row["duration"],
        error=row["error"],
        traceback=row["traceback"],
        stdout=row["stdout"],
        stderr=row["stderr"],
        log_tail=row["log_tail"],
        note=row["note"],
        parent_node=row["parent_node"],
        map_index=row["map_index"],
        attempts=[Attempt(**attempt) for attempt in row["attempt_rows"]],
        inputs=[_artifact_ref(item) for item in row["inputs"]],
        outputs=[_artifact_ref(item) for item in sorted(row["outputs"], key=_output_order)],
        metrics=row["metrics"],
        params=row["params"],
        cache=explain_cache(metadata, row),
    )


def _output_order(item: dict[str, Any]) -> tuple[int, str]:
    name = item["name"]
    return (int(name), "") if name.isdigit() else (1 << 30, name)
