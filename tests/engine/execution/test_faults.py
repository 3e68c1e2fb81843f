"""Faults survived: a killed Dask worker, a killed or interrupted driver, damaged artifacts.

Every process a test starts is reaped by PID at the end (terminate, then kill).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import glasspane
from glasspane import pipeline, task
from glasspane.api import load_settings, metadata_store, sweep
from glasspane.types import CANCELLED, CRASHED, SUCCEEDED, TERMINAL_STATES

# ---- helpers -------------------------------------------------------------------------------


def wait_for(predicate: Any, timeout: float, what: str, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def reap(procs: list[psutil.Process], timeout: float = 10) -> None:
    """Terminate, then kill, each process still alive (only processes this test started)."""
    alive = [p for p in procs if p.is_running()]
    for proc in alive:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(alive, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; whatever is left of them (and their children) is reaped."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    tree: list[psutil.Process] = []
    for proc in procs:
        try:
            parent = psutil.Process(proc.pid)
            tree.extend([parent, *parent.children(recursive=True)])
        except psutil.NoSuchProcess:
            pass
    reap(tree)
    for proc in procs:
        if proc.poll() is None:  # pragma: no cover - reap() ended it
            proc.kill()
        proc.communicate(timeout=10)


def cli_json(cmd: list[str], *args: str, cwd: Path, env: dict[str, str]) -> Any:
    proc = subprocess.run(
        [*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# ---- a. a Dask worker is SIGKILLed while it runs a task -----------------------------------


def two_worker_cluster() -> Any:
    """A LocalCluster of two worker processes on loopback, for a test to kill one of."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=50,
    )


def kill_when_started(calls: Path, what: str) -> tuple[threading.Thread, list[int]]:
    """SIGKILL the worker whose pid a task writes to ``calls``; returns the thread and the
    killed pid (once known)."""
    killed: list[int] = []

    def killer() -> None:
        [pid] = wait_for(lambda: lines(calls), 60, f"{what} to start")
        killed.append(int(pid))
        time.sleep(0.3)  # let the worker's task_started event reach the driver
        os.kill(int(pid), signal.SIGKILL)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    return thread, killed


@task(cache=False)
def victim(calls: str) -> int:
    path = Path(calls)
    with path.open("a") as fh:
        fh.write(f"{os.getpid()}\n")
    if len(path.read_text().split()) == 1:
        time.sleep(60)  # the test kills this worker; Dask runs the task again elsewhere
    return 42


@task
def plus_one(x: int) -> int:
    return x + 1


@pipeline
def survives_a_worker(calls: str):
    return plus_one(victim(calls))


@pytest.mark.dask
def test_killed_worker_task_is_rescheduled_and_its_attempts_recorded(
    tmp_path: Path, glasspane_home: Path
) -> None:
    calls = tmp_path / "victim-calls"
    with two_worker_cluster() as cluster:
        thread, killed = kill_when_started(calls, "the task")
        result = survives_a_worker.run(calls=str(calls), executor=cluster.scheduler_address)
        thread.join(timeout=5)

    assert result.state == SUCCEEDED and result.output == 43
    pids = [int(p) for p in lines(calls)]
    assert len(pids) == 2 and pids[0] == killed[0] and pids[1] != pids[0]
    assert result.task("victim").attempts == 2
    with sqlite3.connect(glasspane_home / "glasspane.db") as db:
        attempts = db.execute(
            "SELECT a.attempt, a.state, a.error FROM attempts a "
            "JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = ? AND t.node_id = ? "
            "ORDER BY a.attempt",
            (result.run_id, "victim"),
        ).fetchall()
    assert [(a, s) for a, s, _ in attempts] == [(1, CRASHED), (2, SUCCEEDED)]
    assert "worker running this attempt died" in attempts[0][2]
    # the output was stored once: one artifact, one blob
    [stored] = next(t for t in glasspane.get_run(result.run_id)["tasks"] if t["node"] == "victim")[
        "outputs"
    ]
    blobs = [p for p in (glasspane_home / "artifacts").rglob("*") if stored["digest"] in p.name]
    assert len(blobs) <= 1
    assert Path(stored["uri"]).is_file()


@task
def element(i: int, calls: str, slow: int) -> int:
    from distributed import get_worker

    if i in (0, slow):  # which Dask task ran it
        Path(f"{calls}.key{i}").write_text(str(get_worker().get_current_task()))
    if i == slow:
        path = Path(calls)
        with path.open("a") as fh:
            fh.write(f"{os.getpid()}\n")
        if len(path.read_text().split()) == 1:
            time.sleep(60)  # the test kills this worker mid-batch
    return 2 * i


@task
def gather_all(values: list[int]) -> list[int]:
    return values


@pipeline
def batched_map(calls: str, slow: int = -1, n: int = 40):
    return gather_all(element.map(i=list(range(n)), calls=calls, slow=slow))


@pytest.mark.dask
def test_killed_worker_mid_batch_loses_no_element(tmp_path: Path, glasspane_home: Path) -> None:
    calls = tmp_path / "slow-calls"
    with two_worker_cluster() as cluster:
        address = cluster.scheduler_address
        batched_map.run(calls=str(calls), executor=address)  # learns: the elements are short
        thread, killed = kill_when_started(calls, "element 7")
        result = batched_map.run(calls=str(calls), slow=7, executor=address)
        thread.join(timeout=5)

    assert result.state == SUCCEEDED and result.output == [2 * i for i in range(40)]
    pids = [int(p) for p in lines(calls)]
    assert len(pids) == 2 and pids[0] == killed[0] and pids[1] != pids[0]
    run = glasspane.get_run(result.run_id)
    assert all(t["state"] == SUCCEEDED for t in run["tasks"]) and len(run["tasks"]) == 41
    with sqlite3.connect(glasspane_home / "glasspane.db") as db:
        attempts = db.execute(
            "SELECT a.attempt, a.state FROM attempts a JOIN task_runs t ON t.id = a.task_run_id "
            "WHERE t.run_id = ? AND t.node_id = ? ORDER BY a.attempt",
            (result.run_id, "element[7]"),
        ).fetchall()
    assert attempts == [(1, CRASHED), (2, SUCCEEDED)]
    # element 7 ran in a batch with element 0, which Dask ran again on the other worker
    assert Path(f"{calls}.key0").read_text() == Path(f"{calls}.key7").read_text()


# ---- b. the driver is SIGKILLed: crash sweep, retry, and a live run never swept ----------

DRIVER_FILE = textwrap.dedent(
    """
    import time
    from pathlib import Path

    from glasspane import pipeline, task


    def note(calls, name):
        with open(calls, "a") as fh:
            fh.write(name + "\\n")


    @task(cache=False)
    def first(calls: str) -> int:
        note(calls, "first")
        return 1


    @task
    def second(x: int, calls: str) -> int:
        note(calls, "second")
        return x + 1


    @task
    def gated(x: int, calls: str, gate: str) -> int:
        note(calls, "gated")
        while not Path(gate).exists():
            time.sleep(0.05)
        return x * 10


    @pipeline
    def flow(calls: str, gate: str):
        return gated(second(first(calls), calls), calls, gate)
    """
)

FAST_SWEEP = {"GLASSPANE_CRASH_AFTER": "2", "GLASSPANE_HEARTBEAT_INTERVAL": "0.5"}


def start_driver(
    cmd: list[str], tmp_path: Path, env: dict[str, str], started: list[Any], *extra: str
) -> tuple[subprocess.Popen[str], Path, Path]:
    (tmp_path / "driver_flow.py").write_text(DRIVER_FILE)
    calls, gate = tmp_path / "calls", tmp_path / "gate"
    proc = subprocess.Popen(
        [*cmd, "run", "driver_flow.py:flow", "-p", f"calls={calls}", "-p", f"gate={gate}"]
        + ["--json", *extra],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started.append(proc)
    return proc, calls, gate


def test_killed_driver_is_swept_as_crashed_and_retry_reuses_finished_tasks(
    tmp_path: Path, cli_env: dict[str, str], glasspane_cmd: list[str], started: list[Any]
) -> None:
    env = {**cli_env, **FAST_SWEEP}
    proc, calls, gate = start_driver(glasspane_cmd, tmp_path, env, started, "-e", "threads")
    wait_for(lambda: "gated" in lines(calls), 30, "the gated task to start")
    store = metadata_store(load_settings())

    def recorded() -> bool:  # the driver records events in batches: wait for the two
        [run] = store.list_runs()
        tasks = store.get_run(run["run_id"])["tasks"]
        return sum(t["state"] == SUCCEEDED for t in tasks) == 2

    wait_for(recorded, 10, "the finished tasks to be recorded")
    proc.kill()
    proc.wait(timeout=10)

    def crashed() -> list[dict[str, Any]]:
        cli_json(glasspane_cmd, "runs", "sweep", "--json", cwd=tmp_path, env=env)
        runs = cli_json(glasspane_cmd, "runs", "list", "--json", cwd=tmp_path, env=env)
        return [r for r in runs if r["state"] == CRASHED]

    [run] = wait_for(crashed, 20, "the sweep to mark the run crashed", step=0.5)
    shown = cli_json(glasspane_cmd, "runs", "show", run["run_id"], "--json", cwd=tmp_path, env=env)
    states = {t["node"]: t["state"] for t in shown["tasks"]}
    assert states == {"first": SUCCEEDED, "second": SUCCEEDED, "gated": CRASHED}

    gate.touch()
    retried = cli_json(
        glasspane_cmd, "retry", run["run_id"], "--json", "-e", "threads", cwd=tmp_path, env=env
    )
    assert retried["state"] == SUCCEEDED and retried["output"] == 20
    assert retried["resumed_from"] == run["run_id"]
    cached = {t["node"]: t["cached"] for t in retried["tasks"]}
    assert cached == {"first": True, "second": True, "gated": False}
    # finished tasks ran once (even the cache=False one); only the crashed one ran again
    assert lines(calls) == ["first", "second", "gated", "gated"]
    old = cli_json(glasspane_cmd, "runs", "show", run["run_id"], "--json", cwd=tmp_path, env=env)
    assert old["state"] == CRASHED


def test_run_that_never_heartbeat_is_swept(
    tmp_path: Path, cli_env: dict[str, str], glasspane_cmd: list[str], started: list[Any]
) -> None:
    # the driver's first heartbeat would come after 10 minutes: it never writes one
    driver_env = {**cli_env, "GLASSPANE_HEARTBEAT_INTERVAL": "600"}
    proc, calls, _gate = start_driver(glasspane_cmd, tmp_path, driver_env, started)
    wait_for(lambda: "gated" in lines(calls), 30, "the gated task to start")
    proc.kill()
    proc.wait(timeout=10)
    store = metadata_store(load_settings())
    [run] = store.list_runs()
    assert run["state"] == "running"
    sweeper_env = {**cli_env, **FAST_SWEEP}

    def state() -> str:
        cli_json(glasspane_cmd, "runs", "sweep", "--json", cwd=tmp_path, env=sweeper_env)
        shown = cli_json(
            glasspane_cmd, "runs", "show", run["run_id"], "--json", cwd=tmp_path, env=sweeper_env
        )
        return str(shown["state"]) if shown["state"] == CRASHED else ""

    assert wait_for(state, 20, "the sweep", step=0.5) == CRASHED


@task
def slow_but_alive(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task
def hold(gate: str) -> int:
    while not Path(gate).exists():
        time.sleep(0.05)
    return 1


@pipeline
def alive(seconds: float = 5.0):
    return slow_but_alive(seconds)


@pipeline
def held(gate: str):
    return hold(gate)


def test_a_live_run_with_heartbeats_is_never_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAST_SWEEP.items():
        monkeypatch.setenv(name, value)
    box: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: box.setdefault("result", alive.run(seconds=4.0, executor="threads"))
    )
    thread.start()
    seen = set()
    while thread.is_alive():
        sweep()
        seen.update(r["state"] for r in glasspane.runs())
        time.sleep(0.2)
    thread.join()
    assert box["result"].state == SUCCEEDED
    assert CRASHED not in seen and "running" in seen
    assert glasspane.get_run(box["result"].run_id)["state"] == SUCCEEDED


def test_driver_that_finds_its_run_crashed_stops_without_overwriting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLASSPANE_HEARTBEAT_INTERVAL", "0.3")
    gate = tmp_path / "gate"
    box: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: box.setdefault(
            "result", held.run(gate=str(gate), executor="threads", raise_on_failure=False)
        )
    )
    thread.start()
    try:
        store = metadata_store(load_settings())
        wait_for(lambda: [r for r in store.list_runs() if r["state"] == "running"], 20, "the run")
        time.sleep(0.3)
        # a sweeper (with a too-short threshold) declares the live run crashed
        [run_id] = store.mark_crashed(stale_after=0.0)
        thread.join(timeout=10)
        assert not thread.is_alive(), "the driver kept running after its run was crashed"
    finally:
        gate.touch()  # let the abandoned task thread finish
        thread.join(timeout=10)
    assert box["result"].state == CRASHED
    assert "no heartbeat" in (box["result"].error or "")
    run = glasspane.get_run(run_id)
    assert run["state"] == CRASHED and "no heartbeat" in run["error"]
    assert {t["node"]: t["state"] for t in run["tasks"]} == {"hold": CRASHED}


# ---- c. SIGINT / SIGTERM to a run on an embedded dask cluster -----------------------------

SLEEPER = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path

    from glasspane import pipeline, task


    @task
    def slow(marker: str) -> int:
        Path(marker).write_text(str(os.getpid()))
        time.sleep(60)
        return 1


    @task
    def after(x: int) -> int:
        return x


    @pipeline
    def sleeper(marker: str):
        return after(slow(marker))
    """
)


def _default_sigint() -> None:
    # a child inherits an ignored SIGINT (a shell starts background jobs so): undo that
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_dask_sleeper(
    cmd: list[str], tmp_path: Path, env: dict[str, str], started: list[Any], group: bool = False
) -> tuple[subprocess.Popen[str], list[psutil.Process], int]:
    (tmp_path / "sleepy_dask.py").write_text(SLEEPER)
    marker = tmp_path / "marker"
    proc = subprocess.Popen(
        [*cmd, "run", "sleepy_dask.py:sleeper", "-p", f"marker={marker}", "-e", "dask", "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=group,  # its own process group, as a shell gives a foreground job
        preexec_fn=_default_sigint,
    )
    started.append(proc)
    wait_for(lambda: marker.exists() and marker.read_text(), 60, "the task to start on a worker")
    task_pid = int(marker.read_text())
    children = psutil.Process(proc.pid).children(recursive=True)
    assert task_pid in {c.pid for c in children}
    return proc, children, task_pid


@pytest.mark.dask
@pytest.mark.parametrize(
    ("sig", "group"),
    [(signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGTERM", "SIGINT-to-the-process-group"],
)
def test_signal_cancels_a_dask_run_and_leaves_no_workers(
    sig: signal.Signals,
    group: bool,
    tmp_path: Path,
    cli_env: dict[str, str],
    glasspane_cmd: list[str],
    started: list[Any],
) -> None:
    proc, children, _ = start_dask_sleeper(glasspane_cmd, tmp_path, cli_env, started, group)
    if group:  # what a terminal's Ctrl-C does: the workers get SIGINT too
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    result = json.loads(out)
    assert result["state"] == CANCELLED
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left behind: {[p.pid for p in alive]}"
    shown = cli_json(
        glasspane_cmd, "runs", "show", result["run_id"], "--json", cwd=tmp_path, env=cli_env
    )
    assert shown["state"] == CANCELLED
    assert {t["node"]: t["state"] for t in shown["tasks"]} == {
        "slow": CANCELLED,
        "after": CANCELLED,
    }
    assert all(t["state"] in TERMINAL_STATES for t in shown["tasks"])


@pytest.mark.dask
def test_embedded_workers_exit_after_the_driver_is_killed(
    tmp_path: Path, cli_env: dict[str, str], glasspane_cmd: list[str], started: list[Any]
) -> None:
    proc, children, task_pid = start_dask_sleeper(glasspane_cmd, tmp_path, cli_env, started)
    proc.kill()
    proc.wait(timeout=10)
    began = time.monotonic()
    _, alive = psutil.wait_procs(children, timeout=15)  # death_timeout=10 plus slack
    took = time.monotonic() - began
    leftover = [p.pid for p in alive]
    reap(alive)
    assert not leftover, f"worker processes outlived their driver by {took:.0f}s: {leftover}"
    assert not psutil.pid_exists(task_pid) or psutil.Process(task_pid).status() == "zombie"


# ---- d. damaged artifacts are detected by hash, recomputed, and noted ---------------------


@task
def stored_value() -> list[int]:
    return [7] * 50


@task
def total_of(xs: list[int]) -> int:
    return sum(xs)


@pipeline
def damaged():
    return total_of(stored_value())


def stored_task(run_id: str) -> dict[str, Any]:
    return next(t for t in glasspane.get_run(run_id)["tasks"] if t["node"] == "stored_value")


@pytest.mark.dask
@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_damaged_artifact_is_recomputed_on_dask_with_a_note(damage: str) -> None:
    first = damaged.run(executor="dask")
    path = Path(stored_task(first.run_id)["outputs"][0]["uri"])
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(data.replace(b"7", b"8", 1))

    second = damaged.run(executor="dask")
    assert second.state == SUCCEEDED and second.output == 350
    value = second.task("stored_value")
    assert value.cached is False
    assert value.note is not None and "corrupted" in value.note and str(path) in value.note
    assert "corrupted" in stored_task(second.run_id)["note"]
    assert second.task("total_of").cached is True  # the recomputed value is identical
    assert path.read_bytes() == data  # rewritten whole


def test_attempt_ledger_closes_a_lost_attempt_and_renumbers_the_next() -> None:
    from glasspane.execution.executors.dask import AttemptLedger

    ledger = AttemptLedger()
    start = {"kind": "task_started", "node": "n", "attempt": 1, "ts": 1.0}
    assert ledger.renumber(start) == [start]
    lost, again = ledger.renumber({**start, "ts": 2.0})  # Dask ran it again elsewhere
    assert (lost["kind"], lost["attempt"], lost["state"]) == ("attempt_finished", 1, CRASHED)
    assert again["attempt"] == 2
    [retry] = ledger.renumber({"kind": "attempt_finished", "node": "n", "attempt": 1})
    assert retry["attempt"] == 2  # a task-level retry inside the second execution
    [done] = ledger.renumber({"kind": "task_finished", "node": "n", "attempts": 2})
    assert done["attempts"] == 3
    other = {"kind": "task_finished", "node": "m", "attempts": 1}
    assert ledger.renumber(other) == [other]
