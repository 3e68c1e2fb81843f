"""The local model server's throughput and latency, over real HTTP against a real process.

A scikit-learn model (``StandardScaler`` + ``LogisticRegression`` on scikit-learn's bundled
breast_cancer data, 30 named columns) is pickled and served by
``python -m glasspane.integrations.model_server`` on a free 127.0.0.1 port. ``--loaders``
load processes, each keeping ``--connections`` keep-alive connections busy, send single-row
``dataframe_split`` requests (rows of the data set, in turn) for ``--warmup`` seconds, then
for ``--duration`` seconds while every request's latency is recorded. The load processes
are plain asyncio sockets with the requests encoded once: an HTTP client library would cost
more CPU than the server it measures on a 2-core machine.

Four rounds, each against a fresh server: micro-batching on (``--max-batch 256``, the
default) and off (``--max-batch 1``: one ``predict`` per request), under the full load and
with one client sending one request at a time (the latency floor). Printed: predictions per
second, latency p50 / p99, failed requests, the server's CPU (user + system from ``/proc``,
as a share of one core) and the mean rows per ``predict`` (predictions / predict calls,
counted by a wrapper around the model). Target: at least 1,000 single-row predictions per
second on a 2-core machine.

    python tests/benchmarks/bench_model_server.py --duration 10 --loaders 2 --connections 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

#: the model the server loads: counts predict calls in a file the benchmark reads at the end
COUNTING_MODEL = '''
import os


class Counting:
    """Delegates to ``model``; appends the rows of each predict call to ``log``."""

    def __init__(self, model, log):
        self.model, self.log = model, log
        self.feature_names_in_ = model.feature_names_in_
        self.n_features_in_ = model.n_features_in_

    def predict(self, frame):
        with open(self.log, "a") as f:
            f.write(f"{len(frame)}\\n")
        return self.model.predict(frame)
'''


def train(directory: Path) -> tuple[Path, Path, list[bytes]]:
    """The pickled model, its predict-call log, and single-row request bodies."""
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    (directory / "counting_model.py").write_text(COUNTING_MODEL)
    sys.path.insert(0, str(directory))
    from counting_model import Counting  # type: ignore[import-not-found]

    log = directory / "predict-calls.log"
    path = directory / "model.joblib"
    joblib.dump(Counting(model, str(log)), path)
    columns = list(X.columns)
    bodies = [
        json.dumps({"dataframe_split": {"columns": columns, "data": [row]}}).encode()
        for row in X.head(100).values.tolist()
    ]
    return path, log, bodies


def start_server(
    model: Path, directory: Path, max_batch: int, max_wait_ms: float
) -> tuple[subprocess.Popen[bytes], int]:
    env = {**os.environ, "PYTHONPATH": str(directory)}
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "glasspane.integrations.model_server", "--model-file", str(model),
            "--name", "cancer", "--version", "1", "--port", "0", "--max-batch", str(max_batch),
            "--max-wait-ms", str(max_wait_ms),
        ],
        env=env, stdout=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    assert line.startswith("serving cancer/1 on http://127.0.0.1:"), line
    return proc, int(line.rsplit(":", 1)[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the load process -------------------------------------------------------------------


async def connection(
    port: int, bodies: list[bytes], offset: int, start: float, stop: float, out: dict[str, Any]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    requests = [
        b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        for body in bodies
    ]
    i = offset
    loop = asyncio.get_running_loop()
    while True:
        now = loop.time()
        if now >= stop:
            break
        writer.write(requests[i % len(requests)])
        i += 1
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        done = loop.time()
        if now >= start:
            if head.startswith(b"HTTP/1.1 200") and b"x-glasspane-model: cancer/1" in head:
                out["latencies"].append(done - now)
            else:
                out["failed"] += 1
    writer.close()


async def load(port: int, connections: int, warmup: float, duration: float) -> dict[str, Any]:
    bodies = [line.encode() for line in sys.stdin.read().splitlines()]
    out: dict[str, Any] = {"latencies": [], "failed": 0}
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup
    stop = start + duration
    await asyncio.gather(
        *(connection(port, bodies, k * 7, start, stop, out) for k in range(connections))
    )
    return out


def run_load(
    port: int, bodies: list[bytes], loaders: int, connections: int, args: argparse.Namespace
) -> dict[str, Any]:
    """``loaders`` load processes against ``port``; their latencies and failures."""
    command = [
        sys.executable, __file__, "--load", str(port), "--connections", str(connections),
        "--warmup", str(args.warmup), "--duration", str(args.duration),
    ]  # fmt: skip
    procs = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        for _ in range(loaders)
    ]
    payload = b"\n".join(bodies)
    results = [json.loads(p.communicate(payload, timeout=args.warmup + args.duration + 60)[0])
               for p in procs]  # fmt: skip
    return {
        "latencies": sorted(x for r in results for x in r["latencies"]),
        "failed": sum(r["failed"] for r in results),
    }


def measure(model: Path, log: Path, directory: Path, bodies: list[bytes], max_batch: int,
            loaders: int, connections: int, args: argparse.Namespace) -> str:  # fmt: skip
    proc, port = start_server(model, directory, max_batch, args.max_wait_ms)
    try:
        log.write_text("")
        time.sleep(0.5)
        cpu_before = None

        def sample_cpu() -> None:
            nonlocal cpu_before
            cpu_before = (time.monotonic(), cpu_seconds(proc.pid), log.stat().st_size)

        # the CPU and predict-call sample starts when the measured window does
        timer = threading.Timer(args.warmup, sample_cpu)
        timer.start()
        result = run_load(port, bodies, loaders, connections, args)
        timer.join()
        assert cpu_before is not None
        wall = time.monotonic() - cpu_before[0]
        cpu = (cpu_seconds(proc.pid) - cpu_before[1]) / wall
        with log.open() as f:
            f.seek(cpu_before[2])
            calls = [int(x) for x in f.read().split()]
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=30)
    lat = result["latencies"]
    if not lat:
        raise SystemExit(f"no successful request with --max-batch {max_batch}")
    throughput = len(lat) / args.duration
    p50 = statistics.median(lat)
    p99 = lat[int(0.99 * (len(lat) - 1))]
    rows = sum(calls) / len(calls) if calls else 0
    mode = "on (256)" if max_batch > 1 else "off (1)"
    return (
        f"| {mode} | {loaders}x{connections} | {throughput:,.0f} | {p50 * 1000:.1f} ms "
        f"| {p99 * 1000:.1f} ms | {result['failed']} | {cpu * 100:.0f}% | {rows:.1f} | {code} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--loaders", type=int, default=2, help="load processes")
    parser.add_argument("--connections", type=int, default=32, help="per load process")
    parser.add_argument("--max-wait-ms", type=float, default=2.0, help="the server's batch wait")
    parser.add_argument("--load", type=int, help=argparse.SUPPRESS)  # a load process's port
    args = parser.parse_args()
    if args.load is not None:
        result = asyncio.run(load(args.load, args.connections, args.warmup, args.duration))
        json.dump(result, sys.stdout)
        return
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        model, log, bodies = train(directory)
        print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}", file=sys.stderr)
        print("| batching | loaders x connections | predictions/s | p50 | p99 | failed "
              "| server CPU | rows per predict | exit |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|")
        rounds = [(256, args.loaders, args.connections), (1, args.loaders, args.connections)]
        rounds += [(256, 1, 1), (1, 1, 1)]  # one client at a time: the latency floor
        for max_batch, loaders, connections in rounds:
            row = measure(model, log, directory, bodies, max_batch, loaders, connections, args)
            print(row, flush=True)


if __name__ == "__main__":
    main()
