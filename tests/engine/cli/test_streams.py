"""What goes where: --json keeps stdout to one JSON object on every executor, warnings are one
line on stderr, and a second Ctrl-C while a cancelled run shuts down exits quietly."""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import time

import pytest
from cli_harness import Cli, assert_usage_error

NOISY = textwrap.dedent(
    """
    import os
    import sys
    import warnings
    from pathlib import Path

    from glasspane import GlasspaneWarning, pipeline, task

    HERE = Path(__file__).parent


    @task
    def chatty(n: int) -> int:
        print("printed by the task")
        sys.stdout.flush()
        os.write(1, b"raw\\n")  # straight to file descriptor 1, as C code would
        return n


    @pipeline
    def noisy(n: int = 2):
        return chatty(n)


    @pipeline
    def warned():
        warnings.warn("task `chatty` asks for resources {'GPU': 1}, which the threads "
                      "executor ignores", GlasspaneWarning)
        warnings.warn("something else", UserWarning)
        return chatty(1)


    @task(resources={"GPU": 1})
    def on_gpu() -> int:
        return 1


    @pipeline
    def wants_gpu():
        return on_gpu()


    @task
    def sleepy() -> int:
        (HERE / "started.flag").write_text("started")
        import time

        time.sleep(120)
        return 1


    @pipeline
    def slow():
        return sleepy()
    """
)


@pytest.fixture
def noisy(cli: Cli) -> Cli:
    (cli.workdir / "noisy.py").write_text(NOISY)
    return cli


def only_json(text: str) -> dict:
    """The one JSON object ``text`` holds, failing if anything else is there."""
    data, end = json.JSONDecoder().raw_decode(text)
    assert text[end:].strip() == "", text
    return data


@pytest.mark.parametrize(
    "executor", ["inline", "threads", pytest.param("dask", marks=pytest.mark.dask)]
)
def test_json_stdout_holds_only_the_json_object(noisy: Cli, executor: str) -> None:
    result = noisy("run", "noisy.py:noisy", "--json", "-e", executor)
    assert result.code == 0, result.stderr
    assert only_json(result.stdout)["output"] == 2
    assert "raw\n" in result.stderr
    if executor == "inline":  # inline echoes what a task prints; it goes to stderr too
        assert "printed by the task" in result.stderr


def test_retry_json_stdout_holds_only_the_json_object(noisy: Cli) -> None:
    (noisy.workdir / "fail.flag").touch()
    failed = noisy("run", "flows.py:flaky", "--json", "-e", "inline")
    assert failed.code == 1
    (noisy.workdir / "fail.flag").unlink()
    (noisy.workdir / "flows.py").write_text(
        (noisy.workdir / "flows.py")
        .read_text()
        .replace(
            'mark("second")', 'mark("second"); print("chatter"); __import__("os").write(1, b"raw")'
        )
    )
    result = noisy("retry", failed.json()["run_id"], "--json", "-e", "inline")
    assert result.code == 0, result.stderr
    assert only_json(result.stdout)["state"] == "succeeded"


def test_glasspane_warnings_are_one_line_on_stderr(noisy: Cli) -> None:
    result = noisy("run", "noisy.py:warned", "--json", "-e", "inline")
    assert result.code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert (
        "glasspane: warning: task `chatty` asks for resources {'GPU': 1}, which the threads "
        "executor ignores"
    ) in lines
    # other warnings keep Python's own display
    assert any(line.endswith("UserWarning: something else") for line in lines), lines
    assert "GlasspaneWarning" not in result.stderr


@pytest.mark.parametrize("executor", ["inline", "threads"])
def test_ignored_resources_are_one_warning_line(noisy: Cli, executor: str) -> None:
    result = noisy("run", "noisy.py:wants_gpu", "--json", "-e", executor)
    assert result.code == 0, result.stderr
    assert result.stderr.splitlines() == [
        "glasspane: warning: task `on_gpu` asks for resources {'GPU': 1}, which the "
        f"{executor} executor ignores: it runs every task in this process; run on a Dask "
        "cluster whose workers offer them (--executor tcp://HOST:PORT) to honour them"
    ]


def test_retry_refuses_an_ordinary_parameter_in_one_line(cli: Cli) -> None:
    (cli.workdir / "fail.flag").touch()
    run_id = cli("run", "flows.py:flaky", "--json", "-e", "inline").json()["run_id"]
    assert_usage_error(
        cli("retry", run_id, "-p", "n=7", "-e", "inline"),
        "retry takes only secret parameters, and `n` of pipeline `flaky` is not one: run "
        f"{run_id} computed its outputs with `n=5`",
    )


@pytest.mark.dask
def test_a_second_ctrl_c_while_a_cancelled_run_shuts_down_exits_quietly(noisy: Cli) -> None:
    proc = subprocess.Popen(
        [*noisy.command, "run", "noisy.py:slow", "--executor", "dask"],
        cwd=noisy.workdir,
        env=noisy.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as in a terminal: a suite started in the background inherits an ignored SIGINT,
        # and so would the command, which would then never hear Ctrl-C
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        flag = noisy.workdir / "started.flag"
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)  # the run is cancelled; the embedded cluster is shutting down
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr, stderr
    assert "cancelled" in stdout + stderr
