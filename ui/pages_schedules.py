"""Schedules (``/schedules``) and one schedule (``/schedules/{name}``): when each fires, in
UTC and in its own zone, what its recent fire times became, and its Pause / Resume form.

Pausing and resuming go through the Workspace (``Workspace.pause_schedule`` /
``resume_schedule``), posted from a plain form that answers with a 303 back to the
schedule's page; a resumed schedule fires nothing it missed while paused.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from glasspane import NotFound, queries

from .pages_base import html_errors, render, workspace
from .pages_format import schedule_url


def schedule_runs_url(name: str) -> str:
    """The runs list showing only the runs schedule ``name`` launched."""
    return "/?" + urlencode({"schedule": name})


def in_zone(value: datetime | None, zone: str) -> str | None:
    """``value`` as wall-clock time in ``zone`` (``2025-03-30 03:00 CEST``); None when the
    zone is UTC (the UTC time is shown anyway) or there is no value."""
    if value is None or zone == "UTC":
        return None
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def fire_time(value: datetime, zone: str) -> dict[str, Any]:
    """A fire time as the templates show it: the UTC instant and its wall-clock time in the
    schedule's zone."""
    return {"at": value.astimezone(timezone.utc), "local": in_zone(value, zone)}


def schedule_row(summary: queries.ScheduleSummary) -> dict[str, Any]:
    """A schedule as a row of the schedules table (and the head of its page)."""
    return {
        "s": summary,
        "url": schedule_url(summary.name),
        "runs_url": schedule_runs_url(summary.name),
        "next_local": in_zone(summary.next_fire_at, summary.timezone),
        "last_local": in_zone(summary.last_fire_at, summary.timezone),
    }


@html_errors
def schedules_list(request: Request) -> Response:
    """``GET /schedules``: every registered schedule, by name."""
    notice = None
    try:
        found = workspace(request).query(queries.schedules)
    except NotFound as exc:  # no database yet
        found, notice = [], str(exc)
    context = {"nav": "schedules", "rows": [schedule_row(s) for s in found], "notice": notice}
    return render(request, "schedules.html", context)


@html_errors
def schedule_page(request: Request) -> Response:
    """``GET /schedules/{name}``: its definition, next fire times, ticks and Pause form."""
    detail = workspace(request).query(queries.schedule, request.path_params["name"])
    zone = detail.timezone
    context = {
        "nav": "schedules",
        "row": schedule_row(detail),
        "detail": detail,
        "upcoming": [fire_time(at, zone) for at in detail.upcoming],
        "ticks": [{"tick": t, **fire_time(t.fire_at, zone)} for t in detail.ticks],
        "changed": request.query_params.get("changed"),
    }
    return render(request, "schedule.html", context)


@html_errors
async def pause_schedule(request: Request) -> Response:
    """``POST /schedules/{name}/pause``: pause it; back to its page (303)."""
    name = request.path_params["name"]
    changed = await run_in_threadpool(workspace(request).pause_schedule, name)
    return RedirectResponse(_back(name, "paused" if changed else None), status_code=303)


@html_errors
async def resume_schedule(request: Request) -> Response:
    """``POST /schedules/{name}/resume``: resume it from now; back to its page (303)."""
    name = request.path_params["name"]
    changed = await run_in_threadpool(workspace(request).resume_schedule, name)
    return RedirectResponse(_back(name, "resumed" if changed else None), status_code=303)


def _back(name: str, changed: str | None) -> str:
    return schedule_url(name) + (f"?changed={changed}" if changed else "")
