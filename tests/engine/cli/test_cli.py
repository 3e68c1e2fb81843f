"""The ``glasspane`` command line, run as a real console script in a subprocess."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from cli_harness import PIPELINES, Cli, assert_usage_error

import glasspane

TASK_KEYS = {"node", "task", "state", "cached", "attempts", "error", "duration", "note", "parent"}


# -- run ---------------------------------------------------------------------------------------


def test_run_json_prints_the_documented_shape(cli: Cli) -> None:
    result = cli("run", "flows.py:demo", "-p", "n=3", "--json", "--executor", "threads")
    assert result.code == 0, result.stderr
    data = result.json()
    assert {"run_id", "pipeline", "state", "tasks", "output", "params", "error"} <= set(data)
    assert data["pipeline"] == "demo"
    assert data["state"] == "succeeded"
    assert data["error"] is None
    assert data["params"] == {"n": 3, "tag": "dev"}
    assert data["output"] == {"total": 3, "tag": "dev"}
    assert [set(t) for t in data["tasks"]] == [TASK_KEYS, TASK_KEYS]
    assert [
        (t["node"], t["task"], t["state"], t["cached"], t["attempts"]) for t in data["tasks"]
    ] == [
        ("load", "load", "succeeded", False, 1),
        ("total", "total", "succeeded", False, 1),
    ]
    assert cli.calls() == ["load", "total"]


def test_second_run_reports_cached_tasks(cli: Cli) -> None:
    cli("run", "flows.py:demo", "--json", "-e", "inline")
    data = cli("run", "flows.py:demo", "--json", "-e", "inline").json()
    assert [(t["cached"], t["attempts"]) for t in data["tasks"]] == [(True, 0), (True, 0)]
    assert cli.calls() == ["load", "total"]


def test_failing_pipeline_exits_1(cli: Cli) -> None:
    result = cli("run", "flows.py:always_fails", "--json", "--executor", "threads")
    assert result.code == 1
    data = result.json()
    assert data["state"] == "failed"
    assert data["output"] is None
    assert data["error"] == "task `boom` failed: ValueError: this task always fails"
    assert data["tasks"][0]["error"] == "ValueError: this task always fails"


def test_failing_pipeline_human_output_says_how_to_resume(cli: Cli) -> None:
    result = cli("run", "flows.py:always_fails", "--executor", "threads")
    assert result.code == 1
    run_id = cli("runs", "list", "--json").json()[0]["run_id"]
    lines = result.stdout.splitlines()
    # the task's own traceback (the user's frames only), then the error and the next steps
    start = lines.index(f"traceback of `boom` (all of it: glasspane logs {run_id} boom):")
    assert lines[start + 1 :] == [
        "Traceback (most recent call last):",
        f'  File "{cli.workdir / "flows.py"}", line 68, in boom',
        '    raise ValueError("this task always fails")',
        "ValueError: this task always fails",
        "task `boom` failed: ValueError: this task always fails",
        f"logs:    glasspane logs {run_id} boom",
        f"inspect: glasspane runs show {run_id}",
        f"resume:  glasspane retry {run_id}",
    ]
    assert "Traceback" not in result.stderr


def test_human_output_has_a_table_with_the_nodes(cli: Cli) -> None:
    result = cli("run", "flows.py:demo", "-p", "n=4", "--executor", "threads")
    assert result.code == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if "succeeded" in line]
    assert [row[:3] for row in rows if row[0] in ("load", "total")] == [
        ["load", "succeeded", "1"],
        ["total", "succeeded", "1"],
    ]
    assert result.stdout.splitlines()[1].split() == ["node", "state", "attempts", "time"] + [
        "error",
        "/",
        "note",
    ]
    assert 'output: {"total": 6, "tag": "dev"}' in result.stdout


def test_absolute_file_path_works_from_any_directory(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    cli.workdir = other
    result = cli("run", f"{tmp_path / 'flows.py'}:demo", "--json", "-e", "inline")
    assert result.code == 0, result.stderr
    assert result.json()["output"]["total"] == 3


# -- -p parsing --------------------------------------------------------------------------------


def test_p_values_are_parsed_as_json_except_for_str_parameters(cli: Cli) -> None:
    result = cli(
        "run",
        "flows.py:typed",
        "-p",
        "grid=[0.1,1]",
        "-p",
        "n=7",
        "-p",
        "tag=123",
        "--json",
        "-e",
        "inline",
    )
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["params"] == {"grid": [0.1, 1], "tag": "123", "n": 7, "note": None}
    assert data["output"] == {
        "grid": [0.1, 1],
        "types": ["float", "int"],
        "tag": "123",
        "n": 7,
        "note": None,
    }


def test_p_value_that_is_not_json_is_kept_as_a_string(cli: Cli) -> None:
    # only the first `=` separates the name from the value
    data = cli("run", "flows.py:typed", "-p", "note=a=b c", "--json", "-e", "inline").json()
    assert data["params"]["note"] == "a=b c"
    assert data["output"]["note"] == "a=b c"


# -- usage, definition and configuration errors ------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        pytest.param(
            ["flows.py:nope"],
            {},
            "`flows.py` has no attribute `nope`; pipelines defined there: always_fails, "
            "demo, flaky, typed",
            id="no-such-attribute",
        ),
        pytest.param(
            ["flows.py:not_a_pipeline"],
            {},
            "`flows.py:not_a_pipeline` is a int, not a pipeline; decorate it with @pipeline",
            id="not-a-pipeline",
        ),
        pytest.param(
            ["missing.py:demo"], {}, "pipeline file `missing.py` does not exist", id="missing-file"
        ),
        pytest.param(
            ["no_such_module_gp:demo"],
            {},
            "cannot import module `no_such_module_gp`",
            id="missing-module",
        ),
        pytest.param(
            ["flows.py"],
            {},
            "pipeline reference `flows.py` is not of the form FILE.py:NAME or module:NAME",
            id="no-colon",
        ),
        pytest.param(
            ["flows.py:demo", "-p", "m=3"],
            {},
            "unknown parameter `m` for pipeline `demo`; it takes: n: int = 3, tag: str = 'dev'",
            id="unknown-parameter",
        ),
        pytest.param(
            ["flows.py:demo", "-p", "n=lots"],
            {},
            "invalid parameter for pipeline `demo`: `n`: Input should be a valid integer",
            id="wrong-type",
        ),
        pytest.param(
            ["flows.py:demo", "-p", "n=true"],
            {},
            "invalid parameter for pipeline `demo`: `n`: Input should be a valid integer (got "
            "the JSON boolean true from -p `n=true`, which the command line does not convert to "
            "int); write a value of that type, e.g. -p n=3",
            id="bool-for-int",
        ),
        pytest.param(
            ["flows.py:demo", "-p", 'n="3"'],
            {},
            'got the JSON string "3" from -p `n="3"`, which the command line does not convert',
            id="json-string-for-int",
        ),
        pytest.param(
            ["flows.py:demo", "-p", "n"],
            {},
            "-p `n` is not of the form NAME=VALUE; for example -p n=300",
            id="bad-p-syntax",
        ),
        pytest.param(
            ["flows.py:demo", "-p", "n=1", "-p", "n=2"],
            {},
            "parameter `n` of pipeline `demo` given twice",
            id="p-twice",
        ),
        pytest.param(
            ["flows.py:demo", "--executor", "fast"],
            {},
            "unknown executor `fast`; use inline, threads, dask or tcp://HOST:PORT",
            id="unknown-executor",
        ),
        pytest.param(
            ["flows.py:demo", "--executor", "tcp://localhost"],
            {},
            "malformed Dask scheduler address `tcp://localhost`; expected tcp://HOST:PORT",
            id="malformed-address",
        ),
        pytest.param(
            ["flows.py:demo"],
            {"GLASSPANE_DATABASE_URL": "nosuchdb://x"},
            "cannot open metadata database `nosuchdb://x`",
            id="bad-database-url",
        ),
        pytest.param(
            ["flows.py:demo"],
            {"GLASSPANE_ARTIFACT_ROOT": "nosuch://x"},
            "artifact root `nosuch://x` is not usable",
            id="bad-artifact-root",
        ),
        pytest.param(
            ["flows.py:demo"],
            {"GLASSPANE_DASK_WORKERS": "two"},
            "invalid glasspane setting (`dask_workers`: ",
            id="bad-setting",
        ),
    ],
)
def test_user_errors_exit_2_with_one_line_and_no_traceback(
    cli: Cli, args: list[str], env: dict[str, str], message: str
) -> None:
    if "--executor" not in args:
        args = [*args, "--executor", "inline"]
    result = cli("run", *args, env=env)
    assert_usage_error(result, message)
    assert result.stdout == ""
    assert cli.calls() == []
    # nothing was recorded (read in-process, same GLASSPANE_HOME: a subprocess would be slow)
    assert glasspane.runs() == []


def test_import_error_in_the_users_module_shows_their_traceback(cli: Cli) -> None:
    (cli.workdir / "broken.py").write_text(
        textwrap.dedent("""
        from glasspane import pipeline

        def helper():
            return 1 / 0

        VALUE = helper()
    """)
    )
    result = cli("run", "broken.py:demo")
    assert result.code == 2
    assert "Traceback (most recent call last):" in result.stderr
    assert f'File "{cli.workdir / "broken.py"}", line 7, in <module>' in result.stderr
    assert "in helper" in result.stderr
    assert "ZeroDivisionError: division by zero" in result.stderr
    assert "glasspane/loader.py" not in result.stderr
    assert "engine/loader.py" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "glasspane: error: importing `broken.py` raised ZeroDivisionError: division by zero; "
        "fix the error in your module (traceback above)"
    )


def test_an_error_in_a_pipeline_body_shows_the_users_traceback(cli: Cli) -> None:
    (cli.workdir / "body.py").write_text(
        textwrap.dedent("""
        from glasspane import pipeline

        @pipeline
        def lookup(key: str = "b"):
            table = {"a": 1}
            return table[key]
    """)
    )
    result = cli("run", "body.py:lookup", "--json", "-e", "inline")
    assert result.code == 2
    assert result.stdout == ""
    assert f'File "{cli.workdir / "body.py"}", line 7, in lookup' in result.stderr
    assert "engine/" not in result.stderr and "glasspane/" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "glasspane: error: the body of pipeline `lookup` raised KeyError: 'b'; fix the error in "
        "the pipeline body (traceback above)"
    )


@pytest.mark.parametrize("filename", ["string.py", "typing.py"])
def test_a_file_named_like_a_stdlib_module_runs(cli: Cli, filename: str) -> None:
    # importing it under its stem would replace the standard library's module for glasspane
    (cli.workdir / filename).write_text(PIPELINES)
    result = cli("run", f"{filename}:demo", "--json", "-e", "inline")
    assert result.code == 0, result.stderr
    assert result.json()["output"] == {"total": 3, "tag": "dev"}


def test_a_file_whose_name_is_not_an_identifier_is_cached_across_runs(cli: Cli) -> None:
    (cli.workdir / "my-flow.py").write_text(PIPELINES)
    first = cli("run", "my-flow.py:demo", "--json", "-e", "inline")
    assert first.code == 0, first.stderr
    second = cli("run", "my-flow.py:demo", "--json", "-e", "inline").json()
    assert [t["cached"] for t in second["tasks"]] == [True, True]
    assert cli.calls() == ["load", "total"]


def test_argparse_errors_exit_2(cli: Cli) -> None:
    result = cli("run")
    assert result.code == 2
    assert "the following arguments are required: pipeline" in result.stderr
    assert "Traceback" not in result.stderr


# -- runs list / show --------------------------------------------------------------------------


def test_runs_list(cli: Cli) -> None:
    first = cli("run", "flows.py:demo", "--json", "-e", "inline").json()
    second = cli("run", "flows.py:always_fails", "--json", "-e", "inline").json()
    runs = cli("runs", "list", "--json").json()
    assert [r["run_id"] for r in runs] == [second["run_id"], first["run_id"]]
    assert [(r["pipeline"], r["state"]) for r in runs] == [
        ("always_fails", "failed"),
        ("demo", "succeeded"),
    ]
    assert runs[1]["params"] == {"n": 3, "tag": "dev"}
    assert (runs[1]["n_tasks"], runs[1]["n_succeeded"], runs[1]["n_cached"]) == (2, 2, 0)
    failed = cli("runs", "list", "--json", "--state", "failed", "--pipeline", "always_fails")
    assert [r["run_id"] for r in failed.json()] == [second["run_id"]]
    human = cli("runs", "list", "--limit", "1")
    assert human.code == 0
    assert second["run_id"] in human.stdout and "always_fails" in human.stdout
    assert first["run_id"] not in human.stdout


def test_runs_show_json_has_the_shape_of_run_json(cli: Cli) -> None:
    ran = cli("run", "flows.py:demo", "-p", "n=4", "--json", "-e", "threads").json()
    result = cli("runs", "show", ran["run_id"], "--json")
    assert result.code == 0, result.stderr
    shown = result.json()
    assert set(ran) <= set(shown)
    for name in ("run_id", "pipeline", "state", "params", "error", "output", "resumed_from"):
        assert shown[name] == ran[name], name
    assert [{k: t[k] for k in TASK_KEYS - {"duration"}} for t in shown["tasks"]] == [
        {k: t[k] for k in TASK_KEYS - {"duration"}} for t in ran["tasks"]
    ]
    # a unique prefix is enough
    by_prefix = cli("runs", "show", ran["run_id"][:6], "--json")
    assert by_prefix.code == 0, by_prefix.stderr
    assert by_prefix.json()["run_id"] == ran["run_id"]


def test_runs_show_human_output(cli: Cli) -> None:
    run_id = cli("run", "flows.py:always_fails", "--json", "-e", "inline").json()["run_id"]
    result = cli("runs", "show", run_id)
    assert result.code == 0
    assert f"run {run_id}" in result.stdout
    assert "boom" in result.stdout
    assert "task `boom` failed: ValueError: this task always fails" in result.stdout


def test_runs_show_unknown_id(cli: Cli) -> None:
    assert_usage_error(
        cli("runs", "show", "deadbeef0000", "--json"),
        "no run `deadbeef0000`; list runs with `glasspane runs list`",
    )


# -- retry -------------------------------------------------------------------------------------


def test_retry_reuses_succeeded_tasks(cli: Cli) -> None:
    (cli.workdir / "fail.flag").touch()
    failed = cli("run", "flows.py:flaky", "--json", "-e", "threads")
    assert failed.code == 1
    run_id = failed.json()["run_id"]
    assert cli.calls() == ["first", "second"]

    (cli.workdir / "fail.flag").unlink()
    result = cli("retry", run_id, "--json", "--executor", "threads")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["state"] == "succeeded"
    assert data["resumed_from"] == run_id
    assert data["run_id"] != run_id
    assert data["output"] == 10
    tasks = {t["node"]: t for t in data["tasks"]}
    assert tasks["first"]["cached"] is True
    assert tasks["first"]["note"] == f"reused from run {run_id}"
    assert tasks["second"]["cached"] is False and tasks["second"]["attempts"] == 1
    # `first` is cache=False: it was reused from the failed run, not run again
    assert cli.calls() == ["first", "second", "second"]
    assert cli("runs", "show", run_id, "--json").json()["state"] == "failed"


def test_retry_of_a_succeeded_run_is_refused(cli: Cli) -> None:
    run_id = cli("run", "flows.py:demo", "--json", "-e", "inline").json()["run_id"]
    assert_usage_error(
        cli("retry", run_id, "--executor", "inline"),
        f"run {run_id} succeeded; there is nothing to resume",
    )


def test_retry_of_an_unknown_run(cli: Cli) -> None:
    assert_usage_error(cli("retry", "cafe0000cafe"), "no run `cafe0000cafe`")


# -- lineage -----------------------------------------------------------------------------------


def test_lineage(cli: Cli) -> None:
    run_id = cli("run", "flows.py:demo", "--json", "-e", "inline").json()["run_id"]

    up = cli("lineage", run_id, "total", "--upstream", "--json")
    assert up.code == 0, up.stderr
    data = up.json()
    assert data["direction"] == "upstream"
    assert data["root"] == {"run_id": run_id, "node": "total", "task": "total"}
    assert [(t["node"], t["depth"]) for t in data["task_runs"]] == [("total", 0), ("load", 1)]
    assert [(a["type_name"], a["produced_by"]) for a in data["artifacts"]] == [
        ("list", {"run_id": run_id, "node": "load"})
    ]

    down = cli("lineage", run_id, "load", "--downstream", "--json").json()
    assert down["direction"] == "downstream"
    assert [(t["node"], t["depth"]) for t in down["task_runs"]] == [("load", 0), ("total", 1)]

    human = cli("lineage", run_id[:6], "total")
    assert human.code == 0, human.stderr
    assert f"upstream lineage of {run_id}/total" in human.stdout
    assert "load" in human.stdout

    assert_usage_error(
        cli("lineage", run_id, "tota", "--json"),
        f"run {run_id} has no node `tota`; its nodes are: load, total",
    )


def test_lineage_flags_are_exclusive(cli: Cli) -> None:
    result = cli("lineage", "abcd", "load", "--upstream", "--downstream")
    assert result.code == 2
    assert "not allowed with argument" in result.stderr


# -- cache clear -------------------------------------------------------------------------------


def test_cache_clear_for_one_task_then_all(cli: Cli) -> None:
    cli("run", "flows.py:demo", "--json", "-e", "inline")
    result = cli("cache", "clear", "--task", "total")
    assert result.code == 0
    assert result.stdout.strip() == "cleared 1 cache entry for task `total`"
    data = cli("run", "flows.py:demo", "--json", "-e", "inline").json()
    assert [(t["node"], t["cached"]) for t in data["tasks"]] == [("load", True), ("total", False)]
    assert cli.calls() == ["load", "total", "total"]

    result = cli("cache", "clear")
    assert result.code == 0
    assert result.stdout.strip() == "cleared 2 cache entries for all tasks"
    data = cli("run", "flows.py:demo", "--json", "-e", "inline").json()
    assert [t["cached"] for t in data["tasks"]] == [False, False]
