"""The run loop beyond executor conformance: planning, cancellation, remote schedulers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

import glasspane
from glasspane import GlasspaneError, context, log_metric, pipeline, task
from glasspane.types import CANCELLED, FAILED, SUCCEEDED


@task
def inc(x: int) -> int:
    return x + 1


@task
def add(a: int, b: int) -> int:
    return a + b


@pipeline
def small(x: int = 1):
    return add(inc(x), inc(x + 10))


def test_fully_cached_run_never_touches_the_executor() -> None:
    first = small.run(x=1, executor="threads")
    assert first.output == 14
    # an address nothing listens on: connecting would fail, so passing proves no connection
    again = small.run(x=1, executor="tcp://127.0.0.1:9")
    assert again.state == SUCCEEDED and again.output == 14
    assert all(t.cached for t in again.tasks)


def test_runs_on_an_existing_scheduler_by_address() -> None:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        result = small.run(x=5, executor=address)
    assert result.state == SUCCEEDED and result.output == 6 + 16
    assert glasspane.get_run(result.run_id)["executor"] == "dask"


@task(retries=3)
def pair() -> tuple[int, int]:
    return (1, 2, 3)  # type: ignore[return-value]


@pipeline
def wrong_arity():
    a, b = pair()
    return add(a, b)


def test_wrong_tuple_length_fails_without_retrying() -> None:
    result = wrong_arity.run(executor="threads", raise_on_failure=False)
    assert result.state == FAILED
    assert result.task("pair").attempts == 1
    assert "annotated to return a tuple of 2 values but returned a tuple of 3" in (
        result.task("pair").error or ""
    )


@task
def pair_as_list() -> tuple[int, int]:
    return [1, 2]  # type: ignore[return-value]


@task
def pair_as_array() -> tuple[float, float]:
    import numpy as np

    return np.array([0.5, 1.5])  # type: ignore[return-value]


@task
def add_floats(a: float, b: float) -> float:
    return a + b


@pipeline
def sequences_for_tuples():
    one, two = pair_as_list()
    half, more = pair_as_array()
    return add(one, two), add_floats(half, more)


def test_a_tuple_task_may_return_any_sequence_of_the_right_length() -> None:
    # as `one, two = [1, 2]` would: a list, or a NumPy array, of two values
    result = sequences_for_tuples.run(executor="threads")
    assert result.output == (3, 2.0)


def test_context_outside_a_task_says_where_to_call_it() -> None:
    with pytest.raises(GlasspaneError, match=r"context\(\) was called outside a running task"):
        context()
    log_metric("ignored", 1.0)  # a no-op outside a run, so task code can be unit-tested


@task
def bad_metric() -> int:
    log_metric("acc", "high")  # type: ignore[arg-type]
    return 1


@pipeline
def bad_metric_flow():
    return bad_metric()


def test_non_numeric_metric_fails_the_task_with_a_clear_error() -> None:
    result = bad_metric_flow.run(executor="inline", raise_on_failure=False)
    assert "log_metric(`acc`) in task `bad_metric` needs a number, got str" in (
        result.task("bad_metric").error or ""
    )


@task
def interrupt_me() -> int:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
    return 1


@task
def after(x: int) -> int:
    return x


@pipeline
def interrupted():
    return after(interrupt_me())


def default_sigint() -> None:
    """Give a child the default Ctrl-C behaviour even when this test process ignores SIGINT
    (a shell starts background jobs that way, and children inherit it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_cancels_the_run_and_records_it() -> None:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            interrupted.run(executor="threads")
    finally:
        signal.signal(signal.SIGINT, previous)
    [run] = glasspane.runs()
    assert run["state"] == CANCELLED
    tasks = {t["node"]: t["state"] for t in glasspane.get_run(run["run_id"])["tasks"]}
    assert tasks["after"] == CANCELLED


PIPELINE_FILE = textwrap.dedent(
    """
    import time
    from glasspane import task, pipeline

    @task
    def slow(seconds: float) -> float:
        print("started", flush=True)
        time.sleep(seconds)
        return seconds

    @pipeline
    def sleeper(seconds: float = 60.0):
        return slow(seconds)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_signal_cancels_the_run_with_exit_130(
    sig: signal.Signals, tmp_path: Path, cli_env: dict[str, str], glasspane_cmd: list[str]
) -> None:
    (tmp_path / "sleepy.py").write_text(PIPELINE_FILE)
    proc = subprocess.Popen(
        [*glasspane_cmd, "run", "sleepy.py:sleeper", "--executor", "threads", "--json"],
        cwd=tmp_path,
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 30
    runs: list[dict[str, object]] = []
    while time.monotonic() < deadline and not runs:
        time.sleep(0.2)
        listed = subprocess.run(
            [*glasspane_cmd, "runs", "list", "--json"],
            cwd=tmp_path,
            env=cli_env,
            capture_output=True,
            text=True,
            check=True,
        )
        runs = [r for r in json.loads(listed.stdout) if r["state"] == "running"]
    assert runs, "the run never started"
    time.sleep(0.5)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert json.loads(out)["state"] == CANCELLED
    shown = subprocess.run(
        [*glasspane_cmd, "runs", "show", str(runs[0]["run_id"]), "--json"],
        cwd=tmp_path,
        env=cli_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(shown.stdout)["state"] == CANCELLED


class Connection:
    """Holds a lock: it cannot be pickled, like a database connection or a client."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()
        self.rows = [1, 2, 3]


@task(persist=False)
def connect() -> Connection:
    return Connection()


@task
def count_rows(conn: Connection) -> int:
    return len(conn.rows)


@pipeline
def in_memory():
    return count_rows(connect())


def test_a_persist_false_output_need_not_pickle() -> None:
    first = in_memory.run(executor="threads")
    assert first.output == 3
    # a value that cannot be hashed has a hash of its own each run: what reads it reruns
    second = in_memory.run(executor="threads")
    assert [(t.node, t.cached) for t in second.tasks] == [("connect", False), ("count_rows", False)]


@task(cache=False)
def break_the_store(db: str) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:  # as if the database failed under the run
        conn.execute("DROP TABLE attempts")
    return 1


@pipeline
def store_breaks(db: str):
    return break_the_store(db)


def test_a_store_that_fails_mid_run_ends_the_run_failed(glasspane_home: Path) -> None:
    db = str(glasspane_home / "glasspane.db")
    result = store_breaks.run(db=db, executor="threads", raise_on_failure=False)
    assert result.state == "failed"
    assert result.error is not None and result.error.startswith(
        "the metadata store could not record this run's task events (OperationalError: "
    )
    assert [run["state"] for run in glasspane.runs()] == ["failed"]  # not left running


@task
def source_rows() -> list[int]:
    return [1, 2, 3]


@task(cache=False)
def wipe_blobs(home: str) -> int:
    import shutil

    shutil.rmtree(os.path.join(home, "artifacts", "objects"))
    return 0


@pipeline
def output_vanishes(home: str):
    return {"rows": source_rows(), "wiped": wipe_blobs(home)}


def test_an_output_that_cannot_be_loaded_ends_the_run_failed(glasspane_home: Path) -> None:
    source_rows_only = output_vanishes.run(
        home=str(glasspane_home / "elsewhere"), executor="threads", raise_on_failure=False
    )
    assert source_rows_only.state == "failed"  # nothing to wipe there: wipe_blobs failed
    result = output_vanishes.run(
        home=str(glasspane_home), executor="threads", raise_on_failure=False
    )
    assert result.state == "failed" and result.output is None
    assert result.error is not None and result.error.startswith(
        "the pipeline's output could not be loaded (ArtifactError: artifact "
    )
    assert glasspane.runs()[0]["state"] == "failed"
