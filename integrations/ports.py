"""Ports for the model servers the deploy targets start (127.0.0.1 by default)."""

from __future__ import annotations

import socket


def free_port(host: str, wanted: int | None = None) -> int:
    """``wanted`` when it is free on ``host``, else a port nothing listens on now."""
    if wanted:
        try:
            with bound(host, wanted):
                return wanted
        except OSError:
            pass
    with bound(host, 0) as sock:
        return int(sock.getsockname()[1])


def bound(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) to ``host``:``port``.

    Raises:
        OSError: the port is taken, or the address is not this machine's.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        # as uvicorn binds: a port whose old connections linger in TIME_WAIT is free
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock
