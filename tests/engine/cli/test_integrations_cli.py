"""`glasspane integrations list|sync`, and a run's trackers in `runs show`, from a shell."""

from __future__ import annotations

from cli_harness import Cli

MEMORY = {"GLASSPANE_TRACKERS": "memory"}


def test_list_names_the_installed_trackers_and_which_are_on(cli: Cli) -> None:
    off = cli("integrations", "list")
    assert off.code == 0, off.stderr
    assert "no tracker is on: set GLASSPANE_TRACKERS=mlflow" in off.stdout
    on = cli("integrations", "list", "--json", env=MEMORY)
    rows = {row["name"]: row for row in on.json()}
    assert rows["memory"]["on"] is True and rows["mlflow"]["on"] is False
    assert rows["mlflow"]["entry_point"] == "glasspane.integrations.mlflow:MlflowTracker"
    assert rows["memory"]["waiting_runs"] == 0


def test_runs_show_names_the_run_in_each_tracker(cli: Cli) -> None:
    ran = cli("run", "flows.py:demo", "--json", env=MEMORY)
    assert ran.code == 0, ran.stderr
    run_id = ran.json()["run_id"]
    shown = cli("runs", "show", run_id)
    assert "tracker memory: memory://mem-1 (delivered)" in shown.stdout
    (link,) = cli("runs", "show", run_id, "--json").json()["trackers"]
    assert link == {
        "tracker": "memory", "external_id": "mem-1", "url": "memory://mem-1",
        "state": "delivered", "error": None,
    }  # fmt: skip


def test_sync_with_nothing_waiting(cli: Cli) -> None:
    result = cli("integrations", "sync", env=MEMORY)
    assert (result.code, result.stdout) == (0, "nothing waits for a tracker\n")
    assert cli("integrations", "sync", "--json", env=MEMORY).json() == []


def test_an_unknown_tracker_stops_the_run_before_it_starts(cli: Cli) -> None:
    result = cli("run", "flows.py:demo", env={"GLASSPANE_TRACKERS": "mlfow"})
    assert result.code == 2
    assert result.stderr.startswith(
        "glasspane: error: tracker `mlfow` (in the `trackers` setting) is not installed"
    )
    assert len(result.stderr.splitlines()) == 1
    assert cli.calls() == []
