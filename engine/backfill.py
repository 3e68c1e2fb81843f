"""Backfills: one run of a pipeline for each fire time of a schedule in a range of dates
(``glasspane backfill``).

What to do is decided by pure functions: the range a user typed (:func:`parse_bound`), the
fire times in it (:func:`fire_times`), and which of them to launch, skip or wait for given
the runs the store already holds for them (:func:`plan`). :class:`Backfill` carries a plan
out through the functions it is given (launch a run, read run states), so it runs the same
against a Workspace and in tests.

Invariants:

- a fire time that has a succeeded run of the pipeline (whatever launched it) is never
  launched again, so running the same backfill twice launches only what is missing;
- a fire time whose run is queued, pending or running is waited for, not launched again;
- failed, crashed and cancelled runs do not count: their fire times are launched again;
- at most ``max_parallel`` runs are active at once, the runs waited for included;
- a backfill covers at most :data:`MAX_FIRE_TIMES` fire times.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

from .errors import InvalidArgument
from .schedules import Schedule, fire_times_between, next_fire_times
from .types import PENDING, QUEUED, RUNNING, SUCCEEDED, TERMINAL_STATES

#: most fire times one backfill covers
MAX_FIRE_TIMES = 10_000
#: run states a backfill waits for instead of launching the fire time again
ACTIVE_STATES = frozenset({QUEUED, PENDING, RUNNING})
_TINY = timedelta(microseconds=1)


# ---- the range and its fire times ----------------------------------------------------------


def parse_bound(text: str, zone: tzinfo, *, end: bool = False, option: str = "--from") -> datetime:
    """A ``--from`` or ``--to`` value as an aware datetime.

    ``YYYY-MM-DD`` is midnight at the start of that day in ``zone``, or with ``end`` the last
    instant of it (so that ``--to`` includes the whole day); an ISO 8601 date and time
    without an offset is read in ``zone``; one with an offset (or ``Z``) is that instant.

    Raises:
        InvalidArgument: ``text`` is neither (the message names ``option``).
    """
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            if end:
                day += timedelta(days=1)
            midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
            return midnight - _TINY if end else midnight
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidArgument(
            f"{option} `{text}` is not a date or a date and time; write YYYY-MM-DD (a whole "
            "day) or an ISO 8601 date and time such as 2026-01-31T03:00 (read in the "
            "schedule's zone) or 2026-01-31T03:00+01:00"
        ) from None
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def fire_times(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """The fire times of ``schedule`` from ``start`` to ``end``, both included (UTC).

    Raises:
        InvalidArgument: ``end`` is before ``start``, the schedule is an ``after`` schedule,
            or the range holds more than :data:`MAX_FIRE_TIMES` fire times (the message says
            about how many, and where the first :data:`MAX_FIRE_TIMES` end).
    """
    if schedule.kind == "after":
        raise InvalidArgument(
            f"schedule `{schedule.name}` runs after each successful run of pipeline "
            f"`{schedule.after}`: it has no fire times to backfill; backfill `{schedule.after}` "
            "instead, or pass --cron or --every"
        )
    if end < start:
        raise InvalidArgument(f"--to ({_utc(end)}) is before --from ({_utc(start)}); swap them")
    try:
        return fire_times_between(schedule, start, end, limit=MAX_FIRE_TIMES)
    except InvalidArgument:  # the only error left: more fire times than the limit
        raise InvalidArgument(_too_many(schedule, start, end)) from None


def _too_many(schedule: Schedule, start: datetime, end: datetime) -> str:
    first = next_fire_times(schedule, start - _TINY, MAX_FIRE_TIMES)
    last = first[-1]
    if schedule.kind == "every":
        count = f"{(end - first[0]) // schedule.interval + 1:,}"
    else:  # extrapolated from how far the first MAX_FIRE_TIMES reach
        count = f"about {int(1 + (MAX_FIRE_TIMES - 1) * ((end - first[0]) / (last - first[0]))):,}"
    return (
        f"{count} fire times from {_utc(start)} to {_utc(end)}: a backfill covers at most "
        f"{MAX_FIRE_TIMES:,}; narrow --from/--to (the first {MAX_FIRE_TIMES:,} reach to "
        f"{_utc(last)}) and backfill the rest in further commands"
    )


def _utc(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")


# ---- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What a backfill does with each fire time in its range.

    Attributes:
        fire_times: every fire time in the range, oldest first.
        launch: the fire times to launch a run for, oldest first.
        done: fire time -> id of a succeeded run for it: skipped.
        active: fire time -> id of a queued, pending or running run for it: waited for.
    """

    fire_times: tuple[datetime, ...]
    launch: tuple[datetime, ...]
    done: Mapping[datetime, str]
    active: Mapping[datetime, str]


def plan(times: Iterable[datetime], runs: Iterable[Mapping[str, Any]]) -> Plan:
    """Decide, for each fire time, whether to launch, skip or wait for it.

    Args:
        times: the fire times, aware.
        runs: the runs recorded for them, each with ``run_id``, ``state`` and
            ``scheduled_for`` (aware); others are ignored.
    """
    done: dict[datetime, str] = {}
    active: dict[datetime, str] = {}
    for run in runs:
        at = run["scheduled_for"]
        if run["state"] == SUCCEEDED:
            done[at] = run["run_id"]
        elif run["state"] in ACTIVE_STATES:
            active[at] = run["run_id"]
    ordered = sorted(set(times))
    done = {at: done[at] for at in ordered if at in done}
    active = {at: active[at] for at in ordered if at in active and at not in done}
    launch = tuple(at for at in ordered if at not in done and at not in active)
    return Plan(tuple(ordered), launch, done, active)


# ---- carrying it out -------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """A run a backfill launched (``state`` ``queued``), or one that ended (its state)."""

    kind: str  # "launched" or "finished"
    fire_at: datetime
    run_id: str
    state: str


@dataclass
class Backfill:
    """Carries out a :class:`Plan`: launches its fire times, at most ``max_parallel`` runs
    active at a time, and waits for them and for the runs it found active.

    Interrupted (``KeyboardInterrupt``), it stops launching at once; :attr:`launched` and
    :attr:`left` then say what was launched and what was not.

    Args:
        plan: what to do.
        launch: starts a run for a fire time; returns its run id.
        states: the current states of some run ids, by id.
        max_parallel: most runs active at once.
        poll: seconds between reads of the runs' states.
        on_step: hears each launch and each run's end.
        sweep: called every ``sweep_every`` seconds of waiting, to mark runs whose
            driver died as crashed (so a dead run is not waited for forever).
    """

    plan: Plan
    launch: Callable[[datetime], str]
    states: Callable[[list[str]], dict[str, str]]
    max_parallel: int = 2
    poll: float = 0.5
    on_step: Callable[[Step], None] = lambda step: None
    sweep: Callable[[], Any] | None = None
    sweep_every: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    #: fire time -> run id of the runs it launched
    launched: dict[datetime, str] = field(default_factory=dict)
    #: run id -> final state of the runs that ended (launched or waited for)
    ended: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_parallel < 1:
            raise InvalidArgument(f"max_parallel must be 1 or more, not {self.max_parallel}")
        self._left = list(self.plan.launch)

    @property
    def left(self) -> list[datetime]:
        """The fire times not launched (yet)."""
        return list(self._left)

    @property
    def runs(self) -> dict[datetime, str]:
        """Fire time -> run id of every run it launched or waited for, oldest first."""
        runs = {**self.plan.active, **self.launched}
        return {at: runs[at] for at in sorted(runs)}

    def launch_all(self) -> None:
        """Launch every fire time left at once, without waiting (``--no-wait``)."""
        while self._left:
            self._launch_next()

    def run(self) -> None:
        """Launch the fire times, at most ``max_parallel`` active, and wait for every run."""
        active = {run_id: at for at, run_id in self.plan.active.items()}
        waited = 0.0
        while self._left or active:
            while self._left and len(active) < self.max_parallel:
                at, run_id = self._launch_next()
                active[run_id] = at
            self.sleep(self.poll)
            waited += self.poll
            if self.sweep is not None and waited >= self.sweep_every:
                self.sweep()
                waited = 0.0
            current = self.states(list(active))
            for run_id, at in sorted(active.items(), key=lambda item: item[1]):
                # a run no longer recorded (deleted meanwhile) is as good as crashed
                state = current.get(run_id, "crashed")
                if state in TERMINAL_STATES or run_id not in current:
                    del active[run_id]
                    self.ended[run_id] = state
                    self.on_step(Step("finished", at, run_id, state))

    def _launch_next(self) -> tuple[datetime, str]:
        at = self._left[0]
        run_id = self.launch(at)
        self._left.pop(0)
        self.launched[at] = run_id
        self.on_step(Step("launched", at, run_id, QUEUED))
        return at, run_id

    @property
    def succeeded(self) -> list[str]:
        """The runs that ended succeeded."""
        return [run_id for run_id, state in self.ended.items() if state == SUCCEEDED]

    @property
    def failed(self) -> dict[datetime, str]:
        """Fire time -> run id of the runs that ended otherwise (failed, crashed, ...)."""
        ended = {run_id for run_id, state in self.ended.items() if state != SUCCEEDED}
        return {at: run_id for at, run_id in self.runs.items() if run_id in ended}


__all__ = [
    "ACTIVE_STATES",
    "MAX_FIRE_TIMES",
    "Backfill",
    "Plan",
    "Step",
    "fire_times",
    "parse_bound",
    "plan",
]
