"""What every HTML page endpoint shares: the app's Workspace and templates, rendering one
template, and the error pages.

The app (``glasspane.ui.app``) puts the Workspace at ``app.state.workspace`` and a
``Jinja2Templates`` (autoescaping ``.html``) at ``app.state.templates``; the pages add their
formatting filters to its environment the first time they render.

Errors a page can meet become HTML pages that say what went wrong and link back: an unknown
run, task, artifact or pipeline is a 404; a run that is still active a 409; a tracker that
could not be read a 502; any other error a user can cause (a bad cursor, a bad comparison) a
400.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from glasspane import GlasspaneError, NotFound, Workspace
from glasspane.errors import RunStillActive
from glasspane.tracking import TrackerError

from .pages_format import FILTERS, GLOBALS, run_url


def workspace(request: Request) -> Workspace:
    """The Workspace the app serves."""
    ws: Workspace = request.app.state.workspace
    return ws


def templates(request: Request) -> Jinja2Templates:
    """The app's templates, with the pages' filters and globals installed."""
    found: Jinja2Templates = request.app.state.templates
    env = found.env
    if "reltime" not in env.filters:
        env.filters.update(FILTERS)
        env.globals.update(GLOBALS)
    return found


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The response of template ``name`` rendered with ``context``."""
    response = templates(request).TemplateResponse(
        request, name, dict(context or {}), status_code=status, headers=headers
    )
    return response  # type: ignore[return-value]


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """An error page: what went wrong (``message``) and a link back to where the user was."""
    titles = {
        400: "Bad request",
        404: "Not found",
        409: "Conflict",
        422: "Invalid input",
        502: "Tracker unavailable",
    }
    run_id = request.path_params.get("run_id")
    if run_id and ("node" in request.path_params or status != 404):
        back = (run_url(run_id), f"Back to run {run_id}")
    elif request.url.path.startswith("/pipelines/"):
        back = ("/pipelines", "Back to all pipelines")
    elif request.url.path.startswith("/schedules/"):
        back = ("/schedules", "Back to all schedules")
    else:
        back = ("/", "Back to all runs")
    context = {
        "status": status,
        "title": titles.get(status, "Error"),
        "message": message,
        "back_url": back[0],
        "back_label": back[1],
    }
    return render(request, "error.html", context, status=status)


def error_status(exc: Exception) -> int:
    """The HTTP status of an error a page met."""
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, RunStillActive):
        return 409
    if isinstance(exc, TrackerError):
        return 502
    return 400


def html_errors(endpoint: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """Wrap a page endpoint (sync or async) so that glasspane's errors become error pages."""
    if inspect.iscoroutinefunction(endpoint):

        @functools.wraps(endpoint)
        async def wrapped_async(request: Request) -> Response:
            try:
                response: Response = await endpoint(request)
                return response
            except GlasspaneError as exc:
                return error_page(request, error_status(exc), str(exc))

        return wrapped_async

    @functools.wraps(endpoint)
    def wrapped(request: Request) -> Response:
        try:
            response: Response = endpoint(request)
            return response
        except GlasspaneError as exc:
            return error_page(request, error_status(exc), str(exc))

    return wrapped
