"""Pipelines (``/pipelines``) and one pipeline (``/pipelines/{name}``): its versions with
their graphs, recent runs, a chart of each metric across runs, and a Run form built from
its parameter schema, posted to ``/pipelines/{name}/launch``.

Launching never imports the pipeline's code here: the form's text is checked against the
stored schema (``Workspace.check_params``, the CLI's messages) and the run starts in a child
process (``Workspace.launch``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from glasspane import GlasspaneError, NotFound, ParameterError, queries

from . import forms
from .pages_base import html_errors, render, workspace
from .pages_format import run_url
from .pages_runs import run_row
from .pages_trackers import tracker_sections
from .render import metric_chart_svg, version_graph_svg

#: versions drawn on a pipeline's page, newest first
MAX_VERSIONS = 5
#: runs in its "recent runs" table
RECENT_RUNS = 15
#: the newest runs whose metrics name the charts, and the charts drawn at most
METRIC_RUNS, MAX_CHARTS = 5, 12


@html_errors
def pipelines_list(request: Request) -> Response:
    """``GET /pipelines``: every pipeline with runs, its newest run and counts."""
    notice = None
    try:
        found = workspace(request).query(queries.pipelines)
    except NotFound as exc:  # no database yet
        found, notice = [], str(exc)
    context = {"nav": "pipelines", "pipelines": found, "notice": notice}
    return render(request, "pipelines.html", context)


def metric_keys(request: Request, runs: list[queries.RunSummary]) -> list[str]:
    """The metrics the newest runs logged, by name."""
    keys: set[str] = set()
    for run in runs[:METRIC_RUNS]:
        metrics = workspace(request).query(queries.run_metrics, run.run_id)
        keys.update(point.key for point in metrics.metrics)
    return sorted(keys)[:MAX_CHARTS]


def pipeline_context(
    request: Request,
    name: str,
    *,
    values: Mapping[str, str] | None = None,
    launch_error: str | None = None,
    from_run: str | None = None,
) -> dict[str, Any]:
    """Everything the pipeline page shows (blocking)."""
    ws = workspace(request)
    summary = ws.query(queries.pipeline, name)
    versions = ws.query(queries.pipeline_versions, name)
    runs = ws.query(queries.list_runs, pipeline=name, limit=RECENT_RUNS).runs
    charts = []
    for key in metric_keys(request, runs):
        series = ws.query(queries.metric_across_runs, name, key)
        svg = metric_chart_svg(series, href=run_url)
        charts.append({"key": key, "svg": svg, "count": len(series.runs)})
    if from_run and values is None:
        run = ws.query(queries.get_run, from_run)
        values, from_run = forms.run_values(run.params), run.run_id
    schema = summary.params_schema
    fields = forms.fields_from_schema(schema, values)
    note = None
    if summary.reference is None:
        note = (
            "This pipeline's latest run was started from code glasspane cannot import again "
            "(a notebook, an interactive session), so it cannot be launched from here; run it "
            "from a file or module: glasspane run FILE.py:NAME"
        )
    elif schema is None:
        note = (
            "This pipeline has no stored parameter schema (it has not run since glasspane "
            "started storing one, or a parameter's type has no JSON schema); launch it from "
            "the command line: glasspane run REFERENCE -p NAME=VALUE"
        )
    return {
        "nav": "pipelines",
        "summary": summary,
        "versions": [
            {"version": v, "graph_svg": version_graph_svg(v.graph or {})}
            for v in versions[:MAX_VERSIONS]
        ],
        "versions_cut": len(versions) > MAX_VERSIONS,
        "runs": [run_row(run) for run in runs],
        "charts": charts,
        "fields": fields,
        "has_secrets": any(field.kind == forms.PASSWORD for field in fields),
        "can_launch": note is None,
        "launch_note": note,
        "launch_error": launch_error,
        "from_run": from_run,
        "trackers": tracker_sections(request, ws.settings, name),
        "compare_with": runs[0].run_id if runs else None,
    }


@html_errors
def pipeline_page(request: Request) -> Response:
    """``GET /pipelines/{name}``; ``?from=RUN`` prefills the Run form with a run's values."""
    name = request.path_params["name"]
    from_run = request.query_params.get("from") or None
    return render(request, "pipeline.html", pipeline_context(request, name, from_run=from_run))


@html_errors
async def launch(request: Request) -> Response:
    """``POST /pipelines/{name}/launch``: check the Run form's values, start the run in a
    child process and go to its page (303); the form again with the message (422) when a
    value does not do."""
    name = request.path_params["name"]
    form = await request.form()
    ws = workspace(request)
    summary = await run_in_threadpool(ws.query, queries.pipeline, name)
    raw = forms.form_params(forms.fields_from_schema(summary.params_schema), form)

    def start() -> str:
        if summary.reference is None:
            raise ParameterError(
                f"pipeline `{name}` cannot be launched from the web UI: its latest run was "
                "started from code glasspane cannot import again"
            )
        params = ws.check_params(name, raw)
        return ws.launch(summary.reference, params, trigger="ui")

    try:
        run_id = await run_in_threadpool(start)
    except GlasspaneError as exc:
        if isinstance(exc, NotFound):
            raise
        context = await run_in_threadpool(
            functools.partial(pipeline_context, request, name, values=raw, launch_error=str(exc))
        )
        status = 422 if isinstance(exc, ParameterError) else 400
        return render(request, "pipeline.html", context, status=status)
    return RedirectResponse(run_url(run_id), status_code=303)
