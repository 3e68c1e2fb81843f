"""Workspace.launch: a pipeline run by reference in a child process, queued until the child
takes it over, crashed (never left queued) when the child dies first."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from glasspane import Workspace
from glasspane.errors import DefinitionError
from glasspane.events import RunFinished, RunStarted

PIPELINE = """
from glasspane import pipeline, task


@task
def scale(x: int, factor: float) -> float:
    print("scaling", x)
    return x * factor


@pipeline
def scaled(x: int = 2, factor: float = 1.5, label: str = "a"):
    return scale(x, factor)
"""


def wait_state(ws: Workspace, run_id: str, states: set[str], timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = ws.store.get_run(run_id)
        if run["state"] in states:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} still {run['state']}")


def test_launch_runs_a_pipeline_by_reference_in_a_child_process(tmp_path: Path) -> None:
    # a module name no other test uses: this process must never import it
    flows = tmp_path / "launched_only_flows.py"
    flows.write_text(PIPELINE)
    assert "launched_only_flows" not in sys.modules
    with Workspace(home=tmp_path / "home") as ws:
        run_id = ws.launch(f"{flows}:scaled", {"x": 4, "label": "nightly"}, trigger="schedule")
        # at once: the run is still queued, its child has not even taken it over yet
        assert ws.store.get_run(run_id)["state"] == "queued"
        events = list(ws.follow(run_id, timeout=120))
        assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
        assert events[0].trigger == "schedule" and events[0].params["label"] == "nightly"
        run = ws.store.get_run(run_id)
        assert run["state"] == "succeeded" and run["output"] == 6.0
        assert run["trigger"] == "schedule"
        assert run["pipeline_ref"] == f"{flows.resolve()}:scaled"
        assert "launched_only_flows" not in sys.modules  # never imported here


def test_a_child_that_dies_before_starting_is_recorded_crashed(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("raise ImportError('no such dependency: torchy')\n")
    with Workspace(home=tmp_path / "home") as ws:
        run_id = ws.launch(f"{tmp_path / 'broken.py'}:flow")
        run = wait_state(ws, run_id, {"crashed"})
        assert "exited with code 2 before starting the run" in run["error"]
        assert "torchy" in run["error"]
        with pytest.raises(DefinitionError, match="not of the form FILE.py:NAME"):
            ws.launch("no-colon-here")


SECRET_PIPELINE = """
from pydantic import SecretStr

from glasspane import pipeline, task


@task
def login(token: str) -> int:
    import os
    assert "GLASSPANE_LAUNCH_PARAMS" not in os.environ  # tasks never see launched params
    if token != "s3cret":
        raise ValueError("bad token")
    return len(token)


@pipeline
def guarded(api_key: SecretStr, n: int = 1):
    return login(api_key.get_secret_value())
"""


def test_launched_parameters_stay_off_the_command_line_and_secrets_out_of_the_store(
    tmp_path: Path,
) -> None:
    import psutil

    (tmp_path / "guarded.py").write_text(SECRET_PIPELINE)
    ref = f"{tmp_path / 'guarded.py'}:guarded"
    with Workspace(home=tmp_path / "home") as ws:
        run_id = ws.launch(ref, {"api_key": "s3cret", "n": 3})
        queued = ws.store.get_run(run_id)
        assert "s3cret" not in str(queued["params"])  # no schema yet: every value masked
        for child in psutil.Process().children(recursive=True):
            try:
                command = " ".join(child.cmdline())
            except psutil.Error:  # exited meanwhile
                continue
            assert "s3cret" not in command
        list(ws.follow(run_id, timeout=120))
        run = ws.store.get_run(run_id)
        assert run["state"] == "succeeded" and run["output"] == 6
        assert run["params"] == {"api_key": "**********", "n": 3}
        # the pipeline's schema is stored now: only the secret is masked in the queued row
        second = ws.launch(ref, {"api_key": "wrong", "n": 5})
        assert ws.store.get_run(second)["params"] == {"api_key": "**********", "n": 5}
        list(ws.follow(second, timeout=120))
        failed = ws.store.get_run(second)
        assert failed["state"] == "failed"
        # a retry launched in a child process, with the secret given again
        third = ws.launch_retry(second, {"api_key": "s3cret"})
        list(ws.follow(third, timeout=120))
        retried = ws.store.get_run(third)
        assert retried["state"] == "succeeded" and retried["resumed_from"] == second


def test_launching_a_retry_of_a_running_or_succeeded_run_is_refused(tmp_path: Path) -> None:
    from glasspane import GlasspaneError
    from glasspane.errors import RunStillActive

    (tmp_path / "flows.py").write_text(PIPELINE)
    with Workspace(home=tmp_path / "home") as ws:
        run_id = ws.launch(f"{tmp_path / 'flows.py'}:scaled")
        with pytest.raises(RunStillActive, match=f"run {run_id} is still (queued|pending|running)"):
            ws.launch_retry(run_id)
        list(ws.follow(run_id, timeout=120))
        with pytest.raises(GlasspaneError, match="succeeded; there is nothing to resume"):
            ws.launch_retry(run_id)


def test_a_launched_retry_checks_its_secrets_before_queueing(tmp_path: Path) -> None:
    from glasspane import ParameterError

    (tmp_path / "guarded.py").write_text(SECRET_PIPELINE)
    with Workspace(home=tmp_path / "home") as ws:
        run_id = ws.launch(f"{tmp_path / 'guarded.py'}:guarded", {"api_key": "wrong"})
        list(ws.follow(run_id, timeout=120))
        assert ws.store.get_run(run_id)["state"] == "failed"
        before = len(ws.store.list_runs())
        with pytest.raises(ParameterError, match="had secret parameter `api_key`, which"):
            ws.launch_retry(run_id)
        with pytest.raises(ParameterError, match="retry takes only secret parameters, and `n`"):
            ws.launch_retry(run_id, {"api_key": "s3cret", "n": 2})
        assert len(ws.store.list_runs()) == before  # nothing queued


def test_a_launched_run_stays_readable_while_its_process_takes_it_over(tmp_path: Path) -> None:
    with Workspace(home=tmp_path / "home") as ws:
        store = ws.store
        store.queue_run(
            run_id="l0000000001", pipeline_name="scaled", pipeline_ref="/x/flows.py:scaled",
            params={}, trigger="ui", executor=None,
        )  # fmt: skip
        launched_at = store.get_run("l0000000001")["created_at"]
        assert store.take_over("l0000000001")
        assert not store.take_over("l0000000001")  # claimed once
        claimed = store.get_run("l0000000001")  # no moment where the run does not exist
        assert claimed["state"] == "pending"
        version = store.ensure_pipeline_version("scaled", "ab" * 32, {"nodes": []})
        store.create_run(
            run_id="l0000000001", pipeline_name="scaled", version_id=version,
            pipeline_ref="/x/flows.py:scaled", params={"x": 2}, executor="threads",
            trigger="ui", resumed_from=None, nodes=[("scale", "scale")],
        )  # fmt: skip
        run = store.get_run("l0000000001")
        assert run["state"] == "pending" and run["params"] == {"x": 2}
        assert run["created_at"] == launched_at  # it keeps its place in the runs list
        # a process that dies after claiming its run leaves it crashed, never pending
        store.queue_run(
            run_id="l0000000002", pipeline_name="scaled", pipeline_ref="/x/flows.py:scaled",
            params={}, trigger="ui", executor=None,
        )  # fmt: skip
        assert store.take_over("l0000000002")
        assert store.launch_failed("l0000000002", "exited with code 2")
        assert store.get_run("l0000000002")["state"] == "crashed"
