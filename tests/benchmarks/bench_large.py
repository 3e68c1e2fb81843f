"""Large outputs: glasspane against the floor of writing each output once and reading it once.

A standalone script, not a pytest module (``--only large`` of bench_suite.py runs it too).
Three workloads, each a three-task pipeline ``make -> derive -> summarise`` whose first two
outputs are large:

- ``frame``: a ``--rows`` x 5 float64 DataFrame (10,000,000 rows: 400 MB), then the same
  frame with a derived sixth column, then a small dict of column means;
- ``array``: the same numbers as a NumPy array, then the array with the derived column;
- ``model``: a scikit-learn ``KNeighborsRegressor`` (brute force) fitted on ``--model-rows``
  x 5 rows (it keeps its training data: 8,000,000 rows pickle to 384 MB), then the model
  with one more fitted attribute, then its predictions for 10 rows.

The **floor** runs the same three functions in this process and, for each large output,
writes it once and reads it back once, as the store's materializer would (Parquet through
pyarrow for frames, ``.npy`` for arrays, a pickle for the model), in a directory on the
same disk as the glasspane homes. glasspane runs the pipeline on the threads executor and on
the dask executor (a ``LocalCluster`` of 2 worker processes, 1 thread each), each run in a
new home with a new seed, so nothing is a cache hit (checked). Rounds are interleaved, one
warm-up round first.

Before each call the file system is synced (untimed), so no call pays for the writeback of
the one before. Peak memory: before each call the peak resident set (``VmHWM``) of this
process, and of each Dask worker, is reset (``echo 5 > /proc/PID/clear_refs``); after it,
the peak above the RSS just before. For dask, the peak of the busiest worker and the
driver's own.

    python tests/benchmarks/bench_large.py                   # the issue's sizes
    python tests/benchmarks/bench_large.py --rows 1000000 --model-rows 200000 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glasspane import pipeline, task

MB = 1_000_000
WORKLOADS = ("frame", "array", "model")


# -- the workloads: plain functions, wrapped as tasks below ------------------------------------


def make_frame(rows: int, seed: int) -> Any:
    import numpy as np
    import pandas as pd

    data = np.random.default_rng(seed).standard_normal((rows, 5))
    return pd.DataFrame(data, columns=["a", "b", "c", "d", "e"])


def derive_frame(df: Any) -> Any:
    return df.assign(f=df["a"] * 2.0 + df["b"])


def summarise_frame(df: Any) -> dict[str, float]:
    return {str(k): float(v) for k, v in df.mean().items()}


def make_array(rows: int, seed: int) -> Any:
    import numpy as np

    return np.random.default_rng(seed).standard_normal((rows, 5))


def derive_array(x: Any) -> Any:
    import numpy as np

    return np.column_stack([x, x[:, 0] * 2.0 + x[:, 1]])


def summarise_array(x: Any) -> list[float]:
    return [float(v) for v in x.mean(axis=0)]


def make_model(rows: int, seed: int) -> Any:
    import numpy as np
    from sklearn.neighbors import KNeighborsRegressor

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 5))
    return KNeighborsRegressor(n_neighbors=3, algorithm="brute").fit(x, x.sum(axis=1))


def derive_model(model: Any) -> Any:
    model.glasspane_checked_ = True  # a new fitted attribute: a new value, as large
    return model


def summarise_model(model: Any) -> list[float]:
    import numpy as np

    return [float(v) for v in model.predict(np.ones((10, 5)))]


BODIES: dict[str, tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]] = {
    "frame": (make_frame, derive_frame, summarise_frame),
    "array": (make_array, derive_array, summarise_array),
    "model": (make_model, derive_model, summarise_model),
}


@task
def make_t(kind: str, rows: int, seed: int) -> Any:
    return BODIES[kind][0](rows, seed)


@task
def derive_t(kind: str, value: Any) -> Any:
    return BODIES[kind][1](value)


@task
def summarise_t(kind: str, value: Any) -> Any:
    return BODIES[kind][2](value)


@pipeline
def large(kind: str = "frame", rows: int = 1000, seed: int = 0):
    return summarise_t(kind, derive_t(kind, make_t(kind, rows, seed)))


# -- the floor: each large output written once and read once -----------------------------------


def write_read(kind: str, value: Any, path: Path) -> Any:
    if kind == "frame":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pandas(value, preserve_index=None), path)
        return pq.read_table(path).to_pandas()
    if kind == "array":
        import numpy as np

        with open(path, "wb") as fh:
            np.save(fh, value, allow_pickle=False)
        with open(path, "rb") as fh:
            return np.load(fh, allow_pickle=False)
    with open(path, "wb") as fh:
        pickle.dump(value, fh, protocol=5)
    with open(path, "rb") as fh:
        return pickle.load(fh)


def floor(kind: str, rows: int, seed: int, scratch: Path) -> Any:
    make, derive, summarise = BODIES[kind]
    first = write_read(kind, make(rows, seed), scratch / f"{uuid.uuid4().hex}-1")
    second = write_read(kind, derive(first), scratch / f"{uuid.uuid4().hex}-2")
    return summarise(second)


# -- memory -----------------------------------------------------------------------------------


def reset_peak() -> int:
    """Reset this process's peak RSS; return its RSS now, in bytes."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return _status("VmRSS")


def peak() -> int:
    return _status("VmHWM")


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


# -- running ----------------------------------------------------------------------------------


class Variant:
    def __init__(self, name: str, call: Callable[[int], Any], client: Any = None) -> None:
        self.name, self.call, self.client = name, call, client
        self.seconds: list[float] = []
        self.peaks: list[int] = []  # this process, above its RSS before the call
        self.worker_peaks: list[int] = []  # the busiest worker, above its RSS before

    def once(self, seed: int, record: bool) -> None:
        import gc

        gc.collect()
        os.sync()  # every call starts with no dirty pages left by the one before (untimed)
        before = reset_peak()
        workers: dict[str, int] = {}
        if self.client is not None:
            self.client.run(gc.collect)
            workers = self.client.run(reset_peak)
        start = time.perf_counter()
        self.call(seed)
        seconds = time.perf_counter() - start
        if not record:
            return
        self.seconds.append(seconds)
        self.peaks.append(peak() - before)
        if self.client is not None:
            after = self.client.run(peak)
            self.worker_peaks.append(max(after[w] - workers[w] for w in after))


def run_workload(args: argparse.Namespace, kind: str, client: Any, root: Path) -> list[list[str]]:
    from glasspane.api import run_pipeline
    from glasspane.config import Settings
    from glasspane.execution.executors import ThreadsExecutor
    from glasspane.execution.executors.dask import DaskExecutor

    rows = args.model_rows if kind == "model" else args.rows
    scratch = root / "floor"
    scratch.mkdir(exist_ok=True)
    count = [0]

    def glasspane_run(executor: Any) -> Callable[[int], Any]:
        def call(seed: int) -> Any:
            count[0] += 1
            settings = Settings(home=root / f"home-{count[0]}")
            result = run_pipeline(
                large, {"kind": kind, "rows": rows, "seed": seed}, executor=executor,
                settings=settings,
            )  # fmt: skip
            if not result.ok or any(t.cached for t in result.tasks):
                raise RuntimeError(f"{kind}: the run failed or hit the cache: {result.error}")
            shutil.rmtree(settings.home, ignore_errors=True)
            return result.output

        return call

    def floor_call(seed: int) -> Any:
        out = floor(kind, rows, seed, scratch)
        for path in scratch.iterdir():
            path.unlink()
        return out

    dask_executor = DaskExecutor()
    dask_executor._client = client
    variants = [
        Variant("floor", floor_call),
        Variant("threads", glasspane_run(ThreadsExecutor())),
        Variant("dask", glasspane_run(dask_executor), client),
    ]
    seed = 1
    for variant in variants:
        seed += 1
        variant.once(seed, record=False)
        print(f"  {kind} warm-up {variant.name} done", file=sys.stderr)
    for round_ in range(args.repeat):
        for variant in variants:
            seed += 1
            variant.once(seed, record=True)
        print(f"  {kind} round {round_ + 1}/{args.repeat} done", file=sys.stderr)
    base = variants[0]
    floor_s = statistics.median(base.seconds)
    floor_peak = statistics.median(base.peaks)
    rows_out = []
    for variant in variants:
        secs = statistics.median(variant.seconds)
        mem = statistics.median(variant.peaks)
        worker = statistics.median(variant.worker_peaks) if variant.worker_peaks else None
        ratio = secs / floor_s
        where = "-" if worker is None else f"{worker / MB:,.0f} MB"
        shown = worker if worker is not None else mem
        rows_out.append([
            kind, variant.name, f"{secs:.2f} s ({min(variant.seconds):.2f}-"
            f"{max(variant.seconds):.2f})", f"{ratio:.2f}x", f"{mem / MB:,.0f} MB", where,
            "-" if variant is base else f"{(shown - floor_peak) / MB:+,.0f} MB",
        ])  # fmt: skip
    return rows_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="frame and array rows")
    parser.add_argument("--model-rows", type=int, default=8_000_000, help="KNN training rows")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=",".join(WORKLOADS), help="frame,array,model")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    from distributed import Client, LocalCluster

    root = Path(tempfile.mkdtemp(prefix="glasspane-large-", dir=os.environ.get("BENCH_DIR")))
    cluster = LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, silence_logs=50, memory_limit=0,
    )  # fmt: skip
    client = Client(cluster)
    try:
        client.run(sys.path.insert, 0, str(Path(__file__).parent))
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"{os.cpu_count()} cores, load average {load}\n")
        table = []
        for kind in args.only.split(","):
            table.extend(run_workload(args, kind, client, root))
        header = [
            "workload", "variant", "median (range)", "/ floor", "driver peak above start",
            "busiest worker's peak", "peak above the floor's",
        ]  # fmt: skip
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in table:
            print("| " + " | ".join(row) + " |")
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"\nload average at the end {load}")
    finally:
        client.close()
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
