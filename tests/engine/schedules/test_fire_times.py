"""Fire times of cron and ``every`` schedules, backfill ranges, and what is due at a moment
under each catch-up policy. Every instant is given; no clock is read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from glasspane.errors import InvalidArgument
from glasspane.schedules import (
    MAX_SKIPPED,
    Due,
    Schedule,
    due,
    fire_times_between,
    next_fire_times,
)

UTC = timezone.utc
ZERO = timedelta(0)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def cron(expression: str, **options: object) -> Schedule:
    return Schedule(name="s", cron=expression, **options)  # type: ignore[arg-type]


# -- cron fire times ---------------------------------------------------------------------------


def test_fire_times_are_strictly_after_and_in_utc() -> None:
    times = next_fire_times(cron("0 3 * * *"), at(2024, 1, 1, 3, 0), 3)
    assert times == [at(2024, 1, 2, 3), at(2024, 1, 3, 3), at(2024, 1, 4, 3)]
    assert all(t.tzinfo is UTC for t in times)
    assert next_fire_times(cron("0 3 * * *"), at(2024, 1, 1, 2, 59, 59), 1) == [at(2024, 1, 1, 3)]
    assert next_fire_times(cron("0 3 * * *"), at(2024, 1, 1), 0) == []


def test_after_may_be_in_any_zone() -> None:
    after = datetime(2024, 1, 1, 4, 0, tzinfo=timezone(timedelta(hours=2)))  # 02:00 UTC
    assert next_fire_times(cron("0 3 * * *"), after, 1) == [at(2024, 1, 1, 3)]


def test_a_zone_without_dst_shifts_every_time() -> None:
    kolkata = cron("0 3 * * *", timezone="Asia/Kolkata")  # UTC+05:30
    assert next_fire_times(kolkata, at(2024, 1, 1), 2) == [
        at(2024, 1, 1, 21, 30),
        at(2024, 1, 2, 21, 30),
    ]


def test_day_31_skips_shorter_months() -> None:
    assert next_fire_times(cron("0 0 31 * *"), at(2024, 1, 31), 4) == [
        at(2024, 3, 31), at(2024, 5, 31), at(2024, 7, 31), at(2024, 8, 31),
    ]  # fmt: skip


def test_l_is_the_last_day_of_each_month() -> None:
    assert next_fire_times(cron("0 0 L * *"), at(2024, 1, 15), 4) == [
        at(2024, 1, 31), at(2024, 2, 29), at(2024, 3, 31), at(2024, 4, 30),
    ]  # fmt: skip
    assert next_fire_times(cron("0 0 L 2 *"), at(2023, 1, 1), 2) == [
        at(2023, 2, 28),
        at(2024, 2, 29),
    ]


def test_february_29_fires_in_leap_years_only() -> None:
    leap = cron("0 12 29 2 *")
    assert next_fire_times(leap, at(2024, 3, 1), 2) == [at(2028, 2, 29, 12), at(2032, 2, 29, 12)]
    assert next_fire_times(leap, at(2096, 3, 1), 1) == [at(2104, 2, 29, 12)]  # 2100 is not leap


def test_a_step_restarts_at_each_hour() -> None:
    assert next_fire_times(cron("*/7 * * * *"), at(2024, 1, 1, 0, 50), 4) == [
        at(2024, 1, 1, 0, 56), at(2024, 1, 1, 1, 0), at(2024, 1, 1, 1, 7), at(2024, 1, 1, 1, 14),
    ]  # fmt: skip


def test_weekdays_and_the_day_of_month_or_day_of_week_rule() -> None:
    friday = at(2024, 1, 5, 9)
    assert next_fire_times(cron("0 9 * * 1-5"), friday, 2) == [at(2024, 1, 8, 9), at(2024, 1, 9, 9)]
    # both day fields restricted: the 13th *or* a Friday (September 2024 starts on a Sunday)
    assert next_fire_times(cron("0 0 13 * 5"), at(2024, 9, 1), 7) == [
        at(2024, 9, 6), at(2024, 9, 13), at(2024, 9, 20), at(2024, 9, 27),
        at(2024, 10, 4), at(2024, 10, 11), at(2024, 10, 13),
    ]  # fmt: skip


def test_nth_weekday_of_the_month() -> None:
    first_monday = cron("0 9 * * 1#1")
    assert next_fire_times(first_monday, at(2024, 1, 1, 10), 2) == [
        at(2024, 2, 5, 9),
        at(2024, 3, 4, 9),
    ]


# -- every -------------------------------------------------------------------------------------


def test_every_is_aligned_to_the_utc_epoch() -> None:
    quarter = Schedule(every="15m")
    assert next_fire_times(quarter, at(2024, 3, 30, 23, 7), 3) == [
        at(2024, 3, 30, 23, 15), at(2024, 3, 30, 23, 30), at(2024, 3, 30, 23, 45),
    ]  # fmt: skip
    # 7 minutes = 420 s: 2024-01-01 00:00 UTC is 1704067200 s, 57 s short of 4057303 * 420
    assert next_fire_times(Schedule(every="7m"), at(2024, 1, 1), 2) == [
        at(2024, 1, 1, 0, 1),
        at(2024, 1, 1, 0, 8),
    ]
    assert next_fire_times(Schedule(every="1d"), at(2024, 1, 1, 12), 1) == [at(2024, 1, 2)]
    assert next_fire_times(Schedule(every="30s"), at(2024, 1, 1, 0, 0, 30), 1) == [
        at(2024, 1, 1, 0, 1)
    ]


def test_every_does_not_depend_on_when_it_is_asked() -> None:
    hourly = Schedule(every="2h")
    from_now = next_fire_times(hourly, at(2024, 5, 5, 1, 23), 5)
    from_later = next_fire_times(hourly, at(2024, 5, 5, 3, 59), 4)
    assert from_now[1:] == from_later
    assert from_now[0] == at(2024, 5, 5, 2)


# -- ranges and errors -------------------------------------------------------------------------


def test_fire_times_between_includes_both_ends() -> None:
    hourly = cron("0 * * * *")
    assert fire_times_between(hourly, at(2024, 1, 1, 1), at(2024, 1, 1, 3)) == [
        at(2024, 1, 1, 1), at(2024, 1, 1, 2), at(2024, 1, 1, 3),
    ]  # fmt: skip
    assert fire_times_between(hourly, at(2024, 1, 1, 1, 1), at(2024, 1, 1, 1, 59)) == []
    assert fire_times_between(Schedule(every="1d"), at(2024, 1, 1), at(2024, 1, 2)) == [
        at(2024, 1, 1),
        at(2024, 1, 2),
    ]


def test_fire_times_between_is_bounded() -> None:
    with pytest.raises(InvalidArgument) as info:
        fire_times_between(cron("* * * * *"), at(2024, 1, 1), at(2024, 1, 2), limit=100)
    assert str(info.value) == (
        "schedule `s` fires more than 100 times from 2024-01-01T00:00:00+00:00 to "
        "2024-01-02T00:00:00+00:00; narrow the range or pass a larger `limit`"
    )
    assert len(fire_times_between(cron("* * * * *"), at(2024, 1, 1), at(2024, 1, 1, 1, 39))) == 100
    with pytest.raises(InvalidArgument, match=r"`end` \(2024-01-01T00:00:00\+00:00\) is before"):
        fire_times_between(cron("* * * * *"), at(2024, 1, 2), at(2024, 1, 1))


def test_naive_datetimes_and_after_schedules_are_rejected() -> None:
    with pytest.raises(InvalidArgument) as info:
        next_fire_times(cron("0 3 * * *"), datetime(2024, 1, 1), 1)
    assert str(info.value) == (
        "`after` must be a timezone-aware datetime (got naive 2024-01-01T00:00:00); pass e.g. "
        "`datetime(..., tzinfo=timezone.utc)`"
    )
    with pytest.raises(InvalidArgument, match="`count` must be 0 or more"):
        next_fire_times(cron("0 3 * * *"), at(2024, 1, 1), -1)
    chained = Schedule(name="train", after="features")
    message = (
        "schedule `train` runs after each successful run of pipeline `features`; it has no fire "
        "times: launch it when such a run succeeds"
    )
    with pytest.raises(InvalidArgument) as info:
        next_fire_times(chained, at(2024, 1, 1), 1)
    assert str(info.value) == message
    with pytest.raises(InvalidArgument, match="it has no fire times"):
        due(chained, None, at(2024, 1, 1), at(2024, 1, 2))
    with pytest.raises(InvalidArgument, match="`now` must be a timezone-aware datetime"):
        due(cron("0 3 * * *"), None, at(2024, 1, 1), datetime(2024, 1, 2))
    with pytest.raises(InvalidArgument, match="`grace` must not be negative"):
        due(cron("0 3 * * *"), None, at(2024, 1, 1), at(2024, 1, 2), grace=timedelta(-1))


# -- due ---------------------------------------------------------------------------------------

DAILY = cron("0 3 * * *")


def test_nothing_from_before_the_schedule_was_created() -> None:
    created = at(2024, 1, 1, 10)
    assert due(DAILY, None, created, at(2024, 1, 1, 10, 0, 1)) == Due(next_fire=at(2024, 1, 2, 3))
    assert due(DAILY, None, created, at(2024, 1, 2, 3, 0, 5)) == Due(
        launch=(at(2024, 1, 2, 3),), next_fire=at(2024, 1, 3, 3)
    )
    # a fire time at the very moment of creation is not before it
    assert due(DAILY, None, at(2024, 1, 2, 3), at(2024, 1, 2, 3)).launch == (at(2024, 1, 2, 3),)


def test_a_time_already_evaluated_is_not_due_again() -> None:
    last = at(2024, 1, 2, 3)
    assert due(DAILY, last, at(2024, 1, 1), at(2024, 1, 2, 3, 0, 30)) == Due(
        next_fire=at(2024, 1, 3, 3)
    )


def test_catch_up_latest_runs_the_latest_missed_time() -> None:
    result = due(DAILY, at(2024, 1, 2, 3), at(2024, 1, 1), at(2024, 1, 5, 12))
    assert result == Due(
        launch=(at(2024, 1, 5, 3),),
        skip=(at(2024, 1, 3, 3), at(2024, 1, 4, 3)),
        next_fire=at(2024, 1, 6, 3),
    )
    assert result.latest == at(2024, 1, 5, 3)


def test_catch_up_none_runs_only_a_time_that_is_on_time() -> None:
    never = cron("0 3 * * *", catchup="none")
    late = due(never, at(2024, 1, 2, 3), at(2024, 1, 1), at(2024, 1, 5, 12))
    assert late.launch == ()
    assert late.skip == (at(2024, 1, 3, 3), at(2024, 1, 4, 3), at(2024, 1, 5, 3))
    assert late.latest == at(2024, 1, 5, 3)
    on_time = due(never, at(2024, 1, 2, 3), at(2024, 1, 1), at(2024, 1, 5, 3, 1))  # grace: 1 min
    assert on_time.launch == (at(2024, 1, 5, 3),)
    assert on_time.skip == (at(2024, 1, 3, 3), at(2024, 1, 4, 3))
    assert due(never, None, at(2024, 1, 5), at(2024, 1, 5, 3, 1, 1)).launch == ()
    assert due(
        never, None, at(2024, 1, 5), at(2024, 1, 5, 3, 9), grace=timedelta(minutes=10)
    ).launch == (at(2024, 1, 5, 3),)


def test_catch_up_all_runs_each_missed_time_up_to_max_catchup() -> None:
    every_one = cron("0 3 * * *", catchup="all")
    assert due(every_one, at(2024, 1, 2, 3), at(2024, 1, 1), at(2024, 1, 5, 12)).launch == (
        at(2024, 1, 3, 3), at(2024, 1, 4, 3), at(2024, 1, 5, 3),
    )  # fmt: skip
    capped = cron("0 3 * * *", catchup="all", max_catchup=2)
    result = due(capped, at(2024, 1, 2, 3), at(2024, 1, 1), at(2024, 1, 5, 12))
    assert result.launch == (at(2024, 1, 4, 3), at(2024, 1, 5, 3))
    assert result.skip == (at(2024, 1, 3, 3),)
    hourly = Schedule(every="1h", catchup="all", max_catchup=3)
    assert due(hourly, None, at(2024, 1, 1, 0, 30), at(2024, 1, 1, 5, 10)) == Due(
        launch=(at(2024, 1, 1, 3), at(2024, 1, 1, 4), at(2024, 1, 1, 5)),
        skip=(at(2024, 1, 1, 1), at(2024, 1, 1, 2)),
        next_fire=at(2024, 1, 1, 6),
    )


def test_nothing_from_while_the_schedule_was_paused() -> None:
    resumed = at(2024, 1, 10, 12)
    result = due(DAILY, at(2024, 1, 2, 3), resumed, at(2024, 1, 11, 3, 0, 10))
    assert result == Due(launch=(at(2024, 1, 11, 3),), next_fire=at(2024, 1, 12, 3))
    paused = cron("0 3 * * *", paused=True)
    assert due(paused, None, at(2024, 1, 1), at(2024, 2, 1)) == Due()


def test_a_long_outage_lists_only_the_latest_skipped_times() -> None:
    minutely = cron("* * * * *")
    now = at(2024, 2, 1, 0, 0, 30)
    result = due(minutely, None, at(2024, 1, 1), now)  # a month down: ~44,640 missed
    assert result.launch == (at(2024, 2, 1),)
    assert len(result.skip) == MAX_SKIPPED
    assert result.skip[0] == at(2024, 2, 1) - timedelta(minutes=MAX_SKIPPED)
    assert result.skip[-1] == at(2024, 1, 31, 23, 59)
    assert result.more_skipped
    assert result.next_fire == at(2024, 2, 1, 0, 1)


@pytest.mark.parametrize(("missed", "more"), [(MAX_SKIPPED, False), (MAX_SKIPPED + 1, True)])
def test_more_skipped_says_whether_earlier_ones_were_left_out(missed: int, more: bool) -> None:
    now = at(2024, 2, 1)
    result = due(cron("* * * * *"), None, now - timedelta(minutes=missed), now)
    assert (len(result.skip), result.more_skipped) == (MAX_SKIPPED, more)
    # under `none` a late latest time is skipped too: one more to list
    never = cron("* * * * *", catchup="none")
    late = due(never, None, now - timedelta(minutes=missed - 1), now + timedelta(seconds=30))
    assert late.launch == (now,)  # 30 s late: on time
    late = due(
        never, None, now - timedelta(minutes=missed - 1), now + timedelta(seconds=30), grace=ZERO
    )
    assert (late.launch, len(late.skip), late.more_skipped) == ((), MAX_SKIPPED, more)


def test_a_loop_that_ticks_often_launches_every_fire_time_once() -> None:
    schedule = cron("*/25 * * * *")
    start, end = at(2024, 1, 1), at(2024, 1, 3)
    launched: list[datetime] = []
    last: datetime | None = None
    now = start
    while now <= end:
        result = due(schedule, last, start, now)
        assert result.skip == ()
        launched += result.launch
        last = result.latest or last
        now += timedelta(minutes=10)
    assert launched == fire_times_between(schedule, start, end)
