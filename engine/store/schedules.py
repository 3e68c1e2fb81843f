"""SQL for schedules: their rows, registered and updated by name, paused and resumed, and
the questions the scheduler loop asks of them (which are due, how many of their runs are
active). Ticks and ``after`` triggers, the claims on a schedule's fire times and upstream
runs, are in :mod:`.claims`.

Each function runs inside the caller's transaction (a ``Connection`` from
:class:`~glasspane.store.MetadataStore`); the fire times themselves are computed elsewhere
(:mod:`glasspane.schedules`) and passed in. Datetimes go in and come out aware UTC.

Invariants:

- A schedule is identified by its name: :func:`upsert_schedule` updates it in place.
- The scheduler finds due schedules by an index on (``paused``, ``next_fire_at``), never
  by scanning them all.
- On PostgreSQL, :func:`due_schedules` locks the rows it returns (``FOR NO KEY UPDATE SKIP
  LOCKED``), so schedulers sharing the work in concurrent transactions pick disjoint ones;
  the lock does not block inserting their ticks (which takes ``KEY SHARE``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, delete, false, func, insert, select, update

from ..errors import NotFound
from ..types import PENDING, QUEUED, RUNNING
from .models import RunRow, ScheduleRow, ScheduleTickRow, ScheduleTriggerRow

#: run states that count against a schedule's ``max_active``
ACTIVE_RUN_STATES = (QUEUED, PENDING, RUNNING)
#: names listed in a NotFound message at most
_NAMES_SHOWN = 20


def now() -> datetime:
    return datetime.now(timezone.utc)


def _as_dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


def upsert_schedule(
    conn: Connection,
    name: str,
    pipeline_ref: str,
    spec: dict[str, Any],
    next_fire_at: datetime | None,
    at: datetime | None = None,
) -> str:
    """Register schedule ``name`` or update it in place; return ``"created"``, ``"updated"``
    or ``"unchanged"``.

    ``next_fire_at`` is stored only when the schedule is new or its reference or spec
    changed: syncing an unchanged schedule again keeps its place (fire times missed while no
    scheduler ran stay due for its catch-up policy). Its ``paused`` flag, ``created_at`` and
    ticks are kept. ``at`` is the current time (default: the clock's).
    """
    at = at or now()
    row = conn.execute(
        select(ScheduleRow.pipeline_ref, ScheduleRow.spec).where(ScheduleRow.name == name)
    ).first()
    values = {
        "pipeline_ref": pipeline_ref,
        "spec": spec,
        "after": spec.get("after"),
        "next_fire_at": next_fire_at,
        "updated_at": at,
    }
    if row is None:
        conn.execute(
            insert(ScheduleRow).values(
                name=name, paused=False, created_at=at, active_since=at, **values
            )
        )
        return "created"
    if (row.pipeline_ref, row.spec) == (pipeline_ref, spec):
        return "unchanged"
    conn.execute(update(ScheduleRow).where(ScheduleRow.name == name).values(**values))
    return "updated"


def get_schedule(conn: Connection, name: str) -> dict[str, Any]:
    """Schedule ``name`` as a dict of its columns.

    Raises:
        NotFound: there is no such schedule (the message names those there are).
    """
    row = conn.execute(select(ScheduleRow).where(ScheduleRow.name == name)).first()
    if row is None:
        raise no_schedule(conn, name)
    return _as_dict(row)


def no_schedule(conn: Connection, name: str) -> NotFound:
    names = (
        conn.execute(select(ScheduleRow.name).order_by(ScheduleRow.name).limit(_NAMES_SHOWN + 1))
        .scalars()
        .all()
    )
    shown = ", ".join(names[:_NAMES_SHOWN]) + (", ..." if len(names) > _NAMES_SHOWN else "")
    return NotFound(
        f"no schedule `{name}`; the schedules are: {shown or 'none'}; "
        "sync the pipeline that declares it to register it"
    )


def list_schedules(conn: Connection) -> list[dict[str, Any]]:
    """Every schedule, by name."""
    return [_as_dict(row) for row in conn.execute(select(ScheduleRow).order_by(ScheduleRow.name))]


def pause_schedule(conn: Connection, name: str) -> bool:
    """Pause schedule ``name``; False if it was paused already. Raises NotFound."""
    return _set_paused(conn, name, True, {})


def resume_schedule(
    conn: Connection, name: str, next_fire_at: datetime | None, at: datetime | None = None
) -> bool:
    """Resume schedule ``name`` from now: ``active_since`` becomes now and ``next_fire_at``
    the caller's (computed from now, so what it missed while paused is not caught up).
    False if it was not paused. Raises NotFound."""
    values = {"active_since": at or now(), "next_fire_at": next_fire_at}
    return _set_paused(conn, name, False, values)


def _set_paused(conn: Connection, name: str, paused: bool, values: dict[str, Any]) -> bool:
    changed = conn.execute(
        update(ScheduleRow)
        .where(ScheduleRow.name == name, ScheduleRow.paused.is_not(paused))
        .values(paused=paused, updated_at=now(), **values)
    ).rowcount
    if not changed:
        get_schedule(conn, name)  # NotFound when it does not exist
    return changed == 1


def remove_schedule(conn: Connection, name: str) -> None:
    """Delete schedule ``name`` with its ticks and triggers (its runs stay). Raises NotFound."""
    get_schedule(conn, name)
    for table in (ScheduleTickRow, ScheduleTriggerRow):
        conn.execute(delete(table).where(table.schedule_name == name))
    conn.execute(delete(ScheduleRow).where(ScheduleRow.name == name))


def due_schedules(conn: Connection, at: datetime, limit: int) -> list[dict[str, Any]]:
    """The unpaused schedules whose ``next_fire_at`` is ``at`` or earlier, earliest first (at
    most ``limit``; an index seek). On PostgreSQL the rows are locked for the rest of the
    transaction and rows another transaction locked are skipped."""
    query = (
        select(ScheduleRow)
        .where(ScheduleRow.paused == false(), ScheduleRow.next_fire_at <= at)
        .order_by(ScheduleRow.next_fire_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, key_share=True)
    return [_as_dict(row) for row in conn.execute(query)]


def next_due_at(conn: Connection) -> datetime | None:
    """The earliest ``next_fire_at`` of the unpaused schedules, or None (an index seek)."""
    query = select(func.min(ScheduleRow.next_fire_at)).where(ScheduleRow.paused == false())
    value = conn.execute(query).scalar()
    if value is not None and value.tzinfo is None:  # SQLite returns naive UTC
        value = value.replace(tzinfo=timezone.utc)
    return value  # type: ignore[no-any-return]


def after_schedules(conn: Connection) -> list[dict[str, Any]]:
    """The unpaused schedules that launch after another pipeline's runs succeed."""
    query = select(ScheduleRow).where(ScheduleRow.paused == false(), ScheduleRow.after.is_not(None))
    return [_as_dict(row) for row in conn.execute(query.order_by(ScheduleRow.name))]


def set_next_fire(
    conn: Connection, name: str, next_fire_at: datetime | None, last_fire_at: datetime | None
) -> bool:
    """Move schedule ``name`` on to ``next_fire_at``, recording ``last_fire_at`` (None keeps
    the one stored); False if it does not exist (removed meanwhile)."""
    values: dict[str, Any] = {"next_fire_at": next_fire_at}
    if last_fire_at is not None:
        values["last_fire_at"] = last_fire_at
    statement = update(ScheduleRow).where(ScheduleRow.name == name).values(**values)
    return conn.execute(statement).rowcount == 1


def count_active_runs(conn: Connection, name: str) -> int:
    """How many runs schedule ``name`` launched are queued, pending or running."""
    query = select(func.count()).where(
        RunRow.schedule_name == name, RunRow.state.in_(ACTIVE_RUN_STATES)
    )
    return int(conn.execute(query).scalar_one())
