"""The run event log (``run_events``): every event of a run, by sequence number, stored in
batches (one row per recorder transaction); and
the cancel request another process records for a run (``runs.cancel_requested_at``).

The driver appends a run's events here in the same transaction that applies them to the
task tables (:meth:`MetadataStore.record_events`), so what a follower reads is always
what the tables say. Payloads are :meth:`glasspane.events.Event.to_dict` dicts.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ..types import TERMINAL_STATES
from .models import RunEventRow, RunRow

INSERT_EVENTS = insert(RunEventRow)


def append(conn: Connection, run_id: str, payloads: list[dict[str, Any]]) -> None:
    """Insert ``payloads`` (numbered, in order, each with ``seq`` and ``ts``) as one batch of
    ``run_id``'s events."""
    if not payloads:
        return
    conn.execute(
        INSERT_EVENTS,
        {
            "run_id": run_id,
            "seq": int(payloads[0]["seq"]),
            "last_seq": int(payloads[-1]["seq"]),
            "ts": datetime.fromtimestamp(payloads[0]["ts"], tz=timezone.utc),
            "payload": payloads,
        },
    )


def read(conn: Connection, run_id: str, after: int, limit: int) -> list[dict[str, Any]]:
    """The payloads of ``run_id``'s events with ``seq > after``, oldest first: at least the
    first ``limit`` of them (whole batches)."""
    rows = conn.execute(
        select(RunEventRow.payload)
        .where(RunEventRow.run_id == run_id, RunEventRow.last_seq > after)
        .order_by(RunEventRow.seq)
    )
    found: list[dict[str, Any]] = []
    for row in rows:
        found.extend({**p, "run_id": run_id} for p in row.payload if p["seq"] > after)
        if len(found) >= limit:
            break
    return found


def run_state(conn: Connection, run_id: str) -> str | None:
    """The state of run ``run_id`` (exact id); None when there is no such run."""
    row = conn.execute(select(RunRow.state).where(RunRow.id == run_id)).first()
    return None if row is None else str(row[0])


def request_cancel(conn: Connection, run_id: str) -> bool:
    """Record a cancel request for run ``run_id`` (exact id); False when it is already over."""
    statement = (
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.state.not_in(TERMINAL_STATES))
        .values(cancel_requested_at=datetime.now(timezone.utc))
    )
    return conn.execute(statement).rowcount == 1


def cancel_requested(conn: Connection, run_id: str) -> bool:
    """Whether someone asked to cancel run ``run_id``."""
    row = conn.execute(select(RunRow.cancel_requested_at).where(RunRow.id == run_id)).first()
    return row is not None and row[0] is not None
