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
"""

from __future__ import annotations

import argparse
import errno
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import glasspane
from glasspane.errors import GlasspaneError, InvalidArgument

from .batching import MicroBatcher
from .scoring import Features, ScoringError, conform, dumps, parse_request

MODEL_HEADER = "X-Glasspane-Model"
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
    about = dumps({"name": name, "version": version, "glasspane": glasspane.__version__})
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

        model = joblib.load(path)
    except ImportError:
        with path.open("rb") as file:
            model = pickle.load(file)
    except Exception as exc:
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
        sock = _listen(args.host, args.port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return _error(f"port {args.port} on {args.host} is in use; choose another --port")
        return _error(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}")
    try:
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"serving {args.name}/{args.version} on http://{host}:{sock.getsockname()[1]}")
        sys.stdout.flush()
        _serve(app, sock)
    finally:
        sock.close()
    return EXIT_OK


def _serve(app: Starlette, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` with uvicorn (one worker, no access log) until Ctrl-C or
    SIGTERM, which stop it gracefully."""
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        server_header=False,
        ws="none",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    # uvicorn stops gracefully on SIGTERM, then raises it again: make that an interrupt
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _listen(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _error(message: str) -> int:
    sys.stderr.write(f"glasspane: error: {message}\n")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
