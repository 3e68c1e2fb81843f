"""A pytest plugin giving tests a real ``mlflow server`` on 127.0.0.1.

``mlflow_server`` (session scope) starts ``mlflow server`` from this venv with a SQLite
backend store and ``--artifacts-destination`` in a temporary directory, in its own process
group, waits until ``/health`` answers and yields a :class:`MlflowServer` (its tracking URI;
``stop()`` / ``start()`` to take it down and bring it back on the same port and store, for the
outbox tests). At session end the process group is stopped (SIGTERM, then SIGKILL).

``mlflow_uri`` (function scope) is the tracking URI with the server up (started again if a
test left it stopped). Tests skip, saying why, when the mlflow package is not installed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    """One ``mlflow server`` process group on 127.0.0.1 (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def up(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.up:
            return
        env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        env.pop("MLFLOW_TRACKING_URI", None)
        command = [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
            "--port", str(self.port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination", str(self.root / "artifacts"),
        ]  # fmt: skip
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - the server writes to it
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.root,
            start_new_session=True,  # its own process group: stopped as one
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer,
            ):
                if answer.status == 200:
                    return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"mlflow server did not answer in {START_TIMEOUT:.0f} s: {self.log_tail()}"
        )

    def stop(self) -> None:
        """Stop the server's process group (the port is free again when this returns)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(15)

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "server.log").read_text(errors="replace")[-3000:]
        return ""


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[MlflowServer]:
    pytest.importorskip("mlflow", reason='mlflow is not installed: pip install "glasspane[mlflow]"')
    root = Path(tempfile.mkdtemp(prefix="glasspane-mlflow-"))
    server = MlflowServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mlflow_uri(mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The live server's tracking URI, also set as ``MLFLOW_TRACKING_URI``."""
    mlflow_server.start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    return mlflow_server.uri


@pytest.fixture
def mlflow_http_env() -> Iterator[None]:
    """The MLflow variables an MLflow tracker sets for its process (HTTP time limits, quiet
    run links), as they were before the test."""
    from glasspane.integrations.mlflow_read import HTTP_BOUNDS, QUIET

    saved = {name: os.environ.get(name) for name in [*HTTP_BOUNDS, QUIET]}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
