"""The web UI's Starlette application: one routes table, the security middleware around it.

``create_app(workspace)`` serves one Workspace: the JSON API (:mod:`.api`), the login form
(:mod:`.login`), the pages (:mod:`.pages`) and the static files, all behind
:class:`~.security.SecurityMiddleware` (Host, Origin, token, security headers). Endpoints
find the Workspace at ``request.app.state.workspace`` and the Jinja2 templates (autoescaped)
at ``request.app.state.templates``; errors outside ``/api`` are shown by
``request.app.state.error_page(request, status, message)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

import glasspane
from glasspane.errors import ConfigError

from . import api, login, pages, sse
from .errors import HANDLERS
from .pages_base import error_page
from .security import SecurityMiddleware

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

#: the Host names a server bound to loopback answers to
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def create_app(
    workspace: glasspane.Workspace,
    *,
    token: str | None = None,
    allowed_hosts: Sequence[str] = ("127.0.0.1", "localhost"),
) -> Starlette:
    """The web UI serving ``workspace``.

    Args:
        workspace: whose runs to show; the app never closes it.
        token: the access token every request must carry (``Authorization: Bearer`` or the
            login form's cookie); None for none (bind loopback only).
        allowed_hosts: the names a request's ``Host`` header may carry (DNS rebinding).

    Raises:
        ConfigError: ``token`` is empty.
    """
    if token is not None and not token.strip():
        raise ConfigError("GLASSPANE_UI_TOKEN is set but empty; set it to a long random secret")
    routes: list[BaseRoute] = [
        *api.routes,
        *login.routes,
        *pages.routes,
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityMiddleware, token=token, allowed_hosts=list(allowed_hosts))],
        exception_handlers=HANDLERS,
    )
    app.state.workspace = workspace
    app.state.token = token
    app.state.error_page = error_page  # how errors outside the API are shown
    app.state.streams = sse.Streams()  # the live event streams, ended when the server stops
    app.state.templates = Jinja2Templates(
        env=jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    )
    return app
