"""Human output for the CLI, with rich: a live progress line, tables, tracebacks and logs.

Tables fit an 80-column terminal: ids and start times never shrink (a run id is 12
characters, a start time ``2026-11-30 15:04`` in local time), long names fold onto more
lines, and optional columns are left out before anything becomes unreadable. The fire time a
scheduled run is for is shown in UTC (``2026-11-30T03:00Z``), whatever its schedule's
timezone. Text from tasks (errors, tracebacks, output) is printed as plain text, never as rich
markup.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..events import Event, RunStarted, TaskFinished, TaskSkipped, TaskStarted

#: lines of a traceback shown under a table; `glasspane logs` shows all of it
TRACEBACK_LINES = 30
#: failed tasks whose tracebacks are shown under a table
TRACEBACKS_SHOWN = 3

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
    """A one-line live status of a run: a listener of the run's events."""

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

    def on_event(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, RunStarted):
                self.run_id, self.total = event.run_id, event.nodes
            elif isinstance(event, TaskStarted):
                self.running[event.node] = event.attempt
            elif isinstance(event, (TaskFinished, TaskSkipped)):
                self.running.pop(event.node, None)
                if isinstance(event, TaskSkipped) or event.parent is None:
                    self.done += 1
                if isinstance(event, TaskFinished) and event.cached:
                    self.cached += 1
                if event.state != "succeeded":
                    self.failed += 1
            else:
                return
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


def _table(title: str) -> Table:
    # no vertical rules and one space of padding: two columns' worth of room at 80 columns
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
    )


def when(iso: str | None) -> str:
    """``2026-11-30 15:04`` in local time, from a stored ISO 8601 timestamp."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso[:16]


def utc_minute(iso: str | None) -> str:
    """``2026-11-30T03:00Z``: a stored ISO 8601 timestamp in UTC, to the minute, or to the
    second when it has seconds (``03:00:20Z``: fire times of an every-20s schedule differ)."""
    if not iso:
        return ""
    try:
        value = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if value.tzinfo is None:  # stored times are UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ" if value.second else "%Y-%m-%dT%H:%MZ"
    )


def seconds(duration: float | None) -> str:
    return f"{duration:.2f}s" if duration is not None else ""


def run_table(run: dict[str, Any], width: int = 80) -> Table:
    """A run's tasks: node, task, state, attempts, time, and the error or note.

    The ``time`` of a cache hit reads ``cached``; the ``task`` column is left out when every
    node is named after its task (``train`` or ``train[3]``). The error column gets at least
    a third of ``width``, so it never shrinks to a word per line.
    """
    tasks = run["tasks"]
    named_apart = any(
        t["node"] != t["task"] and not t["node"].startswith(t["task"] + "[") for t in tasks
    )
    rows = []
    for task in tasks:
        row = {
            "node": ("  " if task.get("parent") else "") + task["node"],
            "task": task["task"],
            "state": task["state"],
            "attempts": str(task["attempts"]),
            "time": "cached" if task["cached"] else seconds(task.get("duration")),
            "error / note": (task.get("error") or task.get("note") or "")[:160],
        }
        rows.append(row)
    columns = ["node", *(["task"] if named_apart else []), "state", "attempts", "time"]
    needed = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in [*columns, "error / note"]}
    # every column but the last takes a rule and a space of padding beside its text
    fixed = sum(needed[c] for c in ("state", "attempts", "time")) + 2 * len(columns) + 1
    names = [c for c in columns if c in ("node", "task")]
    free = width - fixed
    error = min(needed["error / note"], max(width // 3, free - sum(needed[c] for c in names)))
    room = free - error
    if room < 8 * len(names):
        room = 8 * len(names)
        error = max(12, free - room)
    table = _table(f"run {run['run_id']} · {run['pipeline']} · {run['state']}")
    for name in columns:
        if name in names:
            share = min(needed[name], max(8, room // len(names)))
            table.add_column(name, overflow="fold", width=share)
        else:
            table.add_column(name, no_wrap=True)
    table.add_column("error / note", overflow="fold", width=error)
    for row in rows:
        table.add_row(
            *(state_text(row[c]) if c == "state" else row[c] for c in columns),
            Text(row["error / note"]),
        )
    return table


# runs_table's columns in display order, and the order they are left out in when the
# terminal is too narrow for all of them (run, started and state always stay): the trigger
# outlasts the cached count and the wide fire time, so 80 columns still tell a scheduled run
# from a manual one
_RUN_COLUMNS = (
    "run",
    "pipeline",
    "state",
    "trigger",
    "scheduled for",
    "tasks",
    "cached",
    "started",
    "duration",
)
_OPTIONAL = ("cached", "scheduled for", "trigger", "duration", "tasks")


def runs_table(runs: list[dict[str, Any]], width: int = 80) -> Table:
    """Run summaries, one a row, fitted to ``width`` columns (see the module docstring).

    The ``scheduled for`` column (the fire time, UTC) is there when any run listed has one.
    """
    rows = [
        {
            "run": run["run_id"],
            "pipeline": run["pipeline"],
            "state": run["state"],
            "trigger": run.get("trigger") or "",
            "scheduled for": utc_minute(run.get("scheduled_for")),
            "tasks": f"{run.get('n_succeeded', 0)}/{run.get('n_tasks', 0)}",
            "cached": str(run.get("n_cached", 0)),
            "started": when(run.get("started_at") or run.get("created_at")),
            "duration": seconds(run.get("duration")),
        }
        for run in runs
    ]
    # each column takes its widest cell plus two characters (a rule and the padding)
    needed = {
        name: max([len(name), *(len(row[name]) for row in rows)]) + 2 for name in _RUN_COLUMNS
    }
    needed["pipeline"] = min(needed["pipeline"], 14)  # folds onto more lines below that
    scheduled = any(row["scheduled for"] for row in rows)
    shown = [name for name in _RUN_COLUMNS if scheduled or name != "scheduled for"]
    for name in _OPTIONAL:
        if sum(needed[column] for column in shown) <= width:
            break
        if name in shown:
            shown.remove(name)
    table = _table("runs")
    for name in shown:
        if name == "pipeline":
            table.add_column(name, overflow="fold", min_width=needed[name] - 2, ratio=1)
        else:
            table.add_column(name, no_wrap=True, min_width=needed[name] - 2)
    for row in rows:
        table.add_row(*(state_text(row[n]) if n == "state" else row[n] for n in shown))
    return table


def launch_text(run: dict[str, Any]) -> Text:
    """What launched a run, in one line: its trigger, and the schedule, the fire time (UTC)
    and the upstream run when it has them."""
    parts = [f"trigger: {run.get('trigger') or 'unknown'}"]
    if run.get("schedule"):
        parts.append(f"schedule: {run['schedule']}")
    if run.get("scheduled_for"):
        at = datetime.fromisoformat(run["scheduled_for"]).astimezone(timezone.utc)
        parts.append(f"scheduled for: {at.isoformat()}")
    if run.get("upstream_run_id"):
        parts.append(f"upstream run: {run['upstream_run_id']}")
    return Text(" · ".join(parts))


def lineage_table(data: dict[str, Any]) -> Table:
    root = data["root"]
    table = _table(f"{data['direction']} lineage of {root['run_id']}/{root['node']}")
    for column in ("depth", "run", "node", "task", "state", "cached"):
        table.add_column(column, no_wrap=column in ("depth", "run", "state", "cached"))
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


def last_lines(text: str, lines: int = TRACEBACK_LINES) -> tuple[str, int]:
    """The last ``lines`` lines of ``text`` and how many were left out before them."""
    kept = text.rstrip("\n").splitlines()
    return "\n".join(kept[-lines:]), max(0, len(kept) - lines)


def failed_tracebacks(console: Console, run: dict[str, Any]) -> None:
    """Print the tracebacks of a run's failed tasks (the first few, their last lines each).

    ``run`` is a run summary whose tasks carry ``traceback`` (``api.run_summary``).
    """
    failed = [t for t in run["tasks"] if t.get("traceback") and t["state"] != "succeeded"]
    for task in failed[:TRACEBACKS_SHOWN]:
        text, cut = last_lines(task["traceback"])
        more = f"last {TRACEBACK_LINES} lines; " if cut else ""
        console.print(
            Text(f"traceback of `{task['node']}` ({more}all of it: glasspane logs "
                 f"{run['run_id']} {task['node']}):", style="bold")
        )  # fmt: skip
        console.print(Text(text), soft_wrap=True)
    if len(failed) > TRACEBACKS_SHOWN:
        console.print(
            Text(f"... and {len(failed) - TRACEBACKS_SHOWN} more failed tasks with a traceback; "
                 f"see glasspane runs show {run['run_id']} --json")
        )  # fmt: skip


def logs_text(console: Console, data: dict[str, Any]) -> None:
    """Print what ``api.task_logs`` returns: each attempt's state, timing and text."""
    console.print(
        Text(f"{data['run_id']}/{data['node']} · task {data['task']} · ", style="bold")
        + state_text(data["state"])
    )
    if data.get("note"):
        console.print(Text(data["note"]))
    attempts = data["attempts"]
    for attempt in attempts:
        header = Text(f"attempt {attempt['attempt']} · ", style="bold")
        header += state_text(attempt["state"])
        timing = " · ".join(
            part for part in (when(attempt["started_at"]), seconds(attempt["duration"])) if part
        )
        if timing:
            header += Text(f" · {timing}")
        console.print(header)
        if attempt.get("error"):
            console.print(Text(f"error: {attempt['error']}"))
        _sections(console, attempt)
    has_text = any(a.get(k) for a in attempts for k in _SECTIONS)
    if not attempts or not has_text:
        if attempts:
            console.print(
                Text("(no text recorded per attempt; all attempts together:)", style="dim")
            )
        _sections(console, data)


_SECTIONS = {"stdout": "stdout", "stderr": "stderr", "log_tail": "log", "traceback": "traceback"}


def _sections(console: Console, source: dict[str, Any]) -> None:
    for key, title in _SECTIONS.items():
        text = source.get(key)
        if text:
            console.print(Text(f"--- {title} ---", style="dim"))
            console.print(Text(text.rstrip("\n")), soft_wrap=True)
