"""Schedules: every registered schedule with its state, and one schedule with its next fire
times and newest ticks.

Each query reads one consistent snapshot (one read transaction) and never writes; the next
fire times come from the pure functions of :mod:`glasspane.schedules`, computed from ``now``
(this layer sits below :mod:`glasspane.scheduling`, so it reads the stored definition itself).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection

from ..errors import InvalidArgument
from ..schedules import next_fire_times, schedule_of
from ..store import MetadataStore, claims
from ..store import schedules as schedule_rows
from .schedule_records import ScheduleDetail, ScheduleSummary, ScheduleTick, ScheduleTrigger

#: fire times a schedule's detail lists
UPCOMING = 5
#: most ticks one detail holds
MAX_TICKS = 500


def schedules(metadata: MetadataStore) -> list[ScheduleSummary]:
    """Every registered schedule, by name, with how many of its runs are active."""
    return metadata.read(_summaries)


def schedule(
    metadata: MetadataStore,
    name: str,
    *,
    ticks: int = 50,
    triggers: int | None = None,
    now: datetime | None = None,
) -> ScheduleDetail:
    """Schedule ``name`` with its next :data:`UPCOMING` fire times after ``now`` (none when
    paused), its newest ``ticks`` ticks and (an ``after`` schedule) its newest ``triggers``
    upstream runs (as many as ``ticks`` unless given), latest first.

    Raises:
        NotFound: no schedule ``name`` (the message names those there are).
        InvalidArgument: ``ticks`` or ``triggers`` is not 1 to :data:`MAX_TICKS`.
    """
    triggers = ticks if triggers is None else triggers
    for what, limit in (("ticks", ticks), ("triggers", triggers)):
        if not 1 <= limit <= MAX_TICKS:
            raise InvalidArgument(f"{what} must be 1 to {MAX_TICKS}, not {limit}")
    row, summary, tick_rows, trigger_rows = metadata.read(_detail, name, ticks, triggers)
    spec = schedule_of(row)
    upcoming: list[datetime] = []
    if not spec.paused and spec.kind != "after":
        upcoming = next_fire_times(spec, now or datetime.now(timezone.utc), UPCOMING)
    return ScheduleDetail(
        **summary.model_dump(),
        upcoming=upcoming,
        ticks=[ScheduleTick(**tick) for tick in tick_rows],
        triggers=[ScheduleTrigger(**trigger) for trigger in trigger_rows],
    )


def _summaries(conn: Connection) -> list[ScheduleSummary]:
    return [_summary(conn, row) for row in schedule_rows.list_schedules(conn)]


def _detail(
    conn: Connection, name: str, ticks: int, triggers: int
) -> tuple[dict[str, Any], ScheduleSummary, list[dict[str, Any]], list[dict[str, Any]]]:
    row = schedule_rows.get_schedule(conn, name)
    after = claims.triggers(conn, name, triggers) if row["spec"].get("after") else []
    return row, _summary(conn, row), claims.ticks(conn, name, ticks), after


def _summary(conn: Connection, row: dict[str, Any]) -> ScheduleSummary:
    spec = schedule_of(row)
    return ScheduleSummary(
        name=row["name"],
        pipeline=row["pipeline_ref"].rpartition(":")[2],
        pipeline_ref=row["pipeline_ref"],
        kind=spec.kind,
        cron=spec.cron,
        every=spec.every,
        after=spec.after,
        timezone=spec.timezone,
        params=spec.params,
        catchup=spec.catchup,
        max_catchup=spec.max_catchup,
        max_active=spec.max_active,
        paused=bool(row["paused"]),
        created_at=row["created_at"],
        active_since=row["active_since"],
        next_fire_at=row["next_fire_at"],
        last_fire_at=row["last_fire_at"],
        active_runs=schedule_rows.count_active_runs(conn, row["name"]),
    )
