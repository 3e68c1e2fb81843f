"""The tracker outbox: trackers hear runs live, and never lose what they could not take.

Each configured tracker (:mod:`glasspane.tracking`) joins every run of a Workspace as a
:class:`TrackerRelay`, a listener. The relay hands the tracker each event as the run records
it; when the tracker raises (its server is down, it refuses), the run goes on: the relay says
so once per run, records in the run's ``tracker_runs`` row how far the tracker got (its outbox:
the events after that point wait in the run's event log), and tries to catch up from the event
log every ``RETRY_EVERY`` seconds while the run lasts. What is still undelivered when the run
ends is delivered by :func:`deliver_pending`, which ``glasspane integrations sync`` and
``glasspane server``'s maintenance tick call: it replays each such run's events from the start
to a fresh tracker, which takes each event once however often it hears it (the protocol's
idempotency), so nothing is duplicated and the order is kept.

With ``strict = true`` in a tracker's table (``[tool.glasspane.mlflow]``), a failure fails the
run instead (after it ran), naming the tracker; the events still wait in the outbox.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import Settings
from .events import Event, ModelRegistered, RunFinished, RunStarted, from_dict
from .store import MetadataStore
from .tracking import Tracker, TrackerError, configured, context_for, make

log = logging.getLogger("glasspane.trackers")

#: seconds between two attempts to catch a tracker up while its run goes on
RETRY_EVERY = 5.0
#: events read from the event log at a time when catching up
PAGE = 1000


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass
class _Delivery:
    """How far the tracker has taken one run, in this process."""

    delivered: int = 0
    behind: bool = False
    warned: bool = False
    last_try: float = 0.0
    error: str | None = None


class TrackerRelay:
    """One tracker as a listener of every run of a Workspace (see the module docstring)."""

    def __init__(
        self, tracker: Tracker, store: Callable[[], MetadataStore], *, strict: bool = False
    ) -> None:
        self.tracker = tracker
        self.name = f"tracker `{tracker.name}`"
        self.strict = strict
        self._store = store
        self._runs: dict[str, _Delivery] = {}
        self._lock = threading.Lock()  # a tracker hears one event at a time

    def on_event(self, event: Event) -> None:
        run = self._runs.get(event.run_id)
        if run is None:
            if not isinstance(event, RunStarted):
                return  # joined mid-run: the outbox knows nothing to resume from
            run = self._runs[event.run_id] = _Delivery()
            self._store().tracker_started(event.run_id, self.tracker.name)
        try:
            if event.seq > run.delivered:
                waited = time.monotonic() >= run.last_try + RETRY_EVERY
                due = waited or isinstance(event, RunFinished)
                if run.behind and due:
                    self._catch_up(event.run_id, run)
                elif not run.behind:
                    self._deliver(event)
                    run.delivered = event.seq
                    if isinstance(event, RunStarted):
                        self._record(event.run_id, run, "live")
        except Exception as exc:  # noqa: BLE001 - the tracker's failure never stops the run
            self._failed(event, run, exc)
        if isinstance(event, RunFinished):
            del self._runs[event.run_id]
            self._record(event.run_id, run, "pending" if run.behind else "delivered")

    def _deliver(self, event: Event) -> None:
        with self._lock:
            self.tracker.on_event(event)

    def _catch_up(self, run_id: str, run: _Delivery) -> None:
        run.last_try = time.monotonic()
        for event in events_after(self._store(), run_id, run.delivered):
            self._deliver(event)
            run.delivered = event.seq
        run.behind, run.error = False, None
        self._record(run_id, run, "live")
        log.warning("%s took run %s's waiting events; it is up to date", self.name, run_id)

    def _failed(self, event: Event, run: _Delivery, exc: Exception) -> None:
        run.behind, run.last_try, run.error = True, time.monotonic(), describe(exc)
        self._record(event.run_id, run, "pending")
        if not run.warned:
            run.warned = True
            log.warning(
                "%s could not take run %s's events (%s); the run goes on, and what the tracker "
                "missed waits in the outbox: it is delivered when the tracker is back "
                "(`glasspane integrations sync`, or `glasspane server`)",
                self.name, event.run_id, run.error,
            )  # fmt: skip
        if self.strict:  # the run drops this listener: it hears no more of the run
            self._runs.pop(event.run_id, None)
            raise TrackerError(
                f"{self.name} could not take {event.kind} #{event.seq} ({run.error}); strict = "
                f"true in [tool.glasspane.{self.tracker.name}] makes that fail the run: bring "
                "the tracker back, then `glasspane integrations sync` delivers the run"
            ) from exc

    def _record(self, run_id: str, run: _Delivery, state: str) -> None:
        link = self.tracker.link(run_id)
        try:
            self._store().tracker_progress(
                run_id, self.tracker.name, delivered_seq=run.delivered, state=state,
                external_id=link.external_id if link else None, url=link.url if link else None,
                error=run.error,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the store's failure is the run's to report
            log.warning("%s: could not record run %s's outbox (%s)", self.name, run_id, exc)

    def close(self) -> None:
        self.tracker.close()


def events_after(store: MetadataStore, run_id: str, after: int) -> Iterator[Event]:
    """The typed events of ``run_id``'s event log after sequence number ``after``, in order."""
    while True:
        page = store.run_events(run_id, after=after, limit=PAGE)
        if not page:
            return
        for payload in page:
            yield from_dict(payload)
        after = int(page[-1]["seq"])


def relays(
    settings: Settings, store: Callable[[], MetadataStore], artifacts: Any
) -> list[TrackerRelay]:
    """A relay per tracker the settings turn on, each tracker made through its entry point.

    Raises:
        ConfigError: a tracker is unknown, its package is missing or its options are wrong
            (before anything runs).
    """
    made = []
    for name in configured(settings):
        context = context_for(name, settings, artifacts)
        context.link_model = lambda *link: store().link_model(*link)
        context.model_version = lambda event: recorded_version(store(), event)
        tracker = make(name, context)
        strict = bool(settings.tracker_options.get(name, {}).get("strict", False))
        made.append(TrackerRelay(tracker, store, strict=strict))
    return made


def recorded_version(store: MetadataStore, event: ModelRegistered) -> int | None:
    """The version number of ``event``'s registration: the one the task recorded it as, or,
    when the task could not reach the store, the one the driver gave it (the version row of
    its run, node and stored model, recorded at the event's time); None when there is none."""
    if event.version is not None:
        return event.version
    found = [
        row for row in store.model_versions(event.name)
        if row["run_id"] == event.run_id and row["node_id"] == event.node
        and row["content_hash"] == event.artifact.content_hash
    ]  # fmt: skip
    if not found:
        return None
    # the same model registered twice by one task: its rows differ in their time
    best = min(found, key=lambda row: abs(row["created_at"].timestamp() - event.ts))
    return int(best["version"])


@dataclass
class Delivered:
    """What :func:`deliver_pending` did for one run and tracker."""

    run_id: str
    tracker: str
    events: int = 0
    error: str | None = None
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def deliver_pending(
    store: MetadataStore, trackers: Sequence[Tracker], run_ids: Sequence[str] | None = None
) -> list[Delivered]:
    """Deliver what each tracker has not taken of runs that are over, in order (see the
    module docstring); a tracker still failing keeps its runs pending, saying why."""
    by_name = {tracker.name: tracker for tracker in trackers}
    done = []
    for row in store.undelivered_tracker_runs(list(by_name)):
        if run_ids is not None and row["run_id"] not in run_ids:
            continue
        tracker, outcome = by_name[row["tracker"]], Delivered(row["run_id"], row["tracker"])
        last = 0
        try:
            finished = False
            for event in events_after(store, row["run_id"], 0):
                tracker.on_event(event)
                outcome.events, last = outcome.events + 1, event.seq
                finished = finished or isinstance(event, RunFinished)
            if not finished:  # its driver died: the run was swept, its end never logged
                run = store.get_run(row["run_id"])
                end = RunFinished(
                    run_id=row["run_id"], seq=last + 1, state=run["state"], error=run.get("error")
                )
                tracker.on_event(end)
                outcome.events, last = outcome.events + 1, end.seq
            state = "delivered"
        except Exception as exc:  # noqa: BLE001 - reported per run, the others go on
            outcome.error, state = describe(exc), "pending"
        link = tracker.link(row["run_id"])
        outcome.url = link.url if link else None
        store.tracker_progress(
            row["run_id"], row["tracker"], delivered_seq=last, state=state,
            external_id=link.external_id if link else None, url=outcome.url, error=outcome.error,
        )  # fmt: skip
        done.append(outcome)
    return done
