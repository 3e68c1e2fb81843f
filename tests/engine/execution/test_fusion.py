"""Chains fused into one executor task and wide fan-ins gathered through a tree.

The grouping itself is pure (``glasspane.execution.fusion``); the runs check on every
executor that a fused chain or a gathered fan-in gives the same outputs and the same
per-node record (task runs, attempts, lineage, cache) as unfused execution would.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import time
from pathlib import Path

import pytest

import glasspane
from glasspane import context, expand, pipeline, task
from glasspane.execution.fusion import (
    FAN_IN,
    assign_estimates,
    batch_siblings,
    child_estimate,
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


def remember(pipe, seconds: dict[str, float], **params) -> None:
    """Record a run of ``pipe`` in the store in which each node of ``seconds`` ran that long
    (and every other node was a cache hit): what the run loop plans the next run from."""
    from glasspane.api import metadata_store
    from glasspane.config import load_settings
    from glasspane.execution.outcomes import task_finished
    from glasspane.execution.runner import new_run_id

    graph = pipe.compile(**params)
    store = metadata_store(load_settings())
    version = store.ensure_pipeline_version(graph.pipeline, graph.version_hash, graph.to_json())
    run_id = new_run_id()
    nodes = [(node.id, node.task.name) for node in graph]
    store.create_run(run_id=run_id, pipeline_name=graph.pipeline, version_id=version,
                     pipeline_ref=None, params={}, executor="dask", nodes=nodes)  # fmt: skip
    task_of = dict(nodes)
    t0 = 1_700_000_000.0
    store.record_events(
        run_id,
        [
            task_finished(
                node,
                task_of.get(node, node.split("[")[0]),
                SUCCEEDED,
                cached=node not in seconds,
                started=t0,
                ended=t0 + seconds.get(node, 0.0),
                attempts=1,
                parent=node.split("[")[0] if node not in task_of else None,
            )
            for node in [*task_of, *[n for n in seconds if n not in task_of]]
        ],
    )


def planned(pipe, slots: int = 2, **params) -> list[list[str]]:
    """The batches (first node of each unit) the run loop plans from the store for ``pipe``."""
    from glasspane.api import metadata_store
    from glasspane.config import load_settings

    graph = pipe.compile(**params)
    store = artifact_store(str(Path(os.environ["GLASSPANE_HOME"]) / "artifacts"))
    jobs = plan_run(graph, "r", store).jobs
    assign_estimates(jobs, metadata_store(load_settings()).task_durations(graph.pipeline))
    want = {ref.node for ref in graph.output_refs()}
    batches = batch_siblings(fuse_chains(jobs, want), want, slots)
    return [[unit.node_ids[0] for unit in batch] for batch in batches]


def test_estimates_are_the_longest_run_of_each_node_else_of_its_task() -> None:
    graph = wide_fan_in.compile(seed="s", n=4)
    store = artifact_store(str(Path(os.environ["GLASSPANE_HOME"]) / "artifacts"))
    jobs = {job.node_id: job for job in plan_run(graph, "r", store).jobs}
    assign_estimates(list(jobs.values()), {"leaf[0]": 0.5, "leaf[1]": 0.002, "start": 0.01})
    assert [jobs[f"leaf[{i}]"].estimate for i in range(4)] == [0.5, 0.002, 0.5, 0.5]
    assert jobs["start"].estimate == 0.01  # leaf[2] and leaf[3] were never seen: 0.5
    assert jobs["collect"].estimate is None  # nor was its task
    child = dataclasses.replace(jobs["leaf[1]"], node_id="x[7]", estimate=None)
    assert child_estimate(child, {"x[0]": 0.001, "x[7]": 0.003}) == 0.003
    assert child_estimate(child, {"x[0]": 0.001, "x[1]": 0.3}) == 0.3  # the longest seen
    assert child_estimate(child, {}) is None and child_estimate(child, None) is None


def test_short_siblings_are_batched_once_the_store_has_seen_them_short() -> None:
    # never seen: batched blind only in small batches, at least 8 per worker thread
    assert planned(wide_fan_in, seed="s", n=100) == [
        ["start"],
        *[[f"leaf[{i}]" for i in range(j, min(j + 6, 100))] for j in range(0, 100, 6)],
        ["collect"],
    ]
    remember(wide_fan_in, {"start": 0.001, **{f"leaf[{i}]": 0.001 for i in range(100)}},
             seed="s", n=100)  # fmt: skip
    batches = planned(wide_fan_in, seed="s", n=100)
    # the source, then the 100 elements in 4 batches (at least 2 per worker thread), the reduce
    assert [len(b) for b in batches] == [1, 25, 25, 25, 25, 1]
    assert batches[1] == [f"leaf[{i}]" for i in range(25)]


def test_a_batch_holds_at_most_batch_target_seconds_by_upper_estimates() -> None:
    remember(wide_fan_in, {f"leaf[{i}]": 0.015 for i in range(100)}, seed="s", n=100)
    sizes = [len(b) for b in planned(wide_fan_in, seed="s", n=100)]
    assert sizes == [1] + [6] * 16 + [4, 1]  # 6 x 15 ms <= 0.1 s < 7 x 15 ms


def test_slow_elements_seen_in_the_store_are_not_packed_together() -> None:
    slow = {f"leaf[{i}]" for i in range(40, 48)}  # eight adjacent slow elements
    seconds = {f"leaf[{i}]": 0.5 if f"leaf[{i}]" in slow else 0.001 for i in range(100)}
    remember(wide_fan_in, seconds, seed="s", n=100)
    batches = planned(wide_fan_in, seed="s", n=100)
    assert sorted([b for b in batches if set(b) & slow]) == sorted([[n] for n in slow])
    fast = [b for b in batches if b[0].startswith("leaf") and not set(b) & slow]
    assert sum(map(len, fast)) == 92 and max(map(len, fast)) > 1  # the rest are batched
    # a longer map of the same task: its new elements may be as slow as the slowest seen
    longer = planned(wide_fan_in, seed="s", n=110)
    assert all([f"leaf[{i}]"] in longer for i in range(100, 110))


PLAN_FILE = """
import json, sys

from glasspane import pipeline, task


@task
def origin(seed: str) -> str:
    return seed


@task
def element(src: str, i: int) -> str:
    return f"{src}-{i}"


@task
def together(parts: list) -> int:
    return len(parts)


@pipeline
def skewed(seed: str, n: int = 60):
    return together(element.map(origin(seed), i=list(range(n))))


if __name__ == "__main__":
    from glasspane.api import artifact_store, metadata_store
    from glasspane.config import load_settings
    from glasspane.execution.fusion import assign_estimates, batch_siblings, fuse_chains
    from glasspane.execution.planner import plan_run

    settings = load_settings()
    graph = skewed.compile(seed="s")
    jobs = plan_run(graph, "r", artifact_store(settings)).jobs
    assign_estimates(jobs, metadata_store(settings).task_durations(graph.pipeline))
    want = {ref.node for ref in graph.output_refs()}
    units = fuse_chains(jobs, want)
    print(json.dumps([[u.node_ids[0] for u in b] for b in batch_siblings(units, want, 2)]))
"""


def test_two_processes_plan_the_same_batches_from_the_store(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    (tmp_path / "skewplan.py").write_text(PLAN_FILE)
    sys.path.insert(0, str(tmp_path))
    try:
        import skewplan  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    seconds = {f"element[{i}]": 0.3 if 20 <= i < 28 else 0.002 for i in range(60)}
    remember(skewplan.skewed, seconds, seed="s")

    def plan_elsewhere() -> list[list[str]]:
        command = [sys.executable, str(tmp_path / "skewplan.py")]
        out = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    first, second = plan_elsewhere(), plan_elsewhere()
    assert first == second == planned(skewplan.skewed, seed="s")  # and this process's plan
    alone = {b[0] for b in first if len(b) == 1 and b[0].startswith("element")}
    assert alone == {f"element[{i}]" for i in range(20, 28)}  # the slow ones, each on its own
    assert max(len(b) for b in first) > 1


def test_a_large_map_of_unknown_duration_keeps_8_batches_per_thread() -> None:
    graph = wide_fan_in.compile(seed="s", n=10_000)
    store = artifact_store(str(Path(os.environ["GLASSPANE_HOME"]) / "artifacts"))
    units = fuse_chains(plan_run(graph, "r", store).jobs, {"collect"})
    sizes = [len(b) for b in batch_siblings(units, {"collect"}, slots=2)]
    assert sizes[0] == 1 and sizes[-1] == 1 and sum(sizes) == 10_002
    assert max(sizes) == 16  # UNKNOWN_BATCH
    sizes = [len(b) for b in batch_siblings(units, {"collect"}, slots=100)]
    assert max(sizes) == 12  # 10,000 // (8 batches x 100 threads)
    sizes = [len(b) for b in batch_siblings(units, {"collect"}, slots=1000)]
    assert max(sizes) == 1  # fewer than 8 per thread: not batched blind


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
    # never seen: batched blind, in pairs (40 elements, at least 8 batches per thread)
    assert [len(b) for b in planned(keyed_map, seed="b1")] == [1] + [2] * 20 + [1]
    first = keyed_map.run(seed="b1", executor="dask")
    assert len(set(first.output)) < 40
    assert [len(b) for b in planned(keyed_map, seed="b2")][1:-1] == [10] * 4  # seen short
    second = keyed_map.run(seed="b2", executor="dask")
    assert len(set(second.output)) < 20  # larger batches: more elements share a Dask task
    assert all(t.state == SUCCEEDED and not t.cached for t in second.tasks)
    run = glasspane.get_run(second.run_id)
    assert len(run["tasks"]) == 42 and all(t["ended_at"] for t in run["tasks"])
    failed = keyed_map.run(seed="b3", fail_at=7, executor="dask", raise_on_failure=False)
    states = {t.node: t.state for t in failed.tasks}
    assert states["maybe_fail[7]"] == FAILED
    assert states["collect"] == UPSTREAM_FAILED
    assert all(states[f"maybe_fail[{i}]"] == SUCCEEDED for i in range(40) if i != 7)
    assert "RuntimeError: element 7 fails" in (failed.task("maybe_fail[7]").error or "")


@task
def probe(src: str, i: int, calls: str, slow: int, fail_at: int) -> str:
    started = time.time()
    if i == slow:
        time.sleep(4.0)
    if i == fail_at:
        raise RuntimeError(f"element {i} fails")
    Path(calls, str(i)).write_text(f"{os.getpid()} {started} {time.time()}")
    return f"{src}-{i}"


@pipeline
def probed(seed: str, calls: str, slow: int = -1, fail_at: int = -1, n: int = 24):
    return collect(probe.map(start(seed), i=list(range(n)), calls=calls, slow=slow,
                             fail_at=fail_at))  # fmt: skip


@pytest.mark.dask
def test_on_dask_a_batch_past_its_budget_hands_its_other_elements_to_idle_workers(
    tmp_path: Path,
) -> None:
    # the store has seen every element short: they are planned in batches of 6
    remember(probed, {f"probe[{i}]": 0.001 for i in range(24)}, seed="s", calls="c")
    assert planned(probed, seed="s", calls="c")[1] == [f"probe[{i}]" for i in range(6)]
    calls = tmp_path / "calls"
    calls.mkdir()
    # this time element 0 takes 4 s and element 3 fails: both in the first batch
    result = probed.run(seed="g", calls=str(calls), slow=0, fail_at=3, executor="dask",
                        raise_on_failure=False)  # fmt: skip
    states = {t.node: t.state for t in result.tasks}
    assert states["probe[3]"] == FAILED and states["collect"] == UPSTREAM_FAILED
    assert "RuntimeError: element 3 fails" in (result.task("probe[3]").error or "")
    assert all(states[f"probe[{i}]"] == SUCCEEDED for i in range(24) if i != 3)
    ran = {int(p.name): p.read_text().split() for p in calls.iterdir()}
    pid0, _, ended0 = ran[0]
    # elements 1, 2, 4 and 5 did not wait for element 0: they ran beside it, elsewhere
    assert all(float(ran[i][1]) < float(ended0) - 0.5 for i in (1, 2, 4, 5))
    assert {ran[i][0] for i in (1, 2, 4, 5)} - {pid0}


def test_a_batch_hands_back_one_unit_per_task_unless_its_units_ran_quickly() -> None:
    from glasspane.execution.executors.dask_batch import chunked

    left = list(range(3, 10))
    assert chunked(left, [], budget=0.1) == [[i] for i in left]  # nothing finished: alone
    assert chunked(left, [0.2], budget=0.1) == [[i] for i in left]  # slow: alone
    # finished in 10 ms on average: pieces of half the budget, 5 units each
    assert chunked(left, [0.005, 0.015], budget=0.1) == [[3, 4, 5, 6, 7], [8, 9]]


@task
def items(n: int) -> list[int]:
    return list(range(n))


@task(cache=False)
def keyed_child(i: int) -> str:
    from distributed import get_worker

    return str(get_worker().get_current_task())


@pipeline
def expanded(n: int = 40):
    return collect(keyed_child.map(expand(items(n))))


@pytest.mark.dask
def test_on_dask_an_expanders_children_are_batched_from_the_store() -> None:
    first = expanded.run(executor="dask")  # never seen: batched blind, in pairs
    assert 20 <= len(set(first.output)) < 40
    # the store saw children 0-39 short, except 3, which was slow
    seconds = {f"keyed_child[{i}]": 0.5 if i == 3 else 0.001 for i in range(40)}
    remember(expanded, seconds)
    second = expanded.run(executor="dask")
    keys = second.output
    assert len(set(keys)) < 40 and all(t.state == SUCCEEDED for t in second.tasks)
    assert keys.count(keys[3]) == 1  # the slow child alone, the others batched


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
    jobs = plan_run(graph, "r", store).jobs
    for job in jobs:
        job.estimate = 0.001
    batches = batch_siblings(fuse_chains(jobs, {join_node(3, 0)}), {join_node(3, 0)}, slots=2)
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
    seen = {node.id: 0.001 for node in layered.compile(seed="l1", calls="c")}
    remember(layered, seen, seed="l1", calls="c")  # the store has seen every task short
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
