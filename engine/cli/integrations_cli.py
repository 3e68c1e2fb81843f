"""``glasspane integrations list`` and ``glasspane integrations sync``: the trackers a run
feeds, and delivering what they missed while they were unreachable (the outbox)."""

from __future__ import annotations

import argparse
import json
from typing import Any

EXIT_OK, EXIT_PENDING, EXIT_USAGE = 0, 1, 2


def add_parsers(sub: Any, command: Any) -> None:
    """Add ``integrations`` (``list``, ``sync``) to the subparsers ``sub``."""
    group = command(
        sub,
        "integrations",
        "the trackers runs feed (MLflow, W&B), and their outbox",
        description="Trackers are turned on by configuration: GLASSPANE_TRACKERS=mlflow,wandb "
        'or trackers = ["mlflow"] in glasspane.toml / [tool.glasspane], each with its own '
        "table of options ([tool.glasspane.mlflow]). What a tracker could not take while it "
        "was unreachable waits in the outbox until `integrations sync` (or `glasspane "
        "server`, every 30 s) delivers it.",
    )
    verbs = group.add_subparsers(dest="integrations_command", metavar="list|sync", required=True)
    listing = command(
        verbs,
        "list",
        "the installed integrations, which trackers are on, and what waits for each",
        epilog="""exit codes:
  0    listed
  2    a usage or configuration error (one line)

examples:
  glasspane integrations list
  GLASSPANE_TRACKERS=mlflow glasspane integrations list --json""",
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sync = command(
        verbs,
        "sync",
        "deliver to the trackers what they missed of finished runs, in order, once",
        description="Deliver to each configured tracker the events it has not taken of runs "
        "that are over: runs during which it was unreachable, and runs whose process died. "
        "Each run's events are replayed in order; the tracker takes each event once, however "
        "often it hears it, so nothing is duplicated. A tracker still unreachable keeps its "
        "runs waiting, saying why.",
        epilog="""exit codes:
  0    everything waiting was delivered (or nothing waited)
  1    a tracker is still unreachable: its runs still wait
  2    a usage or configuration error (one line)

examples:
  glasspane integrations sync
  glasspane integrations sync --run 3f2a9c1b --json""",
    )
    sync.add_argument(
        "--run", action="append", default=None, metavar="RUN", help="only this run (repeatable)"
    )
    sync.add_argument("--json", action="store_true", help="print JSON instead of lines")


def main(args: argparse.Namespace) -> int:
    from ..api import default_workspace

    ws = default_workspace()
    if args.integrations_command == "list":
        return _list(ws, args.json)
    run_ids = None
    if args.run:
        store = ws.reader()
        run_ids = [store.get_run(run)["run_id"] for run in args.run]
    done = ws.sync_trackers(run_ids)
    if args.json:
        print(json.dumps([vars(item) for item in done], indent=2, default=str))
    elif not done:
        print("nothing waits for a tracker")
    for item in [] if args.json else done:
        if item.error is None:
            where = f": {item.url}" if item.url else ""
            print(f"run {item.run_id}: delivered to `{item.tracker}` ({item.events} events){where}")
        else:
            print(f"run {item.run_id}: `{item.tracker}` still unreachable: {item.error}")
    return EXIT_PENDING if any(item.error for item in done) else EXIT_OK


def _list(ws: Any, as_json: bool) -> int:
    from ..errors import NotFound
    from ..tracking import configured, factories

    installed = factories()
    on = configured(ws.settings)
    waiting: dict[str, int] = {}
    try:
        for row in ws.reader().undelivered_tracker_runs(on):
            waiting[row["tracker"]] = waiting.get(row["tracker"], 0) + 1
    except NotFound:  # no database yet: nothing waits
        pass
    rows = [
        {
            "name": name,
            "entry_point": installed[name].value if name in installed else None,
            "on": name in on,
            "waiting_runs": waiting.get(name, 0),
            "options": ws.settings.tracker_options.get(name, {}),
        }
        for name in sorted(set(installed) | set(on))
    ]
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return EXIT_OK
    print(f"{'NAME':<10} {'ON':<4} {'WAITING':<8} ENTRY POINT")
    for row in rows:
        entry = row["entry_point"] or "(not installed)"
        state = "yes" if row["on"] else "no"
        print(f"{row['name']:<10} {state:<4} {row['waiting_runs']:<8} {entry}")
    if not on:
        print(
            "no tracker is on: set GLASSPANE_TRACKERS=mlflow (or trackers = [...] in "
            "glasspane.toml)"
        )
    return EXIT_OK
