"""The metadata store's side of a run's control: its events, queued launches and cancel
requests (mixed into :class:`~glasspane.store.metadata.MetadataStore`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection

from . import event_log, launches
from .events import EventWriter, check_events, require_run


class RunControl:
    """Writes a run's events and launch/cancel records; reads its event log."""

    _write: Callable[..., Any]
    _read: Callable[[], AbstractContextManager[Connection]]

    def record_events(
        self, run_id: str, events: list[dict], log: list[dict[str, Any]] | None = None
    ) -> None:
        """Apply a batch of task events of one run, and append ``log`` (typed events as
        :meth:`~glasspane.events.Event.to_dict` dicts) to its event log, in ONE transaction.

        Event kinds: ``task_started``, ``attempt_finished``, ``task_finished``,
        ``task_skipped``, ``metric_logged``, ``param_logged``, ``artifact_logged`` and
        ``output_logged`` (fields
        in :mod:`.events`). Task runs in a terminal state are left as they are, and their
        events dropped.

        Raises:
            InvalidArgument: an event has an unknown kind (nothing is written).
            NotFound: the run does not exist.
        """
        if not events and not log:
            return
        check_events(events)

        def work(conn: Connection) -> None:
            require_run(conn, run_id)
            if events:
                EventWriter(conn, run_id).apply(events)
            if log:
                event_log.append(conn, run_id, log)

        self._write(work)

    def queue_run(self, **fields: Any) -> None:
        """Record a launched run as ``queued`` (see :func:`.launches.queue_run`)."""
        self._write(lambda conn: launches.queue_run(conn, **fields))

    def take_over(self, run_id: str) -> bool:
        """Let a starting run take the id of its queued row (see :mod:`.launches`)."""
        return self._write(lambda conn: launches.take_over(conn, run_id))

    def launch_failed(self, run_id: str, error: str) -> bool:
        """A queued run whose process exited before starting it becomes ``crashed``."""
        return self._write(lambda conn: launches.launch_failed(conn, run_id, error))

    def request_cancel(self, run_id: str) -> bool:
        """Ask the driver of ``run_id`` (exact id) to cancel it at its next heartbeat.

        Returns:
            False when the run is already over (nothing to cancel) or unknown.
        """
        return self._write(lambda conn: event_log.request_cancel(conn, run_id))

    def run_events(self, run_id: str, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """The logged events of ``run_id`` after sequence number ``after``, oldest first (at
        most ``limit``), as :meth:`~glasspane.events.Event.to_dict` dicts. Reads only."""
        with self._read() as conn:
            return event_log.read(conn, run_id, after, limit)
