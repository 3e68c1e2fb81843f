"""Usage of the command line: --version, --help of every command, and arguments it refuses."""

from __future__ import annotations

import pytest
from cli_harness import Cli, assert_usage_error

import glasspane

COMMANDS = [
    ["run"],
    ["runs", "list"],
    ["runs", "show"],
    ["retry"],
    ["lineage"],
    ["logs"],
    ["cache", "clear"],
    ["integrations", "list"],
    ["integrations", "sync"],
    ["models", "list"],
    ["models", "show"],
    ["models", "promote"],
    ["models", "alias", "rm"],
    ["deploy"],
    ["deployments", "list"],
    ["deployments", "show"],
    ["deployments", "stop"],
]


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert (result.code, result.stdout, result.stderr) == (0, "glasspane 0.1.0\n", "")
    assert glasspane.__version__ == "0.1.0"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_exit_codes_and_an_example(
    cli: Cli, command: list[str]
) -> None:
    result = cli(*command, "--help")
    assert result.code == 0, result.stderr
    text = result.stdout
    assert text.startswith(f"usage: glasspane {' '.join(command)}")
    assert "exit codes:\n  0    " in text
    assert "\n  2    a usage" in text
    assert f"examples:\n  glasspane {' '.join(command)}" in text


def test_help_names_choices_and_defaults(cli: Cli) -> None:
    run = cli("run", "--help").stdout
    assert "inline (one by one in this process), threads" in run
    assert "130  the run was cancelled" in run
    assert "1    the run failed" in run
    listing = cli("runs", "list", "--help").stdout
    assert "(default: 20)" in listing
    assert "pending, running, retrying, succeeded, failed, upstream_failed, cancelled," in listing
    logs = cli("logs", "--help").stdout
    assert "--attempt N" in logs and "(1 is the first; default: every attempt)" in logs
    top = cli("--help").stdout
    for name in ("run", "runs", "retry", "lineage", "logs", "cache"):
        assert f"    {name} " in top


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("0", "argument --limit: must be 1 or more, not 0"),
        ("-1", "argument --limit: must be 1 or more, not -1"),
        ("ten", "argument --limit: `ten` is not a whole number"),
        ("2.5", "argument --limit: `2.5` is not a whole number"),
    ],
)
def test_runs_list_limit_must_be_a_positive_whole_number(
    cli: Cli, limit: str, message: str
) -> None:
    assert_usage_error(
        cli("runs", "list", "--limit", limit), f"{message}; see `glasspane runs list --help`"
    )


def test_runs_list_accepts_a_huge_limit(cli: Cli) -> None:
    ran = cli("run", "flows.py:demo", "--json", "-e", "inline").json()
    for limit in ("1" + "0" * 30, str(2**63), "1000000"):
        result = cli("runs", "list", "--json", "--limit", limit)
        assert result.code == 0, result.stderr
        assert [r["run_id"] for r in result.json()] == [ran["run_id"]]


def test_runs_list_state_must_be_a_known_state(cli: Cli) -> None:
    assert_usage_error(
        cli("runs", "list", "--state", "bogus"),
        "argument --state: invalid choice: 'bogus' (choose from 'queued', 'pending', 'running', "
        "'retrying', 'succeeded', 'failed', 'upstream_failed', 'cancelled', 'crashed', "
        "'timed_out'); see `glasspane runs list --help`",
    )


def test_a_missing_argument_is_one_line(cli: Cli) -> None:
    assert_usage_error(
        cli("run"),
        "the following arguments are required: pipeline; see `glasspane run --help`",
    )
    assert_usage_error(cli(), "the following arguments are required: COMMAND")


def test_logs_attempt_must_be_a_positive_whole_number(cli: Cli) -> None:
    assert_usage_error(
        cli("logs", "abcd1234", "load", "--attempt", "0"),
        "argument --attempt: must be 1 or more, not 0",
    )


# -- cache clear -------------------------------------------------------------------------------


def test_cache_clear_of_a_task_the_cache_does_not_hold(cli: Cli) -> None:
    assert_usage_error(
        cli("cache", "clear", "--task", "total"),
        "the cache holds no entry for task `total`: it is empty",
    )
    assert cli("run", "flows.py:demo", "--json", "-e", "inline").code == 0
    assert_usage_error(
        cli("cache", "clear", "--task", "totl"),
        "the cache holds no entry for task `totl`; did you mean `total`? it holds entries for: "
        "load, total",
    )
    assert_usage_error(
        cli("cache", "clear", "--task", "train"),
        "the cache holds no entry for task `train`; it holds entries for: load, total",
    )
    # nothing was cleared: both tasks are still cache hits
    data = cli("run", "flows.py:demo", "--json", "-e", "inline").json()
    assert [t["cached"] for t in data["tasks"]] == [True, True]


# -- configuration -----------------------------------------------------------------------------


def test_an_unknown_key_in_glasspane_toml(cli: Cli) -> None:
    (cli.workdir / "glasspane.toml").write_text('executer = "inline"\n')
    result = cli("runs", "list")
    assert_usage_error(
        result,
        f"unknown glasspane setting `executer` in {cli.workdir / 'glasspane.toml'}; did you "
        "mean `executor`? valid settings: home, database_url, ",
    )


def test_a_bool_for_a_number_in_glasspane_toml(cli: Cli) -> None:
    (cli.workdir / "glasspane.toml").write_text("dask_workers = true\n")
    assert_usage_error(
        cli("run", "flows.py:demo", "-e", "inline"),
        "invalid glasspane setting (`dask_workers`: Input should be a valid integer (got True));",
    )
