"""Human output for the CLI, with rich: a live progress line and tables."""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

STATE_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "upstream_failed": "yellow",
    "cancelled": "magenta",
    "crashed": "red",
    "timed_out": "red",
    "running": "cyan",
    "retrying": "cyan",
    "pending": "dim",
}


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, ""))


class LiveProgress:
    """A one-line live status of a run, fed by the run loop's events."""

    def __init__(self, console: Console, pipeline: str) -> None:
        self.console = console
        self.pipeline = pipeline
        self.total = 0
        self.done = 0
        self.cached = 0
        self.failed = 0
        self.running: dict[str, int] = {}
        self.run_id = ""
        self._lock = threading.Lock()
        self._live = Live(self._render(), console=console, refresh_per_second=8, transient=True)

    def __enter__(self) -> LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.__exit__(*exc)

    def __call__(self, event: dict[str, Any]) -> None:
        with self._lock:
            kind = event.get("kind")
            if kind == "run_started":
                self.run_id, self.total = event["run_id"], event["nodes"]
            elif kind == "task_started":
                self.running[event["node"]] = event["attempt"]
            elif kind in ("task_finished", "task_skipped"):
                self.running.pop(event["node"], None)
                if event.get("parent") is None:
                    self.done += 1
                if event.get("cached"):
                    self.cached += 1
                if event["state"] != "succeeded":
                    self.failed += 1
            self._live.update(self._render())

    def _render(self) -> Text:
        text = Text()
        text.append(f"{self.pipeline} ", style="bold")
        if self.run_id:
            text.append(f"{self.run_id} ", style="dim")
        text.append(f"{self.done}/{self.total or '?'} done", style="cyan")
        if self.cached:
            text.append(f" · {self.cached} cached", style="green")
        if self.failed:
            text.append(f" · {self.failed} not succeeded", style="red")
        if self.running:
            names = list(self.running)[:4]
            more = f" +{len(self.running) - 4}" if len(self.running) > 4 else ""
            text.append(f" · running {', '.join(names)}{more}")
        return text


def run_table(run: dict[str, Any]) -> Table:
    table = Table(
        title=f"run {run['run_id']} · {run['pipeline']} · {run['state']}", title_justify="left"
    )
    for column in ("node", "task", "state", "cached", "attempts", "time"):
        table.add_column(column, no_wrap=True)
    table.add_column("error / note", overflow="fold")
    for task in run["tasks"]:
        duration = task.get("duration")
        table.add_row(
            ("  " if task.get("parent") else "") + task["node"],
            task["task"],
            state_text(task["state"]),
            "yes" if task["cached"] else "",
            str(task["attempts"]),
            f"{duration:.2f}s" if duration is not None else "",
            (task.get("error") or task.get("note") or "")[:160],
        )
    return table


def runs_table(runs: list[dict[str, Any]]) -> Table:
    table = Table(title="runs", title_justify="left")
    for column in ("run", "pipeline", "state", "trigger", "tasks", "cached", "started", "duration"):
        table.add_column(column)
    for run in runs:
        duration = run.get("duration")
        table.add_row(
            run["run_id"],
            run["pipeline"],
            state_text(run["state"]),
            run.get("trigger") or "",
            f"{run.get('n_succeeded', 0)}/{run.get('n_tasks', 0)}",
            str(run.get("n_cached", 0)),
            str(run.get("started_at") or run.get("created_at") or "")[:19],
            f"{duration:.2f}s" if duration is not None else "",
        )
    return table


def lineage_table(data: dict[str, Any]) -> Table:
    root = data["root"]
    table = Table(
        title=f"{data['direction']} lineage of {root['run_id']}/{root['node']}",
        title_justify="left",
    )
    for column in ("depth", "run", "node", "task", "state", "cached"):
        table.add_column(column)
    for item in data["task_runs"]:
        table.add_row(
            str(item.get("depth", "")),
            item["run_id"],
            item["node"],
            item["task"],
            state_text(item["state"]),
            "yes" if item.get("cached") else "",
        )
    return table
