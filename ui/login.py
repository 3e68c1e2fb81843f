"""``/login`` and ``/logout``: the form that trades the UI's token for a session cookie.

With no token configured there is nothing to log in to: both redirect to the runs list.
The form posts the token (never in a URL); a wrong one re-renders the form with status 401.
The page is plain HTML with no script or style, so it needs no static file (static files
need the token too).
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .auth import expired_cookie, session_cookie, token_matches
from .errors import plain_page

#: the longest token the form accepts (a token is a few dozen characters)
MAX_TOKEN = 4096


def safe_next(value: object) -> str:
    """Where to go after logging in: a path on this site, else ``/`` (never another site:
    ``//evil.example`` and ``/\\evil.example`` are not paths here)."""
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or any(ord(c) < 0x20 or c == "\\" for c in value)
    ):
        return "/"
    return value


def login_page(next_path: str, message: str, *, status: int = 401) -> HTMLResponse:
    """The login form, posting the token to ``/login``, then going to ``next_path``."""
    form = (
        '<form method="post" action="/login">\n'
        '<label for="token">Token</label>\n'
        '<input id="token" type="password" name="token" autocomplete="current-password" '
        "required autofocus>\n"
        f'<input type="hidden" name="next" value="{html.escape(safe_next(next_path))}">\n'
        '<button type="submit">Log in</button>\n</form>\n'
    )
    return HTMLResponse(plain_page("Log in to glasspane", message, form), status_code=status)


def _token(request: Request) -> str | None:
    token: str | None = getattr(request.app.state, "token", None)
    return token


async def show(request: Request) -> Response:
    """``GET /login``: the form (or, with no token configured, the runs list)."""
    if _token(request) is None:
        return RedirectResponse("/", status_code=303)
    return login_page(
        request.query_params.get("next", "/"),
        "This glasspane UI needs its token: the value of GLASSPANE_UI_TOKEN where the server runs.",
        status=200,
    )


async def submit(request: Request) -> Response:
    """``POST /login``: check the token; right, set the session cookie and go on (303)."""
    token = _token(request)
    if token is None:
        return RedirectResponse("/", status_code=303)
    async with request.form(max_files=0, max_fields=10, max_part_size=MAX_TOKEN) as form:
        given, next_path = form.get("token"), form.get("next", "/")
    if not isinstance(given, str) or not token_matches(given, token):
        return login_page(
            next_path if isinstance(next_path, str) else "/",
            "That is not this server's token; paste the value of GLASSPANE_UI_TOKEN where "
            "the server runs.",
        )
    response = RedirectResponse(safe_next(next_path), status_code=303)
    response.headers.append(
        "set-cookie", session_cookie(token, secure=request.url.scheme == "https")
    )
    return response


async def logout(request: Request) -> Response:
    """``POST /logout``: forget the session cookie, back to the login form."""
    response = RedirectResponse("/login", status_code=303)
    response.headers.append("set-cookie", expired_cookie(secure=request.url.scheme == "https"))
    return response


routes = [
    Route("/login", show, methods=["GET"], name="login"),
    Route("/login", submit, methods=["POST"], name="login_submit"),
    Route("/logout", logout, methods=["POST"], name="logout"),
]
