"""``glasspane backfill``: one run of a pipeline for each fire time in a range of dates, a few
at a time, each in its own process; what to launch, skip or wait for is decided by
:mod:`glasspane.backfill`.

Progress goes to stdout, one line per run launched and per run ended, then a summary; with
``--json`` those lines go to stderr and stdout holds one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any, TextIO

from .parser import EXECUTOR_HELP, EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, positive_int

BACKFILL_EXITS = """\
exit codes:
  0    every run succeeded, or there was nothing to launch (with --no-wait: all launched)
  1    a run failed; the same command again launches the fire times that have no
       succeeded run
  2    a usage, definition, parameter or configuration error (one line; nothing launched)
  130  interrupted (Ctrl-C or SIGTERM): nothing more is launched, the runs launched go on,
       and the same command again launches only the rest"""

DEFAULT_PARALLEL = 2


def add_parser(sub: Any, command: Any) -> None:
    """Add ``backfill`` to the subparsers ``sub``."""
    p = command(
        sub,
        "backfill",
        "run a pipeline once for each fire time in a range of dates",
        description="Run a pipeline once for each fire time of a cron expression, an interval "
        "or a registered schedule from --from to --to (both included), at most --max-parallel "
        "runs at a time, each in its own process; a pipeline declaring a `scheduled_for: "
        "datetime` parameter receives the fire time. Fire times that already have a "
        "succeeded run of the pipeline are skipped, and those with a queued or running one "
        "are waited for, so running the same backfill again launches only what is missing. "
        "One backfill covers at most 10,000 fire times.",  # glasspane.backfill.MAX_FIRE_TIMES
        epilog=f"""{BACKFILL_EXITS}

examples:
  glasspane backfill flows.py:nightly --cron '0 3 * * *' --from 2026-01-01 --to 2026-01-31
  glasspane backfill --schedule nightly --from 2026-01-01 --to 2026-01-07 --max-parallel 4
  glasspane backfill flows.py:hourly --every 1h --from 2026-01-01T00:00Z --to 2026-01-01T12:00Z \\
      -p n_rows=500 --no-wait --json""",
    )
    p.add_argument(
        "pipeline",
        nargs="?",
        default=None,
        metavar="REF",
        help="FILE.py:NAME or package.module:NAME; optional with --schedule, which names its "
        "pipeline",
    )
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument(
        "--cron", metavar="EXPR", help="the fire times of a cron expression, read in --timezone"
    )
    kind.add_argument(
        "--every", metavar="INTERVAL", help="every INTERVAL (30s, 15m, 2h, 1d) since the UTC epoch"
    )
    kind.add_argument(
        "--schedule",
        metavar="NAME",
        help="the fire times, pipeline and params of registered schedule NAME (-p overrides "
        "params); dates are read in its zone",
    )
    for flag, dest, what in (("--from", "start", "first"), ("--to", "end", "last")):
        p.add_argument(
            flag,
            dest=dest,
            required=True,
            metavar="DATE",
            help=f"the {what} day or instant: YYYY-MM-DD "
            + ("(that whole day is included) " if dest == "end" else "(from midnight) ")
            + "or an ISO 8601 date and time; without an offset it is read in the schedule's zone",
        )
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter of every run, repeatable, read as `glasspane run -p` reads it; "
        "default: the schedule's params, else the pipeline's defaults",
    )
    p.add_argument(
        "--timezone",
        default=None,
        metavar="TZ",
        help="IANA zone --cron and the dates are read in (default: UTC); not with "
        "--schedule, whose own zone is used",
    )
    p.add_argument(
        "--max-parallel",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"most runs active at once (default: {DEFAULT_PARALLEL})",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="launch every fire time at once, print the run ids and return without waiting",
    )
    p.add_argument("--executor", "-e", default=None, metavar="EXECUTOR", help=EXECUTOR_HELP)
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object on stdout at the end; progress lines go to stderr",
    )


def main(args: argparse.Namespace) -> int:
    from .. import api
    from ..backfill import Backfill, fire_times, parse_bound, plan
    from ..dsl.pipeline import validate_params
    from ..errors import InvalidArgument, ParameterError
    from ..loader import load_pipeline
    from ..params import parse_params
    from ..store.claims import run_states, runs_for

    if args.no_wait and args.max_parallel is not None:
        raise InvalidArgument(
            "--no-wait launches every fire time at once; drop --max-parallel, or --no-wait "
            "to launch at most N at a time"
        )
    ws = api.default_workspace()
    ref, schedule, params = _source(ws, args)
    pipeline = load_pipeline(ref)
    fields = pipeline.params_model.model_fields
    given = parse_params(args.param, dict(fields), pipeline.name)
    if "scheduled_for" in given:
        raise ParameterError(
            f"pipeline `{pipeline.name}`: `scheduled_for` is each run's own fire time, which "
            "the backfill passes; drop -p scheduled_for"
        )
    params.update(given)
    start = parse_bound(args.start, schedule.zone, option="--from")
    end = parse_bound(args.end, schedule.zone, end=True, option="--to")
    sample = {"scheduled_for": start} if "scheduled_for" in fields else {}
    validate_params(pipeline.params_model, pipeline.name, {**params, **sample})
    times = fire_times(schedule, start, end)
    out = sys.stderr if args.json else sys.stdout
    if "scheduled_for" not in fields:
        _warn(
            f"pipeline `{pipeline.name}` declares no `scheduled_for` parameter, so its runs "
            "cannot tell which fire time they are for; declare `scheduled_for: datetime | None "
            "= None` to receive it"
        )
    ws.sweep()  # runs whose process died are crashed, not waited for
    store = ws.store
    names = {pipeline.name, ref.rpartition(":")[2]}
    todo = plan(times, store.read(runs_for, names, start, end) if times else [])
    zone = schedule.zone
    _header(out, args, pipeline.name, schedule, todo)

    def launch(at: datetime) -> str:
        return ws.launch(ref, params, trigger="backfill", executor=args.executor, scheduled_for=at)

    def say(step: Any) -> None:
        from .schedule_view import both_text

        count = f" ({len(backfill.launched)}/{len(todo.launch)})" if step.kind == "launched" else ""
        hint = ""
        if step.kind == "finished" and step.state != "succeeded":
            hint = f": glasspane runs show {step.run_id}"
        verb = step.state if step.kind == "finished" else "launched"
        at = both_text(step.fire_at, zone)
        print(f"{verb:<9} run {step.run_id} for {at}{count}{hint}", file=out, flush=True)

    backfill = Backfill(
        todo,
        launch,
        lambda ids: store.read(run_states, ids),
        max_parallel=args.max_parallel or DEFAULT_PARALLEL,
        on_step=say,
        sweep=ws.sweep,
    )
    interrupted = False
    try:
        if args.no_wait:
            backfill.launch_all()
        else:
            backfill.run()
    except KeyboardInterrupt:
        interrupted = True
    states = {**store.read(run_states, list(backfill.runs.values())), **backfill.ended}
    if args.json:
        data = _record(pipeline.name, ref, args, schedule, todo, backfill, states, interrupted)
        print(json.dumps(data))
    _summary(out, args, todo, backfill, interrupted)
    if interrupted:
        return EXIT_CANCELLED
    return EXIT_FAILED if backfill.failed else EXIT_OK


def _source(ws: Any, args: argparse.Namespace) -> tuple[str, Any, dict[str, Any]]:
    """The pipeline reference, the schedule giving the fire times, and the base params."""
    from ..errors import InvalidArgument
    from ..loader import canonical_ref
    from ..schedules import Schedule
    from ..scheduling import schedule_of

    if args.schedule is None:
        if args.pipeline is None:
            raise InvalidArgument(
                "backfill of which pipeline? give it: glasspane backfill FILE.py:NAME --cron "
                "EXPR ..., or name a registered schedule with --schedule NAME"
            )
        schedule = Schedule(cron=args.cron, every=args.every, timezone=args.timezone or "UTC")
        return args.pipeline, schedule, {}
    if args.timezone is not None:
        raise InvalidArgument(
            f"--timezone applies to --cron; schedule `{args.schedule}` has its own zone, in "
            "which the dates are read (give them with an offset to mean another zone)"
        )
    row = ws.reader().get_schedule(args.schedule)
    if args.pipeline is not None and canonical_ref(args.pipeline) != row["pipeline_ref"]:
        raise InvalidArgument(
            f"schedule `{args.schedule}` launches {row['pipeline_ref']}, not {args.pipeline}; "
            "leave REF out to backfill its pipeline, or pass --cron instead of --schedule"
        )
    schedule = schedule_of(row)
    return row["pipeline_ref"], schedule, dict(schedule.params)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _warn(message: str) -> None:
    sys.stderr.write(f"glasspane: warning: {message}\n")


def _header(out: TextIO, args: argparse.Namespace, name: str, schedule: Any, todo: Any) -> None:
    from .schedule_view import both_text, when_text

    zone = schedule.zone
    times = todo.fire_times
    if not times:
        print(
            f"backfill of {name} ({when_text(schedule)}): no fire time from {args.start} to "
            f"{args.end}; nothing to launch",
            file=out,
        )
        return
    span = f"{both_text(times[0], zone)} to {both_text(times[-1], zone)}"
    parallel = (
        "all at once"
        if args.no_wait
        else f"at most {args.max_parallel or DEFAULT_PARALLEL} at a time"
    )
    print(
        f"backfill of {name} ({when_text(schedule)}): {_n(len(times), 'fire time')}, {span}\n"
        f"  {len(todo.done)} skipped (a run succeeded already), {len(todo.active)} running "
        f"already (waited for), {len(todo.launch)} to launch, {parallel}",
        file=out,
        flush=True,
    )


def _summary(
    out: TextIO, args: argparse.Namespace, todo: Any, backfill: Any, interrupted: bool
) -> None:
    launched, left = len(backfill.launched), len(backfill.left)
    if interrupted:
        print(
            f"interrupted: {_n(launched, 'run')} launched, {_n(left, 'fire time')} not "
            "launched; the runs launched go on (`glasspane cancel RUN` stops one); the same "
            "command again launches only the fire times without a succeeded or running run",
            file=out,
        )
        return
    if args.no_wait:
        print(
            f"launched {_n(launched, 'run')}; follow them with `glasspane runs list`",
            file=out,
        )
        return
    failed = backfill.failed
    print(
        f"done: {len(backfill.succeeded)} succeeded, {len(failed)} failed, {len(todo.done)} "
        "skipped (a run succeeded already)",
        file=out,
    )
    if failed:
        print(
            "the same command again launches the failed fire times again "
            f"(inspect one: glasspane runs show {next(iter(failed.values()))})",
            file=out,
        )


def _record(
    name: str,
    ref: str,
    args: argparse.Namespace,
    schedule: Any,
    todo: Any,
    backfill: Any,
    states: dict[str, str],
    interrupted: bool,
) -> dict[str, Any]:
    from ..loader import canonical_ref
    from .schedule_view import when_text

    launched = set(backfill.launched.values())
    return {
        "pipeline": name,
        "pipeline_ref": canonical_ref(ref),
        "schedule": args.schedule,
        "when": when_text(schedule),
        "timezone": schedule.timezone,
        "fire_times": len(todo.fire_times),
        "skipped": [
            {"scheduled_for": at.isoformat(), "run_id": run_id} for at, run_id in todo.done.items()
        ],
        "runs": [
            {
                "scheduled_for": at.isoformat(),
                "run_id": run_id,
                "launched": run_id in launched,
                "state": states.get(run_id, "crashed"),
            }
            for at, run_id in backfill.runs.items()
        ],
        "left": [at.isoformat() for at in backfill.left],
        "succeeded": len(backfill.succeeded),
        "failed": len(backfill.failed),
        "interrupted": interrupted,
    }
