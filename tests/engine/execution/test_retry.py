"""Retry reuses a stored output only where it is what the task would compute now.

The code changes between the failed run and the retry, so every run here is a real
``glasspane`` process on a pipeline file the test rewrites.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

import glasspane
from glasspane import ParameterError, pipeline, task

FLOW = """
from pathlib import Path

from glasspane import pipeline, task
from helpers import adjust

HERE = Path(__file__).parent
OFFSET = {offset}


@task(cache=False)
def load(n: int) -> list:
    return list(range(n))


@task
def transform(rows: list) -> list:
    return [{transform} for r in rows]


@task
def shift(rows: list) -> list:
    return [adjust(r) + OFFSET for r in rows]


@task
def parity(rows: list) -> int:
    return len(rows) % 2


@task
def report(values: list, shifted: list, bit: int, seed: int) -> dict:
    if (HERE / "fail.flag").exists():
        raise RuntimeError("fail.flag is present")
    return {{"sum": sum(values), "shifted": sum(shifted), "bit": bit, "seed": seed}}


@pipeline
def flow(n: int = 4, seed: int = 0):
    rows = load(n)
    return report(transform(rows), shift(rows), parity(rows), seed)
"""

HELPERS = """
def adjust(r):
    return {adjust}
"""


class Project:
    """A pipeline file and a helper module beside it, run with the real console script."""

    def __init__(self, root: Path, command: list[str], env: dict[str, str]) -> None:
        self.root = root
        self.command = command
        self.env = env
        self.write()

    def write(self, transform: str = "r * 2", offset: int = 0, adjust: str = "r") -> None:
        (self.root / "flow.py").write_text(FLOW.format(transform=transform, offset=offset))
        (self.root / "helpers.py").write_text(HELPERS.format(adjust=adjust))

    def __call__(self, *args: str) -> tuple[int, Any, str]:
        proc = subprocess.run(
            [*self.command, *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        data = json.loads(proc.stdout) if proc.stdout.strip().startswith(("{", "[")) else None
        return proc.returncode, data, proc.stderr

    def failed_run(self, seed: int = 3) -> str:
        (self.root / "fail.flag").touch()
        code, data, _ = self("run", "flow.py:flow", "--json", "-p", f"seed={seed}")
        assert code == 1 and data["state"] == "failed"
        (self.root / "fail.flag").unlink()
        return str(data["run_id"])


@pytest.fixture
def project(tmp_path: Path, glasspane_cmd: list[str], cli_env: dict[str, str]) -> Project:
    return Project(tmp_path, glasspane_cmd, cli_env)


def tasks(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["node"]: t for t in data["tasks"]}


def test_retry_reuses_what_did_not_change(project: Project) -> None:
    run_id = project.failed_run()
    code, data, stderr = project("retry", run_id, "--json")
    assert code == 0, stderr
    assert data["output"] == {"sum": 12, "shifted": 6, "bit": 0, "seed": 3}
    notes = {node: (t["cached"], t["note"]) for node, t in tasks(data).items()}
    assert notes == {
        "load": (True, f"reused from run {run_id}"),  # cache=False, reused all the same
        "transform": (True, f"reused from run {run_id}"),
        "shift": (True, f"reused from run {run_id}"),
        "parity": (True, f"reused from run {run_id}"),
        "report": (False, f"ran again: it failed in run {run_id}"),
    }


def test_retry_reruns_a_task_whose_code_changed_and_what_its_output_feeds(
    project: Project,
) -> None:
    run_id = project.failed_run()
    project.write(transform="r * 10")  # the user fixes a bug upstream, then retries
    code, data, stderr = project("retry", run_id, "--json")
    assert code == 0, stderr
    by_node = tasks(data)
    assert by_node["transform"]["note"] == f"ran again: its code changed since run {run_id}"
    assert not by_node["transform"]["cached"]
    assert by_node["report"]["note"] == f"ran again: it failed in run {run_id}"
    assert by_node["load"]["note"] == f"reused from run {run_id}"
    # the result is what a fresh run of the fixed code gives
    fresh_code, fresh, _ = project("run", "flow.py:flow", "--json", "-p", "seed=3")
    assert fresh_code == 0
    assert data["output"] == fresh["output"] == {"sum": 60, "shifted": 6, "bit": 0, "seed": 3}


def test_retry_reruns_a_task_whose_helper_or_constant_changed(project: Project) -> None:
    run_id = project.failed_run()
    project.write(adjust="r + 1")  # a helper in another module
    code, data, stderr = project("retry", run_id, "--json")
    assert code == 0, stderr
    assert tasks(data)["shift"]["note"] == f"ran again: its code changed since run {run_id}"
    assert data["output"]["shifted"] == 10
    run_id = project.failed_run(seed=4)
    project.write(adjust="r + 1", offset=100)  # a module-level constant
    code, data, stderr = project("retry", run_id, "--json")
    assert tasks(data)["shift"]["note"] == f"ran again: its code changed since run {run_id}"
    assert data["output"]["shifted"] == 410
    assert tasks(data)["transform"]["note"] == f"reused from run {run_id}"


def test_an_upstream_that_reruns_to_an_equal_value_keeps_its_downstream_reused(
    project: Project,
) -> None:
    run_id = project.failed_run()
    project.write(transform="r + r")  # new code, same values
    code, data, stderr = project("retry", run_id, "--json")
    assert code == 0, stderr
    by_node = tasks(data)
    assert by_node["transform"]["note"] == f"ran again: its code changed since run {run_id}"
    assert data["output"]["sum"] == 12


def test_retry_refuses_an_ordinary_parameter(project: Project) -> None:
    run_id = project.failed_run()
    code, data, stderr = project("retry", run_id, "-p", "seed=7")
    assert code == 2 and data is None
    assert stderr.strip().splitlines()[-1] == (
        "glasspane: error: retry takes only secret parameters, and `seed` of pipeline `flow` "
        f"is not one: run {run_id} computed its outputs with `seed=3`, which a retry reuses; "
        "to run with a new value, start a new run: "
        f"`glasspane run {project.root / 'flow.py'}:flow -p seed=...` (or `flow.run(seed=...)`)"
    )
    code, listing, _ = project("runs", "list", "--json")
    assert code == 0 and len(listing) == 1  # nothing was started


@task
def failing(seed: int) -> int:
    raise ValueError(f"no luck with {seed}")


@pipeline
def seeded(seed: int = 0):
    return failing(seed)


def test_python_retry_refuses_an_ordinary_parameter() -> None:
    failed = seeded.run(seed=3, executor="inline", raise_on_failure=False)
    with pytest.raises(ParameterError, match=r"^retry takes only secret parameters, and `seed`"):
        glasspane.retry(failed.run_id, pipeline=seeded, secrets={"seed": 7})
    assert len(glasspane.runs()) == 1


def test_failed_run_chains_the_task_exception() -> None:
    with pytest.raises(glasspane.RunFailed) as info:
        seeded.run(seed=3, executor="inline")
    cause = info.value.__cause__
    assert isinstance(cause, ValueError) and str(cause) == "no luck with 3"
    # a plain traceback: from the task's own frame on, without glasspane's wrapper
    frames = [tb.tb_frame.f_code.co_name for tb in _walk(cause.__traceback__)]
    assert frames == ["failing"]


def _walk(tb: Any) -> list[Any]:
    found = []
    while tb is not None:
        found.append(tb)
        tb = tb.tb_next
    return found


def test_python_retry_with_the_old_parameters_is_allowed() -> None:
    failed = seeded.run(seed=3, executor="inline", raise_on_failure=False)
    again = glasspane.retry(failed.run_id, pipeline=seeded, raise_on_failure=False)
    assert again.params == {"seed": 3} and again.resumed_from == failed.run_id
    assert again.tasks[0].note == f"ran again: it failed in run {failed.run_id}"
