"""The ``queries`` section of bench_suite.py: the UI's reads on a SQLite store with history.

One fresh home gets ``--runs`` runs of a five-task pipeline, inserted through the metadata
store's own writes (``create_run`` and ``set_run_state``, one run per transaction, about a
second per thousand runs: untimed), and one real run of a fan of ``--nodes`` no-op tasks on
the threads executor (untimed). Then, each the median of ``--repeat`` calls after one
warm-up, in this process:

- the first page of runs (50, newest first), unfiltered and filtered by pipeline and state;
- a later page, through the cursor of the one before;
- the detail of the big run (its summary and every task run's outcome and timings), and the
  same serialised to JSON as the UI's API serves it;
- the big run's graph with each node's state.

The targets are the issue's: the first page of 10,000 runs and the detail of a 5,000-node
run each in under 200 ms on SQLite.

    python tests/benchmarks/bench_queries.py --runs 10000 --nodes 5000 --repeat 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

TARGET = 0.200  # seconds, first page of runs and detail of a big run


def leaf(i: int) -> int:
    return i


def reduce_all(parts: list[int]) -> int:
    return len(parts)


def fan(n: int) -> Any:
    from glasspane import pipeline, task

    leaf_t, reduce_t = task(leaf), task(reduce_all)

    @pipeline
    def wide_fan(salt: str):
        return reduce_t(leaf_t.map(i=list(range(n - 1))))

    return wide_fan


def fill(settings: Any, runs: int) -> None:
    """``runs`` finished runs of a five-task pipeline, through the store's own writes."""
    from glasspane.api import metadata_store

    store = metadata_store(settings)
    nodes = [(name, name) for name in ("load", "split", "train", "evaluate", "report")]
    graph = {"nodes": [{"id": n, "task": n, "tags": []} for n, _ in nodes], "edges": []}
    version = store.ensure_pipeline_version("history", "ab" * 32, graph)
    for i in range(runs):
        run_id = uuid.uuid4().hex[:12]
        store.create_run(
            run_id=run_id,
            pipeline_name="history",
            version_id=version,
            pipeline_ref="flows.py:history",
            params={"n": i, "lr": 0.1},
            executor="threads",
            trigger="schedule" if i % 3 else "manual",
            nodes=nodes,
        )
        store.set_run_state(run_id, "running")
        store.set_run_state(run_id, "failed" if i % 10 == 0 else "succeeded")


def median_time(call: Callable[[], Any], repeat: int) -> tuple[float, float, float]:
    call()  # warm-up: connections, statement caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def bench(runs: int, nodes: int, repeat: int, homes: Any) -> list[list[str]]:
    from glasspane import queries
    from glasspane.api import metadata_store, run_pipeline

    settings = homes.fresh()
    started = time.perf_counter()
    fill(settings, runs)
    filled = time.perf_counter() - started
    big = run_pipeline(
        fan(nodes), {"salt": uuid.uuid4().hex}, executor="threads", settings=settings
    )
    print(
        f"queries: {runs} runs inserted in {filled:.1f} s; the {len(big.tasks)}-node run took "
        f"{time.perf_counter() - started - filled:.1f} s",
        file=sys.stderr,
    )
    store = metadata_store(settings)
    second = queries.list_runs(store, limit=50).next_cursor
    assert second is not None
    detail = queries.get_run(store, big.run_id)
    assert len(detail.tasks) == nodes, len(detail.tasks)
    workloads: list[tuple[str, Callable[[], Any], float | None]] = [
        (f"first page of {runs + 1} runs (50)", lambda: queries.list_runs(store, limit=50), TARGET),
        (
            "first page, pipeline and state filters",
            lambda: queries.list_runs(store, limit=50, pipeline="history", state="succeeded"),
            TARGET,
        ),
        ("second page, by cursor", lambda: queries.list_runs(store, cursor=second), TARGET),
        (f"run detail, {nodes} nodes", lambda: queries.get_run(store, big.run_id), TARGET),
        (
            f"run detail, {nodes} nodes, as JSON",
            lambda: queries.get_run(store, big.run_id).model_dump_json(),
            None,
        ),
        (f"run graph, {nodes} nodes", lambda: queries.run_graph(store, big.run_id), None),
    ]
    rows = []
    for name, call, target in workloads:
        median, low, high = median_time(call, repeat)
        met = "" if target is None else ("yes" if median < target else "**no**")
        rows.append(
            [
                name,
                f"{median * 1000:.1f} ms ({low * 1000:.1f}-{high * 1000:.1f})",
                "" if target is None else f"< {target * 1000:.0f} ms",
                met,
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from bench_suite import Homes  # type: ignore[import-not-found]

    homes = Homes()
    try:
        rows = bench(args.runs, args.nodes, args.repeat, homes)
    finally:
        homes.close()
    print("| query | median (range) | target | met |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
