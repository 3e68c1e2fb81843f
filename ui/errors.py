"""Errors as the UI answers them: a status and one message that says what went wrong and what
to do next.

The JSON API (paths under ``/api/``) answers ``{"error": "<message>"}``; a page answers HTML:
the app's ``state.error_page(request, status, message)`` (the pages' error page), else a
minimal escaped page. Engine errors map to statuses once, here:

=====================================================  ======
``NotFound``                                           404
``ParameterError``, ``InvalidArgument``                422
``RunStillActive``                                     409
``TrackerError`` (a tracker could not be read)         502
any other ``GlasspaneError``                           400
=====================================================  ======
"""

from __future__ import annotations

import html
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from glasspane.errors import (
    GlasspaneError,
    InvalidArgument,
    NotFound,
    ParameterError,
    RunStillActive,
)
from glasspane.tracking import TrackerError


def status_for(exc: GlasspaneError) -> int:
    """The HTTP status an engine error is answered with (see the module docstring)."""
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, (ParameterError, InvalidArgument)):
        return 422
    if isinstance(exc, RunStillActive):
        return 409
    if isinstance(exc, TrackerError):
        return 502
    return 400


def wants_json(path: str) -> bool:
    """Whether an error at ``path`` is answered as JSON (the API) rather than as a page."""
    return path == "/api" or path.startswith("/api/")


def error_response(request: Request, status: int, message: str) -> Response:
    """The response for an error: JSON under ``/api/``, an HTML page elsewhere."""
    if wants_json(request.url.path):
        return JSONResponse({"error": message}, status_code=status)
    page = getattr(request.app.state, "error_page", None)
    if page is not None:
        response: Response = page(request, status, message)
        return response
    return HTMLResponse(plain_page(f"Error {status}", message), status_code=status)


def plain_page(title: str, message: str, body: str = "") -> str:
    """A minimal HTML page (no scripts, no styles): ``title``, ``message`` escaped, then
    ``body`` as it is (the caller escapes what it puts there)."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} · glasspane</title></head>\n"
        f"<body><h1>{html.escape(title)}</h1>\n<p>{html.escape(message)}</p>\n{body}"
        '<p><a href="/">All runs</a></p></body></html>\n'
    )


async def glasspane_error(request: Request, exc: Exception) -> Response:
    """Exception handler: an engine error, with the status of :func:`status_for`."""
    assert isinstance(exc, GlasspaneError)
    return error_response(request, status_for(exc), str(exc))


async def http_error(request: Request, exc: Exception) -> Response:
    """Exception handler: Starlette's 404 (no route) and 405 (wrong method), said usefully."""
    assert isinstance(exc, HTTPException)
    method, path = request.method, request.url.path
    if exc.status_code == 404:
        where = "see /api/openapi.json for the routes" if wants_json(path) else "start at /"
        message = f"nothing at {path}; {where}"
    elif exc.status_code == 405:
        message = f"{path} does not take {method} requests; see /api/openapi.json"
    else:
        message = str(exc.detail)
    response = error_response(request, exc.status_code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


#: the app's ``exception_handlers``
HANDLERS: dict[Any, Any] = {GlasspaneError: glasspane_error, HTTPException: http_error}
