"""Listeners: what hears a run's events, in order, off the run's critical path.

A listener is any object with ``on_event(event)`` (:class:`Listener`). Pass listeners to a
run (``pipe.run(..., listeners=[...])``, ``glasspane.Workspace(listeners=[...])``), or
install a package that declares one in the entry-point group ``glasspane.listeners``::

    [project.entry-points."glasspane.listeners"]
    printer = "my_package.listeners:Printer"

An entry point names a listener object, or a class or function called with no arguments
that returns one. Every run of a process hears them.

Delivery: the run's first listener is the metadata writer
(:class:`glasspane.execution.recording.MetadataWriter`), which stores each batch of events
before anyone else hears it; then the events go to every other listener in sequence order,
from one thread per run (:class:`Dispatcher`); a slow listener delays
other listeners, never the tasks. A listener that raises is logged by name and hears
nothing more of that run; the run goes on, unless the run is *strict* (``strict_listeners``
in the settings) or the listener is (its ``strict`` attribute is True, as a tracker with
``strict = true``), in which case the run fails, naming the listener. ``RunFinished`` is
delivered after the final state is committed, and the run's call returns once every
listener has had it (or ``FLUSH_TIMEOUT`` passed).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from .errors import ConfigError
from .events import Event, RunFinished, from_dict

GROUP = "glasspane.listeners"
#: seconds a finished run waits for its listeners to hear the last events
FLUSH_TIMEOUT = 30.0

log = logging.getLogger("glasspane.listeners")


@runtime_checkable
class Listener(Protocol):
    """Hears a run's events. ``on_event`` runs on the run's delivery thread."""

    def on_event(self, event: Event) -> None: ...


def name_of(listener: Any) -> str:
    return getattr(listener, "name", None) or type(listener).__qualname__


def check(listeners: Iterable[Any], where: str) -> list[Listener]:
    """``listeners`` as a list, each checked to have ``on_event``.

    Raises:
        ConfigError: one has no callable ``on_event`` (before anything runs).
    """
    checked = []
    for listener in listeners:
        if not callable(getattr(listener, "on_event", None)):
            raise ConfigError(
                f"{where}: {listener!r} is not a listener: it needs a method "
                "`on_event(self, event)`; see glasspane.listeners.Listener"
            )
        checked.append(listener)
    return checked


_installed: dict[tuple[str, ...], list[Listener]] = {}
_installed_lock = threading.Lock()


def from_entry_points() -> list[Listener]:
    """The listeners installed packages declare in the ``glasspane.listeners`` group.

    Loaded once per process (again when ``sys.path`` changes): every run of the process
    hears the same listener objects.

    Raises:
        ConfigError: an entry point cannot be loaded or does not give a listener, naming
            the entry point and its package.
    """
    key = tuple(sys.path)
    with _installed_lock:
        if key not in _installed:
            _installed.clear()
            _installed[key] = _load_entry_points()
        return list(_installed[key])


def _load_entry_points() -> list[Listener]:
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group=GROUP):
        where = f"entry point `{ep.name} = {ep.value}` in group {GROUP}"
        dist = getattr(ep, "dist", None)
        if dist is not None:
            where += f" (package {dist.metadata['Name']})"
        try:
            obj = ep.load()
            if not callable(getattr(obj, "on_event", None)) or isinstance(obj, type):
                obj = obj()
        except Exception as exc:  # noqa: BLE001 - named, with the package to fix or remove
            raise ConfigError(
                f"{where} could not be loaded ({type(exc).__name__}: {exc}); fix or "
                "uninstall that package"
            ) from exc
        found.extend(check([obj], where))
    return found


#: events to deliver: typed, or payloads of the run's event log (typed on delivery)
Batch = list[Event | dict[str, Any]]


class Dispatcher:
    """Delivers one run's events to its listeners, in order, on a thread of its own."""

    def __init__(self, run_id: str, listeners: Sequence[Listener], strict: bool = False):
        self.run_id = run_id
        self.listeners = list(listeners)
        self.strict = strict
        self.failure: str | None = None
        self._strict_one = any(getattr(x, "strict", False) is True for x in self.listeners)
        self._queue: queue.SimpleQueue[Batch | threading.Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        if self.listeners:
            self._thread = threading.Thread(
                target=self._loop, name=f"glasspane-listeners-{run_id}", daemon=True
            )
            self._thread.start()

    @property
    def strict_any(self) -> bool:
        """Whether a listener that raises fails the run (all are strict, or one is)."""
        return self.strict or self._strict_one

    @property
    def listening(self) -> bool:
        """Whether anyone hears this run (else nothing need be delivered)."""
        return self._thread is not None

    def deliver(self, events: Batch) -> None:
        """Queue events for the listeners: typed, or payloads of the run's event log, which
        are typed on the delivery thread (off the recorder's)."""
        if self._thread is not None and events:
            self._queue.put(events)

    def _loop(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if isinstance(batch, threading.Event):
                batch.set()
                continue
            for item in batch:
                event = item if isinstance(item, Event) else from_dict(item)
                for listener in list(self.listeners):
                    try:
                        listener.on_event(event)
                    except Exception as exc:  # noqa: BLE001 - logged, never breaks the run
                        self._drop(listener, event, exc)

    def _drop(self, listener: Listener, event: Event, exc: Exception) -> None:
        self.listeners.remove(listener)
        what = f"listener `{name_of(listener)}` raised {type(exc).__name__}: {exc}"
        log.warning(
            "%s on %s #%d of run %s; it hears nothing more of this run",
            what, event.kind, event.seq, self.run_id, exc_info=exc,
        )  # fmt: skip
        if self.failure is not None or isinstance(event, RunFinished):
            return
        if getattr(listener, "strict", False) is True:  # a listener strict on its own (a tracker)
            self.failure = what
        elif self.strict:
            self.failure = (
                f"{what} (strict listeners: the run fails); fix the listener, or set "
                "strict_listeners = false to log such errors and go on"
            )

    def drain(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Wait until the listeners have heard every event delivered so far."""
        if self._thread is None:
            return
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Deliver what is queued (waiting at most ``timeout`` seconds), then stop."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning(
                "listeners of run %s still busy after %.0f s: %s; not waiting for them",
                self.run_id, timeout, ", ".join(name_of(x) for x in self.listeners),
            )  # fmt: skip
