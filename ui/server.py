"""``glasspane server``: the web UI, the scheduler, the crash sweep and the tracker outbox in
one process, until Ctrl-C or SIGTERM.

The engine's command line parses ``glasspane server [--host] [--port] [--poll]
[--executor]`` and calls :func:`main` through the entry point ``server`` of group
``glasspane.commands``. The UI is served exactly as ``glasspane ui`` serves it
(:func:`glasspane.ui.cli.serve_ui`: the same token checks, binding and address line); the
:class:`~glasspane.scheduler.Scheduler` runs beside it in a thread, its maintenance tick
marking runs whose process died as crashed and delivering to the trackers what they missed.

Invariants:

- Stopping stops both: the UI first (open streams ended), then the scheduler, which
  releases its lease; the exit code is 0. Runs already launched go on: each is a process
  of its own session.
- The scheduler never takes the UI down: an error in its loop is printed to stderr and the
  loop starts again after :data:`RESTART_AFTER` seconds.
- This process never runs pipeline code: the scheduler launches each run as a child process.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import glasspane
from glasspane.scheduler import Scheduler

from .cli import serve_ui

#: seconds the scheduler waits before starting its loop again after an error
RESTART_AFTER = 5.0
#: seconds the scheduler's thread gets to finish its pass when the server stops
STOP_WITHIN = 10.0


def main(args: argparse.Namespace) -> int:
    """Serve the UI on ``args.host``:``args.port`` with the scheduler beside it (polling every
    ``args.poll`` seconds, launching runs on ``args.executor``); 0 once stopped, 2 for a
    usage or configuration error (one ``glasspane: error: ...`` line)."""
    return serve_ui(args, alongside=partial(scheduling, poll=args.poll, executor=args.executor))


@contextmanager
def scheduling(
    workspace: glasspane.Workspace, *, poll: float = 1.0, executor: str | None = None
) -> Iterator[Scheduler]:
    """Run a :class:`Scheduler` over ``workspace`` in a thread until the block ends, printing
    one line per fire time and per change of its own state."""
    scheduler = Scheduler(
        workspace,
        poll=poll,
        executor=executor,
        on_fired=lambda fired: say(fired.describe()),
        on_status=say,
        maintenance=partial(sweep, workspace),
    )
    count = len(workspace.store.list_schedules())
    stop = threading.Event()
    thread = threading.Thread(
        target=keep_running, args=(scheduler, stop), name="glasspane-scheduler", daemon=True
    )
    thread.start()
    say(
        f"glasspane scheduler: running in this process over {count} schedule(s) in "
        f"{workspace.settings.home}; Ctrl-C or SIGTERM stops it and the UI"
    )
    try:
        yield scheduler
    finally:
        stop.set()
        thread.join(STOP_WITHIN)
        say("glasspane server: stopped; runs already launched go on")


def keep_running(scheduler: Scheduler, stop: threading.Event) -> None:
    """``scheduler.run(stop)``, started again after an error until ``stop`` is set."""
    while not stop.is_set():
        try:
            scheduler.run(stop)
        except Exception as exc:  # the UI stays up; the error is said, the loop retried
            sys.stderr.write(
                f"glasspane: error: the scheduler stopped on {type(exc).__name__}: {exc}; "
                f"starting it again in {RESTART_AFTER:g} s\n"
            )
            sys.stderr.flush()
            stop.wait(RESTART_AFTER)


def sweep(workspace: glasspane.Workspace) -> None:
    """The maintenance tick: mark runs whose process died as crashed, then deliver to the
    trackers what they missed of runs that are over (the outbox); one line each."""
    for run_id in workspace.sweep():
        say(f"run {run_id}: its process stopped heart-beating; marked crashed")
    for done in workspace.sync_trackers():
        if done.error is None:
            say(f"run {done.run_id}: delivered to tracker `{done.tracker}` ({done.events} events)")
        else:
            say(f"run {done.run_id}: tracker `{done.tracker}` still unreachable ({done.error})")


def say(line: str) -> None:
    print(line, flush=True)
