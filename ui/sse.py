"""A run's events as server-sent events: ``GET /api/runs/{run_id}/events?after=N``.

One SSE message per event, ``id: <seq>``, ``event: <kind>``, ``data: <Event.to_dict() as
JSON>``, in sequence order; ``Last-Event-ID`` (a reconnecting browser sends it) wins over
``after``. The stream ends after ``run_finished``. A comment line ``: keepalive`` goes out
every :data:`KEEPALIVE` seconds so proxies keep an idle stream open.

The events come from ``Workspace.follow``, which blocks: each live stream follows in its own
daemon thread (not the shared thread pool, which the other endpoints need) and hands the
events to the event loop through a queue, so the loop never blocks. When the client goes
away the stream is cancelled and tells its thread to stop; the thread notices within
:data:`FOLLOW_CHUNK` seconds (it follows in chunks of that length, since a follow cannot be
interrupted while it waits). If following fails (the database went away), the stream ends
with an ``event: stream_error`` message saying so.

A run that is already over is replayed at once and the stream ends; a reconnect to an ended
run with nothing left to replay gets 204, which tells a browser's ``EventSource`` to stop
reconnecting. When the server stops, it ends every live stream first (:class:`Streams`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

import glasspane
from glasspane import queries
from glasspane.errors import GlasspaneError, NotFound
from glasspane.events import Event
from glasspane.types import TERMINAL_STATES

from .api_params import EventsQuery, RunPath, path, query

#: seconds between keepalive comments on an idle stream
KEEPALIVE = 15.0
#: seconds between reads of the store while following a live run
POLL = 0.2
#: seconds a following thread waits for events before checking whether to stop
FOLLOW_CHUNK = 5.0
#: seconds a launched run may be missing while its process takes it over
TAKE_OVER_WAIT = 60.0
#: live streams this process serves at once (each holds a thread); more get 503
MAX_STREAMS = 200

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

_END = object()
logger = logging.getLogger("glasspane.ui")


class Streams:
    """The live streams an app is serving (``app.state.streams``): how many, and a way to
    end them all when the server stops, so they do not hold its shutdown open."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ends: set[Callable[[], None]] = set()

    def __len__(self) -> int:
        return len(self._ends)

    def add(self, end: Callable[[], None]) -> None:
        with self._lock:
            self._ends.add(end)

    def discard(self, end: Callable[[], None]) -> None:
        with self._lock:
            self._ends.discard(end)

    def end_all(self) -> None:
        """End every live stream (each sends what it has, then closes)."""
        with self._lock:
            ends = list(self._ends)
        for end in ends:
            end()


def message(event: Event) -> str:
    """One event as an SSE message (its JSON on one line; NaN and infinities as null)."""
    data = json.dumps(_finite(event.to_dict()), separators=(",", ":"), default=str)
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n"


async def events(request: Request) -> Response:
    """A run's events as server-sent events, live until `run_finished`; a finished run's
    are replayed and the stream ends."""
    run_id = path(request, RunPath).run_id
    after = query(request, EventsQuery).after
    reconnect = request.headers.get("last-event-id", "").strip()
    if reconnect.isdigit():
        after = int(reconnect)
    ws: glasspane.Workspace = request.app.state.workspace
    run = await run_in_threadpool(ws.query, queries.get_run, run_id)  # NotFound: 404
    if run.state in TERMINAL_STATES:
        stored = await run_in_threadpool(_replay, ws, run.run_id, after)
        if not stored and reconnect:
            return Response(status_code=204, headers=HEADERS)
        return StreamingResponse(_iterate(stored), media_type="text/event-stream", headers=HEADERS)
    streams: Streams = request.app.state.streams
    if len(streams) >= MAX_STREAMS:
        return JSONResponse(
            {"error": f"this server already streams {MAX_STREAMS} runs' events; try again "
             f"later, or read the run with GET /api/runs/{run.run_id}"},
            status_code=503,
        )  # fmt: skip
    return StreamingResponse(
        _follow_live(ws, streams, run.run_id, after),
        media_type="text/event-stream",
        headers=HEADERS,
    )


async def _iterate(stored: list[Event]) -> AsyncIterator[str]:
    for event in stored:
        yield message(event)


def _replay(ws: glasspane.Workspace, run_id: str, after: int) -> list[Event]:
    """The stored events of an ended run after ``after`` (no waiting beyond a second)."""
    stored: list[Event] = []
    try:
        for event in ws.follow(run_id, after=after, poll=0.05, timeout=1.0):
            stored.append(event)
    except TimeoutError:  # ended without a run_finished to wait for
        pass
    return stored


async def _follow_live(
    ws: glasspane.Workspace, streams: Streams, run_id: str, after: int
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()

    def put(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the server stopped
            stop.set()

    def end() -> None:
        stop.set()
        put(_END)

    streams.add(end)
    thread = threading.Thread(
        target=follow_into, args=(ws, run_id, after, stop, put), daemon=True,
        name=f"glasspane-sse-{run_id}",
    )  # fmt: skip
    thread.start()
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), KEEPALIVE)
            except asyncio.TimeoutError:
                yield ": keepalive\n\n"
                continue
            if item is _END:
                return
            if isinstance(item, Exception):
                yield _failure(run_id, item)
                return
            yield message(item)
    finally:  # the run finished, the client went away (cancelled) or the server stops
        stop.set()
        streams.discard(end)


def follow_into(
    ws: glasspane.Workspace,
    run_id: str,
    after: int,
    stop: threading.Event,
    put: Callable[[Any], None],
) -> None:
    """Follow ``run_id`` from ``after``, handing each event to ``put``, until the run ends
    or ``stop`` is set (checked at least every :data:`FOLLOW_CHUNK` seconds); then put the
    end marker. An error is put as the exception, never raised (this runs in a thread)."""
    missing_since: float | None = None
    try:
        while not stop.is_set():
            try:
                for event in ws.follow(run_id, after=after, poll=POLL, timeout=FOLLOW_CHUNK):
                    put(event)
                    after = event.seq
                    if stop.is_set():
                        return
                return  # followed to its end
            except TimeoutError:  # a quiet chunk: is the run over without a run_finished?
                missing_since = None
                if _over(ws, run_id):
                    for event in ws.follow(run_id, after=after, poll=POLL):
                        put(event)
                    return
            except NotFound:  # its launched process is taking the queued run over
                now = time.monotonic()
                missing_since = missing_since or now
                if now - missing_since > TAKE_OVER_WAIT:
                    raise
                stop.wait(POLL)
    except Exception as exc:  # noqa: BLE001 - reported to the client, the thread ends
        put(exc)
    finally:
        put(_END)


def _failure(run_id: str, exc: Exception) -> str:
    """The ``stream_error`` message ending a stream whose follow failed."""
    if isinstance(exc, GlasspaneError):
        reason = str(exc)
    else:  # not a message meant for users: the log has it, the client gets its type
        logger.error("following run %s failed", run_id, exc_info=exc)
        reason = f"{type(exc).__name__}; see the server's log"
    data = json.dumps({"error": f"following run {run_id} failed: {reason}; reload the page"})
    return f"event: stream_error\ndata: {data}\n\n"


def _over(ws: glasspane.Workspace, run_id: str) -> bool:
    try:
        return ws.query(queries.get_run, run_id).state in TERMINAL_STATES
    except NotFound:
        return False


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
