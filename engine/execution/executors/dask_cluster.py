"""The Dask cluster a run uses: the embedded one's life, and whether a cluster can run a run.

Without an address an embedded ``LocalCluster`` bound to 127.0.0.1 is started once per
process and reused across runs. Its workers are started with ``spawn`` and import the
user's script again: :func:`check_main_guard` refuses, before anything starts, a script
that would start another run in every worker.

A run waits on its cluster, so every way the cluster can become unable to finish it is
watched (:class:`ClusterWatch`): the scheduler lost, no worker left, no worker offering a
task's resources. Each ends the run with an error saying which, after ``lost_after``
seconds of grace (a scheduler reconnects, workers restart), instead of leaving it running.
"""

from __future__ import annotations

import ast
import atexit
import os
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import ConfigError, DefinitionError, ExecutorError
from ..job import Job

_ADDRESS = re.compile(r"^tcp://(?P<host>[A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})$")

# Run in each embedded worker process. Ctrl-C reaches the whole process group: the driver
# cancels the run and closes the cluster, so a worker must not die of it (nor print a
# KeyboardInterrupt traceback). A worker whose driver was killed exits by death_timeout.
_IGNORE_SIGINT = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"

lock = threading.Lock()
_embedded: dict[int, Any] = {}

#: length of Dask's in-memory debugging logs in the driver (message logs of its comms, the
#: scheduler's transition log and event topics): the default 1000 keeps the last thousand
#: batches of messages, pickled task graphs included, in a driver that may run all day
_LOW_LEVEL_LOG_LENGTH = 100


def check_address(address: str) -> str:
    """Validate a ``tcp://host:port`` scheduler address (no I/O)."""
    match = _ADDRESS.match(address.strip())
    if not match or not 0 < int(match["port"]) < 65536:
        raise ConfigError(
            f"malformed Dask scheduler address `{address}`; expected tcp://HOST:PORT, "
            "for example tcp://127.0.0.1:8786"
        )
    return address.strip()


def embedded_cluster(n_workers: int) -> Any:
    """A new embedded LocalCluster of ``n_workers`` worker processes, on loopback.

    Its owner (a :class:`~glasspane.execution.executors.dask.DaskExecutor`) closes it; any
    still open when the interpreter exits are closed then.
    """
    check_main_guard()
    from distributed import LocalCluster

    with lock, short_logs():
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # loopback, a free port: never 0.0.0.0
            silence_logs=50,
            death_timeout=10,
            preload=[_IGNORE_SIGINT],
        )
        if not _embedded:
            atexit.register(_close_embedded)
        _embedded[id(cluster)] = cluster
    return cluster


def close_embedded(cluster: Any) -> None:
    """Close an embedded cluster (best effort) and forget it."""
    with lock:
        _embedded.pop(id(cluster), None)
    try:
        cluster.close(timeout=10)
    except Exception:  # noqa: BLE001 - closing: nothing the caller can do
        pass


def short_logs() -> Any:
    import dask

    return dask.config.set({"distributed.admin.low-level-log-length": _LOW_LEVEL_LOG_LENGTH})


def _close_embedded() -> None:
    try:
        with lock:
            for cluster in list(_embedded.values()):
                try:
                    cluster.close(timeout=10)
                except Exception:  # noqa: BLE001 - best effort at interpreter exit
                    pass
            _embedded.clear()
    except KeyboardInterrupt:  # Ctrl-C again while the cluster closes: leave, quietly
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(130)


def check_main_guard() -> None:
    """Refuse to start worker processes from a script that runs pipelines on import.

    Dask starts the embedded cluster's workers with ``spawn``: each imports the main
    script again as ``__mp_main__``, and a script whose pipeline call is not under
    ``if __name__ == "__main__":`` would start a cluster again in each of them (hundreds of
    lines of multiprocessing tracebacks).
    """
    import dask

    method = dask.config.get("distributed.worker.multiprocessing-method", "spawn")
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if method == "fork" or main is None or not path:
        return
    frame: Any = sys._getframe()
    while frame is not None and not (
        frame.f_code.co_name == "<module>" and frame.f_globals is vars(main)
    ):
        frame = frame.f_back
    if frame is None:  # not called while the script's top level runs
        return
    line = frame.f_lineno
    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return
    guards = [node for node in ast.walk(tree) if isinstance(node, ast.If) and _is_main_guard(node)]
    if any(_inside(node, line) for node in guards):
        return
    raise DefinitionError(
        f"{path}, line {line}, runs a pipeline with executor `dask` when the script is "
        "imported: the embedded Dask cluster starts its workers with `spawn`, and each "
        "imports the script again, which would start another cluster in every worker; put "
        'the code that runs pipelines under `if __name__ == "__main__":`'
    )


def _is_main_guard(node: ast.If) -> bool:
    if not isinstance(node.test, ast.Compare):
        return False
    parts = [node.test.left, *node.test.comparators]
    names = [p for p in parts if isinstance(p, ast.Name) and p.id == "__name__"]
    mains = [p for p in parts if isinstance(p, ast.Constant) and p.value == "__main__"]
    return bool(names and mains and isinstance(node.test.ops[0], ast.Eq))


def _inside(node: ast.If, line: int) -> bool:
    first, last = node.body[0].lineno, node.body[-1].end_lineno or node.body[-1].lineno
    return first <= line <= last


def show_resources(resources: Mapping[str, float]) -> str:
    """``{'GPU': 1}`` as the user wrote it: whole amounts without the ``.0`` the options'
    validation gives them."""
    shown = ", ".join(f"{name!r}: {amount:g}" for name, amount in resources.items())
    return "{" + shown + "}"


def resources_needed(jobs: Sequence[Job]) -> dict[str, dict[str, float]]:
    """Task name -> the resources it asks for, for the tasks of ``jobs`` that ask."""
    needed: dict[str, dict[str, float]] = {}
    for job in jobs:
        resources = job.task.options.resources
        if resources:
            needed.setdefault(job.task.name, dict(resources))
    return needed


def unmet_resources(
    workers: Mapping[str, Mapping[str, Any]], needed: Mapping[str, Mapping[str, float]]
) -> str | None:
    """Why no worker can run some task of ``needed``, or ``None`` when each one can.

    ``workers`` is ``Client.scheduler_info()["workers"]``: address -> info with
    ``resources``.
    """
    offers = {address: dict(info.get("resources") or {}) for address, info in workers.items()}
    for name, asked in needed.items():
        if any(all(have.get(r, 0) >= n for r, n in asked.items()) for have in offers.values()):
            continue
        shown = "; ".join(
            f"{address} offers {show_resources(have) if have else 'none'}"
            for address, have in sorted(offers.items())
        )
        return (
            f"task `{name}` asks for resources {show_resources(asked)}, which no worker of the "
            "Dask cluster "
            f"offers ({shown or 'it has no workers'})"
        )
    return None


def resources_advice(address: str | None, asked: Mapping[str, float] | None = None) -> str:
    spec = ",".join(f"{r}={n:g}" for r, n in (asked or {"GPU": 1}).items())
    if address is None:
        return (
            "the embedded cluster's workers offer no resources: start a cluster whose "
            f'workers declare them (`dask worker SCHEDULER --resources "{spec}"`) and run '
            "with --executor tcp://SCHEDULER, or remove resources= from the task"
        )
    return (
        f'start workers that offer them (`dask worker {address} --resources "{spec}"`), '
        "or remove resources= from the task"
    )


class ClusterWatch:
    """Says when the cluster can no longer finish the run (see the module docstring)."""

    def __init__(
        self, client: Any, address: str | None, needed: Mapping[str, Mapping[str, float]],
        lost_after: float,
    ) -> None:  # fmt: skip
        self.client = client
        self.address = address or "the embedded cluster"
        self.needed = needed
        self.lost_after = lost_after
        self._since: dict[str, float] = {}
        self._next = 0.0

    def check(self) -> None:
        """Raise :class:`ExecutorError` once a problem has lasted ``lost_after`` seconds."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + 1.0
        problem = self._problem()
        if problem is None:
            self._since.clear()
            return
        kind, message = problem
        since = self._since.setdefault(kind, now)
        if now - since >= self.lost_after:
            raise ExecutorError(f"{message} for {self.lost_after:g}s; {_ADVICE[kind]}")

    def _problem(self) -> tuple[str, str] | None:
        status = getattr(self.client, "status", "running")
        if status != "running":
            return "scheduler", f"the connection to the Dask scheduler at {self.address} is lost"
        try:
            workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        except TypeError:  # an older distributed: no n_workers argument
            workers = self.client.scheduler_info().get("workers", {})
        except Exception:  # noqa: BLE001 - asked again at the next check
            return None
        if not workers:
            return "workers", f"the Dask cluster at {self.address} has had no worker"
        unmet = unmet_resources(workers, self.needed) if self.needed else None
        if unmet is not None:
            return "resources", unmet
        return None


_ADVICE = {
    "scheduler": "check that the scheduler runs, then resume the run with `glasspane retry`",
    "workers": "start workers (`dask worker SCHEDULER`), then resume the run with "
    "`glasspane retry`",
    "resources": "start workers that offer them, then resume the run with `glasspane retry`",
}
