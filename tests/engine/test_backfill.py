"""Backfill plans: the range a user types, its fire times, what to launch, skip or wait for,
and the loop that launches at most N at a time (with plain functions standing in for the
store and the child processes; the command itself: tests/engine/cli/test_backfill_cli.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from glasspane.backfill import MAX_FIRE_TIMES, Backfill, Step, fire_times, parse_bound, plan
from glasspane.errors import InvalidArgument
from glasspane.schedules import Schedule

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- the range ---------------------------------------------------------------------------------


def test_a_date_is_the_whole_day_in_the_zone() -> None:
    assert parse_bound("2026-01-05", BERLIN) == utc(2026, 1, 4, 23)
    end = parse_bound("2026-01-05", BERLIN, end=True)
    assert end == utc(2026, 1, 5, 23) - timedelta(microseconds=1)


def test_a_naive_datetime_is_read_in_the_zone_and_an_offset_wins() -> None:
    assert parse_bound("2026-07-01T03:00", BERLIN) == utc(2026, 7, 1, 1)
    assert parse_bound("2026-07-01T03:00Z", BERLIN) == utc(2026, 7, 1, 3)
    assert parse_bound("2026-07-01T03:00+05:00", BERLIN) == utc(2026, 6, 30, 22)
    # an explicit end instant is taken as written, not extended to the day's end
    assert parse_bound("2026-07-01T03:00", UTC, end=True) == utc(2026, 7, 1, 3)


@pytest.mark.parametrize("text", ["2026-13-01", "yesterday", "2026-01-01 3am"])
def test_a_bound_that_is_no_date_names_the_option(text: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_bound(text, UTC, option="--to")
    assert str(info.value).startswith(f"--to `{text}` is not a date or a date and time; write")


def test_fire_times_include_both_ends() -> None:
    daily = Schedule(cron="0 0 * * *")
    times = fire_times(daily, utc(2026, 1, 1), parse_bound("2026-01-03", UTC, end=True))
    assert times == [utc(2026, 1, 1), utc(2026, 1, 2), utc(2026, 1, 3)]


def test_fire_times_in_a_zone_across_dst() -> None:
    daily = Schedule(cron="0 3 * * *", timezone="Europe/Berlin")
    start = parse_bound("2026-03-28", BERLIN)
    times = fire_times(daily, start, parse_bound("2026-03-30", BERLIN, end=True))
    assert times == [utc(2026, 3, 28, 2), utc(2026, 3, 29, 1), utc(2026, 3, 30, 1)]


def test_an_end_before_the_start_says_swap_them() -> None:
    with pytest.raises(InvalidArgument, match=r"^--to \(2026-01-01T00:00:00\+00:00\) is before "):
        fire_times(Schedule(every="1h"), utc(2026, 1, 2), utc(2026, 1, 1))


def test_an_after_schedule_has_nothing_to_backfill() -> None:
    with pytest.raises(InvalidArgument) as info:
        fire_times(Schedule(name="train", after="features"), utc(2026, 1, 1), utc(2026, 1, 2))
    assert str(info.value) == (
        "schedule `train` runs after each successful run of pipeline `features`: it has no "
        "fire times to backfill; backfill `features` instead, or pass --cron or --every"
    )


def test_too_many_fire_times_names_the_count_and_where_to_cut() -> None:
    start, end = utc(2026, 1, 1), utc(2026, 12, 31, 23, 59)
    with pytest.raises(InvalidArgument) as info:
        fire_times(Schedule(every="1m"), start, end)
    assert str(info.value) == (
        "525,600 fire times from 2026-01-01T00:00:00+00:00 to 2026-12-31T23:59:00+00:00: a "
        f"backfill covers at most {MAX_FIRE_TIMES:,}; narrow --from/--to (the first "
        f"{MAX_FIRE_TIMES:,} reach to 2026-01-07T22:39:00+00:00) and backfill the rest in "
        "further commands"
    )
    with pytest.raises(InvalidArgument, match=r"^about 525,600 fire times from "):
        fire_times(Schedule(cron="* * * * *"), start, end)
    assert len(fire_times(Schedule(every="1m"), start, utc(2026, 1, 7, 22, 39))) == MAX_FIRE_TIMES


# -- the plan ----------------------------------------------------------------------------------

T1, T2, T3, T4 = (utc(2026, 1, day) for day in (1, 2, 3, 4))


def run(run_id: str, state: str, at: datetime) -> dict:
    return {"run_id": run_id, "state": state, "scheduled_for": at}


def test_succeeded_fire_times_are_skipped_active_ones_waited_for_others_launched() -> None:
    runs = [
        run("a", "succeeded", T1),
        run("b", "failed", T2),  # failed: launched again
        run("c", "running", T3),
        run("d", "crashed", T4),
        run("e", "queued", T4),
        run("x", "succeeded", utc(2025, 1, 1)),  # not in the range
    ]
    result = plan([T4, T3, T2, T1], runs)
    assert result.fire_times == (T1, T2, T3, T4)
    assert result.launch == (T2,)
    assert dict(result.done) == {T1: "a"}
    assert dict(result.active) == {T3: "c", T4: "e"}


def test_a_succeeded_run_wins_over_an_active_one() -> None:
    result = plan([T1], [run("a", "succeeded", T1), run("b", "running", T1)])
    assert (result.launch, dict(result.done), dict(result.active)) == ((), {T1: "a"}, {})


# -- carrying it out ---------------------------------------------------------------------------


class Runs:
    """Runs that end after ``polls`` reads of their state (a fire time listed in ``fail``
    fails): stands in for the child processes and the store."""

    def __init__(self, polls: int = 2, fail: tuple[datetime, ...] = ()) -> None:
        self.polls, self.fail = polls, fail
        self.seen: dict[str, int] = {}
        self.at: dict[str, datetime] = {}
        self.most_active = 0

    def add(self, run_id: str, at: datetime) -> None:
        self.seen[run_id], self.at[run_id] = 0, at

    def launch(self, at: datetime) -> str:
        run_id = f"run-{at:%d}"
        self.add(run_id, at)
        return run_id

    def states(self, run_ids: list[str]) -> dict[str, str]:
        self.most_active = max(self.most_active, len(run_ids))
        states = {}
        for run_id in run_ids:
            self.seen[run_id] += 1
            if self.seen[run_id] < self.polls:
                states[run_id] = "running"
            else:
                states[run_id] = "failed" if self.at[run_id] in self.fail else "succeeded"
        return states


def backfill(runs: Runs, todo, **kw) -> tuple[Backfill, list[Step]]:
    steps: list[Step] = []
    done = Backfill(
        todo, runs.launch, runs.states, on_step=steps.append, sleep=lambda s: None, **kw
    )
    return done, steps


def test_at_most_max_parallel_runs_are_active_counting_those_waited_for() -> None:
    runs = Runs(polls=3)
    runs.add("old", T1)
    todo = plan([T1, T2, T3, T4], [run("old", "running", T1)])
    done, steps = backfill(runs, todo, max_parallel=2)
    done.run()
    assert runs.most_active == 2
    assert done.launched == {T2: "run-02", T3: "run-03", T4: "run-04"}
    assert done.runs == {T1: "old", T2: "run-02", T3: "run-03", T4: "run-04"}
    assert sorted(done.succeeded) == ["old", "run-02", "run-03", "run-04"]
    assert (done.failed, done.left) == ({}, [])
    assert [(s.kind, s.run_id) for s in steps] == [
        ("launched", "run-02"),
        ("finished", "old"),
        ("finished", "run-02"),
        ("launched", "run-03"),
        ("launched", "run-04"),
        ("finished", "run-03"),
        ("finished", "run-04"),
    ]


def test_failed_runs_are_reported_by_fire_time() -> None:
    runs = Runs(fail=(T2,))
    done, steps = backfill(runs, plan([T1, T2], []), max_parallel=1)
    done.run()
    assert done.failed == {T2: "run-02"}
    assert done.succeeded == ["run-01"]
    assert steps[-1] == Step("finished", T2, "run-02", "failed")


def test_no_wait_launches_everything_at_once() -> None:
    runs = Runs()
    done, steps = backfill(runs, plan([T1, T2, T3], []), max_parallel=1)
    done.launch_all()
    assert list(done.launched) == [T1, T2, T3]
    assert runs.most_active == 0  # nothing read: nothing waited for
    assert [s.kind for s in steps] == ["launched"] * 3


def test_an_interrupt_stops_launching_and_says_what_is_left() -> None:
    runs = Runs()

    def launch(at: datetime) -> str:
        if at == T3:
            raise KeyboardInterrupt
        return runs.launch(at)

    done = Backfill(
        plan([T1, T2, T3, T4], []), launch, runs.states, max_parallel=1, sleep=lambda s: None
    )
    with pytest.raises(KeyboardInterrupt):
        done.run()
    assert done.launched == {T1: "run-01", T2: "run-02"}
    assert done.left == [T3, T4]


def test_a_sweep_runs_while_waiting() -> None:
    runs, swept = Runs(polls=5), []
    done, _ = backfill(runs, plan([T1], []), poll=1.0, sweep=lambda: swept.append(1))
    done.sweep_every = 2.0
    done.run()
    assert len(swept) == 2  # after 2 and 4 seconds of polling


def test_max_parallel_must_be_positive() -> None:
    with pytest.raises(InvalidArgument, match="max_parallel must be 1 or more, not 0"):
        Backfill(plan([], []), str, dict, max_parallel=0)
