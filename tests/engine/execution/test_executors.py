"""Executor conformance: the same behaviour on inline, threads and dask (a real LocalCluster).

Task functions record their calls in files, because on Dask they run in worker processes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import glasspane
from glasspane import context, expand, get_logger, log_metric, log_param, pipeline, task
from glasspane.types import FAILED, SUCCEEDED, TIMED_OUT, UPSTREAM_FAILED

EXECUTORS = ["inline", "threads", pytest.param("dask", marks=pytest.mark.dask)]


@pytest.fixture(params=EXECUTORS)
def executor(request: pytest.FixtureRequest) -> str:
    return request.param


def note_call(calls: str, name: str) -> None:
    with open(os.path.join(calls, name), "a") as fh:
        fh.write("x\n")


def count(calls: Path, name: str) -> int:
    path = calls / name
    return len(path.read_text().splitlines()) if path.exists() else 0


@task
def load(n: int, calls: str) -> list[int]:
    note_call(calls, "load")
    print(f"loading {n} rows")
    get_logger().info("loaded %d rows", n)
    return list(range(n))


@task
def split(rows: list[int]) -> tuple[list[int], list[int]]:
    k = len(rows) // 2
    return rows[:k], rows[k:]


@task(cache=False)
def train(rows: list[int], c: float, calls: str) -> float:
    note_call(calls, "train")
    log_metric("score", sum(rows) * c)
    log_param("c", c)
    return sum(rows) * c


@task
def best(models: list[float], test: list[int]) -> dict[str, float]:
    return {"best": max(models), "n_test": len(test)}


@pipeline
def retrain(calls: str, n: int = 10, grid: list[float] = [0.5, 2.0]):  # noqa: B006
    tr, te = split(load(n, calls))
    models = train.map(tr, c=grid, calls=calls)
    return best(models, te)


def test_runs_map_tuple_outputs_and_nested_refs(executor: str, tmp_path: Path) -> None:
    result = retrain.run(calls=str(tmp_path), n=10, executor=executor)
    assert result.state == SUCCEEDED
    assert result.output == {"best": 20.0, "n_test": 5}
    assert [t.node for t in result.tasks] == ["load", "split", "train[0]", "train[1]", "best"]
    assert all(t.state == SUCCEEDED and not t.cached and t.attempts == 1 for t in result.tasks)


def test_second_run_is_cached_except_cache_false(executor: str, tmp_path: Path) -> None:
    retrain.run(calls=str(tmp_path), executor=executor)
    again = retrain.run(calls=str(tmp_path), executor=executor)
    cached = {t.node: t.cached for t in again.tasks}
    assert cached == {
        "load": True,
        "split": True,
        "train[0]": False,
        "train[1]": False,
        "best": True,
    }  # train reran and gave identical models: early cut-off
    assert count(tmp_path, "load") == 1
    assert count(tmp_path, "train") == 4


def test_records_output_logs_metrics_and_lineage(executor: str, tmp_path: Path) -> None:
    result = retrain.run(calls=str(tmp_path), executor=executor)
    run = glasspane.get_run(result.run_id)
    tasks = {t["node"]: t for t in run["tasks"]}
    assert "loading 10 rows" in tasks["load"]["stdout"]
    assert "loaded 10 rows" in tasks["load"]["log_tail"]
    assert tasks["train[1]"]["metrics"] == {"score": 20.0}
    assert tasks["train[1]"]["params"] == {"c": 2.0}
    assert [o["name"] for o in tasks["split"]["outputs"]] == ["0", "1"]
    assert tasks["split"]["outputs"][0]["preview"]["len"] == 5
    assert run["heartbeat_at"] is not None
    up = glasspane.lineage(result.run_id, "best", direction="upstream")
    assert {t["node"] for t in up["task_runs"]} >= {"load", "split", "train[0]", "train[1]"}


_flaky_dir = "GLASSPANE_TEST_FLAKY"


@task(retries=2, retry_delay=0.05, backoff=2.0)
def flaky(calls: str, fail_times: int) -> str:
    note_call(calls, "flaky")
    if count(Path(calls), "flaky") <= fail_times:
        raise ConnectionError("transient outage")
    return f"attempt {context().attempt} of {context().node_id}"


@task
def shout(text: str) -> str:
    return text.upper()


@pipeline
def flaky_flow(calls: str, fail_times: int = 2):
    return shout(flaky(calls, fail_times))


def test_retries_with_backoff_then_succeeds(executor: str, tmp_path: Path) -> None:
    result = flaky_flow.run(calls=str(tmp_path), fail_times=2, executor=executor)
    assert result.output == "ATTEMPT 3 OF FLAKY"
    assert result.task("flaky").attempts == 3
    attempts = glasspane.get_run(result.run_id)["tasks"][0]
    assert attempts["state"] == SUCCEEDED and attempts["attempts"] == 3


def test_failure_marks_downstream_and_records_traceback(executor: str, tmp_path: Path) -> None:
    result = flaky_flow.run(
        calls=str(tmp_path), fail_times=5, executor=executor, raise_on_failure=False
    )
    assert result.state == FAILED
    assert result.task("flaky").state == FAILED
    assert result.task("flaky").attempts == 3
    assert result.task("shout").state == UPSTREAM_FAILED
    assert "task `flaky` failed: ConnectionError: transient outage" in (result.error or "")
    stored = {t["node"]: t for t in glasspane.get_run(result.run_id)["tasks"]}
    assert "ConnectionError: transient outage" in stored["flaky"]["traceback"]
    assert stored["shout"]["state"] == UPSTREAM_FAILED
    assert glasspane.get_run(result.run_id)["state"] == FAILED


def test_failed_run_raises_run_failed(executor: str, tmp_path: Path) -> None:
    with pytest.raises(glasspane.RunFailed, match="glasspane retry") as info:
        flaky_flow.run(calls=str(tmp_path), fail_times=5, executor=executor)
    assert info.value.result.state == FAILED


@task(timeout=0.5)
def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@pipeline
def sleepy_flow(seconds: float = 30.0):
    return sleepy(seconds)


def test_timeout_abandons_the_attempt(executor: str) -> None:
    started = time.monotonic()
    result = sleepy_flow.run(seconds=30.0, executor=executor, raise_on_failure=False)
    assert time.monotonic() - started < 15
    assert result.task("sleepy").state == TIMED_OUT
    assert "ran past its timeout of 0.5s" in (result.task("sleepy").error or "")
    assert result.state == FAILED


@task
def items(n: int) -> list[int]:
    return [i * 10 for i in range(n)]


@task
def square(x: int, calls: str) -> int:
    note_call(calls, f"square-{x}")
    return x * x


@task
def total(values: list[int]) -> int:
    return sum(values)


@pipeline
def dynamic(calls: str, n: int = 3):
    return total(square.map(expand(items(n)), calls=calls))


def test_dynamic_map_expands_at_run_time_and_caches_each_child(
    executor: str, tmp_path: Path
) -> None:
    first = dynamic.run(calls=str(tmp_path), n=3, executor=executor)
    assert first.output == 0 + 100 + 400
    children = [t for t in first.tasks if t.parent == "square"]
    assert [t.node for t in children] == ["square[0]", "square[1]", "square[2]"]
    second = dynamic.run(calls=str(tmp_path), n=4, executor=executor)
    assert second.output == 0 + 100 + 400 + 900
    cached = {t.node: t.cached for t in second.tasks if t.parent == "square"}
    assert cached == {"square[0]": True, "square[1]": True, "square[2]": True, "square[3]": False}
    assert count(tmp_path, "square-10") == 1
    stored = {t["node"] for t in glasspane.get_run(second.run_id)["tasks"]}
    assert {"square[0]", "square[3]"} <= stored


@task(cache=False)
def stamp(calls: str) -> float:
    note_call(calls, "stamp")
    return time.time()


@task
def fail_if(flag_file: str, value: float) -> float:
    if os.path.exists(flag_file):
        raise RuntimeError("flag file present")
    return value


@pipeline
def resumable(calls: str, flag_file: str):
    return fail_if(flag_file, stamp(calls))


def test_retry_reuses_succeeded_outputs(executor: str, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.write_text("fail")
    failed = resumable.run(
        calls=str(tmp_path), flag_file=str(flag), executor=executor, raise_on_failure=False
    )
    assert failed.state == FAILED and failed.task("stamp").state == SUCCEEDED
    flag.unlink()
    resumed = glasspane.retry(failed.run_id, executor=executor)
    assert resumed.state == SUCCEEDED
    assert resumed.resumed_from == failed.run_id
    assert resumed.task("stamp").cached  # reused even though stamp is cache=False
    assert count(tmp_path, "stamp") == 1  # its function did not run again
    old = glasspane.get_run(failed.run_id)
    assert old["state"] == FAILED  # the old run keeps its terminal state
    assert glasspane.get_run(resumed.run_id)["resumed_from"] == failed.run_id


@task(cache=False)
def nonce(calls: str) -> str:
    import uuid

    return uuid.uuid4().hex


@pipeline
def nonce_flow(calls: str):
    return nonce(calls)


def test_each_run_computes_fresh_values_for_uncached_tasks(executor: str, tmp_path: Path) -> None:
    # on Dask a reused key would silently return the earlier run's value
    first = nonce_flow.run(calls=str(tmp_path), executor=executor)
    second = nonce_flow.run(calls=str(tmp_path), executor=executor)
    assert first.output != second.output


@task(persist=False)
def in_memory(n: int) -> list[int]:
    return list(range(n))


@task
def length(values: list[int]) -> int:
    return len(values)


@pipeline
def memory_flow(n: int = 4):
    return length(in_memory(n))


def test_persist_false_keeps_output_out_of_the_store(executor: str) -> None:
    result = memory_flow.run(n=4, executor=executor)
    assert result.output == 4
    outputs = {t["node"]: t["outputs"] for t in glasspane.get_run(result.run_id)["tasks"]}
    assert outputs["in_memory"][0]["uri"] is None
    assert outputs["length"][0]["uri"] is not None
