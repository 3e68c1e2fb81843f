"""``glasspane schedule ...``: registering, reading, pausing and removing schedules; and the
hooks of ``glasspane schedule`` and ``glasspane backfill`` into the command line (their
arguments: :mod:`.schedule_parser`, :mod:`.backfill_cli`).

Reading commands (``list``, ``show``, ``next``) never create a database; the others write
only once everything they were given has been checked, so an error (one line, exit code 2)
leaves the schedules as they were.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from .parser import EXIT_OK


def add_parsers(sub: Any, command: Any) -> None:
    """Add the ``schedule`` and ``backfill`` commands to the subparsers ``sub``."""
    from . import backfill_cli, schedule_parser

    schedule_parser.add_parser(sub, command)
    backfill_cli.add_parser(sub, command)


# ---- the commands --------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    if args.command == "backfill":
        from . import backfill_cli

        return backfill_cli.main(args)
    command = {
        "sync": _sync,
        "add": _add,
        "list": _list,
        "show": _show,
        "next": _next,
        "pause": _pause,
        "resume": _resume,
        "remove": _remove,
    }[args.schedule_command]
    return command(args)


def _workspace() -> Any:
    from .. import api

    return api.default_workspace()


def _say(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, default=str) if args.json else text)


def _warn(message: str) -> None:
    sys.stderr.write(f"glasspane: warning: {message}\n")


def _next_text(next_fire_at: datetime | None, schedule: Any) -> str:
    from .schedule_view import both_text

    if schedule.paused:
        return "paused: fires nothing until `glasspane schedule resume`"
    if schedule.kind == "after":
        return f"fires after each successful run of pipeline `{schedule.after}`"
    return f"next fire {both_text(next_fire_at, schedule.zone)}" if next_fire_at else ""


def _registered(item: Any, schedule: Any) -> dict[str, Any]:
    from .schedule_view import fire_time

    nxt = item.next_fire_at
    return {
        "name": item.name,
        "pipeline_ref": item.pipeline_ref,
        "outcome": item.outcome,
        "next_fire": fire_time(nxt, schedule.zone) if nxt else None,
    }


def _sync(args: argparse.Namespace) -> int:
    from .. import scheduling

    store = _workspace().store
    synced = scheduling.sync(store, args.target)
    schedules = {
        r.name: scheduling.schedule_of(store.get_schedule(r.name)) for r in synced.registered
    }
    for name in synced.undeclared:
        _warn(
            f"schedule `{name}` was registered from {args.target} but is no longer declared "
            f"there; it still fires: remove it with `glasspane schedule remove {name}`"
        )
    if args.json:
        records = [_registered(r, schedules[r.name]) for r in synced.registered]
        print(json.dumps({"registered": records, "undeclared": synced.undeclared}))
        return EXIT_OK
    for item in synced.registered:
        schedule = schedules[item.name]
        print(f"{item.outcome:<9} {item.name}: {_next_text(item.next_fire_at, schedule)}")
    return EXIT_OK


def _add(args: argparse.Namespace) -> int:
    from .. import scheduling
    from ..loader import load_pipeline
    from ..params import parse_params
    from ..schedules import Schedule

    pipeline = load_pipeline(args.pipeline)
    fields = dict(pipeline.params_model.model_fields)
    schedule = Schedule(
        name=args.name,
        cron=args.cron,
        every=args.every,
        after=args.after,
        timezone=args.timezone,
        params=parse_params(args.param, fields, pipeline.name),
        catchup=args.catchup,
        max_catchup=args.max_catchup,
        max_active=args.max_active,
        paused=args.paused,
    )
    item = scheduling.add(_workspace().store, args.pipeline, schedule)
    schedule = schedule.model_copy(update={"name": item.name})
    text = f"{item.outcome} schedule {item.name} for {item.pipeline_ref}: "
    _say(args, _registered(item, schedule), text + _next_text(item.next_fire_at, schedule))
    return EXIT_OK


def _records(store: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from .schedule_view import schedule_record

    return [schedule_record(row, store.count_active_runs(row["name"])) for row in rows]


def _list(args: argparse.Namespace) -> int:
    from ..errors import NotFound
    from .schedule_view import schedules_table

    try:
        store = _workspace().reader()
    except NotFound as exc:  # nothing ran or was registered here yet, or a mistyped setting
        _warn(str(exc))
        records: list[dict[str, Any]] = []
    else:
        records = _records(store, store.list_schedules())
    if args.json:
        print(json.dumps(records))
    elif not records:
        print("no schedules registered; register them with `glasspane schedule sync FILE.py`")
    else:
        console = _console()
        console.print(schedules_table(records, console.width))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from .. import scheduling
    from .schedule_view import fire_time, print_schedule, tick_record, trigger_record

    store = _workspace().reader()
    row = store.get_schedule(args.name)
    (record,) = _records(store, [row])
    zone = scheduling.schedule_of(row).zone
    record["upcoming"] = [fire_time(t, zone) for t in scheduling.upcoming(row, 5)]
    record["ticks"] = [tick_record(t, zone) for t in store.schedule_ticks(args.name, 20)]
    triggers = store.schedule_triggers(args.name, 20) if row.get("after") else []
    record["triggers"] = [trigger_record(t) for t in triggers]
    if args.json:
        print(json.dumps(record))
    else:
        print_schedule(_console(), record)
    return EXIT_OK


def _next(args: argparse.Namespace) -> int:
    from .. import scheduling
    from .schedule_view import fire_time, fire_times_table

    row = _workspace().reader().get_schedule(args.name)
    schedule = scheduling.schedule_of(row)
    times = scheduling.upcoming(row, args.count)
    data = {
        "name": schedule.name,
        "kind": schedule.kind,
        "timezone": schedule.timezone,
        "after": schedule.after,
        "paused": schedule.paused,
        "fire_times": [fire_time(t, schedule.zone) for t in times],
    }
    if args.json:
        print(json.dumps(data))
    elif schedule.kind == "after":
        print(
            f"schedule {schedule.name} fires after each successful run of pipeline "
            f"`{schedule.after}`: it has no fire times of its own"
            + (" (paused)" if schedule.paused else "")
        )
    else:
        from .schedule_view import when_text

        note = "; paused: as if resumed now" if schedule.paused else ""
        console = _console()
        console.print(f"{schedule.name}: {when_text(schedule)}{note}", markup=False)
        console.print(fire_times_table(f"next {len(times)} fire times", times, schedule.zone))
    return EXIT_OK


def _pause(args: argparse.Namespace) -> int:
    changed = _workspace().store.pause_schedule(args.name)
    text = (
        f"paused schedule {args.name}: it fires nothing until "
        f"`glasspane schedule resume {args.name}`; runs already launched go on"
        if changed
        else f"schedule {args.name} is paused already; nothing changed"
    )
    _say(args, {"name": args.name, "state": "paused", "changed": changed}, text)
    return EXIT_OK


def _resume(args: argparse.Namespace) -> int:
    from .. import scheduling

    store = _workspace().store
    changed = scheduling.resume(store, args.name)
    row = store.get_schedule(args.name)
    schedule = scheduling.schedule_of(row)
    if changed:
        text = (
            f"resumed schedule {args.name}: {_next_text(row['next_fire_at'], schedule)}; what "
            "it missed while paused is not caught up (run it with `glasspane backfill "
            f"--schedule {args.name} --from ... --to ...`)"
        )
    else:
        text = f"schedule {args.name} is not paused; nothing changed"
    data = {
        "name": args.name,
        "state": "active",
        "changed": changed,
        "next_fire_at": row["next_fire_at"].isoformat() if row["next_fire_at"] else None,
    }
    _say(args, data, text)
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    store = _workspace().store
    row = store.get_schedule(args.name)
    store.remove_schedule(args.name)
    pipeline = row["pipeline_ref"].rpartition(":")[2]
    text = (
        f"removed schedule {args.name} and its ticks; its runs stay "
        f"(`glasspane runs list --pipeline {pipeline}`)"
    )
    _say(args, {"name": args.name, "removed": True, "pipeline_ref": row["pipeline_ref"]}, text)
    return EXIT_OK


def _console() -> Any:
    from rich.console import Console

    return Console()
