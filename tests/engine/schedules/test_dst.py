"""DST: wall-clock schedules fire once on transition days, real-time (hourly) ones at every
real hour, in Europe/Berlin, America/New_York, Australia/Sydney and zones with odd rules.

2024 transitions used below (all checked against the tz database):
Berlin: 03-31 01:00 UTC (02:00 CET -> 03:00 CEST), 10-27 01:00 UTC (03:00 CEST -> 02:00 CET);
New York: 03-10 07:00 UTC (02:00 EST -> 03:00 EDT), 11-03 06:00 UTC (02:00 EDT -> 01:00 EST);
Sydney: 04-06 16:00 UTC (03:00 AEDT -> 02:00 AEST), 10-05 16:00 UTC (02:00 AEST -> 03:00 AEDT).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from glasspane.schedules import Schedule, due, fire_times_between, next_fire_times
from glasspane.schedules.dst import (
    first_instant_after_gap,
    fold_span,
    instants_of,
    to_instants,
)

UTC = timezone.utc
BERLIN, NEW_YORK, SYDNEY = "Europe/Berlin", "America/New_York", "Australia/Sydney"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def fires(expression: str, zone: str, after: datetime, count: int) -> list[datetime]:
    return next_fire_times(Schedule(cron=expression, timezone=zone), after, count)


# -- wall times and instants -------------------------------------------------------------------


def test_instants_of_a_wall_time() -> None:
    berlin = ZoneInfo(BERLIN)
    assert instants_of(datetime(2024, 7, 1, 12), berlin) == (at(2024, 7, 1, 10),)
    assert instants_of(datetime(2024, 3, 31, 2, 30), berlin) == ()
    assert instants_of(datetime(2024, 10, 27, 2, 30), berlin) == (
        at(2024, 10, 27, 0, 30),
        at(2024, 10, 27, 1, 30),
    )


@pytest.mark.parametrize(
    ("zone", "wall", "end_of_gap"),
    [
        (BERLIN, datetime(2024, 3, 31, 2, 30), at(2024, 3, 31, 1)),
        (BERLIN, datetime(2024, 3, 31, 2, 0), at(2024, 3, 31, 1)),
        (NEW_YORK, datetime(2024, 3, 10, 2, 15), at(2024, 3, 10, 7)),
        (SYDNEY, datetime(2024, 10, 6, 2, 45), at(2024, 10, 5, 16)),
        # Lord Howe Island moves its clocks by 30 minutes: 02:00 -> 02:30
        ("Australia/Lord_Howe", datetime(2024, 10, 6, 2, 10), at(2024, 10, 5, 15, 30)),
    ],
)
def test_the_first_instant_after_a_gap(zone: str, wall: datetime, end_of_gap: datetime) -> None:
    assert first_instant_after_gap(wall, ZoneInfo(zone)) == end_of_gap


def test_first_instant_after_gap_refuses_a_time_outside_a_gap() -> None:
    with pytest.raises(ValueError, match="is not in a DST gap"):
        first_instant_after_gap(datetime(2024, 10, 27, 2, 30), ZoneInfo(BERLIN))


def test_to_instants_under_both_rules() -> None:
    berlin = ZoneInfo(BERLIN)
    walls = [datetime(2024, 10, 27, 2), datetime(2024, 10, 27, 2, 30), datetime(2024, 10, 27, 3)]
    assert list(to_instants(walls, berlin, real_time=True)) == [
        at(2024, 10, 27, 0), at(2024, 10, 27, 0, 30), at(2024, 10, 27, 1),
        at(2024, 10, 27, 1, 30), at(2024, 10, 27, 2),
    ]  # fmt: skip
    assert list(to_instants(walls, berlin, real_time=False)) == [
        at(2024, 10, 27, 0), at(2024, 10, 27, 0, 30), at(2024, 10, 27, 2),
    ]  # fmt: skip


def test_fold_span() -> None:
    berlin = ZoneInfo(BERLIN)
    assert fold_span(at(2024, 10, 27, 0, 30), berlin) == timedelta(hours=1)
    assert fold_span(at(2024, 10, 27, 1, 30), berlin) == timedelta(hours=1)
    assert fold_span(at(2024, 7, 1), berlin) == timedelta(0)


# -- daily schedules: once on each transition day ----------------------------------------------


def test_berlin_daily_in_the_gap_fires_when_the_gap_ends() -> None:
    assert fires("30 2 * * *", BERLIN, at(2024, 3, 29, 12), 3) == [
        at(2024, 3, 30, 1, 30),  # 02:30 CET
        at(2024, 3, 31, 1, 0),  # 02:30 does not exist: 03:00 CEST
        at(2024, 4, 1, 0, 30),  # 02:30 CEST
    ]
    assert fires("0 2 * * *", BERLIN, at(2024, 3, 30, 12), 1) == [at(2024, 3, 31, 1)]
    # 02:00 (in the gap) and 03:00 (after it) are the same instant: it fires once
    assert fires("0 2,3 * * *", BERLIN, at(2024, 3, 30, 12), 2) == [
        at(2024, 3, 31, 1),
        at(2024, 4, 1, 0),
    ]


def test_berlin_daily_in_the_fold_fires_at_the_first_occurrence() -> None:
    assert fires("30 2 * * *", BERLIN, at(2024, 10, 25, 12), 3) == [
        at(2024, 10, 26, 0, 30),  # 02:30 CEST
        at(2024, 10, 27, 0, 30),  # 02:30 CEST, not again at 02:30 CET
        at(2024, 10, 28, 1, 30),  # 02:30 CET
    ]
    assert fires("0,30 2 * * *", BERLIN, at(2024, 10, 26, 12), 3) == [
        at(2024, 10, 27, 0), at(2024, 10, 27, 0, 30), at(2024, 10, 28, 1),
    ]  # fmt: skip


def test_new_york_daily_both_ways() -> None:
    assert fires("30 2 * * *", NEW_YORK, at(2024, 3, 9), 3) == [
        at(2024, 3, 9, 7, 30),  # 02:30 EST
        at(2024, 3, 10, 7, 0),  # 03:00 EDT, the end of the gap
        at(2024, 3, 11, 6, 30),  # 02:30 EDT
    ]
    assert fires("30 1 * * *", NEW_YORK, at(2024, 11, 2), 3) == [
        at(2024, 11, 2, 5, 30),  # 01:30 EDT
        at(2024, 11, 3, 5, 30),  # 01:30 EDT, the first of two
        at(2024, 11, 4, 6, 30),  # 01:30 EST
    ]


def test_sydney_daily_both_ways() -> None:
    assert fires("30 2 * * *", SYDNEY, at(2024, 10, 4), 3) == [
        at(2024, 10, 4, 16, 30),  # 02:30 AEST
        at(2024, 10, 5, 16, 0),  # 03:00 AEDT, the end of the gap
        at(2024, 10, 6, 15, 30),  # 02:30 AEDT
    ]
    assert fires("30 2 * * *", SYDNEY, at(2024, 4, 5), 3) == [
        at(2024, 4, 5, 15, 30),  # 02:30 AEDT
        at(2024, 4, 6, 15, 30),  # 02:30 AEDT, the first of two
        at(2024, 4, 7, 16, 30),  # 02:30 AEST
    ]


def test_santiago_changes_its_clocks_at_midnight() -> None:
    # 2024-09-08 00:00 -04 -> 01:00 -03: the midnight run fires at 01:00
    assert fires("0 0 * * *", "America/Santiago", at(2024, 9, 7), 2) == [
        at(2024, 9, 7, 4), at(2024, 9, 8, 4),
    ]  # fmt: skip
    # 2024-04-07 00:00 -03 -> 2024-04-06 23:00 -04: 23:30 on the 6th happens twice
    assert fires("30 23 * * *", "America/Santiago", at(2024, 4, 6, 12), 2) == [
        at(2024, 4, 7, 2, 30), at(2024, 4, 8, 3, 30),
    ]  # fmt: skip


def test_every_two_hours_follows_the_wall_clock() -> None:
    assert fires("0 */2 * * *", BERLIN, at(2024, 3, 30, 22), 3) == [
        at(2024, 3, 30, 23),  # 00:00 CET
        at(2024, 3, 31, 1),  # 02:00 is in the gap: 03:00 CEST
        at(2024, 3, 31, 2),  # 04:00 CEST
    ]


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK, SYDNEY, "Australia/Lord_Howe"])
def test_a_daily_schedule_fires_exactly_once_on_every_day_of_a_year(zone: str) -> None:
    times = fire_times_between(
        Schedule(cron="30 2 * * *", timezone=zone), at(2024, 1, 1), at(2025, 1, 1)
    )
    days = [t.astimezone(ZoneInfo(zone)).date() for t in times]
    assert len(days) == len(set(days)) == 366


# -- hourly schedules: every real hour ---------------------------------------------------------


def test_berlin_hourly_fires_twice_in_the_repeated_hour() -> None:
    assert fires("0 * * * *", BERLIN, at(2024, 10, 26, 22, 30), 5) == [
        at(2024, 10, 26, 23),  # 01:00 CEST
        at(2024, 10, 27, 0),  # 02:00 CEST
        at(2024, 10, 27, 1),  # 02:00 CET
        at(2024, 10, 27, 2),  # 03:00 CET
        at(2024, 10, 27, 3),
    ]


def test_berlin_hourly_skips_the_hour_that_does_not_exist() -> None:
    assert fires("30 * * * *", BERLIN, at(2024, 3, 30, 23, 45), 3) == [
        at(2024, 3, 31, 0, 30),  # 01:30 CET
        at(2024, 3, 31, 1, 30),  # 03:30 CEST: the very next real hour
        at(2024, 3, 31, 2, 30),
    ]


def test_hourly_from_inside_the_repeated_hour() -> None:
    # asked during the first 02:10, the second 02:00 and 02:30 (CET) are still to come
    assert fires("*/30 * * * *", BERLIN, at(2024, 10, 27, 0, 10), 4) == [
        at(2024, 10, 27, 0, 30), at(2024, 10, 27, 1), at(2024, 10, 27, 1, 30), at(2024, 10, 27, 2),
    ]  # fmt: skip
    assert fires("*/30 * * * *", BERLIN, at(2024, 10, 27, 1, 10), 2) == [
        at(2024, 10, 27, 1, 30), at(2024, 10, 27, 2),
    ]  # fmt: skip
    hourly = Schedule(cron="0 * * * *", timezone=BERLIN)
    assert fire_times_between(hourly, at(2024, 10, 27, 1), at(2024, 10, 27, 2)) == [
        at(2024, 10, 27, 1), at(2024, 10, 27, 2),
    ]  # fmt: skip


def test_new_york_and_sydney_hourly_in_the_repeated_hour() -> None:
    assert fires("0 * * * *", NEW_YORK, at(2024, 11, 3, 4, 30), 3) == [
        at(2024, 11, 3, 5),  # 01:00 EDT
        at(2024, 11, 3, 6),  # 01:00 EST
        at(2024, 11, 3, 7),  # 02:00 EST
    ]
    assert fires("0 * * * *", SYDNEY, at(2024, 4, 6, 14, 30), 3) == [
        at(2024, 4, 6, 15),  # 02:00 AEDT
        at(2024, 4, 6, 16),  # 02:00 AEST
        at(2024, 4, 6, 17),  # 03:00 AEST
    ]


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK, SYDNEY])
def test_an_hourly_schedule_fires_every_real_hour_of_a_year(zone: str) -> None:
    hourly = Schedule(cron="0 * * * *", timezone=zone)
    times = fire_times_between(hourly, at(2024, 1, 1), at(2024, 12, 31, 23))
    assert len(times) == 366 * 24
    assert {b - a for a, b in zip(times, times[1:])} == {timedelta(hours=1)}


def test_due_across_the_gap() -> None:
    daily = Schedule(cron="30 2 * * *", timezone=BERLIN)
    result = due(daily, at(2024, 3, 30, 1, 30), at(2024, 3, 1), at(2024, 3, 31, 1, 0, 10))
    assert result.launch == (at(2024, 3, 31, 1),)
    assert result.next_fire == at(2024, 4, 1, 0, 30)
