"""``glasspane scheduler`` (the scheduler loop in the foreground) and the arguments of
``glasspane server`` (the web UI, the scheduler and the crash sweep in one process, served
by ``glasspane.ui.server`` through the entry point ``server`` of ``glasspane.commands``)."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a number of seconds") from None
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be from 0.05 to 3600 seconds, not {value:g}")
    return value


def _loop_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--poll",
        type=positive_seconds,
        default=1.0,
        metavar="SECONDS",
        help="most seconds between looks for new schedules, upstream runs and the lease; "
        "due fire times wake it on time regardless (default: 1)",
    )
    p.add_argument(
        "--executor",
        "-e",
        default=None,
        metavar="EXECUTOR",
        help="the executor of the runs it launches (default: the configured one)",
    )


def add_parsers(sub: Any, command: Any) -> None:
    """Add ``scheduler`` and ``server`` to the subparsers ``sub``."""
    scheduler = command(
        sub,
        "scheduler",
        "launch the runs of the registered schedules, in the foreground",
        description="Launch a run for each due fire time of the registered schedules (see "
        "`glasspane schedule`) and for each successful upstream run of `after` schedules, each "
        "in its own process, until Ctrl-C or SIGTERM; runs already launched go on. Exactly "
        "one run per fire time however many schedulers run: on PostgreSQL they share the "
        "work, on SQLite the others wait as standbys and take over within seconds of the "
        "working one stopping. Prints one line per fire time: launched, skipped or failed.",
        epilog="""exit codes:
  0    stopped by Ctrl-C or SIGTERM
  2    a usage or configuration error (one line)

examples:
  glasspane schedule sync flows.py && glasspane scheduler
  glasspane scheduler --json --executor dask""",
    )
    _loop_options(scheduler)
    scheduler.add_argument(
        "--json", action="store_true", help="print one JSON object per line and event"
    )
    server = command(
        sub,
        "server",
        "serve the web UI and run the scheduler in one process",
        description="The one command a team runs on a box: the web UI (as `glasspane ui`), "
        "the scheduler (as `glasspane scheduler`) and the maintenance tick that marks runs "
        "whose process died as crashed, in one process, until Ctrl-C or SIGTERM (exit 0); "
        "runs already launched go on in their own processes. Binding an address other than "
        "127.0.0.1 needs GLASSPANE_UI_TOKEN.",
        epilog="""exit codes:
  0    stopped by Ctrl-C or SIGTERM
  2    a usage or configuration error (one line)

examples:
  glasspane server
  GLASSPANE_DATABASE_URL=postgresql://ml@db/glasspane glasspane server --port 9000""",
    )
    server.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    server.add_argument("--port", type=int, default=8420, help="port to bind (default: 8420)")
    _loop_options(server)


def main(args: argparse.Namespace) -> int:
    """Run the scheduler until SIGTERM or Ctrl-C; 0 once stopped."""
    stop = threading.Event()

    def leave(signum: int, frame: Any) -> None:
        stop.set()

    # first: a SIGTERM while it is still starting stops it cleanly too (exit 0)
    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
    import glasspane

    from ..scheduler import Fired, Scheduler

    workspace = glasspane.Workspace()
    as_json = bool(args.json)

    def say(line: str) -> None:
        if as_json:
            print(json.dumps({"event": "status", "message": line}), flush=True)
        else:
            print(line, flush=True)

    def fired(item: Fired) -> None:
        if as_json:
            print(json.dumps({"event": "fired", **item.as_json()}), flush=True)
        else:
            print(item.describe(), flush=True)

    try:
        scheduler = Scheduler(
            workspace, poll=args.poll, executor=args.executor, on_fired=fired, on_status=say
        )
        count = len(workspace.store.list_schedules())
        say(f"glasspane scheduler: {count} schedule(s) in {workspace.settings.home}; "
            "Ctrl-C or SIGTERM stops it")  # fmt: skip
        scheduler.run(stop)
        say("glasspane scheduler: stopped; runs already launched go on")
    finally:
        workspace.close()
    return EXIT_OK
