"""The arguments, help texts and exit codes of ``glasspane schedule ...`` (the commands
themselves: :mod:`.schedule_cli`; ``glasspane backfill``'s: :mod:`.backfill_cli`)."""

from __future__ import annotations

import argparse
from typing import Any

from .parser import positive_int

SCHEDULE_EXITS = """\
exit codes:
  0    done
  2    a usage, definition or configuration error, or no such schedule (one line; nothing
       was changed)"""

#: most fire times ``schedule next`` lists
MAX_NEXT = 1000


def add_parser(sub: Any, command: Any) -> None:
    """Add ``schedule`` and its subcommands to the subparsers ``sub``."""
    group = command(
        sub,
        "schedule",
        "register, inspect, pause and remove schedules",
        description="Schedules launch a pipeline's runs by themselves (`glasspane scheduler` "
        "fires them). Register those the code declares with `sync`, or one from the shell "
        "with `add`.",
        epilog="""examples:
  glasspane schedule sync flows.py
  glasspane schedule list
  glasspane schedule next nightly --count 3""",
    )
    subs = group.add_subparsers(
        dest="schedule_command",
        metavar="sync|add|list|show|next|pause|resume|remove",
        required=True,
    )
    _add_sync(subs, command)
    _add_add(subs, command)
    lst = command(
        subs,
        "list",
        "every schedule: when it fires, its state, next and last fire time, active runs",
        epilog=f"""{SCHEDULE_EXITS}

examples:
  glasspane schedule list
  glasspane schedule list --json""",
    )
    _json(lst, "print a JSON list of schedules")
    show = command(
        subs,
        "show",
        "one schedule: its definition, next 5 fire times and latest 20 ticks",
        description="One schedule: its definition, its next 5 fire times (in its zone and in "
        "UTC) and its latest 20 ticks (each fire time the scheduler evaluated: launched with "
        "the run id, skipped or failed with the reason).",
        epilog=f"""{SCHEDULE_EXITS}

examples:
  glasspane schedule show nightly
  glasspane schedule show nightly --json""",
    )
    _name(show)
    _json(show, "print the schedule as one JSON object, with `upcoming` and `ticks`")
    nxt = command(
        subs,
        "next",
        "a schedule's next fire times, in its zone and in UTC",
        epilog=f"""{SCHEDULE_EXITS}

examples:
  glasspane schedule next nightly
  glasspane schedule next nightly --count 10 --json""",
    )
    _name(nxt)
    nxt.add_argument(
        "--count",
        type=_count,
        default=5,
        metavar="N",
        help=f"how many fire times, 1 to {MAX_NEXT} (default: 5)",
    )
    _json(nxt, "print one JSON object with a `fire_times` list")
    pause = command(
        subs,
        "pause",
        "stop a schedule firing until it is resumed",
        epilog=f"""{SCHEDULE_EXITS}

examples:
  glasspane schedule pause nightly""",
    )
    _name(pause)
    _json(pause, "print one JSON object")
    resume = command(
        subs,
        "resume",
        "let a paused schedule fire again, from now on",
        description="Let a paused schedule fire again from now on: the fire times it missed "
        "while paused are not caught up (backfill them with `glasspane backfill`).",
        epilog=f"""{SCHEDULE_EXITS}

examples:
  glasspane schedule resume nightly""",
    )
    _name(resume)
    _json(resume, "print one JSON object")
    remove = command(
        subs,
        "remove",
        "delete a schedule and its ticks; its runs stay",
        epilog=f"""{SCHEDULE_EXITS}

examples:
  glasspane schedule remove nightly""",
    )
    _name(remove)
    _json(remove, "print one JSON object")


def _add_sync(subs: Any, command: Any) -> None:
    sync = command(
        subs,
        "sync",
        "register the schedules a file or module declares",
        description="Register every schedule that the pipelines of a file or module declare "
        "(@pipeline(schedule=...)), by name: a new name is created, a changed definition is "
        "updated in place (same identity, same ticks), an unchanged one keeps its next fire "
        "time. Schedules registered from there earlier but no longer declared are left as "
        "they are, with a warning saying how to remove them.",
        epilog=f"""{SCHEDULE_EXITS}

examples:
  glasspane schedule sync flows.py
  glasspane schedule sync mypackage.flows --json""",
    )
    sync.add_argument(
        "target", metavar="TARGET", help="FILE.py (from any directory) or package.module"
    )
    _json(sync, "print one JSON object: `registered` (each with its outcome) and `undeclared`")


def _add_add(subs: Any, command: Any) -> None:
    add = command(
        subs,
        "add",
        "register a schedule for a pipeline from the shell",
        description="Register a schedule for a pipeline, or update the schedule of that name "
        "in place. The pipeline is imported to check the parameters; nothing is written "
        "unless everything is valid.",
        epilog=f"""{SCHEDULE_EXITS}

examples:
  glasspane schedule add flows.py:retrain --cron '0 3 * * 1-5' --timezone Europe/Berlin
  glasspane schedule add flows.py:poll --every 15m -p n_rows=500 --name poll-small
  glasspane schedule add flows.py:train --after features --paused""",
    )
    add.add_argument(
        "pipeline", metavar="REF", help="FILE.py:NAME or package.module:NAME of the pipeline"
    )
    kind = add.add_mutually_exclusive_group(required=True)
    kind.add_argument(
        "--cron",
        metavar="EXPR",
        help="five fields: minute hour day-of-month month day-of-week, read in --timezone",
    )
    kind.add_argument(
        "--every",
        metavar="INTERVAL",
        help="a fixed interval aligned to the UTC epoch: 30s, 15m, 2h, 1d",
    )
    kind.add_argument(
        "--after", metavar="PIPELINE", help="once after each successful run of PIPELINE"
    )
    add.add_argument(
        "--timezone",
        default="UTC",
        metavar="TZ",
        help="IANA zone --cron is read in, e.g. Europe/Berlin (default: UTC)",
    )
    add.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter of the runs it launches, repeatable, read as `glasspane run -p` "
        "reads it; default: the pipeline's own defaults",
    )
    add.add_argument(
        "--name", default=None, help="the schedule's name (default: the pipeline's name)"
    )
    add.add_argument(
        "--catchup",
        choices=("none", "latest", "all"),
        default="latest",
        help="fire times missed while no scheduler ran: none skips them, latest runs the "
        "latest one, all runs each (at most --max-catchup) (default: latest)",
    )
    add.add_argument(
        "--max-catchup",
        type=positive_int,
        default=10,
        metavar="N",
        help="most missed fire times --catchup all runs (default: 10)",
    )
    add.add_argument(
        "--max-active",
        type=positive_int,
        default=1,
        metavar="N",
        help="most runs of the schedule queued or running at once; a fire time due beyond "
        "that is skipped (default: 1)",
    )
    add.add_argument(
        "--paused", action="store_true", help="register it paused (it fires nothing yet)"
    )
    _json(add, "print one JSON object: the schedule's name, outcome and next fire time")


def _name(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "name", metavar="NAME", help="the schedule's name (see `glasspane schedule list`)"
    )


def _json(p: argparse.ArgumentParser, text: str) -> None:
    p.add_argument("--json", action="store_true", help=text)


def _count(text: str) -> int:
    value = positive_int(text)
    if value > MAX_NEXT:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_NEXT}, not {value}")
    return value
