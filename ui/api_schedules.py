"""The JSON API of schedules: list them, read one with its next fire times and ticks, pause
and resume one.

Reads serve ``glasspane.queries`` records as they are; pausing and resuming go through the
Workspace and answer at once (runs a schedule launched go on either way). The operations
(:data:`OPERATIONS`) join the API's one routes table and its OpenAPI document.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

import glasspane
from glasspane import queries
from glasspane.errors import NotFound
from glasspane.queries import ScheduleDetail, ScheduleSummary

from .api_params import TEXT, Params, json_response, path, query
from .openapi import Operation


class SchedulePath(Params):
    name: str = Field(min_length=1, max_length=255, pattern=TEXT, description="A schedule's name.")


class ScheduleQuery(Params):
    ticks: int = Field(
        50,
        ge=1,
        le=500,
        description="The newest this many ticks, and upstream runs of an `after` schedule "
        "(1 to 500).",
    )


class Paused(BaseModel):
    """Whether a schedule is paused now, and whether this request changed that."""

    name: str
    paused: bool
    changed: bool


def _workspace(request: Request) -> glasspane.Workspace:
    ws: glasspane.Workspace = request.app.state.workspace
    return ws


def schedules(request: Request) -> Response:
    """Every registered schedule, by name, with its next fire time and active runs."""
    try:
        found = _workspace(request).query(queries.schedules)
    except NotFound:  # no database yet: nothing is registered
        found = []
    return json_response(found, list[ScheduleSummary])


def schedule(request: Request) -> Response:
    """One schedule with its next five fire times (UTC) and its newest ticks, latest first."""
    p, q = path(request, SchedulePath), query(request, ScheduleQuery)
    detail = _workspace(request).query(queries.schedule, p.name, ticks=q.ticks)
    return json_response(detail, ScheduleDetail)


async def pause_schedule(request: Request) -> Response:
    """Pause a schedule: it fires nothing until resumed; runs it launched go on."""
    name = path(request, SchedulePath).name
    changed = await run_in_threadpool(_workspace(request).pause_schedule, name)
    return json_response(Paused(name=name, paused=True, changed=changed), Paused)


async def resume_schedule(request: Request) -> Response:
    """Resume a schedule from now: fire times missed while paused are not caught up."""
    name = path(request, SchedulePath).name
    changed = await run_in_threadpool(_workspace(request).resume_schedule, name)
    return json_response(Paused(name=name, paused=False, changed=changed), Paused)


OPERATIONS: list[Operation] = [
    Operation("GET", "/api/schedules", schedules, "List schedules", list[ScheduleSummary],
              errors=(400,)),
    Operation("GET", "/api/schedules/{name:path}", schedule, "One schedule", ScheduleDetail,
              path_params=SchedulePath, query=ScheduleQuery),
    Operation("POST", "/api/schedules/{name:path}/pause", pause_schedule, "Pause a schedule",
              Paused, path_params=SchedulePath),
    Operation("POST", "/api/schedules/{name:path}/resume", resume_schedule,
              "Resume a schedule", Paused, path_params=SchedulePath),
]  # fmt: skip
