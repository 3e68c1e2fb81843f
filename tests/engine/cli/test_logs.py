"""Reading what happened: ``glasspane logs``, tracebacks in ``runs show``, narrow terminals,
and read-only commands that never create a database."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from cli_harness import Cli, assert_usage_error

JOBS = textwrap.dedent(
    """
    from pathlib import Path

    from glasspane import get_logger, pipeline, task

    HERE = Path(__file__).parent


    @task(retries=1, retry_delay=0)
    def shaky() -> int:
        tries = HERE / "tries.txt"
        n = int(tries.read_text()) + 1 if tries.exists() else 1
        tries.write_text(str(n))
        print(f"stdout of try {n}")
        get_logger().info("log of try %d", n)
        if n == 1:
            raise RuntimeError("the first try fails")
        return n


    @pipeline
    def retried():
        return shaky()


    @task
    def broken(n: int) -> int:
        print("about to fail")
        raise ValueError(f"broken for good: {n}")


    @task
    def after(x: int) -> int:
        return x


    @pipeline
    def fails(n: int = 1):
        return after(broken(n))


    @pipeline
    def a_pipeline_whose_name_is_much_longer_than_most():
        return after(3)
    """
)


@pytest.fixture
def jobs(cli: Cli) -> Cli:
    (cli.workdir / "jobs.py").write_text(JOBS)
    return cli


def test_logs_show_each_attempt(jobs: Cli) -> None:
    ran = jobs("run", "jobs.py:retried", "--json", "-e", "inline").json()
    assert ran["state"] == "succeeded"
    run_id = ran["run_id"]

    data = jobs("logs", run_id, "shaky", "--json").json()
    assert {k: data[k] for k in ("run_id", "node", "task", "state", "cached", "note")} == {
        "run_id": run_id,
        "node": "shaky",
        "task": "shaky",
        "state": "succeeded",
        "cached": False,
        "note": None,
    }
    first, second = data["attempts"]
    assert (first["attempt"], first["state"], first["error"]) == (
        1,
        "failed",
        "RuntimeError: the first try fails",
    )
    assert first["stdout"] == "stdout of try 1\n"
    assert "log of try 1" in first["log_tail"] and "log of try 2" not in first["log_tail"]
    assert first["traceback"].startswith("Traceback (most recent call last):\n")
    assert first["traceback"].endswith("RuntimeError: the first try fails\n")
    assert (second["attempt"], second["state"], second["stdout"]) == (
        2,
        "succeeded",
        "stdout of try 2\n",
    )
    assert second["traceback"] is None
    assert first["started_at"] and first["ended_at"] and first["duration"] >= 0
    # the task run's own text covers both attempts
    assert data["stdout"] == "stdout of try 1\nstdout of try 2\n"

    only = jobs("logs", run_id[:6], "shaky", "--attempt", "2", "--json").json()
    assert [a["attempt"] for a in only["attempts"]] == [2]

    human = jobs("logs", run_id, "shaky")
    assert human.code == 0, human.stderr
    lines = human.stdout.splitlines()
    assert lines[0] == f"{run_id}/shaky · task shaky · succeeded"
    assert lines[1].startswith("attempt 1 · failed · ")
    assert lines[2] == "error: RuntimeError: the first try fails"
    assert lines[3:5] == ["--- stdout ---", "stdout of try 1"]
    assert "--- traceback ---" in lines
    assert "RuntimeError: the first try fails" in lines
    second_at = next(i for i, line in enumerate(lines) if line.startswith("attempt 2 · "))
    assert lines[second_at].startswith("attempt 2 · succeeded · ")
    assert lines[second_at + 1 : second_at + 3] == ["--- stdout ---", "stdout of try 2"]


def test_logs_of_a_cached_task_name_its_cache_key(jobs: Cli) -> None:
    jobs("run", "jobs.py:retried", "--json", "-e", "inline")
    again = jobs("run", "jobs.py:retried", "--json", "-e", "inline").json()
    assert again["tasks"][0]["cached"] is True
    data = jobs("logs", again["run_id"], "shaky", "--json").json()
    assert data["attempts"] == []
    assert data["cached"] is True
    assert data["note"] == (
        f"cache hit: its output was reused from cache key {data['cache_key']}, so the task "
        "did not run in this run"
    )
    human = jobs("logs", again["run_id"], "shaky")
    assert human.stdout.splitlines()[1] == data["note"]


def test_logs_of_unknown_runs_nodes_and_attempts_say_what_exists(jobs: Cli) -> None:
    run_id = jobs("run", "jobs.py:fails", "--json", "-e", "inline").json()["run_id"]
    assert_usage_error(
        jobs("logs", run_id, "brokn"),
        f"run {run_id} has no node `brokn`; its nodes are: after, broken",
    )
    assert_usage_error(
        jobs("logs", run_id, "broken", "--attempt", "3"),
        f"task run {run_id}/broken has no attempt 3; its attempts are: 1",
    )
    assert_usage_error(
        jobs("logs", run_id, "after", "--attempt", "1"),
        f"task run {run_id}/after has no attempt 1; it has no attempts: the task did not run "
        "in this run (state upstream_failed",
    )
    assert_usage_error(jobs("logs", "feedbeef", "broken"), "no run `feedbeef`")


def test_runs_show_prints_the_traceback_of_a_failed_task(jobs: Cli) -> None:
    run_id = jobs("run", "jobs.py:fails", "-p", "n=7", "--json", "-e", "threads").json()["run_id"]
    shown = jobs("runs", "show", run_id, "--json").json()
    tasks = {t["node"]: t for t in shown["tasks"]}
    assert tasks["broken"]["traceback"].splitlines()[-1] == "ValueError: broken for good: 7"
    assert f'File "{jobs.workdir / "jobs.py"}", line ' in tasks["broken"]["traceback"]
    assert tasks["after"]["traceback"] is None

    human = jobs("runs", "show", run_id)
    assert human.code == 0, human.stderr
    lines = human.stdout.splitlines()
    start = lines.index(f"traceback of `broken` (all of it: glasspane logs {run_id} broken):")
    assert lines[start + 1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: broken for good: 7"
    assert lines[start - 1] == "task `broken` failed: ValueError: broken for good: 7"


def test_a_long_traceback_is_trimmed_to_its_last_lines(jobs: Cli) -> None:
    (jobs.workdir / "deep.py").write_text(
        textwrap.dedent(
            """
            from glasspane import pipeline, task


            def ping(n):
                if n == 0:
                    raise RecursionError("bottom")
                return pong(n - 1)


            def pong(n):
                return ping(n - 1)


            @task
            def dive() -> int:
                return ping(40)


            @pipeline
            def deep():
                return dive()
            """
        )
    )
    result = jobs("run", "deep.py:deep", "-e", "inline")
    assert result.code == 1
    run_id = jobs("runs", "list", "--json").json()[0]["run_id"]
    lines = result.stdout.splitlines()
    start = lines.index(
        f"traceback of `dive` (last 30 lines; all of it: glasspane logs {run_id} dive):"
    )
    end = lines.index("RecursionError: bottom")
    assert end - start == 30
    full = jobs("logs", run_id, "dive", "--json").json()["attempts"][0]["traceback"]
    assert len(full.splitlines()) > 80


# -- narrow terminals --------------------------------------------------------------------------


def test_runs_list_at_80_columns_keeps_ids_and_start_times_whole(jobs: Cli) -> None:
    jobs.columns = 80
    for ref in (
        "jobs.py:fails",
        "flows.py:demo",
        "jobs.py:a_pipeline_whose_name_is_much_longer_than_most",
    ):
        assert jobs("run", ref, "--json", "-e", "inline").code in (0, 1)
    listed = jobs("runs", "list", "--json").json()
    result = jobs("runs", "list")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[1].split()[:3] == ["run", "pipeline", "state"]
    assert "started" in lines[1].split()
    for run in listed:
        [row] = [line for line in lines if line.startswith(run["run_id"] + " ")]
        assert run["started_at"][:16].replace("T", " ") in row  # TZ=UTC
        assert f" {run['state']} " in row
    # a long pipeline name folds onto the next lines instead of pushing columns out
    left, right = lines[1].index("pipeline"), lines[1].index("state")
    at = next(i for i, line in enumerate(lines) if "a_pipeline" in line)
    folded = [lines[at]] + [line for line in lines[at + 1 :] if line.startswith(" ")]
    assert "".join(line[left:right].strip() for line in folded) == (
        "a_pipeline_whose_name_is_much_longer_than_most"
    )


def test_runs_show_at_80_columns_keeps_the_error_readable(jobs: Cli) -> None:
    jobs.columns = 80
    run_id = jobs("run", "jobs.py:fails", "--json", "-e", "inline").json()["run_id"]
    result = jobs("runs", "show", run_id)
    lines = result.stdout.splitlines()
    table = lines[: lines.index("task `broken` failed: ValueError: broken for good: 1")]
    assert max(len(line) for line in table) <= 80
    broken = next(i for i, line in enumerate(table) if line.startswith("broken "))
    assert table[broken].split() == [
        "broken", "failed", "1", table[broken].split()[3], "ValueError:", "broken", "for",
        "good:", "1",
    ]  # fmt: skip
    assert table[broken + 1].split()[:2] == ["after", "upstream_failed"]


# -- reading creates nothing -------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["runs", "show", "feedbeef"],
        ["lineage", "feedbeef", "load"],
        ["logs", "feedbeef", "load"],
        ["retry", "feedbeef"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_reading_a_run_creates_no_database(cli: Cli, tmp_path: Path, command: list[str]) -> None:
    typo = tmp_path / "typo" / "db.sqlite"
    result = cli(*command, env={"GLASSPANE_DATABASE_URL": f"sqlite:///{typo}"})
    assert_usage_error(result, "no run `feedbeef`; list runs with `glasspane runs list`")
    assert not typo.parent.exists()


def test_runs_list_says_where_no_database_is_and_which_setting_points_there(
    cli: Cli, tmp_path: Path
) -> None:
    # no runs, and nothing is created; a warning says where glasspane looked
    typo = tmp_path / "typo" / "db.sqlite"
    result = cli("runs", "list", env={"GLASSPANE_DATABASE_URL": f"sqlite:///{typo}"})
    assert (result.code, result.stdout) == (0, "")
    assert result.stderr == (
        f"glasspane: warning: no glasspane database exists at {typo} (GLASSPANE_DATABASE_URL "
        "points there): nothing has run with this setting yet, or fix GLASSPANE_DATABASE_URL\n"
    )
    home = tmp_path / "no-such-home"
    result = cli("runs", "list", "--json", env={"GLASSPANE_HOME": str(home)})
    assert (result.code, result.json()) == (0, [])
    assert result.stderr == (
        f"glasspane: warning: no glasspane database exists at {home / 'glasspane.db'} "
        "(GLASSPANE_HOME points there): nothing has run with this setting yet, or fix "
        "GLASSPANE_HOME\n"
    )
    assert not typo.parent.exists() and not home.exists()
    # a run creates the database; then the same listing finds it
    assert cli("run", "flows.py:demo", "-e", "inline", env={"GLASSPANE_HOME": str(home)}).code == 0
    listed = cli("runs", "list", "--json", env={"GLASSPANE_HOME": str(home)})
    assert ([r["pipeline"] for r in listed.json()], listed.stderr) == (["demo"], "")
