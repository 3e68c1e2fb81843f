"""The ``mlflow`` deploy target: each model version served by ``mlflow models serve``.

:meth:`MlflowDeployer.start` saves the model in MLflow's model format
(:func:`~glasspane.integrations.mlflow_flavour.save_model`: ``mlflow.sklearn`` for a
scikit-learn estimator, else a ``pyfunc`` wrapper) into a fresh folder in the request's
``workdir``, then runs::

    python -m mlflow models serve -m DIR --env-manager local -h HOST -p PORT --workers 1

with this interpreter, in a process group of its own, its output in ``serve.log`` beside the
model, and returns once ``/ping`` answers. ``--env-manager local`` serves from this
environment, so the model's packages must be installed here.

When the version has an ``input_example`` (``register_model(..., input_example=...)``, or the
one glasspane makes from a scikit-learn model's columns), the model is saved with the
signature MLflow infers from it, so every input format takes named columns, in any order.
Without one, MLflow serves it as any model logged without a signature: ``dataframe_split``,
``dataframe_records`` and CSV are frames with named columns; ``instances`` and ``inputs`` are
tensors, rows of values in the model's column order.

Ports and URLs: two servers cannot listen on one port, and MLflow cannot hand a listening
socket to another process, so each version gets a port of its own: ``request.port`` when it is
free, else any free port. On a redeploy the new version therefore starts beside the old one on
a fresh port and, once it takes over, **the deployment's URL moves to the new port** (nothing
proxies the old address); clients must follow the deployment's URL.

Processes: :class:`~glasspane.deploying.Served` records the server's process group, and the
leader's start time (``details["started"]``, clock ticks since boot). :meth:`stop` and
:meth:`health` only ever signal that group, and only while it is still the one started here:
its leader is alive with the recorded start time and ``mlflow`` in its command line (or, once
the leader has died, members started after it with ``mlflow`` in theirs), since pids get
reused. This reads ``/proc``, so the target runs on Linux only.

Options (``[tool.glasspane.deploy-mlflow]``): ``start_timeout`` (seconds to wait for
``/ping``, default 120) and ``stop_timeout`` (seconds between SIGTERM and SIGKILL, default 10).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from glasspane.deploying import (
    DeployerContext,
    DeployError,
    DeployRequest,
    Health,
    Served,
    http,
)
from glasspane.errors import ConfigError

from .ports import free_port

OPTIONS = {"start_timeout": 120.0, "stop_timeout": 10.0}
LOG_LINES = 20
# an exception ("ModuleNotFoundError: ...") or uvicorn's "ERROR:    [Errno 98] ..."
_ERROR_LINE = re.compile(r"^(?:[\w.]*(?:Error|Exception)\b|ERROR:)")


class MlflowDeployer:
    """Serves model versions with ``mlflow models serve`` (see the module docstring).

    Args:
        context: The target's name and options (``start_timeout``, ``stop_timeout``).

    Raises:
        ConfigError: an unknown option, or a timeout that is not a positive number.
    """

    target = "mlflow"

    def __init__(self, context: DeployerContext | None = None) -> None:
        options = dict(context.options) if context else {}
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(
                f"deploy target `mlflow` has no option {', '.join(map(repr, unknown))}; "
                f"its options are {', '.join(OPTIONS)}"
            )
        timeouts = {**OPTIONS, **options}
        for name, value in timeouts.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(
                    f"deploy target `mlflow`: option {name} must be a positive number of "
                    f"seconds, not {value!r}"
                )
        self.start_timeout = float(timeouts["start_timeout"])
        self.stop_timeout = float(timeouts["stop_timeout"])
        # the servers this object started, so their exit statuses are collected (no zombies)
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, request: DeployRequest) -> Served:
        """Save ``request``'s model in MLflow's format and serve it on a port of its own;
        return once it answers ``/ping``.

        Raises:
            DeployError: the model could not be saved, or the server exited or did not answer
                within ``start_timeout`` (it is stopped; the error ends with its log).
        """
        label = f"{request.model_name}/{request.model_version}"
        request.workdir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="mlflow-", dir=request.workdir))
        model_dir, log = folder / "model", folder / "serve.log"
        flavour = _save(request, model_dir, label)
        port = free_port(request.host, request.port)
        command = [
            sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir),
            "--env-manager", "local", "-h", request.host, "-p", str(port), "--workers", "1",
        ]  # fmt: skip
        # mlflow runs `uvicorn` from PATH: make it this environment's
        bin_dir = str(Path(sys.executable).parent)
        env = dict(os.environ, PATH=os.pathsep.join([bin_dir, os.environ.get("PATH", "")]))
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=folder,
                start_new_session=True,
            )
        self._children[process.pid] = process
        host = f"[{request.host}]" if ":" in request.host else request.host
        url = f"http://{host}:{port}"
        served = Served(
            url=url,
            check_url=url,
            pid=process.pid,
            details={
                "pgid": process.pid,
                "started": _start_time(process.pid),
                "log": str(log),
                "model_dir": str(model_dir),
                "port": port,
                "flavour": flavour,
            },
        )
        deadline = time.monotonic() + self.start_timeout
        while True:
            if process.poll() is not None:
                why = f"exited with status {process.returncode}"
                break
            status, _ = http("GET", f"{url}/ping", timeout=2.0)
            if status == 200:
                return served
            if time.monotonic() > deadline:
                why = f"did not answer GET {url}/ping within {self.start_timeout:g} s"
                break
            time.sleep(0.2)
        self.stop(served)
        raise DeployError(
            f"`mlflow models serve` for {label} {why}; its log {log} says:\n" + _tail(log)
        )

    def take_over(self, new: Served, old: Served | None) -> Served:
        """Stop ``old`` (``new`` already serves at its own URL, which becomes the deployment's);
        ``new``.

        Raises:
            DeployError: ``new``'s server is not running (``old`` is left serving).
        """
        if not self._running(new):
            raise DeployError(
                f"the new mlflow server (process {new.pid}) is not running, so it cannot take "
                f"over; {_where(new)}"
            )
        if old is not None and old.pid != new.pid:
            self.stop(old)
        return new

    def stop(self, served: Served) -> None:
        """SIGTERM its process group, SIGKILL what is left after ``stop_timeout``; nothing
        happens when it is not running (or its pid now belongs to another process)."""
        pgid = served.details.get("pgid")
        if not isinstance(pgid, int) or not self._members(served):
            self._reap(served)
            return
        for sig, wait in ((signal.SIGTERM, self.stop_timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while self._members(served) and time.monotonic() < deadline:
                self._reap(served)
                time.sleep(0.05)
            if not self._members(served):
                break
        child = self._children.pop(served.pid or -1, None)
        if child is not None:  # dead by now: collect its exit status
            child.wait(timeout=5.0)

    def health(self, served: Served) -> Health:
        """Down when its process is gone, else what ``GET /health`` says (up on 200)."""
        if not self._running(served):
            return Health(False, f"process {served.pid} is not running")
        status, body = http("GET", f"{served.check_url}/health", timeout=5.0)
        if status == 200:
            return Health(True, f"GET {served.check_url}/health answered 200")
        return Health(False, f"GET {served.check_url}/health answered {status}: {body}")

    def _running(self, served: Served) -> bool:
        """Whether its leader (the ``mlflow models serve`` process) is still the one started."""
        self._reap(served)
        started = served.details.get("started")
        return served.pid is not None and _is_ours(served.pid, started, served.details.get("pgid"))

    def _members(self, served: Served) -> list[int]:
        """The live processes of its group, when the group is still the one started here."""
        self._reap(served)
        pgid, started = served.details.get("pgid"), served.details.get("started")
        if not isinstance(pgid, int) or not isinstance(started, int):
            return []
        members = _group(pgid)
        if pgid in members:  # the leader lives: it alone says whose group this is
            return members if _is_ours(pgid, started, pgid) else []
        return [pid for pid in members if _is_ours(pid, None, pgid, after=started)]

    def _reap(self, served: Served) -> None:
        child = self._children.get(served.pid or -1)
        if child is not None and child.poll() is not None:
            del self._children[child.pid]


def _save(request: DeployRequest, model_dir: Path, label: str) -> str:
    """Save the request's model in MLflow's format into ``model_dir``; its flavour."""
    from .mlflow_flavour import save_model

    model = request.model
    if model is None:
        import joblib

        try:
            model = joblib.load(request.model_file)
        except Exception as exc:
            raise DeployError(
                f"{label}'s model file {request.model_file} could not be loaded "
                f"({type(exc).__name__}: {exc}); serve it from an environment with the model's "
                "packages installed"
            ) from exc
    try:
        return save_model(model, model_dir, _signed(request.input_example))
    except Exception as exc:
        raise DeployError(
            f"{label} could not be saved as an MLflow model in {model_dir} "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def _stat(pid: int) -> tuple[str, int, int] | None:
    """``(state, process group, start time)`` of a process, from ``/proc``; None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may hold spaces and ")"
    return fields[0], int(fields[2]), int(fields[19])


def _start_time(pid: int) -> int | None:
    stat = _stat(pid)
    return stat[2] if stat else None


def _is_ours(pid: int, started: Any, pgid: Any, *, after: int | None = None) -> bool:
    """Whether ``pid`` is alive (not a zombie) in group ``pgid``, runs mlflow, and started
    at ``started`` (or, with ``after``, no earlier than it)."""
    stat = _stat(pid)
    if stat is None or stat[0] in "ZX" or stat[1] != pgid:
        return False
    if after is not None and stat[2] < after:
        return False
    if after is None and stat[2] != started:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"mlflow" in cmdline


def _group(pgid: int) -> list[int]:
    """The live (not zombie) processes in process group ``pgid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] == pgid and stat[0] not in "ZX":
                pids.append(int(entry))
    return pids


def _tail(log: Path) -> str:
    """What went wrong, from a server's log: its exceptions and errors (those lines), else its
    last lines."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(unreadable: {exc.strerror or exc})"
    errors = [line for line in lines if _ERROR_LINE.match(line)]
    return "\n".join(errors[-LOG_LINES:] or lines[-LOG_LINES:]) or "(empty)"


def _where(served: Served) -> str:
    log = served.details.get("log")
    return f"see its log {log}" if log else "it left no log"


def _signed(example: dict[str, Any] | None) -> Any:
    """An ``mlflow.models.Model`` carrying the signature MLflow infers from ``example`` (a
    ``dataframe_split`` dict), or None without one."""
    if not example or not example.get("columns"):
        return None
    import pandas as pd
    from mlflow.models import Model, infer_signature

    frame = pd.DataFrame(example["data"], columns=example["columns"])
    return Model(signature=infer_signature(frame))
