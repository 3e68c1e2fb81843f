"""What a running task can see and say: its context, metrics, logger and captured output.

Each task attempt runs with a :class:`TaskContext` in a contextvar. ``sys.stdout`` and
``sys.stderr`` are replaced once per process by proxies that write to the current task's
buffers when there is one, and to the real streams otherwise, so output is captured per
task on threads and Dask workers alike. Output written by C code straight to file
descriptor 1 or 2 bypasses ``sys.stdout`` and is not captured.
"""

from __future__ import annotations

import contextvars
import io
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..errors import GlasspaneError
from ..events import OUTPUT_LIMIT, wire

LOG_TAIL_LINES = 200
_LOGGER_NAME = "glasspane.task"
#: seconds between two batches of a running task's output (OutputLogged events)
STREAM_INTERVAL = 0.25


@dataclass(eq=False)
class TaskContext:
    """Where a task attempt is running.

    Attributes:
        run_id: id of the run.
        node_id: id of the node (``train[0]``).
        task: the task's name.
        attempt: 1 for the first attempt, 2 for the first retry, ...

    Metrics and params the task logs, and its output in batches (at most every
    ``STREAM_INTERVAL`` seconds, up to ``OUTPUT_LIMIT`` bytes per task), are reported through
    ``emit`` while it runs.
    """

    run_id: str
    node_id: str
    task: str
    attempt: int = 1
    tee: bool = False
    emit: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)
    #: the run's artifact store (``glasspane.log_artifact`` stores there)
    artifacts: Any = field(default=None, repr=False)
    #: the run's metadata store, where ``glasspane.load_model`` resolves a reference
    metadata_url: str | None = field(default=None, repr=False)
    #: the models this attempt loaded (see :mod:`.model_reads`), kept in its cache entry
    models: list[dict[str, Any]] = field(default_factory=list, repr=False)
    stdout: io.StringIO = field(default_factory=io.StringIO, repr=False)
    stderr: io.StringIO = field(default_factory=io.StringIO, repr=False)
    log_lines: list[str] = field(default_factory=list, repr=False)
    _pending: list[tuple[str, str]] = field(default_factory=list, repr=False)
    _streamed: int = field(default=0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self) -> Captured:
        """What the attempt wrote so far (output and log lines), cleared for the next one.

        What is still waiting to be streamed is sent first, so it precedes the attempt's end.
        """
        self.flush_output()
        text = Captured(self.stdout.getvalue(), self.stderr.getvalue(), log_tail(self))
        self.stdout, self.stderr = io.StringIO(), io.StringIO()
        self.log_lines = []
        return text

    def write(self, stream: str, text: str) -> None:
        """Capture ``text`` written to ``stream`` (``stdout``, ``stderr``, ``log``)."""
        if stream == "log":
            self.log_lines.append(text)
            if len(self.log_lines) > 2 * LOG_TAIL_LINES:
                del self.log_lines[:-LOG_TAIL_LINES]
            text += "\n"
        else:
            getattr(self, stream).write(text)
        if self.emit is None or self._streamed >= OUTPUT_LIMIT:
            return
        with self._lock:
            self._pending.append((stream, text))
        _streamer.watch(self)

    def flush_output(self) -> None:
        """Report the output captured since the last batch, one event per stream run."""
        with self._lock:
            pending, self._pending = self._pending, []
            if not pending or self.emit is None:
                return
            runs: list[tuple[str, list[str]]] = []
            for stream, text in pending:
                if runs and runs[-1][0] == stream:
                    runs[-1][1].append(text)
                else:
                    runs.append((stream, [text]))
            for stream, parts in runs:
                if self._streamed >= OUTPUT_LIMIT:
                    return
                text = "".join(parts)
                size = len(text.encode("utf-8", errors="replace"))
                truncated = self._streamed + size >= OUTPUT_LIMIT
                if truncated:
                    text = text.encode("utf-8", errors="replace")[
                        : OUTPUT_LIMIT - self._streamed
                    ].decode("utf-8", errors="ignore")
                self._streamed += size
                self.emit(
                    wire(
                        "output_logged", self.node_id, attempt=self.attempt, stream=stream,
                        text=text, truncated=truncated,
                    )
                )  # fmt: skip


class _Streamer:
    """One thread per process that sends the running tasks' pending output in batches."""

    def __init__(self) -> None:
        self._live: set[TaskContext] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, ctx: TaskContext) -> None:
        with self._cond:
            if ctx in self._live:
                return
            self._live.add(ctx)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="glasspane-output", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._live:
                    self._cond.wait()
            time.sleep(STREAM_INTERVAL)
            with self._cond:
                live, self._live = self._live, set()
            for ctx in live:
                try:
                    ctx.flush_output()
                except Exception:  # noqa: BLE001 - a closing worker: the task's tail is kept
                    pass


_streamer = _Streamer()


@dataclass(frozen=True)
class Captured:
    """Text a task wrote: ``print`` output, stderr, and the tail of its log lines."""

    stdout: str = ""
    stderr: str = ""
    log_tail: str = ""

    def __add__(self, other: Captured) -> Captured:
        logs = "\n".join(t for t in (self.log_tail, other.log_tail) if t)
        return Captured(
            self.stdout + other.stdout,
            self.stderr + other.stderr,
            "\n".join(logs.splitlines()[-LOG_TAIL_LINES:]),
        )


_current: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "glasspane_task", default=None
)


def current_context() -> TaskContext | None:
    return _current.get()


def set_context(ctx: TaskContext | None) -> contextvars.Token[TaskContext | None]:
    install_capture()
    return _current.set(ctx)


def reset_context(token: contextvars.Token[TaskContext | None]) -> None:
    _current.reset(token)


def context() -> TaskContext:
    """The running task's :class:`TaskContext` (run id, node id, attempt).

    Raises:
        GlasspaneError: when called outside a running task.
    """
    ctx = _current.get()
    if ctx is None:
        raise GlasspaneError(
            "glasspane.context() was called outside a running task; call it inside a @task "
            "function while a pipeline runs"
        )
    return ctx


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Record a numeric metric for the running task (a no-op outside a run)."""
    ctx = _current.get()
    if ctx is None:
        return
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise GlasspaneError(
            f"log_metric(`{key}`) in task `{ctx.task}` needs a number, got "
            f"{type(value).__name__}; use log_param for other values"
        ) from None
    if ctx.emit is not None:
        step = None if step is None else int(step)
        ctx.emit(wire("metric_logged", ctx.node_id, key=str(key), value=number, step=step))


def log_param(key: str, value: Any) -> None:
    """Record a parameter (any JSON-able value) for the running task (no-op outside a run)."""
    ctx = _current.get()
    if ctx is None:
        return
    if ctx.emit is not None:
        ctx.emit(wire("param_logged", ctx.node_id, key=str(key), value=_jsonable(value)))


def log_artifact(obj_or_path: Any, name: str | None = None) -> None:
    """Hand a file (a path) or a value to the configured trackers as an artifact of the
    running task (a no-op outside a run).

    A path's bytes are kept as they are; a value is stored like a task output (pickle,
    Parquet, ...). Either is stored in the artifact store first, so a tracker that is down
    gets it later from the outbox.

    Raises:
        GlasspaneError: the path does not exist (naming it).
    """
    import os

    ctx = _current.get()
    if ctx is None or ctx.emit is None or ctx.artifacts is None:
        return
    if isinstance(obj_or_path, (str, os.PathLike)):
        path = os.fspath(obj_or_path)
        if not os.path.isfile(path):
            raise GlasspaneError(
                f"log_artifact in task `{ctx.task}`: {path} is not a file; pass the path of a "
                "file, or the value itself (log_artifact(model, name='model'))"
            )
        info = ctx.artifacts.put_file(path)
        filename = os.path.basename(path)
        label = name or filename
    else:
        info = ctx.artifacts.put(obj_or_path, where=f"log_artifact in task `{ctx.task}`")
        label = name or type(obj_or_path).__name__.lower()
        filename = f"{label}.{info.uri.rsplit('.', 1)[-1]}" if info.uri else label
    ctx.emit(artifact_logged(ctx.node_id, label, filename, info.to_dict()))


def artifact_logged(
    node: str, name: str, filename: str, artifact: dict[str, Any]
) -> dict[str, Any]:
    """The report that hands a stored artifact to the trackers."""
    return wire("artifact_logged", node, name=name, filename=filename, artifact=artifact)


def _jsonable(value: Any) -> Any:
    import json

    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def get_logger() -> logging.Logger:
    """A logger whose records are captured with the running task (and shown in the UI)."""
    install_capture()
    return logging.getLogger(_LOGGER_NAME)


class _StreamProxy(io.TextIOBase):
    """Routes writes to the current task's buffer, or to the real stream outside tasks."""

    def __init__(self, real: TextIO, which: str) -> None:
        self._real = real
        self._which = which

    def write(self, text: str) -> int:
        ctx = _current.get()
        if ctx is None:
            return self._real.write(text)
        ctx.write(self._which, text)
        if ctx.tee:
            self._real.write(text)
        return len(text)

    def flush(self) -> None:
        self._real.flush()

    def isatty(self) -> bool:
        return self._real.isatty()

    def fileno(self) -> int:
        return self._real.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._real, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _TaskLogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        ctx = _current.get()
        if ctx is None:
            return
        try:
            line = self.format(record)
        except Exception:  # a bad format string must not fail the task
            line = str(record.msg)
        ctx.write("log", line)


_install_lock = threading.Lock()
_installed = False


def install_capture() -> None:
    """Route sys.stdout/sys.stderr through task-aware proxies and add the task log handler.

    Checked on every task start (cheap): a test runner or a notebook may swap the streams.
    """
    global _installed
    if not isinstance(sys.stdout, _StreamProxy):
        sys.stdout = _StreamProxy(sys.stdout, "stdout")  # type: ignore[assignment]
    if not isinstance(sys.stderr, _StreamProxy):
        sys.stderr = _StreamProxy(sys.stderr, "stderr")  # type: ignore[assignment]
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        logger = logging.getLogger(_LOGGER_NAME)
        logger.setLevel(logging.INFO)
        handler = _TaskLogHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        _installed = True


def log_tail(ctx: TaskContext) -> str:
    return "\n".join(ctx.log_lines[-LOG_TAIL_LINES:])
