"""From wall-clock times in a time zone to instants in UTC, across DST transitions.

A cron expression names wall-clock times; a zone with daylight saving time has wall times
that never happen (the spring-forward gap) and wall times that happen twice (the fall-back
fold). Two rules turn them into instants, chosen by the schedule's hour field:

- **Wall-clock rule** (the hour field names particular hours, as daily and coarser
  schedules do): each matching wall time fires exactly once. A time in the gap fires at the
  first instant after the gap (Europe/Berlin 2024-03-31 02:30 -> 03:00 CEST = 01:00 UTC);
  a time in the fold fires at its first occurrence (Europe/Berlin 2024-10-27 02:30 ->
  02:30 CEST = 00:30 UTC, not again at 02:30 CET).
- **Real-time rule** (the hour field is ``*``, as hourly and finer schedules are): the
  schedule fires at every instant whose local time matches, so it keeps its rhythm in real
  time. Wall times in the gap are not instants and are not fired (the real hour they would
  fill is already covered by the hour after the gap); wall times in the fold fire twice,
  once in each offset (Europe/Berlin 2024-10-27 02:00 -> 00:00 UTC and 01:00 UTC), so there
  is no two-hour pause.

All functions are pure; every instant they return is an aware UTC datetime.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone, tzinfo

UTC = timezone.utc


def instants_of(wall: datetime, zone: tzinfo) -> tuple[datetime, ...]:
    """The instants at which the naive wall time ``wall`` occurs in ``zone``.

    Returns:
        ``()`` when ``wall`` falls in a spring-forward gap, one instant for an ordinary time,
        two (earlier first) when it falls in a fall-back fold.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if _wall(first, zone) != wall:  # in a gap both folds name a different wall time
        return ()
    if first == second:
        return (first,)
    return (first, second) if first < second else (second, first)


def first_instant_after_gap(wall: datetime, zone: tzinfo) -> datetime:
    """The first instant whose local time in ``zone`` is later than the naive ``wall``, for a
    ``wall`` that falls in a gap: the instant the gap ends (the transition itself).

    Raises:
        ValueError: ``wall`` is not in a gap.
    """
    after = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)  # the offset before the gap
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # the offset after it
    if instants_of(wall, zone) or not before < after:
        raise ValueError(f"{wall.isoformat()} is not in a DST gap of {zone}")
    offset = after.astimezone(zone).utcoffset()
    # transitions fall on whole seconds: search them for the first one in the new offset
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == offset:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def wall_clock_instant(wall: datetime, zone: tzinfo) -> datetime:
    """The one instant the wall-clock rule gives ``wall``: its first occurrence, or the end
    of the gap it falls in."""
    instants = instants_of(wall, zone)
    return instants[0] if instants else first_instant_after_gap(wall, zone)


def to_instants(walls: Iterable[datetime], zone: tzinfo, *, real_time: bool) -> Iterator[datetime]:
    """Turn increasing naive wall times into strictly increasing UTC instants.

    Args:
        walls: naive wall-clock times in ``zone``, increasing.
        zone: the time zone they are read in.
        real_time: apply the real-time rule (each occurrence fires; gaps fire nothing)
            instead of the wall-clock rule (once each; gaps fire when they end).
    """
    # Under the real-time rule the second occurrences of fold times come after the first
    # occurrences of later fold times; they wait here until their turn.
    later: deque[datetime] = deque()
    last: datetime | None = None
    for wall in walls:
        if real_time:
            instants = instants_of(wall, zone)
            if not instants:
                continue
            now, later_ones = instants[0], instants[1:]
        else:
            now, later_ones = wall_clock_instant(wall, zone), ()
        while later and later[0] <= now:
            waiting = later.popleft()
            if last is None or waiting > last:
                last = waiting
                yield waiting
        if last is None or now > last:  # several gap times end at the same instant
            last = now
            yield now
        later.extend(later_ones)
    yield from (instant for instant in later if last is None or instant > last)


def fold_span(instant: datetime, zone: tzinfo) -> timedelta:
    """How far back in wall time to start looking for fire times after ``instant``: the
    length of the fold ``instant`` falls in (earlier wall times still occur again later), or
    zero."""
    instants = instants_of(_wall(instant, zone), zone)
    return instants[-1] - instants[0] if len(instants) == 2 else timedelta(0)


def local_wall(instant: datetime, zone: tzinfo) -> datetime:
    """The naive wall-clock time of the aware ``instant`` in ``zone``."""
    return _wall(instant, zone)


def _wall(instant: datetime, zone: tzinfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)
