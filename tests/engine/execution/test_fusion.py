"""Chains fused into one executor task and wide fan-ins gathered through a tree.

The grouping itself is pure (``glasspane.execution.fusion``); the runs check on every
executor that a fused chain or a gathered fan-in gives the same outputs and the same
per-node record (task runs, attempts, lineage, cache) as unfused execution would.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

import glasspane
from glasspane import context, pipeline, task
from glasspane.execution.fusion import (
    DURATIONS,
    FAN_IN,
    Durations,
    batch_siblings,
    fuse_chains,
    gather_tree,
)
from glasspane.execution.planner import plan_run
from glasspane.execution.worker import artifact_store
from glasspane.types import FAILED, SUCCEEDED, UPSTREAM_FAILED

EXECUTORS = ["inline", "threads", pytest.param("dask", marks=pytest.mark.dask)]


@pytest.fixture(params=EXECUTORS)
def executor(request: pytest.FixtureRequest) -> str:
    return request.param


@task
def start(seed: str) -> str:
    return seed


@task
def step(prev: str, i: int) -> str:
    return f"{prev}>{i}"


@task
def count(values: list[str]) -> int:
    return len(values)


@pipeline
def chain(seed: str, n: int = 5):
    x = start(seed)
    for i in range(1, n):
        x = step(x, i)
    return x


@pipeline
def diamond(seed: str):
    a = start(seed)
    b, c = step(a, 1), step(a, 2)  # `a` feeds two tasks: it ends its unit
    return step(step(b, 3), 4), c


@pipeline
def chain_with_middle_output(seed: str):
    x = step(start(seed), 1)
    y = step(step(x, 2), 3)
    return {"middle": x, "last": y}


@task
def leaf(seed: str, i: int) -> str:
    return f"{seed}-{i}"


@task
def collect(values: list[str]) -> list[str]:
    return values


@pipeline
def wide_fan_in(seed: str, n: int = 3 * FAN_IN + 5):
    return collect(leaf.map(start(seed), i=list(range(n))))


def units_of(pipe, **params) -> list[list[str]]:
    graph = pipe.compile(**params)
    store = artifact_store(str(Path(os.environ["GLASSPANE_HOME"]) / "artifacts"))
    plan = plan_run(graph, "r", store)
    want = {ref.node for ref in graph.output_refs()}
    return [unit.node_ids for unit in fuse_chains(plan.jobs, want)]


def test_a_chain_is_one_unit() -> None:
    assert units_of(chain, seed="s", n=4) == [["start", "step", "step_2", "step_3"]]


def test_a_task_feeding_two_tasks_or_an_output_ends_its_unit() -> None:
    assert units_of(diamond, seed="s") == [
        ["start"],
        ["step", "step_3", "step_4"],
        ["step_2"],
    ]
    assert units_of(chain_with_middle_output, seed="s") == [
        ["start", "step"],
        ["step_2", "step_3"],
    ]


def test_fan_out_and_fan_in_are_not_fused() -> None:
    units = units_of(wide_fan_in, seed="s", n=4)
    assert units == [["start"], ["leaf[0]"], ["leaf[1]"], ["leaf[2]"], ["leaf[3]"], ["collect"]]


def test_gather_tree_groups_inputs_in_order() -> None:
    assert gather_tree(FAN_IN) == []
    levels = gather_tree(1000, fan_in=32)
    assert [len(level) for level in levels] == [32]
    assert levels[0][0] == (0, 32) and levels[0][-1] == (992, 1000)
    levels = gather_tree(100_000, fan_in=32)
    assert [len(level) for level in levels] == [3125, 98, 4]
    flat = [i for start, stop in levels[0] for i in range(start, stop)]
    assert flat == list(range(100_000))


def test_a_fused_chain_records_every_node(executor: str) -> None:
    result = chain.run(seed="a", n=6, executor=executor)
    assert result.output == "a>1>2>3>4>5"
    nodes = ["start", "step", "step_2", "step_3", "step_4", "step_5"]
    assert [t.node for t in result.tasks] == nodes
    assert all(t.state == SUCCEEDED and t.attempts == 1 and not t.cached for t in result.tasks)
    run = glasspane.get_run(result.run_id)
    by_node = {t["node"]: t for t in run["tasks"]}
    assert all(t["started_at"] and t["ended_at"] for t in run["tasks"])
    # each step's input is the previous node's output: lineage runs node by node
    for prev, node in [("start", "step"), ("step", "step_2"), ("step_4", "step_5")]:
        assert (
            by_node[node]["inputs"][0]["content_hash"]
            == (by_node[prev]["outputs"][0]["content_hash"])
        )
    up = glasspane.lineage(result.run_id, "step_5", direction="upstream")
    assert {t["node"] for t in up["task_runs"]} == set(nodes)
    again = chain.run(seed="a", n=6, executor=executor)
    assert all(t.cached for t in again.tasks) and again.output == result.output


def test_a_wanted_value_in_the_middle_of_a_chain(executor: str) -> None:
    result = chain_with_middle_output.run(seed="m", executor=executor)
    assert result.output == {"middle": "m>1", "last": "m>1>2>3"}


@task(retries=1, retry_delay=0.01)
def flaky_step(prev: str, calls: str) -> str:
    path = Path(calls) / "flaky"
    tries = int(path.read_text()) if path.exists() else 0
    path.write_text(str(tries + 1))
    if tries == 0:
        raise ConnectionError("first attempt fails")
    return f"{prev}>flaky@{context().attempt}"


@task
def broken_step(prev: str, calls: str) -> str:
    raise ValueError(f"cannot step from {prev}")


@pipeline
def chain_with_a_retry(seed: str, calls: str):
    return step(flaky_step(step(start(seed), 1), calls), 2)


@pipeline
def chain_with_a_failure(seed: str, calls: str):
    return step(step(broken_step(step(start(seed), 1), calls), 2), 3)


def test_a_retry_inside_a_fused_chain(executor: str, tmp_path: Path) -> None:
    result = chain_with_a_retry.run(seed="r", calls=str(tmp_path), executor=executor)
    assert result.output == "r>1>flaky@2>2"
    assert result.task("flaky_step").attempts == 2
    with sqlite3.connect(Path(os.environ["GLASSPANE_HOME"]) / "glasspane.db") as db:
        attempts = db.execute(
            "SELECT a.attempt, a.state FROM attempts a JOIN task_runs t ON t.id = a.task_run_id "
            "WHERE t.run_id = ? AND t.node_id = 'flaky_step' ORDER BY a.attempt",
            (result.run_id,),
        ).fetchall()
    assert attempts == [(1, FAILED), (2, SUCCEEDED)]


def test_a_failure_inside_a_fused_chain_stops_the_rest(executor: str, tmp_path: Path) -> None:
    result = chain_with_a_failure.run(
        seed="f", calls=str(tmp_path), executor=executor, raise_on_failure=False
    )
    states = {t.node: t.state for t in result.tasks}
    assert states == {
        "start": SUCCEEDED,
        "step": SUCCEEDED,
        "broken_step": FAILED,
        "step_2": UPSTREAM_FAILED,
        "step_3": UPSTREAM_FAILED,
    }
    assert "ValueError: cannot step from f>1" in (result.task("broken_step").error or "")
    # what ran before the failure is cached: a rerun starts at the broken task
    again = chain_with_a_failure.run(
        seed="f", calls=str(tmp_path), executor=executor, raise_on_failure=False
    )
    assert again.task("step").cached and again.task("start").cached
    assert again.task("broken_step").state == FAILED


def test_a_wide_fan_in_keeps_every_input_in_order(executor: str) -> None:
    n = 3 * FAN_IN + 5  # more inputs than one gather takes: a two-level tree on dask
    result = wide_fan_in.run(seed="w", n=n, executor=executor)
    assert result.output == [f"w-{i}" for i in range(n)]
    stored = {t["node"]: t for t in glasspane.get_run(result.run_id)["tasks"]}
    assert [i["content_hash"] for i in stored["collect"]["inputs"]] == [
        stored[f"leaf[{i}]"]["outputs"][0]["content_hash"] for i in range(n)
    ]
    up = glasspane.lineage(result.run_id, "collect", direction="upstream")
    assert {t["node"] for t in up["task_runs"]} >= {f"leaf[{i}]" for i in range(n)}


@task
def dask_key_step(keys: list[str], i: int) -> list[str]:
    from distributed import get_worker

    return [*keys, str(get_worker().get_current_task())]


@pipeline
def keyed_chain(n: int = 4):
    keys = dask_key_step([], 0)
    for i in range(1, n):
        keys = dask_key_step(keys, i)
    return keys


@pytest.mark.dask
def test_on_dask_a_chain_runs_as_one_dask_task() -> None:
    result = keyed_chain.run(executor="dask")
    keys = result.output
    assert len(keys) == 4 and len(set(keys)) == 1  # every step ran inside the same Dask task
    assert keys[0].endswith(f"-{result.run_id}")


def test_short_siblings_are_batched_once_their_duration_is_known() -> None:
    graph = wide_fan_in.compile(seed="s", n=100)
    store = artifact_store(str(Path(os.environ["GLASSPANE_HOME"]) / "artifacts"))
    units = fuse_chains(plan_run(graph, "r", store).jobs, {"collect"})
    durations = Durations()
    unknown = batch_siblings(units, {"collect"}, slots=2, durations=durations)
    assert [len(b) for b in unknown] == [1] * 102  # never seen: every element on its own
    durations.observe(leaf.identity, 0.001)
    durations.observe(start.identity, 0.001)
    batches = batch_siblings(units, {"collect"}, slots=2, durations=durations)
    sizes = [len(b) for b in batches]
    # the source, then the 100 elements in 4 batches (at least 2 per worker thread), the reduce
    assert sizes == [1, 25, 25, 25, 25, 1]
    assert [u.node_ids[0] for u in batches[1]] == [f"leaf[{i}]" for i in range(25)]
    durations.observe(leaf.identity, 1.0)  # slow now: each element gets its own task again
    assert len(batch_siblings(units, {"collect"}, slots=2, durations=durations)) > 100


def test_a_large_map_of_unknown_duration_keeps_64_batches_per_thread() -> None:
    graph = wide_fan_in.compile(seed="s", n=10_000)
    store = artifact_store(str(Path(os.environ["GLASSPANE_HOME"]) / "artifacts"))
    units = fuse_chains(plan_run(graph, "r", store).jobs, {"collect"})
    sizes = [len(b) for b in batch_siblings(units, {"collect"}, slots=2, durations=Durations())]
    assert sizes[0] == 1 and sizes[-1] == 1 and sum(sizes) == 10_002
    assert max(sizes) == 16  # UNKNOWN_BATCH
    sizes = [len(b) for b in batch_siblings(units, {"collect"}, slots=100, durations=Durations())]
    assert max(sizes) == 1  # 10,000 elements are not 64 per thread of 100 threads


@task
def maybe_fail(seed: str, i: int, fail_at: int) -> str:
    from distributed import get_worker

    if i == fail_at:
        raise RuntimeError(f"element {i} fails")
    return str(get_worker().get_current_task())


@pipeline
def keyed_map(seed: str, fail_at: int = -1, n: int = 40):
    return collect(maybe_fail.map(start(seed), i=list(range(n)), fail_at=fail_at))


@pytest.mark.dask
def test_on_dask_a_batch_runs_many_elements_and_one_failure_spares_its_siblings() -> None:
    first = keyed_map.run(seed="b1", executor="dask")  # learns that the elements are short
    assert len(set(first.output)) == 40  # nothing known yet: one Dask task per element
    second = keyed_map.run(seed="b2", executor="dask")
    assert len(set(second.output)) < 40  # batched: several elements share a Dask task
    assert all(t.state == SUCCEEDED and not t.cached for t in second.tasks)
    run = glasspane.get_run(second.run_id)
    assert len(run["tasks"]) == 42 and all(t["ended_at"] for t in run["tasks"])
    failed = keyed_map.run(seed="b3", fail_at=7, executor="dask", raise_on_failure=False)
    states = {t.node: t.state for t in failed.tasks}
    assert states["maybe_fail[7]"] == FAILED
    assert states["collect"] == UPSTREAM_FAILED
    assert all(states[f"maybe_fail[{i}]"] == SUCCEEDED for i in range(40) if i != 7)
    assert "RuntimeError: element 7 fails" in (failed.task("maybe_fail[7]").error or "")


@pytest.mark.dask
def test_a_new_process_recalls_durations_from_earlier_runs() -> None:
    keyed_map.run(seed="h1", executor="dask")  # recorded: every element is short
    DURATIONS.clear()  # what a new process knows
    again = keyed_map.run(seed="h2", executor="dask")
    assert len(set(again.output)) < 40  # batched from the first run on
    assert DURATIONS.estimate(maybe_fail.identity) is not None


@pytest.mark.dask
def test_dask_runs_leave_no_event_topic_or_handler_behind() -> None:
    from glasspane.execution.executors import make_executor

    executor = make_executor("dask")
    for i in range(3):
        keyed_map.run(seed=f"t{i}", executor="dask", n=5)
    client = executor.client
    topics = [name for name in client.get_events() if name.startswith("glasspane")]
    assert topics == ["glasspane-events"]  # one topic for every run, not one per run
    assert executor._routes == {}  # no run's handler (and its recorder) outlives the run


@task
def wjoin(a: str, b: str, i: int, fail_at: int, calls: str) -> str:
    from distributed import get_worker

    if i == fail_at:
        raise RuntimeError(f"task {i} fails")
    Path(calls, str(i)).write_text(str(get_worker().get_current_task()))
    return f"{a[:4]}{b[:4]}{i}"


@pipeline
def layered(seed: str, calls: str, fail_at: int = -1, layers: int = 4, width: int = 8):
    row = leaf.map(seed, i=list(range(width)))
    for k in range(1, layers):
        row = [
            wjoin(row[j], row[(j + 1) % width], k * width + j, fail_at, calls) for j in range(width)
        ]
    return row[0]


def join_node(k: int, j: int, width: int = 8) -> str:
    call = (k - 1) * width + j + 1
    return "wjoin" if call == 1 else f"wjoin_{call}"


def test_a_layer_reading_the_layer_before_is_one_group() -> None:
    graph = layered.compile(seed="s", calls="/nowhere")
    store = artifact_store(str(Path(os.environ["GLASSPANE_HOME"]) / "artifacts"))
    units = fuse_chains(plan_run(graph, "r", store).jobs, {join_node(3, 0)})
    durations = Durations()
    durations.observe(leaf.identity, 0.001)
    durations.observe(wjoin.identity, 0.001)
    batches = batch_siblings(units, {join_node(3, 0)}, slots=2, durations=durations)
    nodes = [[u.node_ids[0] for u in batch] for batch in batches]
    # every layer in batches of 2 (at least 2 per worker thread); the wanted node alone
    assert nodes[:4] == [["leaf[0]", "leaf[1]"], ["leaf[2]", "leaf[3]"], ["leaf[4]", "leaf[5]"],
                         ["leaf[6]", "leaf[7]"]]  # fmt: skip
    assert nodes[4] == [join_node(1, 0), join_node(1, 1)]
    assert [join_node(3, 0)] in nodes
    assert sum(len(b) for b in nodes) == 32


@pytest.mark.dask
def test_on_dask_a_failure_in_a_batched_layer_skips_only_its_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from glasspane.execution.executors import dask as dask_executor

    # a unit that never runs must be known at once: waiting for its events would hang
    monkeypatch.setattr(dask_executor, "_EVENT_GRACE", 10_000.0)
    layered.run(seed="l1", calls=str(tmp_path), executor="dask")  # learns the durations
    calls = tmp_path / "second"
    calls.mkdir()
    result = layered.run(
        seed="l2", calls=str(calls), fail_at=8 + 3, executor="dask", raise_on_failure=False
    )
    states = {t.node: t.state for t in result.tasks}
    bad = {join_node(1, 3): FAILED}
    bad.update({join_node(2, j): UPSTREAM_FAILED for j in (2, 3)})
    bad.update({join_node(3, j): UPSTREAM_FAILED for j in (1, 2, 3)})
    assert {n: s for n, s in states.items() if s != SUCCEEDED} == bad
    keys = [p.read_text() for p in calls.iterdir()]
    assert len(keys) == 24 - len(bad) and len(set(keys)) < len(keys)  # batches ran
