"""Each run's runs in the trackers, and the tracker outbox (mixed into
:class:`~glasspane.store.metadata.MetadataStore`; table ``tracker_runs``).

A row per (run, tracker) says how far the tracker has taken the run's event log
(``delivered_seq``) and in which state delivery is: ``live`` (the run's driver delivers as the
run goes), ``pending`` (the tracker failed; the rest waits) or ``delivered`` (it took
``RunFinished``). The events themselves stay in ``run_events``; nothing is copied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ..types import TERMINAL_STATES
from .models import RunRow, TrackerRunRow

#: characters of a tracker's error kept on the row
ERROR_CHARS = 2000


def _now() -> datetime:
    return datetime.now(timezone.utc)


TABLE = TrackerRunRow.__table__
COLUMNS = tuple(TABLE.c)


def links(conn: Connection, run_id: str) -> list[dict[str, Any]]:
    """The tracker rows of ``run_id`` (exact id), by tracker name."""
    rows = conn.execute(
        select(*COLUMNS).where(TrackerRunRow.run_id == run_id).order_by(TrackerRunRow.tracker)
    ).mappings()
    return [dict(row) for row in rows]


def undelivered(conn: Connection, trackers: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of ``trackers`` whose run is over and which the tracker has not fully taken:
    ``pending`` ones, and ``live`` ones whose driver stopped (crashed) before finishing."""
    rows = conn.execute(
        select(*COLUMNS, RunRow.state.label("run_state"))
        .join(RunRow, RunRow.id == TrackerRunRow.run_id)
        .where(
            TrackerRunRow.tracker.in_(list(trackers)),
            TrackerRunRow.state != "delivered",
            RunRow.state.in_(sorted(TERMINAL_STATES)),
        )
        .order_by(TrackerRunRow.updated_at)
    )
    return [dict(row) for row in rows.mappings()]


class TrackerRuns:
    """Writes and reads the tracker outbox."""

    _write: Callable[..., Any]
    _read: Callable[[], AbstractContextManager[Connection]]

    def tracker_started(self, run_id: str, tracker: str) -> None:
        """The driver starts delivering ``run_id`` to ``tracker`` (a row, if none yet)."""

        def work(conn: Connection) -> None:
            found = conn.execute(
                select(TrackerRunRow.state).where(
                    TrackerRunRow.run_id == run_id, TrackerRunRow.tracker == tracker
                )
            ).first()
            if found is None:
                conn.execute(
                    insert(TrackerRunRow),
                    {
                        "run_id": run_id, "tracker": tracker, "state": "live",
                        "delivered_seq": 0, "attempts": 0, "updated_at": _now(),
                    },
                )  # fmt: skip

        self._write(work)

    def tracker_progress(
        self,
        run_id: str,
        tracker: str,
        *,
        delivered_seq: int,
        state: str,
        external_id: str | None = None,
        url: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record how far ``tracker`` took ``run_id`` (never moving ``delivered_seq`` back),
        its run's id and URL once known, and the state of delivery (``error`` when pending)."""

        def work(conn: Connection) -> None:
            values: dict[str, Any] = {"state": state, "updated_at": _now()}
            values["error"] = error[:ERROR_CHARS] if error else None
            if external_id is not None:
                values["external_id"] = external_id
                values["url"] = url
            if state == "pending":
                values["attempts"] = TrackerRunRow.attempts + 1
            row = TrackerRunRow
            key = (row.run_id == run_id, row.tracker == tracker)
            conn.execute(update(row).where(*key).values(**values))
            conn.execute(
                update(row).where(*key, row.delivered_seq < delivered_seq)
                .values(delivered_seq=delivered_seq)
            )  # fmt: skip

        self._write(work)

    def tracker_links(self, run_id: str) -> list[dict[str, Any]]:
        """The tracker rows of ``run_id`` (exact id)."""
        with self._read() as conn:
            return links(conn, run_id)

    def undelivered_tracker_runs(self, trackers: Sequence[str]) -> list[dict[str, Any]]:
        """See :func:`undelivered`."""
        with self._read() as conn:
            return undelivered(conn, trackers)
