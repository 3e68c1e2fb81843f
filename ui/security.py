"""The UI's security middleware: one pure ASGI layer around everything, static files included.

In order, for every HTTP request:

1. **Host** must be one the server answers to (the address it binds, loopback names and
   ``GLASSPANE_UI_HOSTS``); otherwise 400. A DNS-rebinding page (``evil.example`` resolving
   to 127.0.0.1) sends its own name and is refused before anything is read.
2. **Origin**: a request that can change something (any method but GET, HEAD, OPTIONS) whose
   ``Origin`` (or, without one, ``Referer``) is not this server's own origin gets 403, with a
   valid token or not: a cross-site form cannot launch or cancel runs. A request with neither
   header (a script, curl) is not a cross-site browser request and goes on.
3. **Token** (when one is configured): every route but ``/login`` and ``/logout`` needs
   ``Authorization: Bearer <token>`` or the login form's session cookie; otherwise 401 (a
   page gets the login form, the API and static files a JSON message).

Every response, refusals and crashes included, carries the Content-Security-Policy and the
other security headers (:data:`SECURITY_HEADERS`). WebSockets are refused: the UI has none.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import auth
from .errors import wants_json
from .login import login_page

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

#: added to every response (replacing any of the same name)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]

INTERNAL_ERROR = "internal error in the glasspane UI server; see the server's log"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: reachable without the token (the login form itself, and leaving)
PUBLIC_PATHS = frozenset({"/login", "/logout"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def host_name(host: str) -> str:
    """The name in a ``Host`` header value, without its port, lowercase: ``[::1]:8420`` ->
    ``::1``, ``Example.COM.:80`` -> ``example.com``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit():
        host = name
    return host.rstrip(".")


def origin_of(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an ``Origin`` or ``Referer`` value; None if it has none
    (``null``, an opaque origin)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.rstrip("."), port


class SecurityMiddleware:
    """Host check, CSRF (Origin) check, token check and security headers (module docstring).

    Args:
        app: the application to protect.
        token: the access token; None serves without one (loopback only: ``glasspane ui``
            refuses other addresses without a token).
        allowed_hosts: the names a ``Host`` header may carry (case-insensitive, no port).
    """

    def __init__(self, app: ASGIApp, *, token: str | None, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = frozenset(host_name(h) for h in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {name for name, _ in SECURITY_HEADERS}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": headers + SECURITY_HEADERS}
            await send(message)

        refusal = self.refusal(scope)
        if refusal is not None:
            await _send(send_secured, *refusal)
            return
        try:
            await self.app(scope, receive, send_secured)
        except Exception:
            if not started:  # answer with the headers, then let the server log the crash
                await _send(send_secured, *_refuse(500, INTERNAL_ERROR))
            raise

    def refusal(self, scope: Scope) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        """The response refusing this request (status, body, headers), or None to serve it."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        values = {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}
        host = values.get("host", "")
        path: str = scope["path"]
        if host_name(host) not in self.allowed_hosts:
            names = ", ".join(sorted(self.allowed_hosts))
            return _refuse(
                400,
                f"this glasspane UI does not answer to the Host `{host}` (it answers to "
                f"{names}); open the address `glasspane ui` printed, or add the name to "
                "GLASSPANE_UI_HOSTS where the server runs",
            )
        if scope["method"] not in SAFE_METHODS:
            sent = values.get("origin") or values.get("referer")
            own = origin_of(f"{scope.get('scheme', 'http')}://{host}")
            if sent is not None and origin_of(sent) != own:
                return _refuse(
                    403,
                    f"refused a cross-site {scope['method']} request: it comes from "
                    f"`{sent}`, not from this glasspane UI; use the UI's own pages (a script "
                    "may leave out Origin and Referer, and send the token)",
                )
        if self.token is None or path in PUBLIC_PATHS:
            return None
        verdict = auth.check(headers, self.token)
        if verdict == "ok":
            return None
        if verdict == "wrong":
            message = (
                "the bearer token sent is not this server's; send the value of "
                "GLASSPANE_UI_TOKEN where the server runs"
            )
        else:
            message = (
                "this glasspane UI needs its token: send `Authorization: Bearer <token>` "
                "(the value of GLASSPANE_UI_TOKEN where the server runs), or log in at /login"
            )
        challenge = [(b"www-authenticate", b'Bearer realm="glasspane"')]
        if wants_json(path) or path.startswith("/static/") or scope["method"] != "GET":
            return _refuse(401, message, challenge)
        query = scope.get("query_string", b"").decode("latin-1")
        page = login_page(path + (f"?{query}" if query else ""), message)
        return 401, bytes(page.body), [*page.raw_headers, *challenge]


def _json(message: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    body = json.dumps({"error": message}).encode()
    return body, [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _refuse(
    status: int, message: str, extra: Sequence[tuple[bytes, bytes]] = ()
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    body, headers = _json(message)
    return status, body, [*headers, *extra]
