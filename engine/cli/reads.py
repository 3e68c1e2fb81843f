"""The CLI commands that read what runs recorded: ``runs list|show|sweep``, ``lineage``,
``logs``, and ``cache clear``; with the console and warning helpers the other commands share.
``runs list --tracker`` lists a tracker's runs instead (:mod:`.tracked_runs`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .parser import EXIT_OK


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr)


def warn(message: str) -> None:
    sys.stderr.write(f"glasspane: warning: {message}\n")


def runs(args: argparse.Namespace) -> int:
    from rich.text import Text

    from .. import api
    from ..errors import NotFound
    from .render import failed_tracebacks, launch_text, run_table, runs_table

    if args.runs_command == "sweep":
        swept = api.sweep()
        if args.json:
            print(json.dumps(swept))
        elif not say_swept(swept):
            print("no stale runs: nothing marked crashed")
        return EXIT_OK
    if args.runs_command == "list":
        from . import tracked_runs

        if tracked_runs.wanted(args):  # a tracker's runs (MLflow...), not glasspane's
            return tracked_runs.main(args, console)
        filters = {key: getattr(args, key) for key in ("pipeline", "state", "trigger", "schedule")}
        try:
            items = api.runs(limit=args.limit, missing_ok=False, **filters)
        except NotFound as exc:
            # nothing ran here yet, or a mistyped setting: no runs either way, but say which
            warn(str(exc))
            items = []
            if not args.json:
                return EXIT_OK
        if args.json:
            print(json.dumps(items, default=str))
        else:
            out = console()
            out.print(runs_table(items, out.width))
        return EXIT_OK
    summary = api.run_summary(api.get_run(args.run_id))
    summary["trackers"] = tracker_lines(summary["run_id"])
    if args.json:
        print(json.dumps(summary, default=str))
        return EXIT_OK
    out = console()
    out.print(run_table(summary, out.width))
    out.print(launch_text(summary), soft_wrap=True)
    for link in summary["trackers"]:
        where = link["url"] or link["external_id"] or "no run yet"
        waiting = f", waiting: {link['error']}" if link["state"] == "pending" else ""
        out.print(f"tracker {link['tracker']}: {where} ({link['state']}{waiting})", soft_wrap=True)
    if summary.get("error"):
        out.print(Text(summary["error"], style="red"), soft_wrap=True)
    failed_tracebacks(out, summary)
    return EXIT_OK


def tracker_lines(run_id: str) -> list[dict[str, Any]]:
    """The run's runs in the trackers: tracker, id, URL, delivery state and error."""
    from ..api import default_workspace

    keys = ("tracker", "external_id", "url", "state", "error")
    rows = default_workspace().reader().tracker_links(run_id)
    return [{key: row[key] for key in keys} for row in rows]


def say_swept(run_ids: list[str], stderr: bool = False) -> bool:
    """Say which runs a sweep marked crashed, one line each (to stderr beside a run's
    output); False when it marked none."""
    for run_id in run_ids:
        print(
            f"marked run {run_id} crashed: its driver stopped heart-beating; resume it with "
            f"`glasspane retry {run_id}`",
            file=sys.stderr if stderr else sys.stdout,
        )
    return bool(run_ids)


def lineage(args: argparse.Namespace) -> int:
    from .. import api
    from .render import lineage_table

    data = api.lineage(args.run_id, args.node, direction=args.direction or "upstream")
    if args.json:
        print(json.dumps(data, default=str))
    else:
        console().print(lineage_table(data))
    return EXIT_OK


def logs(args: argparse.Namespace) -> int:
    from .. import api
    from .render import logs_text

    data = api.task_logs(args.run_id, args.node, args.attempt)
    if args.json:
        print(json.dumps(data, default=str))
    else:
        logs_text(console(), data)
    return EXIT_OK


def cache_clear(args: argparse.Namespace) -> int:
    import difflib

    from .. import api
    from ..errors import NotFound

    count = api.clear_cache(args.task)
    if args.task and not count:
        held = api.cached_tasks()
        if not held:
            raise NotFound(f"the cache holds no entry for task `{args.task}`: it is empty")
        close = difflib.get_close_matches(args.task, list(held), n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        raise NotFound(
            f"the cache holds no entry for task `{args.task}`; {hint}it holds entries for: "
            f"{', '.join(held)}"
        )
    what = f"task `{args.task}`" if args.task else "all tasks"
    print(f"cleared {count} cache entr{'y' if count == 1 else 'ies'} for {what}")
    return EXIT_OK
