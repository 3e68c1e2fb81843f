"""``glasspane backfill``, run as a real console script: real child processes, a real store.

Each launched run is a process of its own (about a second of CPU), so these tests launch few.
"""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import datetime, timezone

import pytest
from cli_harness import Cli, Result, assert_usage_error

import glasspane.api
from glasspane.store.claims import runs_for

BACKFILLED = """
import time
from datetime import datetime
from pathlib import Path

from glasspane import Schedule, pipeline, task

HERE = Path(__file__).parent


@task
def stamp(when: datetime | None, tag: str) -> str:
    if when is not None and (HERE / f"fail-{when:%d}").exists():
        raise RuntimeError(f"fail-{when:%d} is present")
    deadline = time.time() + 60
    while (HERE / "hold").exists() and time.time() < deadline:
        time.sleep(0.05)
    return f"{tag} {when.isoformat() if when else None}"


@pipeline(schedule=Schedule(every="1h", params={"tag": "scheduled"}))
def hourly(scheduled_for: datetime | None = None, tag: str = "default"):
    return stamp(scheduled_for, tag)
"""

DAYS = ["2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00"]


@pytest.fixture
def bf(cli: Cli) -> Cli:
    (cli.workdir / "sched.py").write_text(BACKFILLED)
    return cli


def backfill(cli: Cli, *args: str) -> Result:
    return cli("backfill", *args, "--executor", "inline")


def recorded() -> dict[str, tuple[str, str]]:
    """``scheduled_for`` -> (run id, state) of the runs of `hourly`, from the store."""
    store = glasspane.api.default_workspace().store
    low, high = datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc)
    runs = store.read(runs_for, ["hourly"], low, high)
    return {r["scheduled_for"].isoformat(): (r["run_id"], r["state"]) for r in runs}


def test_a_backfill_launches_one_run_per_fire_time_and_a_second_launches_nothing(
    bf: Cli,
) -> None:
    result = backfill(
        bf, "sched.py:hourly", "--cron", "0 0 * * *", "--from", "2026-01-01", "--to",
        "2026-01-03", "--json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    data = result.json()
    assert (data["fire_times"], data["succeeded"], data["failed"]) == (3, 3, 0)
    assert [r["scheduled_for"] for r in data["runs"]] == DAYS
    assert all(r["launched"] and r["state"] == "succeeded" for r in data["runs"])
    assert (data["skipped"], data["left"], data["interrupted"]) == ([], [], False)
    # the store records the fire time of each run, and each task received it
    runs = recorded()
    assert sorted(runs) == DAYS
    for day, (run_id, state) in runs.items():
        run = glasspane.api.get_run(run_id)
        assert (state, run["trigger"], run["output"]) == ("succeeded", "backfill", f"default {day}")
    progress = result.stderr.splitlines()
    assert progress[0] == (
        "backfill of hourly (cron 0 0 * * * UTC): 3 fire times, 2026-01-01 00:00 UTC to "
        "2026-01-03 00:00 UTC"
    )
    assert progress[1] == (
        "  0 skipped (a run succeeded already), 0 running already (waited for), 3 to launch, "
        "at most 2 at a time"
    )
    assert progress[-1] == "done: 3 succeeded, 0 failed, 0 skipped (a run succeeded already)"

    args = ["sched.py:hourly", "--cron", "0 0 * * *", "--from", "2026-01-01", "--to", "2026-01-03"]
    again = backfill(bf, *args)
    assert again.code == 0, again.stderr
    assert "3 skipped (a run succeeded already), 0 running already (waited for), 0 to launch" in (
        again.stdout
    )
    assert "launched" not in again.stdout
    assert recorded() == runs


def test_a_named_schedule_one_at_a_time(bf: Cli) -> None:
    assert bf("schedule", "sync", "sched.py").code == 0
    result = backfill(
        bf, "--schedule", "hourly", "--from", "2026-01-01T00:00", "--to", "2026-01-01T01:00",
        "--max-parallel", "1",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    lines = [line.split()[:3] for line in result.stdout.splitlines()[2:-1]]
    runs = recorded()
    first, second = (runs[f"2026-01-01T0{h}:00:00+00:00"][0] for h in (0, 1))
    # one at a time: the second is launched once the first has ended
    assert lines == [
        ["launched", "run", first],
        ["succeeded", "run", first],
        ["launched", "run", second],
        ["succeeded", "run", second],
    ]
    # the schedule's params, as `-p` would give them
    assert glasspane.api.get_run(second)["output"] == "scheduled 2026-01-01T01:00:00+00:00"


def test_no_wait_launches_everything_and_returns(bf: Cli) -> None:
    result = backfill(
        bf, "sched.py:hourly", "--every", "1d", "--from", "2026-01-01", "--to", "2026-01-02",
        "--no-wait", "--json", "-p", "tag=quick",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    data = result.json()
    assert [r["scheduled_for"] for r in data["runs"]] == DAYS[:2]
    assert all(r["state"] in ("queued", "pending", "running", "succeeded") for r in data["runs"])
    assert result.stderr.splitlines()[-1] == (
        "launched 2 runs; follow them with `glasspane runs list`"
    )
    for item in data["runs"]:  # the runs go on without the command
        for _event in glasspane.api.follow(item["run_id"]):
            pass
        run = glasspane.api.get_run(item["run_id"])
        assert run["output"] == f"quick {item['scheduled_for']}"


def test_failed_fire_times_exit_1_and_are_launched_again(bf: Cli) -> None:
    (bf.workdir / "fail-02").touch()
    args = ["sched.py:hourly", "--every", "1d", "--from", "2026-01-01", "--to", "2026-01-02"]
    result = backfill(bf, *args)
    assert result.code == 1, result.stderr
    failed = recorded()[DAYS[1]][0]
    assert f"failed    run {failed} for 2026-01-02 00:00 UTC: glasspane runs show {failed}" in (
        result.stdout
    )
    assert "done: 1 succeeded, 1 failed, 0 skipped" in result.stdout

    (bf.workdir / "fail-02").unlink()
    again = backfill(bf, *args, "--json")
    assert again.code == 0, again.stderr
    data = again.json()
    assert [s["scheduled_for"] for s in data["skipped"]] == DAYS[:1]
    assert [(r["scheduled_for"], r["state"]) for r in data["runs"]] == [(DAYS[1], "succeeded")]


def test_interrupted_then_the_same_command_waits_for_the_running_run_and_launches_the_rest(
    bf: Cli,
) -> None:
    hold = bf.workdir / "hold"
    hold.touch()
    args = ["sched.py:hourly", "--every", "1d", "--from", "2026-01-01", "--to", "2026-01-02"]
    args += ["--max-parallel", "1", "--executor", "inline"]
    first = start(bf, *args)
    assert wait_for_line(first, "launched  run ").split()[4:6] == ["2026-01-01", "00:00"]
    first.send_signal(signal.SIGTERM)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 130
    assert out.splitlines()[-1] == (
        "interrupted: 1 run launched, 1 fire time not launched; the runs launched go on "
        "(`glasspane cancel RUN` stops one); the same command again launches only the fire "
        "times without a succeeded or running run"
    )

    second = start(bf, *args)
    assert wait_for_line(second, "  0 skipped") == (
        "  0 skipped (a run succeeded already), 1 running already (waited for), 1 to launch, "
        "at most 1 at a time"
    )
    hold.unlink()
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 0, out
    assert (
        out.splitlines()[-1] == "done: 2 succeeded, 0 failed, 0 skipped (a run succeeded already)"
    )
    assert [state for _, state in recorded().values()] == ["succeeded", "succeeded"]


def start(cli: Cli, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*cli.command, "backfill", *args],
        cwd=cli.workdir,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_line(proc: subprocess.Popen[str], prefix: str, timeout: float = 60) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line.rstrip("\n")
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"no line starting with {prefix!r}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--from", "2026-01-05", "--to", "2026-01-01"],
            "--to (2026-01-01T23:59:59+00:00) is before --from (2026-01-05T00:00:00+00:00); "
            "swap them",
        ),
        (["--from", "2026-02-30", "--to", "2026-03-01"], "--from `2026-02-30` is not a date"),
        (
            ["--from", "2020-01-01", "--to", "2026-01-01", "--cron", "0 * * * *"],
            "about 52,632 fire times from 2020-01-01T00:00:00+00:00 to ",
        ),
        (["--to", "2026-01-01"], "the following arguments are required: --from"),
    ],
    ids=["reversed", "not-a-date", "too-many", "missing"],
)
def test_range_errors_are_one_line_and_launch_nothing(
    bf: Cli, args: list[str], message: str
) -> None:
    kind = [] if "--cron" in args else ["--every", "1d"]
    assert_usage_error(bf("backfill", "sched.py:hourly", *kind, *args), message)
    assert recorded() == {}


def test_a_schedule_and_a_different_pipeline_conflict(bf: Cli) -> None:
    bf("schedule", "sync", "sched.py")
    assert_usage_error(
        bf("backfill", "flows.py:demo", "--schedule", "hourly", "--from", "2026-01-01", "--to",
           "2026-01-01"),
        f"schedule `hourly` launches {bf.workdir / 'sched.py'}:hourly, not flows.py:demo; leave "
        "REF out",
    )  # fmt: skip
