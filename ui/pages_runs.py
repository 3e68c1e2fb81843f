"""The runs list (``/``) and one run's page (``/runs/{run_id}``), with its Cancel and Retry
forms.

The runs list is one query (a keyset page of ``queries.list_runs``), so its first page stays
fast however many runs the store holds. A run's page renders its graph, timeline and task
table server-side; on a run that is not over, ``live.js`` follows its events and asks for
``?partial=live`` (the graph, timeline, task table and counts alone) to redraw them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from glasspane import InvalidArgument, NotFound, ParameterError, Workspace, queries
from glasspane.types import SUCCEEDED, TERMINAL_STATES

from . import forms
from .pages_base import html_errors, render, workspace
from .pages_format import run_url, task_url
from .render import run_graph_svg, state_bar_svg, timeline_svg
from .render.groups import group_key

#: runs on a page of the runs list
PAGE_SIZE = 50
#: task rows a run's page shows at most (those that did not succeed first, when cut)
MAX_TASK_ROWS = 500
#: a map of more elements than this is drawn as one group node
GRAPH_BUDGET = 50
#: what the runs list's trigger field suggests
TRIGGERS = ("manual", "ui", "schedule", "backfill", "after", "retry")


def run_row(run: queries.RunSummary) -> dict[str, Any]:
    """A run as a row of a runs table: the summary, its task bar and counts text."""
    other = max(run.n_tasks - run.n_succeeded - run.n_failed, 0)
    bar = state_bar_svg({SUCCEEDED: run.n_succeeded, "failed": run.n_failed, "other": other})
    counts = f"{run.n_succeeded}/{run.n_tasks}"
    if run.n_failed:
        counts += f" · {run.n_failed} failed"
    if run.n_cached:
        counts += f" · {run.n_cached} cached"
    return {"run": run, "bar": bar, "counts": counts}


@html_errors
def runs_list(request: Request) -> Response:
    """``GET /``: a page of runs, newest first, filtered by the GET form's fields."""
    query = request.query_params
    filters = forms.run_filters(query, query.getlist("state"))
    cursor = query.get("cursor") or None
    page = None
    error = notice = None
    try:
        kwargs = filters.query(datetime.now(timezone.utc))
        page = workspace(request).query(queries.list_runs, cursor=cursor, limit=PAGE_SIZE, **kwargs)
    except InvalidArgument as exc:
        error = str(exc)
    except NotFound as exc:  # no database yet: nothing has run
        notice = str(exc)
    runs = page.runs if page else []
    context = {
        "nav": "runs",
        "filters": filters,
        "rows": [run_row(run) for run in runs],
        "scheduled": any(run.scheduled_for is not None for run in runs),
        "cursor": cursor,
        "older_url": filters.url(page.next_cursor) if page and page.next_cursor else None,
        "newest_url": filters.url(),
        "error": error,
        "notice": notice,
        "states": forms.STATES,
        "windows": forms.WINDOWS,
        "triggers": TRIGGERS,
        "pipeline_names": sorted({run.pipeline for run in runs}),
    }
    return render(request, "runs.html", context, status=400 if error else 200)


def expand_url(expand: Sequence[str], group: str) -> str:
    """The run page's URL with ``group`` added to the expanded groups."""
    return "?" + urlencode([("expand", name) for name in [*expand, group]])


def state_counts(tasks: Sequence[queries.TaskSummary]) -> list[tuple[str, int]]:
    """Task runs by state, in the engine's order of states."""
    counts: dict[str, int] = {}
    for task in tasks:
        counts[task.state] = counts.get(task.state, 0) + 1
    order = {state: i for i, state in enumerate(forms.STATES)}
    return sorted(counts.items(), key=lambda item: order.get(item[0], len(order)))


def task_rows(tasks: Sequence[queries.TaskSummary]) -> list[queries.TaskSummary]:
    """The task table's rows: all of them, or those that did not succeed first when cut."""
    if len(tasks) <= MAX_TASK_ROWS:
        return list(tasks)
    return sorted(tasks, key=lambda task: task.state == SUCCEEDED)[:MAX_TASK_ROWS]


def live_context(request: Request, run: queries.RunDetail, graph: queries.RunGraph) -> dict:
    """What the live parts of a run's page need: graph, timeline, task table, counts, end
    time, duration, metrics and output (blocking)."""
    expand = request.query_params.getlist("expand")
    sizes: dict[str, int] = {}
    for node in graph.nodes:
        key = group_key(node.id, node.map_index, node.parent_node)
        if key is not None:
            sizes[key] = sizes.get(key, 0) + 1
    groups = {key: n for key, n in sizes.items() if n > GRAPH_BUDGET and key not in expand}

    def href(node: str) -> str:
        if node in groups:
            return expand_url(expand, node)
        return task_url(run.run_id, node)

    now = datetime.now(timezone.utc)
    rows = task_rows(run.tasks)
    running_for = None
    if run.started_at is not None and run.ended_at is None:
        running_for = (now - run.started_at).total_seconds()
    return {
        "run": run,
        "terminal": run.state in TERMINAL_STATES,
        "running_for": running_for,
        "metrics": metric_rows(workspace(request).query(queries.run_metrics, run.run_id)),
        "graph_svg": run_graph_svg(graph, expand=expand, budget=GRAPH_BUDGET, href=href),
        "timeline": timeline_svg(run.tasks, now=None if run.ended_at else now, href=href),
        "groups": [(key, n, expand_url(expand, key)) for key, n in groups.items()],
        "expanded": expand,
        "tasks": rows,
        "tasks_hidden": len(rows) < len(run.tasks),
        "counts": state_counts(run.tasks),
        "counts_total": len(run.tasks),
        "n_cached": sum(1 for task in run.tasks if task.cached),
    }


def metric_rows(metrics: queries.RunMetrics) -> list[dict[str, Any]]:
    """One row per logged metric and node: last value, min, max and number of points."""
    rows: dict[tuple[str, str | None], dict[str, Any]] = {}
    for point in metrics.metrics:
        row = rows.setdefault(
            (point.key, point.node),
            {"key": point.key, "node": point.node, "values": [], "last": None, "count": 0},
        )
        row["count"] += 1
        row["last"] = point.value
        if point.value is not None:
            row["values"].append(point.value)
    for row in rows.values():
        values = row.pop("values")
        row["min"] = min(values, default=None)
        row["max"] = max(values, default=None)
    return sorted(rows.values(), key=lambda row: (row["key"], row["node"] or ""))


def run_context(request: Request, run_id: str, *, retry_error: str | None = None) -> dict[str, Any]:
    """Everything the run page shows (blocking: call it from a thread)."""
    ws = workspace(request)
    run = ws.query(queries.get_run, run_id)
    graph = ws.query(queries.run_graph, run.run_id)
    terminal = run.state in TERMINAL_STATES
    context = live_context(request, run, graph)
    secrets: list[forms.Field] = []
    can_retry = terminal and run.state != SUCCEEDED
    if can_retry:
        try:
            schema = ws.query(queries.pipeline, run.pipeline).params_schema
        except NotFound:
            schema = None
        secrets = forms.secret_fields(schema)
    context.update(
        nav="runs",
        live=not terminal,
        last_seq=run.last_seq,  # the page is as of this event; the stream goes on from it
        can_cancel=not terminal,
        can_retry=can_retry,
        secrets=secrets,
        retry_error=retry_error,
        cancelling=not terminal and bool(request.query_params.get("cancelling")),
        tracker_links=ws.query(queries.tracker_links, run.run_id),
    )
    return context


@html_errors
def run_page(request: Request) -> Response:
    """``GET /runs/{run_id}``; ``?partial=live``: only the parts live.js redraws."""
    run_id = request.path_params["run_id"]
    if request.query_params.get("partial") == "live":
        ws = workspace(request)
        run = ws.query(queries.get_run, run_id)
        context = live_context(request, run, ws.query(queries.run_graph, run.run_id))
        return render(request, "_run_partial.html", context)
    return render(request, "run.html", run_context(request, run_id))


@html_errors
async def cancel_run(request: Request) -> Response:
    """``POST /runs/{run_id}/cancel``: ask the run's process to cancel it; back to the run."""
    run_id = request.path_params["run_id"]
    ws = workspace(request)
    run = await run_in_threadpool(ws.query, queries.get_run, run_id)
    asked = await run_in_threadpool(ws.cancel, run.run_id)
    return RedirectResponse(run_url(run.run_id) + ("?cancelling=1" if asked else ""), 303)


@html_errors
async def retry_run(request: Request) -> Response:
    """``POST /runs/{run_id}/retry``: resume the run as a new one in a child process, with
    the secret parameters the form gives; to the new run's page (303), or the run's page
    again with the message (422) when the parameters do not do."""
    run_id = request.path_params["run_id"]
    ws = workspace(request)
    form = await request.form()
    run = await run_in_threadpool(ws.query, queries.get_run, run_id)
    names = await run_in_threadpool(_secret_names, ws, run.pipeline)
    secrets = {name: str(form[name]) for name in names if form.get(name)}
    try:
        new_id = await run_in_threadpool(
            ws.launch_retry, run.run_id, secrets=secrets or None, trigger="ui"
        )
    except ParameterError as exc:
        context = await run_in_threadpool(run_context, request, run.run_id, retry_error=str(exc))
        return render(request, "run.html", context, status=422)
    return RedirectResponse(run_url(new_id), status_code=303)


def _secret_names(ws: Workspace, pipeline: str) -> list[str]:
    """The secret parameters of ``pipeline`` (none when it has no stored schema)."""
    try:
        schema = ws.query(queries.pipeline, pipeline).params_schema
    except NotFound:
        return []
    return [field.name for field in forms.secret_fields(schema)]
