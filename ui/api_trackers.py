"""The JSON API of the experiment trackers: a run's runs in them (ids, links, delivery); and,
of the trackers that can be read back (MLflow...), a tracker's runs of an experiment, page by
page with the tracker's own page token (runs glasspane did not create included), one run,
and a glasspane run compared with a tracker's run.

A tracker the settings do not turn on is a 404; one that cannot be reached a 502 (the
message names the tracker and what to check). The operations (:data:`OPERATIONS`) join the
API's one routes table and its OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator
from starlette.requests import Request
from starlette.responses import Response

import glasspane
from glasspane import queries
from glasspane.queries import TrackerRunLink
from glasspane.queries.compare import TrackedComparison, compare_tracked
from glasspane.tracking import TrackedRun, TrackedRunPage

from . import trackers
from .api_params import TEXT, Params, RunPath, json_response, path, query
from .openapi import Operation
from .pages_trackers import MAX_TOKEN, compare_side

NAME = r"^[A-Za-z0-9_.-]+$"


class TrackerPath(Params):
    name: str = Field(
        min_length=1, max_length=100, pattern=NAME, description="A configured tracker (`mlflow`)."
    )


class TrackedRunPath(TrackerPath):
    external_id: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="The tracker's id of the run (an MLflow run id).",
    )


class TrackedRunsQuery(Params):
    experiment: str | None = Field(
        None, min_length=1, max_length=500, pattern=TEXT, description="The tracker's experiment."
    )
    pipeline: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=TEXT,
        description="A pipeline, for the experiment the tracker records its runs in (instead "
        "of `experiment`).",
    )
    page_token: str | None = Field(
        None, max_length=MAX_TOKEN, description="`next_page_token` of the previous page."
    )
    max_results: int = Field(
        trackers.PAGE_SIZE,
        ge=1,
        le=trackers.MAX_PAGE_SIZE,
        description=f"At most this many runs (1 to {trackers.MAX_PAGE_SIZE}).",
    )

    @model_validator(mode="after")
    def _one_of(self) -> TrackedRunsQuery:
        if (self.experiment is None) == (self.pipeline is None):
            raise ValueError("give `experiment` or `pipeline` (one of them)")
        return self


class TrackedCompareQuery(Params):
    runs: str = Field(
        min_length=3,
        max_length=500,
        pattern=r"^[A-Za-z0-9_.:-]+,[A-Za-z0-9_.:-]+$",
        description="The two runs to compare, comma-separated, each a glasspane run id or "
        "`TRACKER:RUN_ID` (`b47e069b,mlflow:0a1b2c`).",
    )


def _settings(request: Request) -> Any:
    ws: glasspane.Workspace = request.app.state.workspace
    return ws.settings


def tracked_runs(request: Request) -> Response:
    """A tracker's runs of an experiment (or of a pipeline's experiment), newest first, one
    page at a time; pass `next_page_token` as `page_token` for the next."""
    name = path(request, TrackerPath).name
    q = query(request, TrackedRunsQuery)
    _, page = trackers.search_runs(
        _settings(request),
        name,
        experiment=q.experiment,
        pipeline=q.pipeline,
        page_token=q.page_token,
        max_results=q.max_results,
    )
    return json_response(page, TrackedRunPage)


def tracked_run(request: Request) -> Response:
    """One run of a tracker, by the tracker's id, with its parameters and metrics."""
    p = path(request, TrackedRunPath)
    return json_response(trackers.get_run(_settings(request), p.name, p.external_id), TrackedRun)


def compare_with_tracker(request: Request) -> Response:
    """Two runs side by side where either may be a tracker's run: parameters and the last
    value of each metric."""
    left, right = query(request, TrackedCompareQuery).runs.split(",")
    ws: glasspane.Workspace = request.app.state.workspace
    sides = [compare_side(ws.settings, part) for part in (left, right)]
    return json_response(ws.query(compare_tracked, sides[0], sides[1]), TrackedComparison)


def run_trackers(request: Request) -> Response:
    """A run's runs in the trackers (MLflow, W&B): their ids and pages, and how far each
    tracker has taken the run (`live`, `pending` with the error, `delivered`)."""
    p = path(request, RunPath)
    ws: glasspane.Workspace = request.app.state.workspace
    return json_response(ws.query(queries.tracker_links, p.run_id), list[TrackerRunLink])


ERRORS = (400, 404, 422, 502)

OPERATIONS: list[Operation] = [
    Operation("GET", "/api/runs/{run_id}/trackers", run_trackers, "A run's tracker runs",
              list[TrackerRunLink], path_params=RunPath),
    Operation("GET", "/api/trackers/{name}/runs", tracked_runs, "A tracker's runs",
              TrackedRunPage, path_params=TrackerPath, query=TrackedRunsQuery, errors=ERRORS),
    Operation("GET", "/api/trackers/{name}/runs/{external_id}", tracked_run,
              "One run of a tracker", TrackedRun, path_params=TrackedRunPath, errors=ERRORS),
    Operation("GET", "/api/compare/tracker", compare_with_tracker,
              "Compare a run with a tracker's run", TrackedComparison,
              query=TrackedCompareQuery, errors=ERRORS),
]  # fmt: skip
