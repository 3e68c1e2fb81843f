"""``glasspane runs list --tracker mlflow --experiment EXP``: a real ``mlflow server``'s runs,
made with ``MlflowClient`` (not by glasspane), listed from the shell page by page, as a table
that fits 80 columns or as JSON; and the option mistakes said in one line (exit 2)."""

from __future__ import annotations

import shlex
import uuid

import pytest
from cli_harness import Cli, assert_usage_error

from glasspane.tracking import TrackedRunPage


def team_experiment(uri: str, runs: int) -> tuple[str, list[str]]:
    """A new experiment with ``runs`` finished runs, one minute apart; its name and the run
    ids, newest first."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    name = f"team-{uuid.uuid4().hex[:8]}"
    experiment_id = client.create_experiment(name)
    made = []
    for i in range(runs):
        start = 1_700_000_000_000 + i * 60_000
        run = client.create_run(experiment_id, start_time=start, run_name=f"sweep-{i}")
        client.log_param(run.info.run_id, "C", str(10**i))
        client.log_param(run.info.run_id, "solver", "lbfgs")
        client.log_metric(run.info.run_id, "accuracy", round(0.8 + i / 100, 2))
        client.set_terminated(run.info.run_id, "FINISHED", end_time=start + 1000)
        made.append(run.info.run_id)
    return name, made[::-1]


@pytest.fixture
def env(mlflow_uri: str) -> dict[str, str]:
    return {"GLASSPANE_TRACKERS": "mlflow", "MLFLOW_TRACKING_URI": mlflow_uri}


def test_a_trackers_runs_as_a_table_that_fits_80_columns(
    cli: Cli, env: dict[str, str], mlflow_uri: str
) -> None:
    experiment, ids = team_experiment(mlflow_uri, 3)
    cli.columns = 80
    result = cli("runs", "list", "--tracker", "mlflow", "--experiment", experiment, env=env)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), result.stdout
    assert lines[0].strip() == "runs in mlflow"
    assert "id" in lines[1] and "status" in lines[1] and "started" in lines[1]
    listed = [line.split()[0] for line in lines if line[:32] in ids]
    assert listed == ids  # newest first, each id in full
    assert "sweep-2" in result.stdout and "FINISHED" in result.stdout
    assert "2023-11-14" in result.stdout  # the start, local time (TZ=UTC)
    assert "C=100" in result.stdout and "accuracy=0.82" in result.stdout
    assert "next page" not in result.stdout


def test_pages_follow_the_printed_token(cli: Cli, env: dict[str, str], mlflow_uri: str) -> None:
    experiment, ids = team_experiment(mlflow_uri, 3)
    first = cli("runs", "list", "--tracker", "mlflow", "--experiment", experiment, "--limit", "2",
                env=env)  # fmt: skip
    assert first.code == 0, first.stderr
    assert [line.split()[0] for line in first.stdout.splitlines() if line[:32] in ids] == ids[:2]
    (hint,) = [line for line in first.stdout.splitlines() if line.startswith("next page: ")]
    command = shlex.split(hint.removeprefix("next page: "))
    assert command[:7] == ["glasspane", "runs", "list", "--tracker", "mlflow", "--experiment",
                           experiment]  # fmt: skip
    second = cli(*command[1:], env=env)
    assert second.code == 0, second.stderr
    assert [line.split()[0] for line in second.stdout.splitlines() if line[:32] in ids] == ids[2:]
    assert "next page" not in second.stdout


def test_json_is_the_page_and_nothing_else(cli: Cli, env: dict[str, str], mlflow_uri: str) -> None:
    experiment, ids = team_experiment(mlflow_uri, 3)
    args = ["runs", "list", "--tracker", "mlflow", "--experiment", experiment, "--limit", "2"]
    result = cli(*args, "--json", env=env)
    assert result.code == 0, result.stderr
    page = TrackedRunPage.model_validate_json(result.stdout)
    assert [run.external_id for run in page.runs] == ids[:2]
    assert page.runs[0].params == {"C": "100", "solver": "lbfgs"}
    assert page.runs[0].metrics == {"accuracy": 0.82}
    assert page.runs[0].glasspane_run_id is None and page.runs[0].experiment == experiment
    assert page.next_page_token
    rest = cli(*args, "--page-token", page.next_page_token, "--json", env=env).json()
    assert [run["external_id"] for run in rest["runs"]] == ids[2:]
    assert rest["next_page_token"] is None


def test_an_experiment_without_runs(cli: Cli, env: dict[str, str]) -> None:
    result = cli("runs", "list", "--tracker", "mlflow", "--experiment", "no-such-exp", env=env)
    assert (result.code, result.stdout) == (
        0,
        "no runs in experiment `no-such-exp` of tracker `mlflow`\n",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tracker", "mlflow"], "--tracker mlflow needs --experiment EXP, the tracker's"),
        (
            ["--tracker", "mlflow", "--experiment", "x", "--state", "failed"],
            "--state filters glasspane's own runs, not a tracker's: drop it, or drop --tracker",
        ),
        (
            ["--tracker", "mlflow", "--experiment", "x", "--pipeline", "p", "--schedule", "s"],
            "--pipeline, --schedule filter glasspane's own runs, not a tracker's: drop them",
        ),
        (["--experiment", "x"], "--experiment goes with --tracker NAME"),
        (["--page-token", "t"], "--page-token goes with --tracker NAME"),
    ],
)
def test_option_mistakes_say_what_to_do(
    cli: Cli, env: dict[str, str], args: list[str], message: str
) -> None:
    result = cli("runs", "list", *args, env=env)
    assert_usage_error(result, message)
    assert "see `glasspane runs list --help`" in result.stderr


def test_a_tracker_not_configured_or_not_installed(cli: Cli, mlflow_uri: str) -> None:
    args = ["runs", "list", "--tracker", "mlflow", "--experiment", "x"]
    off = cli(*args, env={"MLFLOW_TRACKING_URI": mlflow_uri})
    assert_usage_error(off, "tracker `mlflow` is not configured (configured: none); turn it on")
    unknown = cli("runs", "list", "--tracker", "nosuch", "--experiment", "x",
                  env={"GLASSPANE_TRACKERS": "nosuch"})  # fmt: skip
    assert_usage_error(unknown, "tracker `nosuch` (in the `trackers` setting) is not installed")
