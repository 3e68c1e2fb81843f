"""SQL for the claims on a schedule's work: ticks (one per evaluated fire time) and the
upstream runs ``after`` schedules react to, and the runs recorded for fire times (what a
backfill finds done or still running).

Each function runs inside the caller's transaction (a ``Connection`` from
:class:`~glasspane.store.MetadataStore`). Datetimes go in and come out aware UTC.

Invariants:

- Exactly one scheduler claims a (schedule, fire time): the tick's unique key makes the
  insert the claim (:func:`claim_tick`), and a lost race answers False without aborting the
  caller's transaction. An ``after`` trigger is claimed the same way, once per upstream run.
- A claimed tick or trigger records its outcome once (``claimed`` -> ``launched`` |
  ``skipped`` | ``failed``, compare-and-set); :func:`settle_claims` settles those a killed
  scheduler left claimed, from the runs that record their schedule and fire time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, insert, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..errors import InvalidArgument
from ..types import SUCCEEDED
from .columns import tail
from .models import Base, RunRow, ScheduleRow, ScheduleTickRow, ScheduleTriggerRow
from .schedules import no_schedule, now

CLAIMED, LAUNCHED, SKIPPED, FAILED = "claimed", "launched", "skipped", "failed"
#: the outcomes a claimed tick or trigger can record
OUTCOMES = (LAUNCHED, SKIPPED, FAILED)

_ON_CONFLICT: dict[str, Callable[[Any], Any]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


@dataclass(frozen=True)
class DueTicks:
    """The fire times of one due schedule that this scheduler claimed (see ``claim_due``)."""

    schedule: dict[str, Any]
    fire_times: list[datetime]


def insert_once(conn: Connection, row: type[Base], values: dict[str, Any], keys: list[str]) -> bool:
    """Insert ``values`` into ``row``'s table unless a row with the same unique ``keys``
    exists; True if inserted.

    ``INSERT ... ON CONFLICT DO NOTHING`` where the dialect has it, else a savepoint rolled
    back on the unique violation: either way the caller's transaction stays usable.
    """
    make = _ON_CONFLICT.get(conn.dialect.name)
    if make is not None:
        statement = make(row).values(**values).on_conflict_do_nothing(index_elements=keys)
        # RETURNING, not rowcount: SQLAlchemy adds RETURNING for the new key on PostgreSQL,
        # and then the result's rowcount is -1 whether a row was inserted or not.
        statement = statement.returning(*inspect(row).primary_key)
        return conn.execute(statement).first() is not None
    try:
        with conn.begin_nested():
            conn.execute(insert(row).values(**values))
    except IntegrityError:
        key = and_(*(getattr(row, name) == values[name] for name in keys))
        if conn.execute(select(exists().where(key))).scalar():
            return False
        raise  # another constraint: not a lost race
    return True


def claim_tick(conn: Connection, name: str, fire_at: datetime) -> bool:
    """Claim fire time ``fire_at`` of schedule ``name``: True if this call inserted its tick,
    False if it was claimed before (by this or another scheduler). Raises NotFound."""
    return _claim(conn, ScheduleTickRow, name, "fire_at", fire_at)


def claim_after_trigger(conn: Connection, name: str, upstream_run_id: str) -> bool:
    """Claim upstream run ``upstream_run_id`` for ``after`` schedule ``name``: True once per
    (schedule, upstream run), False afterwards. Raises NotFound."""
    return _claim(conn, ScheduleTriggerRow, name, "upstream_run_id", upstream_run_id)


def _claim(conn: Connection, row: Any, name: str, key: str, value: Any) -> bool:
    if conn.execute(select(ScheduleRow.id).where(ScheduleRow.name == name)).first() is None:
        raise no_schedule(conn, name)
    at = now()
    values = {"schedule_name": name, key: value, "state": CLAIMED}
    values.update(created_at=at, updated_at=at)
    return insert_once(conn, row, values, ["schedule_name", key])


def finish_tick(
    conn: Connection,
    name: str,
    fire_at: datetime,
    state: str,
    run_id: str | None = None,
    reason: str | None = None,
) -> bool:
    """Record the outcome of a claimed tick; False if it is not claimed (already finished)."""
    key = and_(ScheduleTickRow.schedule_name == name, ScheduleTickRow.fire_at == fire_at)
    return _finish(conn, ScheduleTickRow, key, state, run_id, reason)


def finish_after_trigger(
    conn: Connection,
    name: str,
    upstream_run_id: str,
    state: str,
    run_id: str | None = None,
    reason: str | None = None,
) -> bool:
    """Record the outcome of a claimed ``after`` trigger, like :func:`finish_tick`."""
    key = and_(
        ScheduleTriggerRow.schedule_name == name,
        ScheduleTriggerRow.upstream_run_id == upstream_run_id,
    )
    return _finish(conn, ScheduleTriggerRow, key, state, run_id, reason)


def _finish(
    conn: Connection, row: Any, key: Any, state: str, run_id: str | None, reason: str | None
) -> bool:
    if state not in OUTCOMES:
        raise InvalidArgument(
            f"unknown tick outcome `{state}`; record one of {', '.join(OUTCOMES)}"
        )
    statement = (
        update(row)
        .where(key, row.state == CLAIMED)
        .values(state=state, run_id=run_id, reason=tail(reason), updated_at=now())
    )
    return conn.execute(statement).rowcount == 1


def settle_claims(conn: Connection, claimed_before: datetime) -> list[dict[str, Any]]:
    """Settle ticks and triggers still ``claimed`` since before ``claimed_before``: their
    scheduler stopped between the claim and recording the outcome. One whose run was queued
    (a run recording its schedule and fire time, or upstream run) becomes ``launched`` with
    that run, any other ``failed``. Returns what it settled."""
    settled = []
    kinds = (
        (ScheduleTickRow, ScheduleTickRow.fire_at, RunRow.scheduled_for, "fire_at"),
        (ScheduleTriggerRow, ScheduleTriggerRow.upstream_run_id, RunRow.upstream_run_id,
         "upstream_run_id"),
    )  # fmt: skip
    for row, key, run_key, label in kinds:
        stale = conn.execute(
            select(row.schedule_name, key).where(
                row.state == CLAIMED, row.created_at < claimed_before
            )
        ).all()
        for name, value in stale:
            run_id = conn.execute(
                select(RunRow.id)
                .where(RunRow.schedule_name == name, run_key == value)
                .order_by(RunRow.created_at)
                .limit(1)
            ).scalar()
            state = LAUNCHED if run_id else FAILED
            reason = None if run_id else (
                "the scheduler stopped after claiming this and before launching its run; "
                "nothing was launched, launch it by hand if it is still wanted"
            )  # fmt: skip
            claim = and_(row.schedule_name == name, key == value)
            if _finish(conn, row, claim, state, run_id, reason):
                settled.append({"schedule": name, label: value, "state": state, "run_id": run_id})
    return settled


def prune_ticks(conn: Connection, fired_before: datetime) -> int:
    """Delete finished ticks whose fire time is before ``fired_before``; return how many.

    Only safe for fire times no scheduler evaluates again: older than every schedule's
    ``next_fire_at`` (a deleted tick no longer stops its fire time being claimed).
    """
    statement = delete(ScheduleTickRow).where(
        ScheduleTickRow.state.in_(OUTCOMES), ScheduleTickRow.fire_at < fired_before
    )
    return int(conn.execute(statement).rowcount)


def ticks(conn: Connection, name: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` ticks of schedule ``name``, latest fire time first."""
    tick = ScheduleTickRow
    columns = (tick.fire_at, tick.state, tick.reason, tick.run_id, tick.created_at, tick.updated_at)
    query = (
        select(*columns)
        .where(ScheduleTickRow.schedule_name == name)
        .order_by(ScheduleTickRow.fire_at.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def triggers(conn: Connection, name: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` upstream runs ``after`` schedule ``name`` reacted to, latest
    claimed first."""
    trigger = ScheduleTriggerRow
    columns = (
        trigger.upstream_run_id, trigger.state, trigger.reason, trigger.run_id,
        trigger.created_at, trigger.updated_at,
    )  # fmt: skip
    query = (
        select(*columns)
        .where(trigger.schedule_name == name)
        .order_by(trigger.created_at.desc(), trigger.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def succeeded_runs_since(
    conn: Connection,
    pipeline: str,
    since: datetime,
    *,
    schedule_name: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Runs of ``pipeline`` that succeeded (ended) at ``since`` or later, oldest first: the
    upstream runs an ``after`` schedule reacts to. With ``schedule_name``, those it has
    already claimed are left out. Each is ``{"run_id", "ended_at"}``."""
    query = select(RunRow.id.label("run_id"), RunRow.ended_at).where(
        RunRow.pipeline_name == pipeline, RunRow.state == SUCCEEDED, RunRow.ended_at >= since
    )
    if schedule_name is not None:
        claimed = exists().where(
            ScheduleTriggerRow.schedule_name == schedule_name,
            ScheduleTriggerRow.upstream_run_id == RunRow.id,
        )
        query = query.where(~claimed)
    query = query.order_by(RunRow.ended_at, RunRow.id).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def runs_for(
    conn: Connection, pipelines: Iterable[str], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The runs of the pipelines named ``pipelines`` for fire times from ``start`` to
    ``end`` (``run_id``, ``state``, ``scheduled_for``): a read function for
    :meth:`~glasspane.store.MetadataStore.read`."""
    query = select(RunRow.id, RunRow.state, RunRow.scheduled_for).where(
        RunRow.pipeline_name.in_(sorted(set(pipelines))),
        RunRow.scheduled_for >= start,
        RunRow.scheduled_for <= end,
    )
    return [
        {"run_id": row.id, "state": row.state, "scheduled_for": row.scheduled_for}
        for row in conn.execute(query.order_by(RunRow.created_at))
    ]


def run_states(conn: Connection, run_ids: Iterable[str]) -> dict[str, str]:
    """The state of each of ``run_ids`` (full ids) that exists, by id: a read function."""
    query = select(RunRow.id, RunRow.state).where(RunRow.id.in_(list(run_ids)))
    return {row.id: row.state for row in conn.execute(query)}
