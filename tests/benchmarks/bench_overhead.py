"""Per-task overhead of glasspane against raw ``dask.distributed`` futures.

A standalone script, not a pytest module. In one process it starts a
``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` and runs two DAGs of
no-op tasks:

- fan-out: one source task feeding ``--tasks`` independent tasks (``--tasks + 1`` tasks);
- chain: ``--chain`` tasks, each taking the previous one's output.

Each DAG runs

1. as raw Dask futures (one ``client.submit`` per task, chained futures for the chain);
2. through glasspane's dask executor, on the same cluster, with caching and lineage on;
   every run gets a fresh ``salt`` parameter so that no task is a cache hit;
3. through glasspane's threads executor (same salting);
4. as a fully cached rerun (a salt that already ran once: every task is a cache hit
   resolved on the driver, no executor involved).

Every variant runs once to warm up, then ``--repeat`` rounds run each variant once in turn
(interleaved, so background load does not favour one); the table shows the median wall
time divided by the number of tasks, a second table the range. glasspane's times are the
whole ``run_pipeline`` call: compile, plan, execute, record every event in SQLite, finish.
Runs and artifacts go to a temporary ``GLASSPANE_HOME``, deleted at the end unless
``--keep-home`` is given.

    python tests/benchmarks/bench_overhead.py --tasks 1000 --chain 200 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable


def source(salt: str) -> str:
    return salt


def leaf(src: str, i: int) -> str:
    return f"{src[:8]}-{i}"


def step(prev: str, i: int) -> str:
    return f"{prev[:8]}-{i}"


# -- raw dask ----------------------------------------------------------------------------------


def raw_fanout(client, n: int) -> None:
    from distributed import wait

    src = client.submit(source, uuid.uuid4().hex, pure=False)
    futures = [client.submit(leaf, src, i, pure=False) for i in range(n)]
    wait([src, *futures])


def raw_chain(client, n: int) -> None:
    from distributed import wait

    future = client.submit(source, uuid.uuid4().hex, pure=False)
    for i in range(1, n):
        future = client.submit(step, future, i, pure=False)
    wait(future)


# -- glasspane ---------------------------------------------------------------------------------


def glasspane_pipelines(n_fanout: int, n_chain: int):
    from glasspane import pipeline, task

    source_t, leaf_t, step_t = task(source), task(leaf), task(step)

    @pipeline
    def fanout(salt: str):
        src = source_t(salt)
        leaf_t.map(src, i=list(range(n_fanout)))

    @pipeline
    def chain(salt: str):
        x = source_t(salt)
        for i in range(1, n_chain):
            x = step_t(x, i)
        return x

    return fanout, chain


def run_glasspane(pipe, executor, salt: str | None = None) -> str:
    from glasspane.api import run_pipeline

    salt = salt or uuid.uuid4().hex
    run_pipeline(pipe, {"salt": salt}, executor=executor)
    return salt


# -- measuring ---------------------------------------------------------------------------------


def interleaved(variants: list[Callable[[], object]], repeat: int) -> list[list[float]]:
    """Seconds per call of each variant: one warm-up call each, then ``repeat`` rounds.

    Each round calls every variant once, so a burst of background load hits all of them
    rather than skewing one.
    """
    for fn in variants:
        fn()
    times: list[list[float]] = [[] for _ in variants]
    for _ in range(repeat):
        for fn, out in zip(variants, times):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1000, help="fan-out width")
    parser.add_argument("--chain", type=int, default=200, help="chain length")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per variant")
    parser.add_argument("--workers", type=int, default=2, help="dask worker processes")
    parser.add_argument(
        "--keep-home",
        action="store_true",
        help="keep the temporary GLASSPANE_HOME",
    )
    args = parser.parse_args(argv)

    home = tempfile.mkdtemp(prefix="glasspane-bench-")
    os.environ["GLASSPANE_HOME"] = home
    for var in (
        "GLASSPANE_DATABASE_URL",
        "GLASSPANE_ARTIFACT_ROOT",
        "GLASSPANE_EXECUTOR",
        "GLASSPANE_DASK_ADDRESS",
    ):
        os.environ.pop(var, None)

    from distributed import Client, LocalCluster

    from glasspane.execution.executors import ThreadsExecutor
    from glasspane.execution.executors.dask import DaskExecutor

    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=50,
    )
    client = Client(cluster)
    dask_executor = DaskExecutor()
    dask_executor._client = client  # glasspane on the very cluster the raw runs use
    threads = ThreadsExecutor()
    fanout, chain = glasspane_pipelines(args.tasks, args.chain)

    dags = [
        ("fan-out", args.tasks + 1, fanout, lambda: raw_fanout(client, args.tasks)),
        ("chain", args.chain, chain, lambda: raw_chain(client, args.chain)),
    ]
    rows: list[tuple[str, int, list[float], list[float], list[float], list[float]]] = []
    try:
        for name, n, pipe, raw in dags:
            print(f"{name}: {n} tasks ...", file=sys.stderr, flush=True)
            salt = run_glasspane(pipe, threads)  # the cached-rerun variant replays this one
            variants = [
                raw,
                lambda pipe=pipe: run_glasspane(pipe, dask_executor),
                lambda pipe=pipe: run_glasspane(pipe, threads),
                lambda pipe=pipe, salt=salt: run_glasspane(pipe, threads, salt),
            ]
            raw_t, gp_t, th_t, cached_t = interleaved(variants, args.repeat)
            rows.append((name, n, raw_t, gp_t, th_t, cached_t))
    finally:
        client.close()
        cluster.close()
        if args.keep_home:
            print(f"GLASSPANE_HOME kept at {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\n{args.workers} dask workers x 1 thread, {os.cpu_count()} cores, load average "
        f"{load}; median of {args.repeat} rounds after 1 warm-up, in ms per task "
        "(whole run / tasks)\n"
    )
    header = (
        "DAG",
        "tasks",
        "raw dask",
        "glasspane dask",
        "ratio",
        "glasspane threads",
        "cached rerun",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for name, n, *variants in rows:
        raw_ms, gp_ms, th_ms, cached_ms = (1000 * statistics.median(t) / n for t in variants)
        print(
            f"| {name} | {n} | {raw_ms:.2f} | {gp_ms:.2f} | {gp_ms / raw_ms:.2f}x | "
            f"{th_ms:.2f} | {cached_ms:.2f} |"
        )
    print("\nrange (min-max, ms per task):\n")
    print("| DAG | raw dask | glasspane dask | glasspane threads | cached rerun |")
    print("|---|---|---|---|---|")
    for name, n, *variants in rows:
        cells = [f"{1000 * min(t) / n:.2f}-{1000 * max(t) / n:.2f}" for t in variants]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
