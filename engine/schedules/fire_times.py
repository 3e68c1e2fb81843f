"""Fire times: when a schedule fires, and which fire times are due at a given moment.

Everything here is a pure function of its arguments: no clock is read and nothing is
stored, so the scheduler loop (which claims, launches and sleeps) passes ``now`` in, and
tests pass exact instants. Every datetime argument must be timezone-aware; every datetime
returned is an aware UTC datetime.

Invariants:

- fire times are strictly increasing and never repeat (DST rules in :mod:`.dst`);
- :func:`due` never returns a fire time before ``active_since`` (the moment the schedule
  was created or last resumed), nor one at or before ``last_fire``, nor one after ``now``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import islice

from ..errors import InvalidArgument
from . import dst
from .spec import Schedule

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: A fire time evaluated at most this long after it is on time, not missed (``catchup="none"``).
DEFAULT_GRACE = timedelta(minutes=1)
#: Most skipped fire times one :func:`due` lists (the latest ones); ``Due.more_skipped`` tells
#: when there were more, so a scheduler down for a month does not record 40,000 skipped ticks.
MAX_SKIPPED = 100
#: Most fire times :func:`fire_times_between` returns unless told otherwise.
DEFAULT_LIMIT = 10_000
_TINY = timedelta(microseconds=1)  # fire times fall on whole seconds: `t - _TINY` is before t


@dataclass(frozen=True)
class Due:
    """What a schedule should do at one moment.

    Attributes:
        launch: fire times to launch runs for now, oldest first.
        skip: fire times to record as skipped by the catch-up policy, oldest first (at
            most :data:`MAX_SKIPPED`, the latest ones).
        more_skipped: earlier fire times were skipped too but are not listed in ``skip``.
        next_fire: the first fire time after ``now``, or ``None`` (paused, or never again).
    """

    launch: tuple[datetime, ...] = ()
    skip: tuple[datetime, ...] = ()
    more_skipped: bool = False
    next_fire: datetime | None = None

    @property
    def latest(self) -> datetime | None:
        """The latest fire time launched or skipped: the ``last_fire`` of the next call."""
        evaluated = self.launch + self.skip
        return max(evaluated) if evaluated else None


def next_fire_times(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """The first ``count`` fire times strictly after ``after``.

    Args:
        schedule: a ``cron`` or ``every`` schedule.
        after: aware datetime.
        count: how many fire times, 0 or more.

    Returns:
        Aware UTC datetimes, increasing (fewer than ``count`` only if the expression stops
        matching within croniter's 50-year horizon).

    Raises:
        InvalidArgument: ``after`` is naive, ``count`` negative, or the schedule is an
            ``after`` schedule (it has no fire times).
    """
    _check_aware(after=after)
    if count < 0:
        raise InvalidArgument(f"`count` must be 0 or more (got {count})")
    return list(islice(_fire_times_after(schedule, after), count))


def fire_times_between(
    schedule: Schedule, start: datetime, end: datetime, *, limit: int = DEFAULT_LIMIT
) -> list[datetime]:
    """Every fire time from ``start`` to ``end``, both included: what a backfill runs.

    Raises:
        InvalidArgument: naive datetimes, ``end`` before ``start``, an ``after`` schedule, or
            more than ``limit`` fire times in the range (the message says how to go on).
    """
    _check_aware(start=start, end=end)
    if end < start:
        raise InvalidArgument(f"`end` ({_iso(end)}) is before `start` ({_iso(start)}); swap them")
    times: list[datetime] = []
    for instant in _fire_times_after(schedule, start - _TINY):
        if instant > end:
            break
        if len(times) == limit:
            raise InvalidArgument(
                f"{_label(schedule)} fires more than {limit} times from {_iso(start)} to "
                f"{_iso(end)}; narrow the range or pass a larger `limit`"
            )
        times.append(instant)
    return times


def due(
    schedule: Schedule,
    last_fire: datetime | None,
    active_since: datetime,
    now: datetime,
    *,
    grace: timedelta = DEFAULT_GRACE,
) -> Due:
    """Which fire times to launch at ``now``, and which the catch-up policy skips.

    The fire times considered are those after ``last_fire``, from ``active_since`` on, up
    to ``now`` (all inclusive but ``last_fire``). The latest of them is the current one; the
    others were missed. By ``schedule.catchup``:

    - ``"latest"``: launch the latest, skip the others;
    - ``"all"``: launch the latest ``max_catchup``, skip the older ones;
    - ``"none"``: launch the latest only if ``now`` is at most ``grace`` after it (it is
      on time, not missed); skip the others.

    A paused schedule has nothing due and no next fire time.

    Args:
        schedule: a ``cron`` or ``every`` schedule.
        last_fire: the latest fire time already launched or skipped (``Due.latest`` of the
            previous call), or ``None`` if there is none.
        active_since: when the schedule was created or last resumed; nothing earlier fires.
        now: the moment of evaluation.
        grace: how late a fire time may be evaluated and still count as on time.

    Raises:
        InvalidArgument: naive datetimes, a negative ``grace``, or an ``after`` schedule.
    """
    _check_aware(active_since=active_since, now=now)
    if last_fire is not None:
        _check_aware(last_fire=last_fire)
    if grace < timedelta(0):
        raise InvalidArgument(f"`grace` must not be negative (got {grace})")
    _check_timed(schedule)
    if schedule.paused:
        return Due()
    low = active_since - _TINY if last_fire is None else max(last_fire, active_since - _TINY)
    next_fire = next(_fire_times_after(schedule, now), None)
    if now <= low:
        return Due(next_fire=next_fire)
    wanted = schedule.max_catchup if schedule.catchup == "all" else 1
    recent, more = _latest_between(schedule, low, now, wanted + MAX_SKIPPED)
    if not recent:
        return Due(next_fire=next_fire)
    launch = recent[-wanted:]
    if schedule.catchup == "none" and now - launch[-1] > grace:
        launch = []
    skipped = recent[: len(recent) - len(launch)]
    more = more or len(skipped) > MAX_SKIPPED
    return Due(tuple(launch), tuple(skipped[-MAX_SKIPPED:]), more, next_fire)


def _fire_times_after(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    """The schedule's fire times strictly after ``after``, increasing, without end."""
    _check_timed(schedule)
    if schedule.kind == "every":
        return _every_after(schedule.interval, after)
    return _cron_after(schedule, after)


def _every_after(interval: timedelta, after: datetime) -> Iterator[datetime]:
    # the anchor is the UTC epoch: fire times are the exact multiples of the interval
    index = (after - EPOCH) // interval + 1
    while True:
        yield EPOCH + index * interval
        index += 1


def _cron_after(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    zone, cron = schedule.zone, schedule.parsed_cron
    # Wall times up to one fold earlier than `after` may still occur (again) after it; one
    # minute more so that croniter's "strictly after" cannot drop the first of them.
    start = dst.local_wall(after, zone) - dst.fold_span(after, zone) - timedelta(minutes=1)
    for instant in dst.to_instants(cron.walls_after(start), zone, real_time=cron.every_hour):
        if instant > after:
            yield instant


def _latest_between(
    schedule: Schedule, low: datetime, high: datetime, count: int
) -> tuple[list[datetime], bool]:
    """The last ``count`` fire times in (``low``, ``high``], and whether earlier ones exist
    there. Searches back from ``high`` in growing windows, so a long outage of a frequent
    schedule costs about ``count`` fire times, not every one missed."""
    span = schedule.interval * count if schedule.kind == "every" else timedelta(hours=1)
    while True:
        start = max(low, high - span)
        times: list[datetime] = []
        for instant in _fire_times_after(schedule, start):
            if instant > high:
                break
            times.append(instant)
        if len(times) > count:
            return times[-count:], True
        if start == low:
            return times, False
        if len(times) == count:  # exactly enough: earlier ones exist if any is before start
            earlier = next(_fire_times_after(schedule, low), None)
            return times, earlier is not None and earlier <= start
        span *= 8


def _check_timed(schedule: Schedule) -> None:
    if schedule.kind == "after":
        raise InvalidArgument(
            f"{_label(schedule)} runs after each successful run of pipeline "
            f"`{schedule.after}`; it has no fire times: launch it when such a run succeeds"
        )


def _check_aware(**values: datetime) -> None:
    for name, value in values.items():
        if not isinstance(value, datetime):
            raise InvalidArgument(f"`{name}` must be a datetime (got {type(value).__name__})")
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidArgument(
                f"`{name}` must be a timezone-aware datetime (got naive {value.isoformat()}); "
                "pass e.g. `datetime(..., tzinfo=timezone.utc)`"
            )


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _label(schedule: Schedule) -> str:
    return f"schedule `{schedule.name}`" if schedule.name else "the schedule"
