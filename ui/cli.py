"""``glasspane ui``: serve the web UI over the configured Workspace until Ctrl-C or SIGTERM.

The engine's command line parses ``glasspane ui [--host 127.0.0.1] [--port 8420]`` and calls
:func:`main` through the entry point ``ui`` of group ``glasspane.commands`` (the engine never
imports the UI). Binding anything but a loopback address needs ``GLASSPANE_UI_TOKEN``: the UI
shows every run's parameters and outputs and launches pipelines.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import signal
import socket
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import glasspane
from glasspane.errors import GlasspaneError

from .app import LOOPBACK_HOSTS, create_app

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette

EXIT_OK, EXIT_USAGE = 0, 2
#: seconds open connections (live event streams) get to finish when the server stops
SHUTDOWN_GRACE = 2


#: what else a UI server runs in its process (``glasspane server``: the scheduler): given the
#: Workspace, a context manager entered once the UI's address is printed, left once it stops
Alongside = Callable[[glasspane.Workspace], AbstractContextManager[object]]


def main(args: argparse.Namespace) -> int:
    """Serve the UI on ``args.host``:``args.port``; the exit code (0 once stopped, 2 for a
    usage or configuration error, said in one ``glasspane: error: ...`` line)."""
    return serve_ui(args)


def serve_ui(args: argparse.Namespace, *, alongside: Alongside | None = None) -> int:
    """:func:`main`, with ``alongside(workspace)`` running for as long as the UI serves (the
    checks, the binding, the printed address and the stop on Ctrl-C or SIGTERM are the same
    for ``glasspane ui`` and ``glasspane server``)."""
    host, port = str(args.host), int(args.port)
    if not 0 <= port <= 65535:
        return _error(
            f"--port must be a port number, 1 to 65535 (or 0 for any free one), not {port}"
        )
    try:
        settings = glasspane.load_settings()
    except GlasspaneError as exc:
        return _error(str(exc))
    token = settings.ui_token.get_secret_value() if settings.ui_token else None
    if token is not None and not token.strip():
        return _error("GLASSPANE_UI_TOKEN is set but empty; set it to a long random secret")
    if not is_loopback(host) and token is None:
        return _error(
            f"refusing to serve the UI on {host} without a token: anyone who can reach it "
            "could read every run and launch pipelines; set GLASSPANE_UI_TOKEN to a long "
            "random secret (python -c 'import secrets; print(secrets.token_urlsafe(32))'), "
            "or serve on 127.0.0.1 (the default)"
        )
    try:
        sock = listen(host, port)
    except OSError as exc:
        return _error(_listen_error(host, port, exc))
    hosts = allowed_hosts(host, settings.ui_hosts)
    if is_wildcard(host) and not settings.ui_hosts:
        sys.stderr.write(
            f"glasspane: warning: serving on every address of this machine, the UI answers "
            f"only to the Host names {', '.join(hosts)}; set GLASSPANE_UI_HOSTS to the names "
            "people open it by (comma-separated)\n"
        )
    workspace = glasspane.Workspace(settings)
    try:
        workspace.sweep()
        app = create_app(workspace, token=token, allowed_hosts=hosts)
        bound_port = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        print(f"glasspane UI: http://{shown}:{bound_port}/", flush=True)
        with alongside(workspace) if alongside is not None else nullcontext():
            serve(app, sock)
    except GlasspaneError as exc:
        return _error(str(exc))
    finally:
        sock.close()
        workspace.close()
    return EXIT_OK


def server(app: Starlette, **options: Any) -> uvicorn.Server:
    """The uvicorn server of ``app``: no access log (warnings only), no ``Server`` header;
    when it stops, it ends the app's live event streams first, which would otherwise hold
    its shutdown open until the grace period ran out. ``options`` go to ``uvicorn.Config``."""
    import uvicorn

    class UIServer(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            app.state.streams.end_all()
            await super().shutdown(sockets=sockets)

    settings: dict[str, Any] = {
        "log_level": "warning",
        "server_header": False,
        "ws": "none",
        "timeout_graceful_shutdown": SHUTDOWN_GRACE,
    }
    return UIServer(uvicorn.Config(app, **{**settings, **options}))


def serve(app: Starlette, sock: socket.socket) -> None:
    """Serve ``app`` on the listening ``sock`` until Ctrl-C or SIGTERM (a graceful stop)."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        # uvicorn stops gracefully on SIGTERM, then raises it again: make that an interrupt
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        server(app).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` (0: any free port).

    Raises:
        OSError: the address is in use, not this machine's, or not allowed.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``): reachable from this
    machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """Whether ``host`` means every address of this machine (``0.0.0.0``, ``::``)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return host == ""


def allowed_hosts(host: str, extra: list[str]) -> list[str]:
    """The Host names the UI answers to: loopback's, the bound address (unless it is a
    wildcard, which no one opens) and ``GLASSPANE_UI_HOSTS``."""
    names = list(LOOPBACK_HOSTS)
    if not is_wildcard(host):
        names.append(host.strip("[]"))
    names += extra
    return list(dict.fromkeys(name.lower() for name in names))


def _listen_error(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use (another `glasspane ui`?); stop what "
            "uses it, or choose another port with --port"
        )
    return (
        f"cannot serve on {host}:{port}: {exc.strerror or exc}; check --host (an address of "
        "this machine, e.g. 127.0.0.1) and --port"
    )


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _error(message: str) -> int:
    sys.stderr.write(f"glasspane: error: {message}\n")
    return EXIT_USAGE
