"""`glasspane cancel` from another shell stops a running run: state `cancelled`, the running
process exits 130, and no process it started is left."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psutil
import pytest

import glasspane
from glasspane import Workspace

SLOW = """
import time
from pathlib import Path

from glasspane import pipeline, task


@task
def wait(gate: str, i: int) -> int:
    Path(f"{gate}.started.{i}").touch()
    deadline = time.time() + 120
    while not Path(gate).exists() and time.time() < deadline:
        time.sleep(0.05)
    return i


@task
def after(values: list[int]) -> int:
    return sum(values)


@pipeline
def slow(gate: str):
    return after(wait.map(gate=gate, i=[0, 1]))
"""


@pytest.mark.parametrize("executor", ["threads", pytest.param("dask", marks=pytest.mark.dask)])
def test_cancel_from_another_shell_stops_a_running_run(
    executor: str, tmp_path: Path, cli_env: dict[str, str], glasspane_cmd: list[str]
) -> None:
    (tmp_path / "slow.py").write_text(SLOW)
    gate = tmp_path / "gate"
    env = {**cli_env, "GLASSPANE_HEARTBEAT_INTERVAL": "0.5"}
    child = subprocess.Popen(
        [*glasspane_cmd, "run", "slow.py:slow", "--executor", executor, "-p", f"gate={gate}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 120
        while not (tmp_path / "gate.started.0").exists() and time.time() < deadline:
            assert child.poll() is None, child.communicate()
            time.sleep(0.1)
        started = psutil.Process(child.pid).children(recursive=True)  # dask workers, if any
        [run] = glasspane.runs()
        assert run["state"] == "running"

        began = time.time()
        cancel = subprocess.run(
            [*glasspane_cmd, "cancel", run["run_id"][:8], "--wait"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        took = time.time() - began
        assert cancel.returncode == 0, cancel.stdout + cancel.stderr
        assert f"cancel requested for run {run['run_id']}" in cancel.stdout
        assert f"run {run['run_id']} cancelled" in cancel.stdout
        assert took < 30
        assert child.wait(60) == 130
        stored = glasspane.get_run(run["run_id"])
        assert stored["state"] == "cancelled"
        assert {t["state"] for t in stored["tasks"]} <= {"cancelled", "succeeded"}
        deadline = time.time() + 30
        while any(p.is_running() and p.status() != "zombie" for p in started):
            assert time.time() < deadline, [p.pid for p in started if p.is_running()]
            time.sleep(0.2)
        # the run can be resumed; a second cancel says it is over
        again = subprocess.run(
            [*glasspane_cmd, "cancel", run["run_id"]],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert again.returncode == 1
        assert "is already cancelled; nothing to cancel" in again.stdout
    finally:
        gate.touch()
        if child.poll() is None:
            child.kill()
        child.wait(30)


@glasspane.task
def one(x: int) -> int:
    return x


@glasspane.pipeline
def quick(x: int = 1):
    return one(x)


def test_workspace_cancel_of_a_finished_or_unknown_run(tmp_path: Path) -> None:
    with Workspace(home=tmp_path) as ws:
        result = ws.run(quick, {"x": 2})
        assert ws.cancel(result.run_id) is False
        assert ws.store.get_run(result.run_id)["state"] == "succeeded"
        with pytest.raises(glasspane.NotFound):
            ws.cancel("nosuchrun")
