"""The ``skew`` section of bench_suite.py: maps whose elements take very different times.

Batching many elements into one Dask task must never make a map slower than submitting
each element to Dask on its own, whatever the spread of durations and however many runs
the process has done. Three workloads, each a source, a map of N ``spin`` elements that
sleep for their given duration, and one reduce over the list:

- ``skew:N``: 8 adjacent elements in the middle take ``--slow`` seconds (0.5), the rest 1 ms;
- ``tail:N``: heavy-tailed durations, 1 ms × Pareto(α = 1.1), capped at 2 s, from a fixed
  seed (for N = 1000: 6.6 s in all, the longest 1.5 s, the median 1.9 ms);
- ``newslow:N``: the durations of ``skew:N``, in a home whose earlier runs saw every element
  take 1 ms: the store says the map is short, and this run 8 elements are not.

Each runs, in interleaved rounds after one warm-up round, as raw ``dask.distributed``
futures (one ``client.submit`` per element) and through glasspane's dask executor on the same
``LocalCluster``: at first sight (a new home, no history), after ``--warm-runs`` earlier runs
in the same process and home, and in a second process (a fresh interpreter connected to the
same cluster, the same home), which also reports the batches it plans; the table says
whether both processes planned the same ones. ``newslow`` runs glasspane once per round, in
a new home that first ran the map ``--warm-runs`` times with every element at 1 ms. For
reference, each workload also runs with batching off (one Dask task per element, a new home):
glasspane's own cost per element, which batching does not add but can only amortize.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

FAST = 0.001
TARGET = 1.10  # glasspane / raw Dask, the ceiling
MIDDLE_SLOW = 8

# -- task bodies (module level; pickled by value, the workers cannot import this module) ------


def origin(salt: str) -> str:
    return salt[:12]


def spin(src: str, i: int, seconds: float) -> str:
    time.sleep(seconds)
    return f"{src[:8]}-{i}"


def count(parts: list[str]) -> int:
    return len(parts)


def durations(profile: str, n: int, slow: float) -> list[float]:
    """Seconds each element sleeps: ``flat``, ``skew`` or ``tail`` (see the docstring)."""
    if profile == "flat":
        return [FAST] * n
    if profile == "skew":
        first = max(0, n // 2 - MIDDLE_SLOW // 2)
        return [slow if first <= i < first + MIDDLE_SLOW else FAST for i in range(n)]
    rng = random.Random(0)
    return [min(2.0, FAST * rng.paretovariate(1.1)) for _ in range(n)]


def make_pipeline() -> Any:
    from glasspane import pipeline, task

    origin_t, spin_t, count_t = task(origin), task(spin), task(count)

    @pipeline
    def skewed(salt: str, n: int, profile: str = "flat", slow: float = 0.5):
        seconds = durations(profile, n, slow)
        return count_t(spin_t.map(origin_t(salt), i=list(range(n)), seconds=seconds))

    return skewed


def ship_by_value() -> None:
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def new_salt() -> str:
    return "s" + uuid.uuid4().hex


def raw_map(client: Any, seconds: list[float]) -> None:
    from distributed import wait

    src = client.submit(origin, new_salt(), pure=False)
    parts = [client.submit(spin, src, i, s, pure=False) for i, s in enumerate(seconds)]
    wait(client.submit(count, parts, pure=False))


def run(pipe: Any, executor: Any, settings: Any, params: dict[str, Any]) -> None:
    from glasspane.api import run_pipeline

    params = {**params, "salt": new_salt()}
    result = run_pipeline(pipe, params, executor=executor, settings=settings)
    if any(t.cached for t in result.tasks) or result.state != "succeeded":
        raise RuntimeError(f"run {result.run_id}: {result.state}, or a cache hit")


def planned(pipe: Any, settings: Any, params: dict[str, Any], slots: int) -> list[int]:
    """The batch sizes glasspane plans for this run from the store as it is now."""
    from glasspane.api import artifact_store, metadata_store
    from glasspane.execution.fusion import assign_estimates, batch_siblings, fuse_chains
    from glasspane.execution.planner import plan_run

    graph = pipe.compile(**{**params, "salt": "plan"})
    jobs = plan_run(graph, "plan", artifact_store(settings)).jobs
    assign_estimates(jobs, metadata_store(settings).task_durations(graph.pipeline))
    want = {ref.node for ref in graph.output_refs()}
    return [len(b) for b in batch_siblings(fuse_chains(jobs, want), want, slots)]


def child_run(job: dict[str, Any]) -> dict[str, Any]:
    """In a fresh interpreter: plan and time one run from the store of ``job["home"]``."""
    from distributed import Client

    from glasspane.api import metadata_store
    from glasspane.config import Settings
    from glasspane.execution.executors.dask import DaskExecutor

    ship_by_value()
    client = Client(job["address"], set_as_default=False)
    try:
        executor = DaskExecutor()
        executor._client = client
        settings = Settings(home=job["home"])
        metadata_store(settings)
        pipe = make_pipeline()
        plan = planned(pipe, settings, job["params"], job["slots"])
        start = time.perf_counter()
        run(pipe, executor, settings, job["params"])
        return {"seconds": time.perf_counter() - start, "plan": plan}
    finally:
        client.close()


# -- the section ---------------------------------------------------------------------------------


@contextlib.contextmanager
def batching_off() -> Iterator[None]:
    """Plan every element as a Dask task of its own (a reference: glasspane's own cost per
    element, without what batching saves)."""
    from glasspane.execution import fusion

    saved = fusion.SHORT_UNIT, fusion.UNKNOWN_SPREAD
    fusion.SHORT_UNIT, fusion.UNKNOWN_SPREAD = 0.0, 10**9
    try:
        yield
    finally:
        fusion.SHORT_UNIT, fusion.UNKNOWN_SPREAD = saved


def med(times: list[float]) -> float:
    return statistics.median(times)


def span(times: list[float]) -> str:
    return f"{1000 * min(times):.0f}-{1000 * max(times):.0f} ms"


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def bench_skew(
    args: argparse.Namespace,
    homes: Any,
    client: Any,
    child: Callable[[dict[str, Any], float], dict[str, Any] | None],
) -> list[list[str]]:
    """Rows of the skewed-map table (see the module docstring)."""
    from glasspane.api import metadata_store
    from glasspane.execution.executors.dask import DaskExecutor

    ship_by_value()
    executor = DaskExecutor()
    executor._client = client  # glasspane on the very cluster raw Dask uses
    slots = executor._slots(client)
    address = client.scheduler.address
    pipe = make_pipeline()
    rows: list[list[str]] = []

    def fresh() -> Any:
        settings = homes.fresh()
        metadata_store(settings)  # created and migrated before any clock starts
        return settings

    for kind, n in args.skews:
        label = f"{kind}:{n}"
        profile = "skew" if kind == "newslow" else kind
        params = {"n": n, "profile": profile, "slow": args.slow}
        seconds = durations(profile, n, args.slow)
        print(f"{label}: {n} elements, {sum(seconds):.1f} s of work ...", file=sys.stderr)
        times: dict[str, list[float]] = {k: [] for k in ("raw", "off", "first", "warm", "second")}
        plans: dict[str, list[int]] = {}
        same_plan = True
        warm = fresh()
        flat = {**params, "profile": "flat"}
        if kind != "newslow":
            for _ in range(args.warm_runs):
                run(pipe, executor, warm, params)
        for round_ in range(args.repeat + 1):  # round 0 warms everything up, untimed
            keep = round_ > 0
            took = timed(lambda seconds=seconds: raw_map(client, seconds))
            if keep:
                times["raw"].append(took)
            home = fresh()
            with batching_off():
                plans["off"] = planned(pipe, home, params, slots)
                took = timed(lambda home=home, params=params: run(pipe, executor, home, params))
            if keep:
                times["off"].append(took)
            if kind == "newslow":
                home = fresh()
                for _ in range(args.warm_runs):
                    run(pipe, executor, home, flat)
                plans["first"] = planned(pipe, home, params, slots)
                took = timed(lambda home=home, params=params: run(pipe, executor, home, params))
                if keep:
                    times["first"].append(took)
                continue
            home = fresh()
            plans["first"] = planned(pipe, home, params, slots)
            took = timed(lambda home=home, params=params: run(pipe, executor, home, params))
            if keep:
                times["first"].append(took)
            plans["warm"] = planned(pipe, warm, params, slots)
            took = timed(lambda warm=warm, params=params: run(pipe, executor, warm, params))
            if keep:
                times["warm"].append(took)
            here = planned(pipe, warm, params, slots)
            job = {"job": "skew", "address": address, "home": str(warm.home), "params": params}
            out = child({**job, "slots": slots}, args.rss_timeout)
            if out is None:
                raise RuntimeError(f"{label}: the second process timed out")
            same_plan = same_plan and out["plan"] == here
            plans["second"] = out["plan"]
            if keep:
                times["second"].append(out["seconds"])
        variants = (
            [("first", f"first slow run after {args.warm_runs} runs that saw it short")]
            if kind == "newslow"
            else [
                ("first", "first sight (no history)"),
                ("warm", f"after {args.warm_runs}+ runs in the same process"),
                ("second", "a second process, same store" + (" (same plan)" if same_plan else "")),
            ]
        )
        variants.append(("off", "for reference: batching off, first sight"))
        base = times["raw"]
        for key, name in variants:
            mine = times[key]
            ratio = med(mine) / med(base)
            batches = plans[key]
            rows.append(
                [
                    label,
                    name,
                    f"{1000 * med(base):.0f} ({span(base)})",
                    f"{1000 * med(mine):.0f} ({span(mine)})",
                    f"{ratio:.2f}x",
                    f"{len(batches)} ({max(batches)} largest)",
                    "-" if key == "off" else f"≤ {TARGET:.2f}x",
                    "-" if key == "off" else ("yes" if ratio <= TARGET else "**no**"),
                ]
            )
        if kind != "newslow" and not same_plan:
            rows[-1][1] += " (**plans differ**)"
    return rows


HEADER = [
    "workload",
    "glasspane",
    "Dask ms (range)",
    "glasspane ms (range)",
    "ratio",
    "Dask tasks planned (largest batch)",
    "target",
    "met",
]
