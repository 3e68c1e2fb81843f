"""The JSON API: every page's data under ``/api/...``, as the queries' own records.

Reads are plain (sync) endpoints, which Starlette runs in its thread pool, since queries
block. Launch, retry and cancel start or signal runs in other processes and answer at once:
the UI process never runs pipeline code. :data:`OPERATIONS` declares every route once; the
routes table (:data:`routes`) and the OpenAPI document (``/api/openapi.json``) are both built
from it.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import glasspane
from glasspane import queries
from glasspane.errors import GlasspaneError, NotFound
from glasspane.queries import (
    ArtifactDetail,
    Lineage,
    MetricAcrossRuns,
    PipelineSummary,
    PipelineVersion,
    RunComparison,
    RunDetail,
    RunGraph,
    RunMetrics,
    RunPage,
    TaskDetail,
)

from . import api_models, api_schedules, api_trackers, openapi, sse
from .api_params import (
    ArtifactPath,
    Cancelled,
    CompareQuery,
    EventsQuery,
    Launched,
    LaunchRequest,
    LineageQuery,
    MetricPath,
    MetricQuery,
    PipelinePath,
    RetryRequest,
    RunPath,
    RunsQuery,
    TaskPath,
    VersionPath,
    VersionsQuery,
    body,
    json_response,
    path,
    query,
)
from .openapi import Operation


def workspace(request: Request) -> glasspane.Workspace:
    """The Workspace the app serves."""
    ws: glasspane.Workspace = request.app.state.workspace
    return ws


# ---- reads -------------------------------------------------------------------------------------


def runs(request: Request) -> Response:
    """Runs, newest first, one page at a time; pass `next_cursor` as `cursor` for the next."""
    q = query(request, RunsQuery)
    try:
        page = workspace(request).query(queries.list_runs, **q.filters())
    except NotFound:  # no database yet: nothing has run here
        page = RunPage(runs=[], next_cursor=None)
    return json_response(page, RunPage)


def run(request: Request) -> Response:
    """One run with every task run's outcome and timings."""
    p = path(request, RunPath)
    return json_response(workspace(request).query(queries.get_run, p.run_id), RunDetail)


def graph(request: Request) -> Response:
    """A run's graph, each node with the state of its task run."""
    p = path(request, RunPath)
    return json_response(workspace(request).query(queries.run_graph, p.run_id), RunGraph)


def metrics(request: Request) -> Response:
    """Every metric and param a run's tasks logged, in logging order."""
    p = path(request, RunPath)
    return json_response(workspace(request).query(queries.run_metrics, p.run_id), RunMetrics)


def task(request: Request) -> Response:
    """One task run in full: attempts, errors, captured output, cache, artifacts, metrics."""
    p = path(request, TaskPath)
    detail = workspace(request).query(queries.task_detail, p.run_id, p.node)
    return json_response(detail, TaskDetail)


def artifact(request: Request) -> Response:
    """One artifact by content hash, with who produced and consumed it and a safe preview."""
    p = path(request, ArtifactPath)
    detail = workspace(request).query(queries.artifact, p.content_hash)
    return json_response(detail, ArtifactDetail)


def lineage(request: Request) -> Response:
    """What fed one task run (upstream) or what consumed its outputs (downstream)."""
    p, q = path(request, TaskPath), query(request, LineageQuery)
    found = workspace(request).query(
        queries.lineage, p.run_id, p.node, direction=q.direction, depth=q.depth
    )
    return json_response(found, Lineage)


def pipelines(request: Request) -> Response:
    """Every pipeline with recorded runs, by name."""
    return json_response(_pipelines(workspace(request)), list[PipelineSummary])


def pipeline_versions(request: Request) -> Response:
    """A pipeline's versions, newest first, with their graphs."""
    p, q = path(request, PipelinePath), query(request, VersionsQuery)
    versions = workspace(request).query(queries.pipeline_versions, p.name, graphs=q.graphs)
    return json_response(versions, list[PipelineVersion])


def pipeline_version(request: Request) -> Response:
    """One version of a pipeline by its hash (or a unique prefix), with its graph."""
    p = path(request, VersionPath)
    version = workspace(request).query(queries.pipeline_version, p.name, p.hash)
    return json_response(version, PipelineVersion)


def metric_across_runs(request: Request) -> Response:
    """One metric's last value in each of a pipeline's newest runs that logged it."""
    p, q = path(request, MetricPath), query(request, MetricQuery)
    found = workspace(request).query(queries.metric_across_runs, p.name, p.key, limit=q.limit)
    return json_response(found, MetricAcrossRuns)


def compare(request: Request) -> Response:
    """Two runs side by side: parameters, metrics, each node's outputs and durations."""
    left, right = query(request, CompareQuery).pair()
    found = workspace(request).query(queries.compare_runs, left, right)
    return json_response(found, RunComparison)


def _pipelines(ws: glasspane.Workspace) -> list[PipelineSummary]:
    try:
        return ws.query(queries.pipelines)
    except NotFound:  # no database yet: nothing has run here
        return []


# ---- runs in other processes -------------------------------------------------------------------


async def launch(request: Request) -> Response:
    """Launch a run of a pipeline, by the reference of its latest run, in its own process.

    Parameters are checked first, as `glasspane run -p name=value` checks them: bad ones are
    a 422 and nothing is launched.
    """
    name = path(request, PipelinePath).name
    params = as_text((await body(request, LaunchRequest)).params)
    ws = workspace(request)

    def start() -> str:
        reference = launch_reference(ws, name)
        return ws.launch(reference, ws.check_params(name, params), trigger="ui")

    return json_response(Launched(run_id=await run_in_threadpool(start)), Launched, 202)


async def retry(request: Request) -> Response:
    """Resume a failed, cancelled or crashed run as a new run, in its own process."""
    run_id = path(request, RunPath).run_id
    secrets = (await body(request, RetryRequest)).secrets
    ws = workspace(request)
    new = await run_in_threadpool(
        lambda: ws.launch_retry(run_id, secrets=secrets or None, trigger="ui")
    )
    return json_response(Launched(run_id=new), Launched, 202)


async def cancel(request: Request) -> Response:
    """Ask the process running a run to cancel it; it stops at its next heartbeat."""
    run_id = path(request, RunPath).run_id
    ws = workspace(request)

    def request_cancel() -> Cancelled:
        full_id = ws.query(queries.get_run, run_id).run_id
        return Cancelled(run_id=full_id, cancelled=ws.cancel(full_id))

    return json_response(await run_in_threadpool(request_cancel), Cancelled)


def launch_reference(ws: glasspane.Workspace, name: str) -> str:
    """The reference a pipeline is launched by: that of its latest run.

    Raises:
        NotFound: no pipeline ``name`` has run here (the message names those that have).
        GlasspaneError: its latest run was started from code that cannot be imported again.
    """
    reference = ws.query(queries.pipeline, name).reference
    if reference is None:
        raise GlasspaneError(
            f"the latest run of pipeline `{name}` was started from code glasspane cannot "
            "import again (a notebook cell, or a function defined inside another); run it "
            "once with `glasspane run FILE.py:NAME` and it can be launched from the UI"
        )
    return reference


def as_text(params: dict[str, Any]) -> dict[str, str]:
    """Parameter values as `glasspane run -p name=value` takes them: text as it is, other
    JSON values as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}


# ---- the routes --------------------------------------------------------------------------------

OPERATIONS: list[Operation] = [
    Operation("GET", "/api/runs", runs, "List runs", RunPage, query=RunsQuery, errors=(400, 422)),
    Operation("GET", "/api/runs/{run_id}", run, "One run", RunDetail, path_params=RunPath),
    Operation("GET", "/api/runs/{run_id}/graph", graph, "A run's graph", RunGraph,
              path_params=RunPath),
    Operation("GET", "/api/runs/{run_id}/metrics", metrics, "A run's metrics", RunMetrics,
              path_params=RunPath),
    Operation("GET", "/api/runs/{run_id}/tasks/{node:path}", task, "One task run", TaskDetail,
              path_params=TaskPath),
    Operation("GET", "/api/runs/{run_id}/events", sse.events, "A run's events, live", None,
              path_params=RunPath, query=EventsQuery, errors=(400, 404, 422, 503)),
    Operation("POST", "/api/runs/{run_id}/cancel", cancel, "Cancel a run", Cancelled,
              path_params=RunPath),
    Operation("POST", "/api/runs/{run_id}/retry", retry, "Retry a run", Launched, status=202,
              path_params=RunPath, body=RetryRequest, errors=(400, 404, 409, 422)),
    Operation("GET", "/api/artifacts/{content_hash}", artifact, "One artifact", ArtifactDetail,
              path_params=ArtifactPath),
    Operation("GET", "/api/lineage/{run_id}/{node:path}", lineage, "A task run's lineage",
              Lineage, path_params=TaskPath, query=LineageQuery),
    Operation("GET", "/api/pipelines", pipelines, "List pipelines", list[PipelineSummary],
              errors=(400,)),
    Operation("GET", "/api/pipelines/{name}", pipeline_versions, "A pipeline's versions",
              list[PipelineVersion], path_params=PipelinePath, query=VersionsQuery),
    Operation("GET", "/api/pipelines/{name}/versions/{hash}", pipeline_version,
              "One pipeline version", PipelineVersion, path_params=VersionPath),
    Operation("GET", "/api/pipelines/{name}/metrics/{key}", metric_across_runs,
              "A metric across runs", MetricAcrossRuns, path_params=MetricPath,
              query=MetricQuery),
    Operation("POST", "/api/pipelines/{name}/launch", launch, "Launch a run", Launched,
              status=202, path_params=PipelinePath, body=LaunchRequest),
    Operation("GET", "/api/compare", compare, "Compare two runs", RunComparison,
              query=CompareQuery),
    *api_schedules.OPERATIONS,
    *api_trackers.OPERATIONS,
    *api_models.OPERATIONS,
]  # fmt: skip


def openapi_json(request: Request) -> Response:
    """The OpenAPI document of this API, generated from the records it serves."""
    doc = getattr(request.app.state, "openapi", None)
    if doc is None:
        token = getattr(request.app.state, "token", None) is not None
        doc = request.app.state.openapi = openapi.document(OPERATIONS, token=token)
    return JSONResponse(doc)


routes = [
    *(
        Route(op.path, op.endpoint, methods=[op.method], name=f"api_{op.operation_id}")
        for op in OPERATIONS
    ),
    Route("/api/openapi.json", openapi_json, methods=["GET"], name="api_openapi"),
]
