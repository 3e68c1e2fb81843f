"""The web UI's figures, over real HTTP against a real ``glasspane ui`` process.

One fresh home gets ``--runs`` runs of a five-task pipeline (through the store's own writes,
as in bench_queries.py) and one real run of a fan of ``--nodes`` tasks. Then ``glasspane ui``
serves it on a free 127.0.0.1 port and this process measures, each the median of
``--repeat`` requests after one warm-up:

- the runs page (``/``: first page of the runs) and its JSON (``/api/runs``);
- the big run's page (``/runs/RUN``: header, graph SVG, timeline, task table) and its graph's
  JSON;
- SSE latency: a pipeline of ``--steps`` sequential tasks (each sleeping 50 ms and logging
  a metric) is launched in a child process (``Workspace.launch``) and followed through
  ``/api/runs/RUN/events``; the latency of an event is the time from its timestamp (taken
  where it happened, in the task) to its arrival at the client;
- the same with ``--clients`` SSE clients following one run at once: every client must get
  every event in sequence order; latency percentiles over all clients' events, and the
  run's duration against the run followed by one client.

Targets (issue 10): runs page with 10,000 runs < 200 ms; 5,000-node run page < 1 s; a node's
state reaches the browser within a second.

    python tests/benchmarks/bench_ui.py --runs 10000 --nodes 5000 --repeat 5 --clients 20
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_queries import fan, fill, median_time  # noqa: E402

STEPS_PIPELINE = """
import time

from glasspane import log_metric, pipeline, task


@task(cache=False)
def step(previous: int, i: int) -> int:
    time.sleep(0.05)
    log_metric("loss", 1.0 / (i + 1))
    return previous + i


@pipeline
def steps(n: int = 40, salt: str = ""):
    value = step(0, 0)
    for i in range(1, n):
        value = step(value, i)
    return value
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_ui(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "GLASSPANE_HOME": str(home)}
    env.pop("GLASSPANE_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "glasspane.cli.main", "ui", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    assert line == f"glasspane UI: http://127.0.0.1:{port}/", line
    return proc, f"http://127.0.0.1:{port}"


def follow(base: str, run_id: str, out: list[tuple[int, float]], errors: list[str]) -> None:
    """Read the run's event stream to its end: (seq, latency) per event."""
    import httpx

    try:
        with httpx.stream("GET", f"{base}/api/runs/{run_id}/events", timeout=120) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                    out.append((int(data["seq"]), time.time() - float(data["ts"])))
    except Exception as exc:  # noqa: BLE001 - reported with the figures
        errors.append(f"{type(exc).__name__}: {exc}")


def sse_round(base: str, ws: Any, ref: str, clients: int, steps: int) -> dict[str, Any]:
    run_id = ws.launch(ref, {"n": steps, "salt": uuid.uuid4().hex})
    results: list[list[tuple[int, float]]] = [[] for _ in range(clients)]
    errors: list[str] = []
    threads = [
        threading.Thread(target=follow, args=(base, run_id, results[i], errors))
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    expected = len(list(ws.follow(run_id, timeout=300)))
    run = ws.store.get_run(run_id)
    complete = sum(1 for r in results if [s for s, _ in r] == list(range(1, expected + 1)))
    live = sorted(lat for r in results for s, lat in r if s > 1)  # after the replayed start
    if not live:
        raise SystemExit(f"run {run_id} {run['state']}: {run['error']}; stream errors {errors}")
    from datetime import datetime

    ended, began = (datetime.fromisoformat(run[k]) for k in ("ended_at", "started_at"))
    duration = (ended - began).total_seconds()
    return {
        "complete": complete,
        "events": expected,
        "p50": statistics.median(live),
        "p95": live[int(0.95 * (len(live) - 1))],
        "max": live[-1],
        "duration": duration,
        "errors": errors,
        "state": run["state"],
    }


def browser_round(base: str, run_id: str) -> list[str]:
    """The 5,000-node run's page in chromium: load time collapsed and expanded, and the time
    from clicking a node to its panel showing (is the page still responsive?)."""
    if not Path("/usr/bin/chromium").exists():
        return ["(no /usr/bin/chromium: browser figures skipped)"]
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        for name, url, node in (
            ("collapsed map", f"{base}/runs/{run_id}", "reduce_all"),
            ("every node drawn", f"{base}/runs/{run_id}?expand=leaf", "reduce_all"),
            ("every node drawn", f"{base}/runs/{run_id}?expand=leaf", "leaf[7]"),
        ):
            began = time.perf_counter()
            page.goto(url, wait_until="load")
            loaded = time.perf_counter() - began
            nodes = page.locator("#run-graph [data-node]").count()
            target = page.locator(f"#run-graph [data-node='{node}']").first
            began = time.perf_counter()
            target.click()
            page.locator("#task-panel").wait_for(state="visible")
            page.locator(f"#task-panel #task-detail[data-node='{node}']").wait_for(state="attached")
            clicked = time.perf_counter() - began
            rows.append(
                f"| {name} | {nodes} | {loaded * 1000:.0f} ms | `{node}`: {clicked * 1000:.0f} ms |"
            )
        browser.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()

    import httpx

    from glasspane import Workspace
    from glasspane.config import Settings

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        settings = Settings(home=home)
        started = time.perf_counter()
        fill(settings, args.runs)
        ws = Workspace(settings)
        big = ws.run(fan(args.nodes), {"salt": uuid.uuid4().hex}, executor="threads")
        (Path(tmp) / "steps.py").write_text(STEPS_PIPELINE)
        ref = f"{Path(tmp) / 'steps.py'}:steps"
        print(f"filled in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        proc, base = start_ui(home)
        try:
            client = httpx.Client(base_url=base, timeout=60)
            rows = []
            pages = [
                (f"runs page `/` ({args.runs + 1} runs)", "/", 0.200),
                ("runs JSON `/api/runs`", "/api/runs", 0.200),
                (f"run page, {args.nodes} nodes", f"/runs/{big.run_id}", 1.0),
                (f"run graph JSON, {args.nodes} nodes", f"/api/runs/{big.run_id}/graph", None),
            ]
            for name, url, target in pages:
                response = client.get(url)
                assert response.status_code == 200, (url, response.status_code)
                size = len(response.content)
                median, low, high = median_time(lambda u=url: client.get(u).content, args.repeat)
                met = "" if target is None else ("yes" if median < target else "**no**")
                limit = "" if target is None else f"< {target * 1000:.0f} ms"
                rows.append(
                    f"| {name} | {median * 1000:.0f} ms ({low * 1000:.0f}-{high * 1000:.0f}) "
                    f"| {size / 1024:.0f} KiB | {limit} | {met} |"
                )
            print("| request | median (min-max) | size | target | met |")
            print("|---|---|---|---|---|")
            print("\n".join(rows))
            print()
            print("| run page in chromium | node elements | load | click a node to its panel |")
            print("|---|---|---|---|")
            print("\n".join(browser_round(base, big.run_id)))
            print()
            print("| SSE clients | events | complete streams | latency p50 | p95 | max | run |")
            print("|---|---|---|---|---|---|---|")
            for clients in (1, args.clients):
                r = sse_round(base, ws, ref, clients, args.steps)
                print(
                    f"| {clients} | {r['events']} | {r['complete']}/{clients} "
                    f"| {r['p50'] * 1000:.0f} ms | {r['p95'] * 1000:.0f} ms "
                    f"| {r['max'] * 1000:.0f} ms | {r['duration']:.2f} s ({r['state']}) |"
                )
                if r["errors"]:
                    print(f"errors: {r['errors'][:3]}", file=sys.stderr)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
            ws.close()


if __name__ == "__main__":
    main()
