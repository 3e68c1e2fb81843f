"""The ``expand`` section of bench_suite.py: a map whose length is known only at run time.

``task.map(expand(ref))`` against a static ``task.map`` of the same size and against raw
``dask.distributed`` futures, on one ``LocalCluster``, no-op elements:

- ``static``: ``reduce(leaf.map(source(salt), i=list(range(N))))``;
- ``expand``: ``reduce(leaf2.map(expand(indices(source(salt), N))))``, the same N elements
  from a list one task returns;
- ``raw``: one ``client.submit`` per element, then the reduce.

glasspane variants run on a new home each round (so nothing is a cache hit: checked), in
interleaved rounds after one warm-up. Then the fully cached rerun of the expand pipeline,
each in a fresh home that ran it once, in this process: its seconds and whether the dask
executor connected to a cluster for it (it must not: a fully cached expansion is resolved
on the driver).

    python tests/benchmarks/bench_expand.py --n 5000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from typing import Any

TARGET = 1.25  # expand / static map on the dask executor, the ceiling


def source(salt: str) -> str:
    return salt[:12]


def leaf(src: str, i: int) -> str:
    return f"{src[:8]}-{i}"


def indices(src: str, n: int) -> list[tuple[str, int]]:
    return [(src, i) for i in range(n)]


def leaf_of(pair: tuple[str, int]) -> str:
    return f"{pair[0][:8]}-{pair[1]}"


def reduce_all(parts: list[str]) -> int:
    return len(parts)


def pipelines(n: int) -> tuple[Any, Any]:
    from glasspane import expand, pipeline, task

    source_t, leaf_t, indices_t = task(source), task(leaf), task(indices)
    leaf_of_t, reduce_t = task(leaf_of), task(reduce_all)

    @pipeline
    def static_map(salt: str):
        return reduce_t(leaf_t.map(source_t(salt), i=list(range(n))))

    @pipeline
    def expanded(salt: str):
        return reduce_t(leaf_of_t.map(expand(indices_t(source_t(salt), n))))

    return static_map, expanded


def raw(client: Any, n: int) -> None:
    src = client.submit(source, "s" + uuid.uuid4().hex, pure=False)
    leaves = [client.submit(leaf, src, i, pure=False) for i in range(n)]
    client.submit(reduce_all, leaves, pure=False).result()


def bench(n: int, repeat: int, homes: Any, client: Any) -> list[list[str]]:
    from glasspane.api import run_pipeline
    from glasspane.execution.executors.dask import DaskExecutor

    executor = DaskExecutor()
    executor._client = client  # glasspane on the very cluster raw Dask uses
    static_map, expanded = pipelines(n)

    def glasspane(pipe: Any) -> Any:
        def prepare() -> Any:
            settings, salt = homes.fresh(), "s" + uuid.uuid4().hex

            def call() -> None:
                result = run_pipeline(pipe, {"salt": salt}, executor=executor, settings=settings)
                if result.state != "succeeded" or any(t.cached for t in result.tasks):
                    raise RuntimeError(f"{pipe.name}: {result.state}, or a cache hit")

            return call

        return prepare

    def raw_variant() -> Any:
        return lambda: raw(client, n)

    variants = {"raw": raw_variant, "static": glasspane(static_map), "expand": glasspane(expanded)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for name, prepare in variants.items():  # warm-up
        print(f"expand:{n} warm-up {name} ...", file=sys.stderr, flush=True)
        prepare()()
    for round_ in range(repeat):
        for name, prepare in variants.items():
            print(f"expand:{n} round {round_ + 1} {name} ...", file=sys.stderr, flush=True)
            call = prepare()
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    cached: list[float] = []
    connected = []
    for _ in range(repeat):
        settings, salt = homes.fresh(), "s" + uuid.uuid4().hex
        run_pipeline(expanded, {"salt": salt}, executor=executor, settings=settings)
        fresh = DaskExecutor()  # not connected: only a run that needs a cluster connects
        start = time.perf_counter()
        result = run_pipeline(expanded, {"salt": salt}, executor=fresh, settings=settings)
        cached.append(time.perf_counter() - start)
        connected.append(fresh._client is not None)
        if not all(t.cached for t in result.tasks):
            raise RuntimeError("the cached rerun ran something")
    med = {name: statistics.median(values) for name, values in times.items()}
    ratio = med["expand"] / med["static"]

    def row(name: str, label: str) -> list[str]:
        values = times[name]
        return [label, f"{med[name]:.2f} s ({min(values):.2f}-{max(values):.2f})"]

    return [
        [*row("raw", f"raw Dask futures, map:{n}"), "-", "-"],
        [*row("static", f"glasspane dask, static map:{n}"), "-", "-"],
        [
            *row("expand", f"glasspane dask, expand:{n}"),
            f"<= {TARGET}x the static map",
            f"{ratio:.2f}x {'yes' if ratio <= TARGET else '**no**'}",
        ],
        [
            f"fully cached rerun, expand:{n}",
            f"{statistics.median(cached):.2f} s ({min(cached):.2f}-{max(cached):.2f})",
            "< 1 s, no cluster",
            f"{'yes' if statistics.median(cached) < 1 and not any(connected) else '**no**'}"
            f" (cluster connected: {any(connected)})",
        ],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from bench_suite import Homes  # type: ignore[import-not-found]
    from distributed import Client, LocalCluster

    homes = Homes()
    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    )
    try:
        with Client(cluster, set_as_default=False) as client:
            rows = bench(args.n, args.repeat, homes, client)
    finally:
        cluster.close()
        homes.close()
    print("| workload | median (range) | target | met |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
