"""The scheduler's figures, with a real ``glasspane scheduler`` process.

A fresh home gets ``--schedules`` schedules (daily cron expressions spread over the day in
a dozen time zones, none of them due while the benchmark runs) plus, for the latency
phase, one ``every="2s"`` schedule of a one-task pipeline. Then:

- idle CPU: the scheduler runs ``--idle`` seconds with only the many schedules; its CPU
  time (user + system, from ``/proc``) over wall time, as a percentage of one core;
- latency: the 2-second schedule is added and the scheduler runs until ``--fires`` of its
  runs have started; per run, from the fire time to the run being queued (the scheduler's
  part) and to the run starting in its child process (``started_at``: the child has
  imported the pipeline and taken the run over). The runs use the inline executor.

    python tests/benchmarks/bench_scheduler.py --schedules 1000 --idle 30 --fires 20
    python tests/benchmarks/bench_scheduler.py --database-url postgresql://...
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from glasspane import Schedule, Workspace, scheduling
from glasspane.config import Settings

FLOWS = """
from datetime import datetime

from glasspane import pipeline, task


@task
def stamp(when: datetime | None) -> str:
    return when.isoformat() if when else "none"


@pipeline
def nightly(scheduled_for: datetime | None = None):
    return stamp(scheduled_for)
"""

ZONES = [
    "UTC", "Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles",
    "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney", "America/Sao_Paulo", "Africa/Cairo",
    "Pacific/Auckland", "Asia/Singapore",
]  # fmt: skip


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def start_scheduler(env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "glasspane.cli.main", "scheduler", "--json"],
            stdout=out, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
        )  # fmt: skip


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of the idle phase")
    parser.add_argument("--fires", type=int, default=20, help="runs of the latency phase")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="glasspane-bench-scheduler-"))
    flows = root / "flows.py"
    flows.write_text(FLOWS)
    settings = Settings(home=root / "home", database_url=args.database_url, executor="inline")
    env = dict(os.environ, GLASSPANE_HOME=str(settings.home), GLASSPANE_EXECUTOR="inline")
    if args.database_url:
        env["GLASSPANE_DATABASE_URL"] = args.database_url
    ref = f"{flows}:nightly"
    now = datetime.now(timezone.utc)
    report: dict[str, Any] = {"schedules": args.schedules}
    with Workspace(settings) as ws:
        began = time.perf_counter()
        for index in range(args.schedules):
            minute = (now.hour * 60 + now.minute + 180 + index) % (24 * 60)  # hours away
            cron = f"{minute % 60} {minute // 60} * * *"
            zone = ZONES[index % len(ZONES)]
            schedule = Schedule(name=f"daily-{index:04d}", cron=cron, timezone=zone)
            scheduling.register(ws.store, ref, schedule)
        report["register_s"] = round(time.perf_counter() - began, 2)

        proc = start_scheduler(env, root / "scheduler.log")
        time.sleep(3)  # start-up (imports, first pass) is not idle time
        cpu0, wall0 = cpu_seconds(proc.pid), time.perf_counter()
        time.sleep(args.idle)
        cpu1, wall1 = cpu_seconds(proc.pid), time.perf_counter()
        report["idle_cpu_percent"] = round(100 * (cpu1 - cpu0) / (wall1 - wall0), 2)
        report["idle_seconds"] = round(wall1 - wall0, 1)

        scheduling.register(ws.store, ref, Schedule(name="every-2s", every="2s", max_active=5))
        deadline = time.monotonic() + args.fires * 2 + 60
        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            runs = [
                ws.store.get_run(r["run_id"])
                for r in ws.store.list_runs(limit=args.fires + 10)
                if r.get("trigger") == "schedule"
            ]
            if sum(1 for run in runs if run.get("started_at")) >= args.fires:
                break
            time.sleep(0.5)
        stop(proc)
        if not runs:
            raise SystemExit(f"no run started; see {root / 'scheduler.log'}")
        latency_queue, latency_start = [], []
        for run in runs:
            fire = _scheduled_for(ws, run["run_id"])
            if fire is None or not run.get("started_at"):
                continue
            latency_queue.append((_instant(run["created_at"]) - fire).total_seconds())
            latency_start.append((_instant(run["started_at"]) - fire).total_seconds())
        report["fires"] = len(latency_start)
        for name, values in (("queued", latency_queue), ("started", latency_start)):
            values.sort()
            report[f"{name}_median_s"] = round(statistics.median(values), 3)
            report[f"{name}_p95_s"] = round(values[int(0.95 * (len(values) - 1))], 3)
            report[f"{name}_max_s"] = round(values[-1], 3)
    print(json.dumps(report, indent=2))


def _instant(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _scheduled_for(ws: Workspace, run_id: str) -> datetime | None:
    from sqlalchemy import select

    from glasspane.store.models import RunRow

    return ws.store.read(
        lambda conn: conn.execute(select(RunRow.scheduled_for).where(RunRow.id == run_id)).scalar()
    )


if __name__ == "__main__":
    main()
