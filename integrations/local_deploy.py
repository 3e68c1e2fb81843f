"""The ``local`` deploy target: glasspane's own model server
(:mod:`glasspane.integrations.model_server`), one process per version on this machine,
127.0.0.1 by default.

Blue/green on one port: a new version starts ``--standby`` on a free port of its own (its
``check_url``), where glasspane checks its health and a sample prediction; on
:meth:`LocalDeployer.take_over` it is told (SIGUSR1) to listen on the deployment's port too
(``SO_REUSEPORT``, beside the old one), and once it answers there the old one gets SIGTERM and
finishes the requests it has. A new version that fails never touched the port.

Processes are started in their own session, so they outlive the command (or task) that
deployed them; each one's output goes to ``server.log`` in its folder. A process is only ever
signalled while its command line is still glasspane's model server (pids are reused).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from glasspane.deploying import DeployerContext, DeployError, DeployRequest, Health, Served, http

from .ports import free_port

MODULE = "glasspane.integrations.model_server"
#: seconds a new version may take to load its model and answer /health
START_TIMEOUT = 60.0
#: the servers this process started, kept so they are reaped (not left as zombies) once stopped
_started: dict[int, subprocess.Popen[bytes]] = {}
#: seconds an old version may take to finish its requests after SIGTERM
STOP_TIMEOUT = 10.0


class LocalDeployer:
    """Serves models with glasspane's model server, in processes on this machine.

    Options (``[tool.glasspane.deploy.local]``): ``max_batch`` (rows per predict call, 256),
    ``max_wait_ms`` (2.0), ``start_timeout`` (seconds, 60).
    """

    target = "local"

    def __init__(self, context: DeployerContext | None = None) -> None:
        options = dict(context.options) if context is not None else {}
        self.max_batch = int(options.get("max_batch", 256))
        self.max_wait_ms = float(options.get("max_wait_ms", 2.0))
        self.start_timeout = float(options.get("start_timeout", START_TIMEOUT))

    def start(self, request: DeployRequest) -> Served:
        port = request.port if request.port is not None else free_port(request.host)
        request.workdir.mkdir(parents=True, exist_ok=True)
        log = request.workdir / "server.log"
        command = [
            sys.executable, "-m", MODULE, "--model-file", str(request.model_file),
            "--name", request.model_name, "--version", str(request.model_version),
            "--host", request.host, "--port", str(port), "--standby",
            "--max-batch", str(self.max_batch), "--max-wait-ms", str(self.max_wait_ms),
        ]  # fmt: skip
        with log.open("ab") as out:
            process = subprocess.Popen(  # noqa: S603 - our own module, our own arguments
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, close_fds=True,
            )  # fmt: skip
        _started[process.pid] = process
        details = {"port": port, "host": request.host, "log": str(log)}
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise DeployError(
                    f"its model server exited with code {process.returncode} before it "
                    f"answered: {tail(log)}"
                )
            check_url = _line_url(log, "checking ")
            if check_url and http("GET", f"{check_url}/health", timeout=2)[0] == 200:
                shown = f"[{request.host}]" if ":" in request.host else request.host
                return Served(
                    url=f"http://{shown}:{port}", check_url=check_url, pid=process.pid,
                    details={**details, "check_url": check_url},
                )  # fmt: skip
            time.sleep(0.1)
        _kill(process.pid)
        raise DeployError(
            f"its model server did not answer /health within {self.start_timeout:.0f} s: "
            f"{tail(log)}"
        )

    def take_over(self, new: Served, old: Served | None) -> Served:
        if new.pid is None or not is_model_server(new.pid):
            raise DeployError(f"the new model server (pid {new.pid}) is not running")
        os.kill(new.pid, signal.SIGUSR1)
        log = Path(new.details["log"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _line_url(log, "serving on ") and _answers_from(new.url, new.pid):
                break
            if not is_model_server(new.pid):
                raise DeployError(f"the new model server stopped: {tail(log)}")
            time.sleep(0.05)
        else:
            raise DeployError(f"the new model server did not take port over: {tail(log)}")
        if old is not None and old.pid is not None and old.pid != new.pid:
            self.stop(old)
        return new

    def stop(self, served: Served) -> None:
        if served.pid is None or not is_model_server(served.pid):
            return
        try:
            os.kill(served.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and is_model_server(served.pid):
            time.sleep(0.05)
        if is_model_server(served.pid):
            _kill(served.pid)
        _reap(served.pid)

    def health(self, served: Served) -> Health:
        if served.pid is None or not is_model_server(served.pid):
            return Health(False, f"its model server (pid {served.pid}) is not running")
        status, body = http("GET", f"{served.url}/health", timeout=2)
        if status != 200:
            return Health(False, f"GET {served.url}/health answered {status or body}")
        return Health(True, "healthy")


def is_model_server(pid: int) -> bool:
    """Whether process ``pid`` runs glasspane's model server (and is no zombie)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return MODULE.encode() in cmdline and state not in ("Z", "X")


def tail(log: Path, lines: int = 8) -> str:
    """The last lines of ``log``, in one string."""
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no output)"
    return " | ".join(text[-lines:]) or "(no output)"


def _line_url(log: Path, prefix: str) -> str | None:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith(prefix) and " on http" in line:
            return line.rsplit(" on ", 1)[1].strip()
    return None


def _answers_from(url: str, pid: int) -> bool:
    """Whether the process ``pid`` answers on ``url`` (one of the processes listening)."""
    for _ in range(20):  # connections are spread over the listeners: try a few
        status, body = http("GET", f"{url}/version", timeout=2)
        if status == 200:
            try:
                if json.loads(body).get("pid") == pid:
                    return True
            except ValueError:
                return False
    return False


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    _reap(pid)


def _reap(pid: int) -> None:
    process = _started.pop(pid, None)
    if process is not None:
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _started[pid] = process
