"""``glasspane server``: the web UI and the scheduler in one real process. A schedule fires
every 2 s, its runs start in processes of their own and show on the schedule's page; SIGTERM
stops the server with exit code 0 within seconds while the run it launched goes on to
succeed."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from glasspane import Schedule, Workspace, queries
from glasspane.scheduling import register

TINY = '''
"""A pipeline whose one task takes a while: a run is in flight most of the time."""

import time

from glasspane import pipeline, task


@task(cache=False)
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@pipeline
def tiny(seconds: float = 0.1):
    return nap(seconds)
'''

URL = re.compile(r"^glasspane UI: http://127\.0\.0\.1:(\d+)/$")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    """``check()``'s first truthy value, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def server(
    tmp_path: Path, cli_env: dict[str, str], glasspane_home: Path, glasspane_cmd: list[str]
) -> Iterator[dict[str, Any]]:
    """`glasspane server --port 0` over a home where schedule ``often`` runs ``tiny`` (each run
    naps 1.5 s) every 2 s; its stdout goes to a file."""
    flows = tmp_path / "tiny.py"
    flows.write_text(TINY)
    with Workspace(home=glasspane_home) as ws:
        schedule = Schedule(name="often", every="2s", params={"seconds": 1.5}, catchup="none")
        register(ws.store, f"{flows}:tiny", schedule)
    env = {k: v for k, v in cli_env.items() if k != "GLASSPANE_UI_TOKEN"}
    out, err = tmp_path / "server.out", tmp_path / "server.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [*glasspane_cmd, "server", "--port", "0", "--poll", "0.2", "--executor", "inline"],
            env=env, stdout=stdout, stderr=stderr, text=True,
        )  # fmt: skip

    def lines() -> list[str]:
        return out.read_text().splitlines()

    try:
        first = wait_for("the URL line", lambda: lines() or process.poll() is not None, 30)
        assert process.poll() is None, (out.read_text(), err.read_text())
        match = URL.match(first[0])
        assert match, first
        yield {
            "base": f"http://127.0.0.1:{match.group(1)}",
            "process": process,
            "lines": lines,
            "stderr": err,
            "home": glasspane_home,
        }
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)


def test_server_fires_a_schedule_and_stops_on_sigterm_leaving_runs_going(
    server: dict[str, Any],
) -> None:
    process: subprocess.Popen[str] = server["process"]
    with httpx.Client(base_url=server["base"], timeout=30) as http:
        assert http.get("/").status_code == 200  # the UI answers

        def runs(state: str) -> list[dict[str, Any]]:
            page = http.get("/api/runs", params={"state": state}).json()
            return [run for run in page["runs"] if run["trigger"] == "schedule"]

        succeeded = wait_for("a scheduled run to succeed", lambda: runs("succeeded"))
        run_id = succeeded[0]["run_id"]
        page = http.get("/schedules/often")
        assert page.status_code == 200
        assert '<tr data-tick-state="launched"' in page.text
        assert f'href="/runs/{run_id}"' in page.text
        listed = http.get("/schedules").text
        assert 'data-schedule="often"' in listed and 'data-schedule-state="active"' in listed
        in_flight = wait_for("a scheduled run in flight", lambda: runs("running"))[0]["run_id"]

    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    stopped_in = time.monotonic() - began
    assert stopped_in < 10, stopped_in

    lines = server["lines"]()
    assert lines[1].startswith("glasspane scheduler: running in this process over 1 schedule(s)")
    assert any(re.search(rf"  often  launched  run {run_id}$", line) for line in lines), lines
    assert lines[-1] == "glasspane server: stopped; runs already launched go on"
    assert "Traceback" not in server["stderr"].read_text()

    # the run in flight was a process of its own: it goes on and succeeds
    with Workspace(home=server["home"]) as ws:

        def finished() -> queries.RunDetail | None:
            run = ws.query(queries.get_run, in_flight)
            return run if run.ended_at is not None else None

        run = wait_for("the run in flight to finish", finished, 30)
        assert run.state == "succeeded", run.error
        tick = [t for t in ws.query(queries.schedule, "often").ticks if t.run_id == in_flight]
        assert [t.state for t in tick] == ["launched"]


def test_server_refuses_another_address_without_a_token(
    cli_env: dict[str, str], glasspane_cmd: list[str]
) -> None:
    env = {k: v for k, v in cli_env.items() if k != "GLASSPANE_UI_TOKEN"}
    done = subprocess.run(
        [*glasspane_cmd, "server", "--host", "0.0.0.0", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(
        "glasspane: error: refusing to serve the UI on 0.0.0.0 without a token"
    )
