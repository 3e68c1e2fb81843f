"""``glasspane ui``: refuses to serve another address without a token, says so when the port
is taken, and serves the configured runs over real HTTP until SIGTERM.

(Named ``test_ui_cli.py``: ``tests/engine/cli/test_cli.py`` holds the basename ``test_cli``.)
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from glasspane import Workspace
from glasspane.ui.cli import allowed_hosts, is_loopback, main

LINE = re.compile(r"^glasspane UI: http://127\.0\.0\.1:(\d+)/\n$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_another_address_without_a_token_exits_2_saying_why_and_how(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GLASSPANE_UI_TOKEN", raising=False)
    assert main(argparse.Namespace(host="0.0.0.0", port=free_port())) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "glasspane: error: refusing to serve the UI on 0.0.0.0 without a token: anyone who can "
        "reach it could read every run and launch pipelines; set GLASSPANE_UI_TOKEN to a long "
        "random secret (python -c 'import secrets; print(secrets.token_urlsafe(32))'), or serve "
        "on 127.0.0.1 (the default)\n"
    )


def test_a_taken_port_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(argparse.Namespace(host="127.0.0.1", port=port)) == 2
    assert capsys.readouterr().err == (
        f"glasspane: error: port {port} on 127.0.0.1 is already in use (another `glasspane "
        "ui`?); stop what uses it, or choose another port with --port\n"
    )


def test_an_address_not_of_this_machine_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLASSPANE_UI_TOKEN", "a-token-for-the-test")
    assert main(argparse.Namespace(host="192.0.2.1", port=0)) == 2  # TEST-NET-1
    err = capsys.readouterr().err
    assert err.startswith("glasspane: error: cannot serve on 192.0.2.1:0: ")
    assert err.endswith("check --host (an address of this machine, e.g. 127.0.0.1) and --port\n")


def test_a_port_out_of_range_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argparse.Namespace(host="127.0.0.1", port=70000)) == 2
    assert capsys.readouterr().err == (
        "glasspane: error: --port must be a port number, 1 to 65535 (or 0 for any free one), "
        "not 70000\n"
    )


def test_loopback_and_the_names_served() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "LocalHost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "example.com"))
    assert allowed_hosts("0.0.0.0", ["ML.example.com"]) == [
        "127.0.0.1",
        "localhost",
        "::1",
        "ml.example.com",
    ]
    assert allowed_hosts("10.0.0.7", []) == ["127.0.0.1", "localhost", "::1", "10.0.0.7"]


@contextmanager
def serving(command: list[str], env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run a UI server command; yield its base URL (from the line it prints) and process."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = LINE.match(line)
        assert match, (line, process.stderr.read() if process.poll() is not None else "")
        yield f"http://127.0.0.1:{match.group(1)}", process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def check_serves_and_stops(base: str, process: subprocess.Popen, run_id: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        runs = http.get("/api/runs")
        assert runs.status_code == 200
        assert [r["run_id"] for r in runs.json()["runs"]] == [run_id]
        page = http.get("/")
        assert page.status_code == 200 and run_id in page.text
        assert "content-security-policy" in page.headers
        assert "server" not in page.headers  # uvicorn does not announce itself
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert process.stdout is not None and process.stdout.read() == ""  # one line, nothing more


@pytest.fixture
def ui_env(
    cli_env: dict[str, str], flow: Callable[[str], Any], glasspane_home: Path
) -> tuple[dict[str, str], str]:
    """The environment of a UI server whose home holds one succeeded run (its id)."""
    with Workspace(home=glasspane_home) as ws:
        run_id = ws.run(flow("mapped"), {"n": 2}).run_id
    return {k: v for k, v in cli_env.items() if k != "GLASSPANE_UI_TOKEN"}, run_id


def test_main_serves_the_configured_runs_until_sigterm(ui_env: tuple[dict[str, str], str]) -> None:
    env, run_id = ui_env
    code = (
        "import argparse, sys; from glasspane.ui.cli import main; "
        "sys.exit(main(argparse.Namespace(host='127.0.0.1', port=0)))"
    )
    with serving([sys.executable, "-c", code], env) as (base, process):
        check_serves_and_stops(base, process, run_id)


def test_glasspane_ui_serves_on_a_free_port_until_sigterm(
    ui_env: tuple[dict[str, str], str], glasspane_cmd: list[str]
) -> None:
    env, run_id = ui_env
    port = free_port()
    with serving([*glasspane_cmd, "ui", "--port", str(port)], env) as (base, process):
        assert base == f"http://127.0.0.1:{port}"
        check_serves_and_stops(base, process, run_id)


def test_glasspane_ui_on_every_address_without_a_token_exits_2(
    cli_env: dict[str, str], glasspane_cmd: list[str]
) -> None:
    env = {k: v for k, v in cli_env.items() if k != "GLASSPANE_UI_TOKEN"}
    done = subprocess.run(
        [*glasspane_cmd, "ui", "--host", "0.0.0.0", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("glasspane: error: refusing to serve the UI on 0.0.0.0 ")
    assert "set GLASSPANE_UI_TOKEN" in done.stderr


def test_with_a_token_the_server_wants_it(
    ui_env: tuple[dict[str, str], str], glasspane_cmd: list[str]
) -> None:
    env, run_id = ui_env
    env = {**env, "GLASSPANE_UI_TOKEN": "tok-" + os.urandom(8).hex()}
    with serving([*glasspane_cmd, "ui", "--port", str(free_port())], env) as (base, process):
        with httpx.Client(base_url=base, timeout=30) as http:
            assert http.get("/api/runs").status_code == 401
            token = {"Authorization": f"Bearer {env['GLASSPANE_UI_TOKEN']}"}
            authed = http.get("/api/runs", headers=token)
            assert [r["run_id"] for r in authed.json()["runs"]] == [run_id]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
