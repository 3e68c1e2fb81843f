"""``glasspane schedule ...``, run as a real console script against a real store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cli_harness import Cli, assert_usage_error

import glasspane.api
from glasspane.cli.main import main

SCHEDULED = """
from datetime import datetime

from glasspane import Schedule, pipeline, task


@task
def stamp(when: datetime | None, tag: str) -> str:
    return f"{tag} {when.isoformat() if when else None}"


@pipeline(schedule=Schedule({schedule}))
def hourly(scheduled_for: datetime | None = None, tag: str = "default"):
    return stamp(scheduled_for, tag)
"""


def write(cli: Cli, schedule: str = 'every="1h"') -> None:
    (cli.workdir / "sched.py").write_text(SCHEDULED.replace("{schedule}", schedule))


def listed(cli: Cli) -> dict[str, dict]:
    result = cli("schedule", "list", "--json")
    assert result.code == 0, result.stderr
    return {item["name"]: item for item in result.json()}


# -- help ----------------------------------------------------------------------------------------

SUBCOMMANDS = ["sync", "add", "list", "show", "next", "pause", "resume", "remove"]


@pytest.mark.parametrize(
    "command", [["schedule", name] for name in SUBCOMMANDS] + [["backfill"]], ids=" ".join
)
def test_every_subcommand_has_exit_codes_and_an_example(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "exit codes:\n  0    " in text
    assert "\n  2    a usage" in text
    assert f"examples:\n  glasspane {' '.join(command)}" in text
    assert "--json" in text


def test_backfill_help_states_the_fire_time_limit(capsys: pytest.CaptureFixture[str]) -> None:
    from glasspane.backfill import MAX_FIRE_TIMES

    with pytest.raises(SystemExit):
        main(["backfill", "--help"])
    assert f"at most {MAX_FIRE_TIMES:,} fire times" in capsys.readouterr().out.replace("\n", " ")


# -- sync ------------------------------------------------------------------------------------------


def test_sync_creates_then_leaves_unchanged_then_updates_in_place(cli: Cli) -> None:
    write(cli)
    first = cli("schedule", "sync", "sched.py")
    assert first.code == 0, first.stderr
    assert first.stdout.startswith("created   hourly: next fire ")
    assert first.stdout.endswith(" UTC\n")
    created_at = listed(cli)["hourly"]["created_at"]

    again = cli("schedule", "sync", "sched.py", "--json")
    assert again.code == 0, again.stderr
    (item,) = again.json()["registered"]
    assert (item["name"], item["outcome"]) == ("hourly", "unchanged")
    assert item["pipeline_ref"] == f"{cli.workdir / 'sched.py'}:hourly"
    assert again.json()["undeclared"] == []

    write(cli, 'cron="0 3 * * *", timezone="Europe/Berlin"')
    changed = cli("schedule", "sync", "sched.py", "--json")
    (item,) = changed.json()["registered"]
    assert item["outcome"] == "updated"
    local = datetime.fromisoformat(item["next_fire"]["local"])
    assert (local.hour, local.minute) == (3, 0)
    after = listed(cli)
    assert list(after) == ["hourly"]  # the same identity: no second schedule
    assert after["hourly"]["created_at"] == created_at
    assert (after["hourly"]["kind"], after["hourly"]["cron"]) == ("cron", "0 3 * * *")


def test_sync_warns_about_schedules_no_longer_declared(cli: Cli) -> None:
    write(cli)
    cli("schedule", "sync", "sched.py")
    write(cli, 'every="1h", name="renamed"')
    result = cli("schedule", "sync", "sched.py")
    assert result.code == 0
    assert result.stdout.startswith("created   renamed: ")
    assert result.stderr == (
        "glasspane: warning: schedule `hourly` was registered from sched.py but is no longer "
        "declared there; it still fires: remove it with `glasspane schedule remove hourly`\n"
    )


# -- add -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--cron", "61 * * * *"],
            "invalid schedule: cron `61 * * * *`: minute 61 is out of range 0-59",
        ),
        (
            ["--cron", "0 3 * * *", "--timezone", "Europe/Berln"],
            "invalid schedule: timezone `Europe/Berln` is not a known IANA time zone; did you "
            "mean `Europe/Berlin`",
        ),
        (
            ["--every", "1h", "-p", "n_rows=5"],
            "schedule `hourly`: its params do not fit pipeline `hourly`: unknown parameter "
            "`n_rows` for pipeline `hourly`",
        ),
        (
            ["--every", "1h", "--timezone", "Europe/Berlin"],
            "`timezone` applies to cron schedules only",
        ),
        (["--every", "1h", "--max-active", "0"], "argument --max-active: must be 1 or more"),
    ],
    ids=["cron", "zone", "param", "zone-with-every", "max-active"],
)
def test_add_errors_are_one_line_and_write_nothing(cli: Cli, args: list[str], message: str) -> None:
    write(cli)
    assert_usage_error(cli("schedule", "add", "sched.py:hourly", *args), message)
    assert listed(cli) == {}


def test_add_registers_with_params_and_options(cli: Cli) -> None:
    write(cli)
    result = cli(
        "schedule", "add", "sched.py:hourly", "--cron", "30 6 * * 1-5", "--timezone",
        "America/New_York", "-p", "tag=weekday", "--name", "weekday", "--catchup", "all",
        "--max-catchup", "3", "--max-active", "2", "--json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    data = result.json()
    assert (data["name"], data["outcome"]) == ("weekday", "created")
    assert datetime.fromisoformat(data["next_fire"]["local"]).strftime("%H:%M") == "06:30"
    item = listed(cli)["weekday"]
    assert {k: item[k] for k in ("pipeline", "kind", "cron", "timezone", "params")} == {
        "pipeline": "hourly",
        "kind": "cron",
        "cron": "30 6 * * 1-5",
        "timezone": "America/New_York",
        "params": {"tag": "weekday"},
    }
    assert (item["catchup"], item["max_catchup"], item["max_active"]) == ("all", 3, 2)
    assert (item["state"], item["active_runs"], item["last_fire"]) == ("active", 0, None)

    paused = cli("schedule", "add", "sched.py:hourly", "--after", "features", "--paused")
    assert paused.code == 0, paused.stderr
    assert paused.stdout == (
        f"created schedule hourly for {cli.workdir / 'sched.py'}:hourly: paused: fires nothing "
        "until `glasspane schedule resume`\n"
    )
    assert listed(cli)["hourly"]["state"] == "paused"


# -- list, show, next --------------------------------------------------------------------------


def test_list_with_nothing_registered(cli: Cli) -> None:
    result = cli("schedule", "list")
    assert result.code == 0
    assert result.stdout == (
        "no schedules registered; register them with `glasspane schedule sync FILE.py`\n"
    )
    assert result.stderr.startswith("glasspane: warning: no glasspane database exists at ")
    assert cli("schedule", "list", "--json").stdout == "[]\n"


def test_list_shows_next_fire_in_utc_and_in_the_zone(cli: Cli) -> None:
    write(cli, 'cron="0 3 * * *", timezone="Europe/Berlin"')
    cli("schedule", "sync", "sched.py")
    cli.columns = 80
    result = cli("schedule", "list")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    # at 80 columns the last fire time is left out, the rest fits
    assert lines[1].split() == ["name", "pipeline", "when", "state", "next", "fire", "active"]
    row, below = lines[3].split(), lines[4].split()
    assert row[:8] == ["hourly", "hourly", "cron", "0", "3", "*", "*", "*"]
    assert row[8] == "active"
    assert row[-2:] == ["UTC", "0"]
    assert below[0] == "Europe/Berlin"
    assert below[-1] in ("CET", "CEST")
    assert below[-2] == "03:00"


def test_show_json_has_definition_upcoming_and_ticks(cli: Cli) -> None:
    write(cli, 'cron="0 3 * * *", timezone="Europe/Berlin"')
    cli("schedule", "sync", "sched.py")
    store = glasspane.api.default_workspace().store  # the same home as the command's
    fire_at = datetime(2026, 1, 5, 2, tzinfo=timezone.utc)
    assert store.claim_tick("hourly", fire_at)
    store.finish_tick("hourly", fire_at, "skipped", reason="max_active 1 reached")
    result = cli("schedule", "show", "hourly", "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["description"] == (
        "hourly: cron `0 3 * * *` in Europe/Berlin (minute 0, hour 3); catch-up latest; "
        "at most 1 active run"
    )
    assert len(data["upcoming"]) == 5
    hours = {datetime.fromisoformat(t["local"]).hour for t in data["upcoming"]}
    assert hours == {3}
    assert data["ticks"] == [
        {
            "fire_at": {
                "utc": "2026-01-05T02:00:00+00:00",
                "local": "2026-01-05T03:00:00+01:00",
            },
            "outcome": "skipped",
            "run_id": None,
            "reason": "max_active 1 reached",
            "evaluated_at": data["ticks"][0]["evaluated_at"],
        }
    ]
    human = cli("schedule", "show", "hourly")
    assert "2026-01-05 03:00 CET (2026-01-05 02:00 UTC)  skipped" in human.stdout
    assert "max_active 1 reached" in human.stdout


def test_show_of_an_unknown_schedule_names_those_there_are(cli: Cli) -> None:
    write(cli)
    cli("schedule", "sync", "sched.py")
    assert_usage_error(
        cli("schedule", "show", "nightly"),
        "no schedule `nightly`; the schedules are: hourly; sync the pipeline",
    )


def test_next_in_europe_berlin_shows_local_and_utc_times(cli: Cli) -> None:
    write(cli, 'cron="30 2 * * *", timezone="Europe/Berlin"')
    cli("schedule", "sync", "sched.py")
    result = cli("schedule", "next", "hourly", "--count", "3", "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert (data["name"], data["kind"], data["timezone"]) == ("hourly", "cron", "Europe/Berlin")
    times = [
        (datetime.fromisoformat(t["local"]), datetime.fromisoformat(t["utc"]))
        for t in data["fire_times"]
    ]
    assert len(times) == 3
    for local, utc in times:
        assert local == utc
        assert local.strftime("%H:%M") == "02:30"
        assert utc.utcoffset() == timedelta(0)
        assert local.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
    human = cli("schedule", "next", "hourly", "--count", "2")
    assert human.stdout.splitlines()[0] == "hourly: cron 30 2 * * * Europe/Berlin"
    rows = [line.split() for line in human.stdout.splitlines()[4:]]
    assert [row[0] for row in rows] == ["1", "2"]
    assert all(row[2:4] == ["02:30", row[3]] and row[6] == "UTC" for row in rows)
    assert {row[3] for row in rows} <= {"CET", "CEST"}


def test_next_of_an_after_schedule_says_what_it_waits_for(cli: Cli) -> None:
    write(cli, 'after="features"')
    cli("schedule", "sync", "sched.py")
    result = cli("schedule", "next", "hourly")
    assert result.stdout == (
        "schedule hourly fires after each successful run of pipeline `features`: it has no "
        "fire times of its own\n"
    )
    assert cli("schedule", "next", "hourly", "--json").json()["fire_times"] == []


def test_show_of_an_after_schedule_lists_the_upstream_runs_it_reacted_to(cli: Cli) -> None:
    write(cli, 'after="features"')
    cli("schedule", "sync", "sched.py")
    empty = cli("schedule", "show", "hourly")
    assert "no successful run of `features` has triggered it yet" in empty.stdout
    store = glasspane.api.default_workspace().store  # the same home as the command's
    assert store.claim_after_trigger("hourly", "up000000001")
    store.finish_after_trigger("hourly", "up000000001", "launched", run_id="down00000001")
    shown = cli("schedule", "show", "hourly")
    assert shown.code == 0, shown.stderr
    [row] = [line for line in shown.stdout.splitlines() if "up000000001" in line]
    assert row.split()[1:] == ["launched", "down00000001"]
    triggers = cli("schedule", "show", "hourly", "--json").json()["triggers"]
    assert [(t["upstream_run_id"], t["outcome"], t["run_id"]) for t in triggers] == [
        ("up000000001", "launched", "down00000001")
    ]


# -- pause, resume, remove -----------------------------------------------------------------------


def test_pause_resume_and_remove(cli: Cli) -> None:
    write(cli)
    cli("schedule", "sync", "sched.py")
    paused = cli("schedule", "pause", "hourly")
    assert paused.stdout == (
        "paused schedule hourly: it fires nothing until `glasspane schedule resume hourly`; "
        "runs already launched go on\n"
    )
    item = listed(cli)["hourly"]
    assert (item["state"], item["next_fire"]) == ("paused", None)
    again = cli("schedule", "pause", "hourly", "--json").json()
    assert again == {"name": "hourly", "state": "paused", "changed": False}

    resumed = cli("schedule", "resume", "hourly")
    assert resumed.code == 0, resumed.stderr
    assert resumed.stdout.startswith("resumed schedule hourly: next fire ")
    assert "what it missed while paused is not caught up" in resumed.stdout
    assert listed(cli)["hourly"]["state"] == "active"
    assert cli("schedule", "resume", "hourly", "--json").json()["changed"] is False

    removed = cli("schedule", "remove", "hourly")
    assert removed.stdout == (
        "removed schedule hourly and its ticks; its runs stay "
        "(`glasspane runs list --pipeline hourly`)\n"
    )
    assert listed(cli) == {}
    assert_usage_error(cli("schedule", "remove", "hourly"), "no schedule `hourly`")
