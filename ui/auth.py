"""The UI's access token: how a request proves it has it, compared in constant time.

A request is authorized by ``Authorization: Bearer <token>`` or by the session cookie the
login form sets. The cookie never holds the token itself: it holds an HMAC of a fixed text
keyed by the token, so a leaked cookie does not reveal the token, and changing the token
ends every session. The token never travels in a URL, so no access log can show it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Literal

from starlette.requests import cookie_parser

#: the cookie the login form sets (HttpOnly, SameSite=Strict, Secure over HTTPS)
SESSION_COOKIE = "glasspane_session"


def token_matches(given: str, token: str) -> bool:
    """Whether ``given`` is ``token``, compared in constant time."""
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def session_value(token: str) -> str:
    """The session cookie's value for ``token`` (not the token: an HMAC keyed by it)."""
    return hmac.new(token.encode("utf-8"), b"glasspane ui session v1", hashlib.sha256).hexdigest()


def session_cookie(token: str, *, secure: bool) -> str:
    """The ``Set-Cookie`` value that logs a browser in: HttpOnly, SameSite=Strict, the
    whole site, for the browser session (and Secure over HTTPS)."""
    flags = "; Secure" if secure else ""
    return f"{SESSION_COOKIE}={session_value(token)}; Path=/; HttpOnly; SameSite=Strict{flags}"


def expired_cookie(*, secure: bool) -> str:
    """The ``Set-Cookie`` value that logs a browser out."""
    flags = "; Secure" if secure else ""
    return f"{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{flags}"


def check(headers: Iterable[tuple[bytes, bytes]], token: str) -> Literal["ok", "missing", "wrong"]:
    """Whether raw ASGI ``headers`` carry ``token`` (``ok``), carry a wrong bearer token
    (``wrong``) or neither a bearer token nor a valid session cookie (``missing``)."""
    bearer: str | None = None
    cookies: list[str] = []
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                bearer = credentials.strip()
        elif name == b"cookie":
            cookies.append(value.decode("latin-1"))
    if bearer is not None:
        return "ok" if token_matches(bearer, token) else "wrong"
    expected = session_value(token)
    for header in cookies:
        session = cookie_parser(header).get(SESSION_COOKIE)
        if session is not None and token_matches(session, expected):
            return "ok"
    return "missing"
