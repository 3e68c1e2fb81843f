"""glasspane's local model server (the ``local`` deploy target): one model over HTTP, speaking
MLflow's scoring protocol so a client does not change between deploy targets.

Routes (:func:`create_app`):

- ``GET /ping``, ``GET /health``: 200 once the model is loaded;
- ``GET /version``: ``{"name", "version", "glasspane"}``;
- ``POST /invocations``: ``application/json`` with exactly one of ``dataframe_split``,
  ``dataframe_records``, ``instances``, ``inputs``, or ``text/csv`` with a header row (see
  :mod:`.scoring`); answers ``{"predictions": [...]}``, one per row, or a 4xx with MLflow's
  error body ``{"error_code", "message"}``. Every response names the model version that
  answered in the header ``X-Glasspane-Model: NAME/VERSION``.

Concurrent requests are micro-batched (:mod:`.batching`): one ``predict`` per batch, in a
worker thread. A bad payload never gets a 500 or a traceback.

From a shell (the model file is unpickled, so serve only models you trust)::

    python -m glasspane.integrations.model_server --model-file model.pkl --name churn --version 3

prints ``serving churn/3 on http://127.0.0.1:5001`` once listening and serves until Ctrl-C or
SIGTERM (exit code 0).

With ``--standby`` (how the ``local`` deploy target starts a new version, blue/green), it
first listens only on a free port (``checking churn/3 on http://127.0.0.1:PORT``) where it can
be checked, and takes ``--port`` on SIGUSR1, beside the version serving there (both listen
with ``SO_REUSEPORT``) and steers every new connection to itself (a one-instruction BPF
program on the port's socket group), so the old one only finishes what it has: on SIGTERM it
answers with ``Connection: close`` for ``DRAIN`` seconds, so clients' kept-alive connections
move to the new one, then stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import glasspane
from glasspane.errors import GlasspaneError, InvalidArgument

from .batching import MicroBatcher
from .scoring import Features, ScoringError, conform, dumps, parse_request

MODEL_HEADER = "X-Glasspane-Model"
#: seconds a stopping server that took a deployment's port over answers with Connection: close
DRAIN = 1.0
#: setsockopt option that attaches a classic BPF program choosing a socket of a reuseport group
SO_ATTACH_REUSEPORT_CBPF = 51
EXIT_OK, EXIT_USAGE = 0, 2


def create_app(
    model: Any,
    *,
    name: str,
    version: str,
    max_batch_rows: int = 256,
    max_wait: float = 0.002,
) -> Starlette:
    """The scoring server of ``model``, version ``version`` of the model ``name``.

    Args:
        model: anything with ``predict(pandas.DataFrame)`` returning one value per row; its
            ``feature_names_in_`` / ``n_features_in_`` (scikit-learn's) are checked against
            each request's columns.
        name: the registered model's name, for ``/version`` and the ``X-Glasspane-Model``
            header.
        version: its version.
        max_batch_rows: the most rows one ``predict`` call gets (1: no micro-batching).
        max_wait: seconds a batch waits for more requests once one is in.

    Raises:
        InvalidArgument: ``max_batch_rows`` below 1 or ``max_wait`` negative.
    """
    batcher = MicroBatcher(model, max_rows=max_batch_rows, max_wait=max_wait)
    features = Features.of(model)
    served = f"{name}/{version}"
    about = dumps(
        {"name": name, "version": version, "glasspane": glasspane.__version__, "pid": os.getpid()}
    )
    healthy = dumps({"status": "healthy"})

    async def ping(request: Request) -> Response:
        return Response(healthy, media_type="application/json")

    async def version_(request: Request) -> Response:
        return Response(about, media_type="application/json")

    async def invocations(request: Request) -> Response:
        try:
            if request.method != "POST":
                raise ScoringError(
                    f"Use POST to score; {request.method} is not allowed on /invocations.", 405
                )
            rows = conform(
                parse_request(await request.body(), request.headers.get("content-type")),
                features,
            )
            predictions = await batcher.predict(rows)
        except ScoringError as exc:
            headers = {MODEL_HEADER: served}
            if exc.status == 405:
                headers["Allow"] = "POST"
            return Response(dumps(exc.body()), exc.status, headers, media_type="application/json")
        return Response(
            dumps({"predictions": predictions}),
            headers={MODEL_HEADER: served},
            media_type="application/json",
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await batcher.close()

    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version_, methods=["GET"]),
        Route("/invocations", invocations, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.model = model
    app.state.batcher = batcher
    return app


def load_model(path: Path) -> Any:
    """The model pickled (``pickle`` or ``joblib``) in ``path``. Unpickling runs code from the
    file: load only models you trust.

    Raises:
        InvalidArgument: the file is missing, does not unpickle or holds no model.
    """
    import pickle

    if not path.is_file():
        raise InvalidArgument(f"--model-file {path}: no such file; give a pickled model's path")
    try:
        import joblib
    except ImportError:
        joblib = None
    try:
        if joblib is not None:
            model = joblib.load(path)
        else:
            with path.open("rb") as file:
                model = pickle.load(file)
    except Exception as exc:  # a class it cannot import (ModuleNotFoundError) included
        raise InvalidArgument(
            f"--model-file {path} does not unpickle ({type(exc).__name__}: {exc}); give a file "
            "written by pickle.dump or joblib.dump, in an environment with the model's packages"
        ) from None
    if not callable(getattr(model, "predict", None)):
        raise InvalidArgument(
            f"--model-file {path} holds a {type(model).__name__}, which has no predict method"
        )
    return model


def main(argv: list[str] | None = None) -> int:
    """Serve a pickled model until Ctrl-C or SIGTERM; the exit code (0 once stopped, 2 for a
    usage error, said in one ``glasspane: error: ...`` line)."""
    parser = argparse.ArgumentParser(
        prog="python -m glasspane.integrations.model_server",
        description="Serve a pickled model (unpickled: serve only trusted models) over HTTP in "
        "MLflow's scoring protocol.",
    )
    parser.add_argument("--model-file", type=Path, required=True, help="a pickle or joblib file")
    parser.add_argument("--name", required=True, help="the model's name")
    parser.add_argument("--version", required=True, help="the model's version")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001, help="0: any free port")
    parser.add_argument(
        "--max-batch", type=int, default=256, help="rows per predict call (1: no batching)"
    )
    parser.add_argument(
        "--max-wait-ms", type=float, default=2.0, help="how long a batch waits for more"
    )
    parser.add_argument(
        "--standby",
        action="store_true",
        help="listen on a free port first; take --port on SIGUSR1 (blue/green)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        return _error(f"--port must be 1 to 65535 (or 0 for any free one), not {args.port}")
    try:
        model = load_model(args.model_file)
        app = create_app(
            model,
            name=args.name,
            version=args.version,
            max_batch_rows=args.max_batch,
            max_wait=args.max_wait_ms / 1000,
        )
    except GlasspaneError as exc:
        return _error(str(exc))
    try:
        sock = _listen(args.host, 0 if args.standby else args.port)
    except OSError as exc:
        return _error(_bind_error(exc, args.host, args.port))
    try:
        what = "checking" if args.standby else "serving"
        print(f"{what} {args.name}/{args.version} on {_url(args.host, sock)}", flush=True)
        asyncio.run(_serve(app, sock, args.host, args.port if args.standby else None))
    finally:
        sock.close()
    return EXIT_OK


def _url(host: str, sock: socket.socket) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{sock.getsockname()[1]}"


def _bind_error(exc: OSError, host: str, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use; choose another --port"
    return f"cannot serve on {host}:{port}: {exc.strerror or exc}"


class _Server:
    """A uvicorn server that leaves signals to :func:`_serve` (several share one loop)."""

    def __init__(self, app: Any, lifespan: Literal["on", "off"]) -> None:
        import uvicorn

        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            server_header=False,
            ws="none",
            lifespan=lifespan,
            timeout_graceful_shutdown=2,
        )

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        self.server = Server(config)

    def start(self, sock: socket.socket) -> asyncio.Task[None]:
        return asyncio.create_task(self.server.serve(sockets=[sock]))

    def stop(self) -> None:
        self.server.should_exit = True


async def _serve(app: Starlette, sock: socket.socket, host: str, standby_port: int | None) -> None:
    """Serve ``app`` on ``sock`` until SIGTERM or Ctrl-C, which stop it gracefully; with
    ``standby_port``, also serve on that port (``SO_REUSEPORT``) from SIGUSR1 on."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    draining = False

    async def closing(scope: Any, receive: Any, send: Any) -> None:
        async def sending(message: Any) -> None:
            if draining and message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await app(scope, receive, sending if scope["type"] == "http" else send)

    first = _Server(closing, "on")
    serving = first.start(sock)
    public: list[tuple[_Server, asyncio.Task[None], socket.socket]] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)

    def take_over() -> None:
        if public or standby_port is None:
            return
        try:
            listening = _listen(host, standby_port, steer=True)
        except OSError as exc:
            sys.stderr.write(f"glasspane: error: {_bind_error(exc, host, standby_port)}\n")
            return
        second = _Server(closing, "off")
        public.append((second, second.start(listening), listening))
        print(f"serving on {_url(host, listening)}", flush=True)

    if standby_port is not None:
        loop.add_signal_handler(signal.SIGUSR1, take_over)
    stop = asyncio.ensure_future(stopping.wait())
    await asyncio.wait([stop, serving], return_when=asyncio.FIRST_COMPLETED)
    if public:  # clients move their kept-alive connections to the version taking over
        draining = True
        await asyncio.sleep(DRAIN)
    for server, task, listening in public:  # the public port first, then the check port
        server.stop()
        await task
        listening.close()
    first.stop()
    await serving
    stop.cancel()


def _listen(host: str, port: int, *, steer: bool = False) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # a new version takes the port beside the old one while it finishes (blue/green)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(1024)
        if steer:
            _steer_new_connections_here(sock)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def _steer_new_connections_here(sock: socket.socket) -> None:
    """Send every new connection to the port to ``sock``, the one bound last of its reuseport
    group (index 1 beside the version it replaces; once that one closes, the index is out of
    range and the kernel falls back to its hash over the one socket left)."""
    import ctypes

    class Instruction(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
            ("k", ctypes.c_uint32),
        ]  # fmt: skip

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(Instruction))]

    ret_k = 0x06  # BPF_RET | BPF_K: return the constant, the socket's index
    instructions = (Instruction * 1)(Instruction(ret_k, 0, 0, 1))
    program = Program(1, instructions)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, bytes(program))
    except OSError as exc:  # old kernels: connections are shared until the old one stops
        sys.stderr.write(f"glasspane: warning: cannot steer connections: {exc}\n")


def _error(message: str) -> int:
    sys.stderr.write(f"glasspane: error: {message}\n")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
