"""The records :mod:`glasspane.queries.schedules` returns: a schedule as a list shows it, one
schedule in full, and one of its ticks (an evaluated fire time and what became of it).

Like every query record they are frozen pydantic models whose JSON is the web UI's API;
times are timezone-aware UTC (a cron schedule's ``timezone`` says how to show them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from .records import Record

#: what became of a tick: ``claimed`` until its scheduler records the outcome
TickState = Literal["claimed", "launched", "skipped", "failed"]


class ScheduleSummary(Record):
    """One registered schedule: what it runs, when, and where it stands."""

    name: str
    pipeline: str
    """The pipeline's name: the part of ``pipeline_ref`` after its last ``:``."""
    pipeline_ref: str
    """How the scheduler imports it: ``/abs/path/file.py:name`` or ``module:name``."""
    kind: Literal["cron", "every", "after"]
    cron: str | None
    every: str | None
    after: str | None
    """The upstream pipeline whose successful runs start this one (``kind`` ``after``)."""
    timezone: str
    """The IANA zone a cron expression is read in (``UTC`` for the other kinds)."""
    params: dict[str, Any]
    catchup: Literal["none", "latest", "all"]
    max_catchup: int
    max_active: int
    paused: bool
    created_at: datetime
    active_since: datetime
    """When it was registered, or last resumed: it fires nothing from before."""
    next_fire_at: datetime | None
    """The next fire time the scheduler will evaluate (None for ``after`` schedules)."""
    last_fire_at: datetime | None
    active_runs: int
    """Runs it launched that are queued, pending or running (counted against ``max_active``)."""


class ScheduleTick(Record):
    """One evaluated fire time of a schedule and its outcome."""

    fire_at: datetime
    state: TickState
    reason: str | None
    """Why it was skipped or failed."""
    run_id: str | None
    """The run it launched."""
    created_at: datetime
    """When a scheduler claimed it."""
    updated_at: datetime


class ScheduleTrigger(Record):
    """One upstream run an ``after`` schedule reacted to, and the outcome."""

    upstream_run_id: str
    """The upstream pipeline's run that succeeded."""
    state: TickState
    reason: str | None
    """Why it was skipped or failed."""
    run_id: str | None
    """The run it launched."""
    created_at: datetime
    """When a scheduler claimed it."""
    updated_at: datetime


class ScheduleDetail(ScheduleSummary):
    """One schedule in full: its summary, its next fire times, its newest ticks and (an
    ``after`` schedule) the upstream runs it reacted to."""

    upcoming: list[datetime]
    """The next fire times from now (UTC); none for ``after`` schedules and paused ones."""
    ticks: list[ScheduleTick]
    """The newest ticks, latest fire time first (``after`` schedules have none)."""
    triggers: list[ScheduleTrigger]
    """An ``after`` schedule's newest upstream runs, latest first (others have none)."""
