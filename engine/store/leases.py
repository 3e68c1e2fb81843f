"""SQL for the scheduler lease: on SQLite one scheduler runs and any other waits as a
standby, taking the lease over once its holder stops renewing it.

Each function runs inside the caller's write transaction. Times come from the caller (an
injected clock); ``stale_after`` is in seconds.

Invariants:

- At most one holder per lease name: taking a lease over is a compare-and-set on the
  holder's last heartbeat (``UPDATE ... WHERE heartbeat_at < now - stale_after``), so of two
  standbys racing for a stale lease exactly one wins.
- A holder learns it lost the lease when :func:`renew_lease` answers False, and must stop.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select, update

from ..errors import InvalidArgument
from .claims import insert_once
from .models import SchedulerLeaseRow


def acquire_lease(
    conn: Connection, name: str, holder: str, at: datetime, stale_after: float
) -> bool:
    """Take lease ``name`` for ``holder`` if it is free, stale (no heartbeat for
    ``stale_after`` seconds) or held by ``holder`` already (then this renews it)."""
    if stale_after <= 0:
        raise InvalidArgument(f"lease stale_after must be more than 0 seconds, not {stale_after}")
    values = {"name": name, "holder": holder, "heartbeat_at": at, "acquired_at": at}
    if insert_once(conn, SchedulerLeaseRow, values, ["name"]):
        return True
    if renew_lease(conn, name, holder, at):
        return True
    taken = conn.execute(
        update(SchedulerLeaseRow)
        .where(
            SchedulerLeaseRow.name == name,
            SchedulerLeaseRow.heartbeat_at < at - timedelta(seconds=stale_after),
        )
        .values(holder=holder, heartbeat_at=at, acquired_at=at)
    )
    return taken.rowcount == 1


def renew_lease(conn: Connection, name: str, holder: str, at: datetime) -> bool:
    """Record that ``holder`` is alive; False if it does not hold lease ``name`` (any more)."""
    renewed = conn.execute(
        update(SchedulerLeaseRow)
        .where(SchedulerLeaseRow.name == name, SchedulerLeaseRow.holder == holder)
        .values(heartbeat_at=at)
    )
    return renewed.rowcount == 1


def release_lease(conn: Connection, name: str, holder: str) -> bool:
    """Give lease ``name`` up, so a standby takes it at once; False if ``holder`` lacked it."""
    released = conn.execute(
        delete(SchedulerLeaseRow).where(
            SchedulerLeaseRow.name == name, SchedulerLeaseRow.holder == holder
        )
    )
    return released.rowcount == 1


def lease(conn: Connection, name: str) -> dict[str, Any] | None:
    """Lease ``name`` as ``{"name", "holder", "heartbeat_at", "acquired_at"}``, or None."""
    row = conn.execute(select(SchedulerLeaseRow).where(SchedulerLeaseRow.name == name)).first()
    return None if row is None else dict(row._mapping)
