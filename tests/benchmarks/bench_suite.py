"""The performance suite: glasspane against Dask, start-up, caching, compiling and memory.

A standalone script, not a pytest module. One process run measures, each section
selectable with ``--only`` / ``--skip``:

- ``chain``, ``fan``, ``wide``: no-op DAGs run through raw Dask and through glasspane in
  interleaved rounds (every round runs each variant once, after one warm-up each):
  glasspane's dask executor against raw ``dask.distributed`` futures on the same
  ``LocalCluster``, and glasspane's threads executor against ``dask.threaded.get`` on a
  plain dict graph with as many threads. Every glasspane run gets a fresh
  ``GLASSPANE_HOME`` (created and migrated before the clock starts) and a fresh ``salt``
  parameter that reaches every task's inputs, so nothing is a cache hit (checked);
- ``cold``: ``glasspane run FILE:PIPELINE`` of a one-task pipeline as a whole process;
- ``import``: ``python -c "import glasspane"`` as a whole process, and the import alone;
- ``cached``: reruns of an already-run pipeline of ``--cached`` tasks (all cache hits);
- ``compile``: ``PipelineDef.compile`` of fan and chain pipelines of ``--compile`` nodes,
  each in a fresh subprocess with a timeout;
- ``rss``: the driver's peak RSS (``VmHWM`` of a fresh subprocess) running a
  fan of ``--rss-fan`` tasks on the dask executor, the same fan as raw Dask futures, and an
  ``expand`` map of as many elements;
  ``--big`` adds the fan:100000 run, which must stay under 4 GiB;
- ``curve``: the driver's peak RSS running fan:N on the dask executor for each N of
  ``--curve`` (1,000 to 100,000), each in a fresh subprocess, with the peak per 1,000 tasks
  (above the RSS before the run), so that growth faster than linear shows;
- ``growth``: RSS growth over ``--growth-runs`` consecutive runs of a fan:50 in one
  process, on the threads and on the dask executor;
- ``skew``: maps whose element durations differ widely (a few slow neighbours, a heavy
  tail, slow elements the store has only seen short), glasspane's dask executor against one
  Dask task per element, at first sight, after several runs and in a second process (see
  bench_skew.py);
- ``expand``: ``task.map(expand(ref))`` over ``--expand`` no-op elements against a static
  map of the same size and raw Dask futures on one cluster, and the fully cached expansion
  (which must not start a cluster; see bench_expand.py);
- ``queries``: the UI's reads on a SQLite store holding ``--query-runs`` runs and one real
  run of ``--query-nodes`` tasks: the first page of runs (filtered or not), a page by cursor,
  the big run's detail and its graph (see bench_queries.py).

It prints the machine and one markdown table per section, each figure beside the issue's
target where there is one. See docs/performance.md for what each figure means.

    python tests/benchmarks/bench_suite.py              # everything, the issue's sizes
    python tests/benchmarks/bench_suite.py --quick      # tiny sizes: a smoke check
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

SECTIONS = (
    "chain", "fan", "wide", "skew", "expand",
    "cold", "import", "cached", "compile", "rss", "curve", "growth", "queries",
)  # fmt: skip
GIB = 1024**3
MIB = 1024**2

# -- task bodies (trivial; module level so Dask workers can unpickle them) ----------------------


def source(salt: str, j: int = 0) -> str:
    return f"{salt[:12]}-{j}"


def leaf(src: str, i: int) -> str:
    return f"{src[:12]}-{i}"


def join(a: str, b: str, i: int) -> str:
    return f"{a[:6]}{b[:6]}-{i}"


def reduce_all(parts: list[str]) -> int:
    return len(parts)


def salt() -> str:
    return "s" + uuid.uuid4().hex  # the leading letter keeps `-p salt=...` a JSON string


# -- workloads -----------------------------------------------------------------------------------
# Each shape is built three ways with the same tasks: a glasspane pipeline, raw futures and a
# plain dict graph for dask.threaded (dask.delayed is superlinear to build on large graphs).


def parse_wide(spec: str) -> tuple[int, int]:
    layers, _, width = spec.lower().partition("x")
    return int(layers), int(width)


def n_tasks(kind: str, size: Any) -> int:
    if kind == "chain":
        return int(size)
    if kind == "fan":
        return int(size) + 2  # source, the mapped tasks, the reduce
    layers, width = size
    return layers * width


def make_pipeline(kind: str, size: Any) -> Any:
    from glasspane import pipeline, task

    source_t, leaf_t, join_t, reduce_t = task(source), task(leaf), task(join), task(reduce_all)

    if kind == "chain":

        @pipeline
        def chain(salt: str):
            x = source_t(salt)
            for i in range(1, size):
                x = leaf_t(x, i)
            return x

        return chain
    if kind == "fan":

        @pipeline
        def fan(salt: str):
            return reduce_t(leaf_t.map(source_t(salt), i=list(range(size))))

        return fan
    layers, width = size

    @pipeline
    def wide(salt: str):
        row = source_t.map(salt, j=list(range(width)))
        for k in range(1, layers):  # k * width + j: no two tasks share their inputs
            row = [join_t(row[j], row[(j + 1) % width], k * width + j) for j in range(width)]
        return row[0]

    return wide


def raw_futures(client: Any, kind: str, size: Any) -> None:
    from distributed import wait

    s = salt()
    if kind == "chain":
        future = client.submit(source, s, pure=False)
        for i in range(1, size):
            future = client.submit(leaf, future, i, pure=False)
        wait(future)
    elif kind == "fan":
        src = client.submit(source, s, pure=False)
        leaves = [client.submit(leaf, src, i, pure=False) for i in range(size)]
        wait(client.submit(reduce_all, leaves, pure=False))
    else:
        layers, width = size
        row = [client.submit(source, s, j, pure=False) for j in range(width)]
        for k in range(1, layers):
            row = [
                client.submit(join, row[j], row[(j + 1) % width], k * width + j, pure=False)
                for j in range(width)
            ]
        wait(row)


def dict_graph(kind: str, size: Any) -> tuple[dict[str, Any], list[str]]:
    s = salt()
    if kind == "chain":
        dsk: dict[str, Any] = {"c-0": (source, s)}
        for i in range(1, size):
            dsk[f"c-{i}"] = (leaf, f"c-{i - 1}", i)
        return dsk, [f"c-{size - 1}"]
    if kind == "fan":
        dsk = {"src": (source, s)}
        dsk.update({f"leaf-{i}": (leaf, "src", i) for i in range(size)})
        dsk["reduce"] = (reduce_all, [f"leaf-{i}" for i in range(size)])
        return dsk, ["reduce"]
    layers, width = size
    dsk = {f"w-0-{j}": (source, s, j) for j in range(width)}
    for k in range(1, layers):
        for j in range(width):
            dsk[f"w-{k}-{j}"] = (
                join,
                f"w-{k - 1}-{j}",
                f"w-{k - 1}-{(j + 1) % width}",
                k * width + j,
            )
    return dsk, [f"w-{layers - 1}-{j}" for j in range(width)]


# -- glasspane runs ------------------------------------------------------------------------------


class Homes:
    """Fresh ``GLASSPANE_HOME`` directories under one temporary root, removed on close."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="glasspane-suite-"))
        self._count = 0

    def fresh(self) -> Any:
        """Settings for a new, empty home whose database is already created (untimed)."""
        from glasspane.api import metadata_store
        from glasspane.config import Settings

        self._count += 1
        settings = Settings(home=self.root / f"home-{self._count}")
        metadata_store(settings)  # creates and migrates the database, kept for the process
        return settings

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def run_glasspane(pipe: Any, executor: Any, settings: Any, salt_: str, expect_cached: bool) -> Any:
    from glasspane.api import run_pipeline

    result = run_pipeline(pipe, {"salt": salt_}, executor=executor, settings=settings)
    cached = sum(t.cached for t in result.tasks)
    if cached != (len(result.tasks) if expect_cached else 0):
        raise RuntimeError(f"{cached} of {len(result.tasks)} tasks were cache hits")
    return result


# -- measuring -----------------------------------------------------------------------------------

Prepare = Callable[[], Callable[[], object]]


def interleaved(variants: list[Prepare], repeat: int) -> list[list[float]]:
    """Seconds per call of each variant: one warm-up each, then ``repeat`` rounds.

    A variant is a function doing the untimed set-up (a fresh home) and returning the call
    to time. Each round calls every variant once, so a burst of background load hits all of
    them rather than skewing one.
    """
    for prepare in variants:
        prepare()()
    times: list[list[float]] = [[] for _ in variants]
    for _ in range(repeat):
        for prepare, out in zip(variants, times):
            call = prepare()
            start = time.perf_counter()
            call()
            out.append(time.perf_counter() - start)
    return times


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def med(times: list[float]) -> float:
    return statistics.median(times)


def span(times: list[float], scale: float = 1.0, unit: str = "s") -> str:
    return f"{scale * min(times):.3g}-{scale * max(times):.3g} {unit}"


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "**no**")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLASSPANE_")}
    env.update(extra)
    return env


def child(job: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    """Run ``job`` in a fresh interpreter (this script, ``--child``); None on timeout.

    The child leads its own process group, so on timeout the Dask workers it started go
    with it: asked to stop first (its ``finally`` closes the cluster), then killed.
    """
    cmd = [sys.executable, __file__, "--child", json.dumps(job)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None
    if proc.returncode != 0:
        raise RuntimeError(f"child {job} failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def print_table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


# -- sections ------------------------------------------------------------------------------------

# (kind, size) the issue sets targets at: ratio ceilings glasspane / baseline
DASK_TARGETS = {("fan", 1000): 1.25, ("chain", 200): 0.35}
THREADS_TARGETS = {("fan", 1000): 2.0}


def bench_dags(args: argparse.Namespace, homes: Homes, cluster_client: Any) -> None:
    import dask.threaded

    from glasspane.execution.executors import ThreadsExecutor
    from glasspane.execution.executors.dask import DaskExecutor

    dask_executor = DaskExecutor()
    dask_executor._client = cluster_client  # glasspane on the very cluster raw Dask uses
    threads = ThreadsExecutor(args.threads)
    rows = []
    for kind, size in args.dags:
        label = f"{kind}:{'x'.join(map(str, size)) if kind == 'wide' else size}"
        n = n_tasks(kind, size)
        print(f"{label}: {n} tasks ...", file=sys.stderr, flush=True)
        pipe = make_pipeline(kind, size)

        def glasspane_variant(executor: Any, pipe: Any = pipe) -> Prepare:
            def prepare() -> Callable[[], object]:
                settings, s = homes.fresh(), salt()
                return lambda: run_glasspane(pipe, executor, settings, s, expect_cached=False)

            return prepare

        known = homes.fresh()  # one home for every run of this workload: it has a history

        def after_runs(pipe: Any = pipe, known: Any = known) -> Callable[[], object]:
            s = salt()
            return lambda: run_glasspane(pipe, dask_executor, known, s, expect_cached=False)

        def raw_dask(kind: str = kind, size: Any = size) -> Callable[[], object]:
            return lambda: raw_futures(cluster_client, kind, size)

        def raw_threaded(kind: str = kind, size: Any = size) -> Callable[[], object]:
            dsk, keys = dict_graph(kind, size)  # built untimed, like the glasspane home
            return lambda: dask.threaded.get(dsk, keys, num_workers=args.threads)

        raw_t, gp_t, first_t, thr_t, gpth_t = interleaved(
            [
                raw_dask,
                after_runs,  # its warm-up run is the first of its history
                glasspane_variant(dask_executor),  # a new home: no history, first sight
                raw_threaded,
                glasspane_variant(threads),
            ],
            args.repeat,
        )
        for executor, base, mine, targets in (
            ("dask", raw_t, gp_t, DASK_TARGETS),
            ("dask, first sight", raw_t, first_t, {}),
            ("threads", thr_t, gpth_t, THREADS_TARGETS),
        ):
            ratio = med(mine) / med(base)
            ms_task = 1000 * med(mine) / n
            ceiling = targets.get((kind, size))
            target, ok = "-", None
            if ceiling is not None:
                target, ok = f"≤ {ceiling}x", ratio <= ceiling
                if kind == "chain":
                    target += ", ≤ 2 ms/task"
                    ok = ok and ms_task <= 2.0
            rows.append(
                [
                    label,
                    str(n),
                    executor,
                    f"{1000 * med(base):.0f} ({span(base, 1000, 'ms')})",
                    f"{1000 * med(mine):.0f} ({span(mine, 1000, 'ms')})",
                    f"{ms_task:.2f}",
                    f"{ratio:.2f}x",
                    target,
                    verdict(ok),
                ]
            )
    print(
        f"\n### DAGs: glasspane / Dask (median of {args.repeat} interleaved rounds after one "
        f"warm-up; {args.workers} dask workers x 1 thread; {args.threads} threads)\n"
    )
    print_table(
        [
            "workload",
            "tasks",
            "executor",
            "Dask ms (range)",
            "glasspane ms (range)",
            "glasspane ms/task",
            "ratio",
            "target",
            "met",
        ],
        rows,
    )


PIPELINE_FILE = """\
from glasspane import pipeline, task


@task
def one(salt: str) -> str:
    return salt[::-1]


@pipeline
def single(salt: str = "s"):
    return one(salt)
"""


def bench_cold(args: argparse.Namespace, homes: Homes) -> list[list[str]]:
    exe = Path(sys.executable).with_name("glasspane")
    if not exe.exists():
        exe = Path(shutil.which("glasspane") or "glasspane")
    workdir = homes.root / "cold"
    workdir.mkdir()
    file = workdir / "single.py"
    file.write_text(PIPELINE_FILE)
    times = []
    for i in range(args.cold_repeat + 1):  # the first warms the OS file cache, untimed
        home = homes.root / f"cold-home-{i}"
        cmd = [str(exe), "run", f"{file}:single", "--executor", "threads", "-p", f"salt={salt()}"]
        start = time.perf_counter()
        done = subprocess.run(
            cmd, cwd=workdir, env=clean_env(GLASSPANE_HOME=str(home)), capture_output=True
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr.decode()[-3000:]}")
        if i:
            times.append(elapsed)
    return [
        [
            "cold `glasspane run` (one task, threads, fresh home)",
            f"{med(times):.2f} s ({span(times)})",
            "< 2 s",
            verdict(med(times) < 2),
        ]
    ]


def bench_import(args: argparse.Namespace, homes: Homes) -> list[list[str]]:
    code = "import time; t = time.perf_counter(); import glasspane; print(time.perf_counter() - t)"
    whole, inner = [], []
    for i in range(args.cold_repeat + 1):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=homes.root,
            env=clean_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        elapsed = time.perf_counter() - start
        if i:  # the first warms the OS file cache, untimed
            whole.append(elapsed)
            inner.append(float(out))
    return [
        [
            '`python -c "import glasspane"` (whole process)',
            f"{med(whole):.3f} s ({span(whole)})",
            "-",
            "-",
        ],
        [
            "`import glasspane` (in a fresh process)",
            f"{med(inner):.3f} s ({span(inner)})",
            "< 0.3 s",
            verdict(med(inner) < 0.3),
        ],
    ]


def bench_cached(args: argparse.Namespace, homes: Homes) -> list[list[str]]:
    from glasspane.execution.executors import ThreadsExecutor

    n = args.cached
    pipe = make_pipeline("fan", n - 2)
    settings, s = homes.fresh(), salt()
    executor = ThreadsExecutor(args.threads)
    run_glasspane(pipe, executor, settings, s, expect_cached=False)
    run_glasspane(pipe, executor, settings, s, expect_cached=True)  # warm-up
    times = timed(lambda: run_glasspane(pipe, executor, settings, s, True), args.repeat)
    ok = med(times) < 1 if n == 1000 else None
    return [
        [
            f"fully cached rerun, fan of {n} tasks",
            f"{med(times):.3f} s ({span(times)})",
            "< 1 s at 1,000 tasks",
            verdict(ok),
        ]
    ]


def bench_compile(args: argparse.Namespace) -> list[list[str]]:
    rows = []
    for n in args.compile:
        for kind in ("fan", "chain"):
            print(f"compile {kind}:{n} ...", file=sys.stderr, flush=True)
            out = child({"job": "compile", "kind": kind, "n": n}, args.compile_timeout)
            target, ok = ("< 1 s", None) if n == 10_000 else ("-", None)
            if out is None:
                value = f"timed out after {args.compile_timeout:.0f} s"
                ok = False if n == 10_000 else None
            else:
                value = f"{out['seconds']:.2f} s ({out['nodes']} nodes)"
                if n == 10_000:
                    ok = out["seconds"] < 1
            rows.append([f"compile {kind}:{n}", value, target, verdict(ok)])
    return rows


def bench_rss(args: argparse.Namespace) -> list[list[str]]:
    rows = []
    sizes = [(args.rss_fan, args.rss_timeout)]
    if args.big:
        sizes.append((100_000, args.big_timeout))
    for n, timeout in sizes:
        for variant in ("raw", "glasspane", "expand"):
            print(f"peak RSS {variant} fan:{n} ...", file=sys.stderr, flush=True)
            job = {"job": "rss", "variant": variant, "n": n, "workers": args.workers}
            out = child(job, timeout)
            target, ok = "-", None
            if variant == "glasspane" and n == 100_000:
                target = "completes, < 4 GiB"
            if out is None:
                value = f"timed out after {timeout:.0f} s"
                ok = False if target != "-" else None
            else:
                value = (
                    f"{out['peak'] / MIB:.0f} MiB peak ({out['before'] / MIB:.0f} MiB before "
                    f"the run; run {out['seconds']:.1f} s)"
                )
                if target != "-":
                    ok = out["peak"] < 4 * GIB
            label = {
                "raw": f"raw Dask futures, fan:{n}",
                "glasspane": f"glasspane dask, fan:{n}",
                "expand": f"glasspane dask, expand:{n}",
            }[variant]
            rows.append([f"driver peak RSS, {label}", value, target, verdict(ok)])
    return rows


#: the driver's peak RSS the issue sets at fan:100000 (MB = 10^6 bytes, as the issue says)
CURVE_TARGET_MB = 500


def bench_curve(args: argparse.Namespace) -> list[list[str]]:
    """Peak driver RSS of fan:N on the dask executor for each N of ``--curve``, each in a
    fresh subprocess (the ``rss`` job). The MiB per 1,000 tasks is the peak less the RSS
    before the run, over N / 1,000: flat when memory grows linearly."""
    rows = []
    for n in args.curve:
        print(f"memory curve fan:{n} ...", file=sys.stderr, flush=True)
        job = {"job": "rss", "variant": "glasspane", "n": n, "workers": args.workers}
        timeout = args.big_timeout if n > args.rss_fan else args.rss_timeout
        out = child(job, timeout)
        target, ok = "-", None
        if n == 100_000:
            target = f"≤ {CURVE_TARGET_MB} MB"
        if out is None:
            rows.append([f"fan:{n}", f"timed out after {timeout:.0f} s", "", "", "", target])
            rows[-1].append(verdict(False if target != "-" else None))
            continue
        if target != "-":
            ok = out["peak"] <= CURVE_TARGET_MB * 1e6
        grown = out["peak"] - out["before"]
        rows.append(
            [
                f"fan:{n}",
                f"{out['peak'] / MIB:.0f} MiB ({out['peak'] / 1e6:.0f} MB)",
                f"{out['before'] / MIB:.0f} MiB",
                f"{out['seconds']:.1f} s",
                f"{grown / MIB / (n / 1000):.1f} MiB",
                target,
                verdict(ok),
            ]
        )
    return rows


CURVE_HEADER = [
    "workload", "driver peak RSS", "RSS before the run", "run", "peak - before, per 1,000 tasks",
    "target", "met",
]  # fmt: skip


def bench_growth(args: argparse.Namespace) -> list[list[str]]:
    rows = []
    for executor in ("threads", "dask"):
        print(f"RSS growth, {executor} ...", file=sys.stderr, flush=True)
        job = {
            "job": "growth",
            "executor": executor,
            "n": 50,
            "runs": args.growth_runs,
            "workers": args.workers,
            "threads": args.threads,
        }
        out = child(job, args.rss_timeout)
        target, ok = ("< 50 MB at 100 runs", None)
        if out is None:
            value = f"timed out after {args.rss_timeout:.0f} s"
        else:
            growth = (out["last"] - out["first"]) / 1e6
            value = (
                f"{growth:+.1f} MB ({out['first'] / 1e6:.0f} -> {out['last'] / 1e6:.0f} MB; "
                f"{1000 * out['seconds'] / args.growth_runs:.0f} ms/run)"
            )
            if args.growth_runs == 100:
                ok = growth < 50
        rows.append(
            [f"RSS growth, run 1 -> run {args.growth_runs}, fan:50, {executor}", value, target]
            + [verdict(ok)]
        )
    return rows


# -- child jobs (fresh interpreters) -------------------------------------------------------------


def max_rss() -> int:
    """This process's peak resident memory, in bytes.

    On Linux, ``VmHWM`` of the process's own memory: ``getrusage``'s ``ru_maxrss`` survives
    ``exec``, so a child started by a large parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def local_cluster(workers: int) -> tuple[Any, Any]:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=50,
    )
    return cluster, Client(cluster)


def child_main(job: dict[str, Any]) -> dict[str, Any]:
    # a timed-out child is sent SIGTERM: exit through the finally that closes the cluster
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if job["job"] == "skew":
        from bench_skew import child_run

        return child_run(job)
    if job["job"] == "compile":
        make_pipeline("chain", 2).compile(salt="warm-up")  # lazy imports, outside the clock
        pipe = make_pipeline(job["kind"], job["n"] if job["kind"] == "chain" else job["n"] - 2)
        start = time.perf_counter()
        graph = pipe.compile(salt=salt())
        return {"seconds": time.perf_counter() - start, "nodes": len(graph.nodes)}

    import psutil

    homes = Homes()
    cluster = client = None
    try:
        if job["job"] == "rss":
            from glasspane.execution.executors.dask import DaskExecutor

            cluster, client = local_cluster(job["workers"])
            n = job["n"]
            if job["variant"] == "raw":
                call: Callable[[], object] = lambda: raw_futures(client, "fan", n)  # noqa: E731
            else:
                from bench_expand import pipelines

                executor = DaskExecutor()
                executor._client = client
                settings = homes.fresh()
                pipe = pipelines(n)[1] if job["variant"] == "expand" else make_pipeline("fan", n)
                call = lambda: run_glasspane(pipe, executor, settings, salt(), False)  # noqa: E731
            gc.collect()
            before = psutil.Process().memory_info().rss
            start = time.perf_counter()
            call()
            return {"seconds": time.perf_counter() - start, "before": before, "peak": max_rss()}

        from glasspane.execution.executors import ThreadsExecutor
        from glasspane.execution.executors.dask import DaskExecutor

        if job["executor"] == "dask":
            cluster, client = local_cluster(job["workers"])
            executor = DaskExecutor()
            executor._client = client
        else:
            executor = ThreadsExecutor(job["threads"])
        settings, pipe = homes.fresh(), make_pipeline("fan", job["n"])
        first = 0
        start = time.perf_counter()
        for i in range(job["runs"]):
            run_glasspane(pipe, executor, settings, salt(), expect_cached=False)
            if i == 0:
                gc.collect()
                first = psutil.Process().memory_info().rss
        seconds = time.perf_counter() - start
        gc.collect()
        return {"first": first, "last": psutil.Process().memory_info().rss, "seconds": seconds}
    finally:
        if client is not None:
            client.close()
            cluster.close()
        homes.close()


# -- main ----------------------------------------------------------------------------------------


def machine() -> str:
    import dask
    import distributed

    import glasspane

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, load average {load}; Python {platform.python_version()}, "
        f"dask {dask.__version__}, distributed {distributed.__version__}, glasspane "
        f"{glasspane.__version__}; {platform.platform()}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="Sections: " + ", ".join(SECTIONS) + ". See docs/performance.md.",
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--skip", default="", help="comma-separated sections to leave out")
    parser.add_argument("--chain", default="200", help="chain lengths, comma-separated")
    parser.add_argument("--fan", default="1000", help="fan widths (mapped tasks), comma-separated")
    parser.add_argument("--wide", default="10x100", help="LAYERSxWIDTH, comma-separated")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="dask worker processes")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for glasspane's threads executor and dask.threaded "
        "(default: the threads executor's default)",
    )
    parser.add_argument("--cold-repeat", type=int, default=5, help="cold runs and imports")
    parser.add_argument("--cached", type=int, default=1000, help="tasks in the cached rerun")
    parser.add_argument(
        "--compile", default="10000,100000", help="node counts to compile, comma-separated"
    )
    parser.add_argument("--compile-timeout", type=float, default=300, help="seconds per compile")
    parser.add_argument("--rss-fan", type=int, default=10_000, help="fan width for peak RSS")
    parser.add_argument("--rss-timeout", type=float, default=600, help="seconds per RSS job")
    parser.add_argument("--big", action="store_true", help="also the fan:100000 peak RSS run")
    parser.add_argument("--big-timeout", type=float, default=3600, help="seconds for --big")
    parser.add_argument(
        "--curve",
        default="1000,3000,10000,30000,100000",
        help="fan widths of the memory curve, comma-separated",
    )
    parser.add_argument("--growth-runs", type=int, default=100, help="runs for RSS growth")
    parser.add_argument(
        "--skew",
        default="skew:200,tail:1000,newslow:200",
        help="skewed maps KIND:N (skew, tail, newslow), comma-separated",
    )
    parser.add_argument("--expand", type=int, default=5000, help="elements of the expand map")
    parser.add_argument("--query-runs", type=int, default=10_000, help="runs the queries read")
    parser.add_argument("--query-nodes", type=int, default=5000, help="tasks of the big run")
    parser.add_argument("--slow", type=float, default=0.5, help="seconds of a slow element")
    parser.add_argument(
        "--warm-runs", type=int, default=3, help="runs before the skewed maps' later runs"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke check")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.child:
        return args
    if args.quick:
        args.chain, args.fan, args.wide, args.compile = "20", "50", "3x10", "1000"
        args.repeat, args.cold_repeat, args.cached = 2, 2, 100
        args.rss_fan, args.growth_runs, args.curve = 500, 5, "200,500,1000"
        args.skew, args.slow, args.warm_runs = "skew:40,tail:200,newslow:40", 0.2, 2
        args.expand = 200
        args.query_runs, args.query_nodes = 500, 300
    chosen = {s.strip() for s in args.only.split(",") if s.strip()}
    chosen -= {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = chosen - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    args.sections = chosen
    args.dags = [("chain", int(n)) for n in args.chain.split(",") if "chain" in chosen]
    args.dags += [("fan", int(n)) for n in args.fan.split(",") if "fan" in chosen]
    args.dags += [("wide", parse_wide(w)) for w in args.wide.split(",") if "wide" in chosen]
    args.compile = [int(n) for n in args.compile.split(",") if n.strip()]
    args.curve = [int(n) for n in args.curve.split(",") if n.strip()]
    args.skews = []
    if "skew" in chosen:
        for spec in args.skew.split(","):
            kind, _, n = spec.strip().partition(":")
            if kind not in ("skew", "tail", "newslow") or not n.isdigit():
                raise SystemExit(f"--skew takes KIND:N with KIND skew, tail or newslow, not {spec}")
            args.skews.append((kind, int(n)))
    if args.threads is None:
        from glasspane.execution.executors import ThreadsExecutor

        args.threads = ThreadsExecutor().max_workers
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child_main(json.loads(args.child))))
        return 0
    for var in [k for k in os.environ if k.startswith("GLASSPANE_")]:
        del os.environ[var]  # only the homes this script creates
    print(f"Machine: {machine()}\n", flush=True)
    homes = Homes()
    rows: list[list[str]] = []
    try:
        if args.dags:
            cluster, client = local_cluster(args.workers)
            try:
                bench_dags(args, homes, client)
            finally:
                client.close()
                cluster.close()
        if args.skews:
            from bench_skew import HEADER, bench_skew

            cluster, client = local_cluster(args.workers)
            try:
                skew_rows = bench_skew(args, homes, client, child)
            finally:
                client.close()
                cluster.close()
            print(
                f"\n### Skewed maps: glasspane / one Dask task per element (median of "
                f"{args.repeat} interleaved rounds after one warm-up; {args.workers} dask "
                "workers x 1 thread)\n"
            )
            print_table(HEADER, skew_rows)
        if "expand" in args.sections:
            from bench_expand import bench as bench_expand

            cluster, client = local_cluster(args.workers)
            try:
                expand_rows = bench_expand(args.expand, args.repeat, homes, client)
            finally:
                client.close()
                cluster.close()
            print(
                f"\n### expand: a map known only at run time (median of {args.repeat} "
                f"interleaved rounds after one warm-up; {args.workers} dask workers x 1 thread)\n"
            )
            print_table(["workload", "median (range)", "target", "met"], expand_rows)
        if "curve" in args.sections:
            print("curve ...", file=sys.stderr, flush=True)
            curve_rows = bench_curve(args)
            print(
                "\n### Memory curve: the driver's peak RSS (VmHWM of a fresh subprocess: the "
                f"LocalCluster's scheduler, not its {args.workers} workers) running fan:N on the "
                "dask executor\n"
            )
            print_table(CURVE_HEADER, curve_rows)
        if "queries" in args.sections:
            from bench_queries import bench as bench_queries

            print("queries ...", file=sys.stderr, flush=True)
            query_rows = bench_queries(args.query_runs, args.query_nodes, args.repeat, homes)
            print(
                f"\n### Queries on SQLite (median of {args.repeat} after one warm-up; "
                f"{args.query_runs} runs and one of {args.query_nodes} tasks)\n"
            )
            print_table(["query", "median (range)", "target", "met"], query_rows)
        steps: list[tuple[str, Callable[[], list[list[str]]]]] = [
            ("cold", lambda: bench_cold(args, homes)),
            ("import", lambda: bench_import(args, homes)),
            ("cached", lambda: bench_cached(args, homes)),
            ("compile", lambda: bench_compile(args)),
            ("rss", lambda: bench_rss(args)),
            ("growth", lambda: bench_growth(args)),
        ]
        for name, step in steps:
            if name in args.sections:
                print(f"{name} ...", file=sys.stderr, flush=True)
                rows += step()
    finally:
        homes.close()
    if rows:
        print(
            f"### Start-up, caching, compiling, memory (cold and import: median of "
            f"{args.cold_repeat} after one untimed; cached: median of {args.repeat} after one "
            "warm-up; compile and RSS: one run each in a fresh process)\n"
        )
        print_table(["measurement", "value", "target", "met"], rows)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"Load average at the end: {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
