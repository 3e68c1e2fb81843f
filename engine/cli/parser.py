"""The ``glasspane`` command line's arguments, help texts and usage errors.

Every command's ``--help`` names its arguments, their choices and defaults, its exit codes
and an example. A usage error is one ``glasspane: error: ...`` line (exit code 2) that points
at the command's ``--help``, like every other error of the command line.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any, NoReturn

from ..types import STATES

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130

#: ``runs list --limit`` above this lists this many (more than anyone reads in a terminal)
MAX_LIMIT = 1_000_000

RUN_EXITS = """\
exit codes:
  0    the run succeeded
  1    the run failed (the commands to inspect and resume it are printed)
  2    a usage, definition, parameter or configuration error (one line, nothing ran)
  130  the run was cancelled (Ctrl-C or SIGTERM); it can be resumed with `glasspane retry`"""

READ_EXITS = """\
exit codes:
  0    done
  2    a usage or configuration error, or no such run, node or attempt (one line saying
       what exists)"""

EXECUTOR_HELP = (
    "where tasks run: inline (one by one in this process), threads (a thread pool), dask (an "
    "embedded local Dask cluster) or tcp://HOST:PORT (an existing Dask scheduler); default: "
    "GLASSPANE_EXECUTOR, else `executor` in glasspane.toml, else dask when GLASSPANE_DASK_ADDRESS "
    "is set, else threads"
)


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like the CLI's other errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"glasspane: error: {message}; see `{self.prog} --help`\n")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilogs' layout (exit codes, examples) as written."""


def positive_int(text: str) -> int:
    """``--limit``: a whole number of 1 or more; huge numbers mean "all" (capped)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return min(value, MAX_LIMIT)


def aware_datetime(text: str) -> datetime:
    """``--scheduled-for``: an ISO 8601 instant with a UTC offset (``Z`` accepted)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"`{text}` is not an ISO 8601 date and time, e.g. 2026-01-31T03:00:00+00:00"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"`{text}` has no UTC offset; add one, e.g. {text}+00:00")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``glasspane`` parser with all its commands."""
    from .. import __version__

    parser = Parser(
        prog="glasspane",
        description="Run ML pipelines as DAGs on Dask, cached by content, with lineage.",
        epilog="Run `glasspane COMMAND --help` for a command's arguments, exit codes and an "
        "example.",
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"glasspane {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(group: Any, name: str, help_: str, **kw: str) -> argparse.ArgumentParser:
        return group.add_parser(
            name, help=help_, description=kw.pop("description", help_), formatter_class=Formatter,
            **kw,
        )  # fmt: skip

    def executor_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--executor", "-e", default=None, metavar="EXECUTOR", help=EXECUTOR_HELP)
        p.add_argument(
            "--json",
            action="store_true",
            help="print one JSON object on stdout (the run's summary) and no live table; what "
            "tasks print goes to stderr",
        )

    run = command(
        sub,
        "run",
        "run a pipeline",
        description="Run a pipeline: validate its parameters, compile it and run its tasks, "
        "reusing cached outputs.",
        epilog=f"""{RUN_EXITS}

examples:
  glasspane run examples/retrain.py:retrain
  glasspane run examples/retrain.py:retrain -p n_rows=500 -p 'grid=[0.1, 1]' --executor dask
  glasspane run mypackage.flows:retrain --json""",
    )
    run.add_argument(
        "pipeline",
        help="FILE.py:NAME (a file, from any directory) or package.module:NAME (importable)",
    )
    run.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a pipeline parameter, repeatable; VALUE is read as JSON where it parses "
        "(-p n=3, -p 'grid=[0.1, 1]'), as text otherwise and always for a str parameter; "
        "types are checked strictly (true is not an int); default: the pipeline's own defaults",
    )
    executor_opts(run)
    run.add_argument(
        "--run-id",
        default=None,
        metavar="ID",
        help="take over the run ID that Workspace.launch queued (what a launched child does)",
    )
    run.add_argument(
        "--trigger",
        default="manual",
        metavar="TRIGGER",
        help="what started the run, as recorded: manual, schedule, ... (default: manual)",
    )
    run.add_argument(
        "--scheduled-for",
        type=aware_datetime,
        default=None,
        metavar="WHEN",
        help="the fire time the run is for (ISO 8601 with a UTC offset), what the scheduler and "
        "`glasspane backfill` pass; a pipeline declaring a `scheduled_for` parameter receives "
        "it unless -p sets it",
    )

    runs = command(sub, "runs", "list runs, show one, or sweep crashed ones")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="list|show|sweep", required=True)
    lst = command(
        runs_sub,
        "list",
        "recent runs, newest first",
        epilog=f"""{READ_EXITS}

examples:
  glasspane runs list
  glasspane runs list --pipeline retrain --state failed --limit 5 --json
  glasspane runs list --schedule nightly --trigger schedule --trigger backfill
  glasspane runs list --tracker mlflow --experiment retrain --limit 50 --json""",
    )
    lst.add_argument(
        "--limit",
        type=positive_int,
        default=20,
        metavar="N",
        help="show at most N runs, a whole number of 1 or more (default: 20)",
    )
    lst.add_argument("--pipeline", default=None, metavar="NAME", help="only this pipeline's runs")
    lst.add_argument(
        "--state",
        default=None,
        choices=STATES,
        metavar="STATE",
        help=f"only runs in this state: {', '.join(STATES)} (default: any)",
    )
    lst.add_argument(
        "--trigger",
        action="extend",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        default=None,
        metavar="TRIGGER",
        help="only runs started this way: manual, ui, retry, schedule, backfill, after...; "
        "repeat it or separate with commas for any of several (default: any)",
    )
    lst.add_argument(
        "--schedule", default=None, metavar="NAME", help="only runs this schedule launched"
    )
    lst.add_argument("--json", action="store_true", help="print a JSON list of run summaries")
    from .tracked_runs import add_arguments as tracker_arguments

    tracker_arguments(lst)  # --tracker NAME --experiment EXP --page-token TOKEN
    show = command(
        runs_sub,
        "show",
        "one run, its tasks, and the tracebacks of the failed ones",
        epilog=f"""{READ_EXITS}

examples:
  glasspane runs show b47e069bd129
  glasspane runs show b47e --json""",
    )
    show.add_argument("run_id", metavar="RUN", help="a run id, or a unique prefix of one")
    show.add_argument(
        "--json", action="store_true", help="print the run's summary as one JSON object"
    )
    sweep = command(
        runs_sub,
        "sweep",
        "mark runs whose driver stopped heart-beating as crashed",
        description="Mark pending and running runs whose last heartbeat is older than "
        "GLASSPANE_CRASH_AFTER seconds (at least 4 heartbeat intervals) as crashed, with "
        "their unfinished tasks, so they can be resumed with `glasspane retry`. Reading runs "
        "never does this; `glasspane run` does it as it starts.",
        epilog="""exit codes:
  0    done (also when no run was stale, or nothing ever ran here)
  2    a usage or configuration error (one line)

examples:
  glasspane runs sweep
  glasspane runs sweep --json""",
    )
    sweep.add_argument(
        "--json", action="store_true", help="print a JSON list of the ids marked crashed"
    )

    retry = command(
        sub,
        "retry",
        "resume a failed, cancelled or crashed run",
        description="Resume a run as a new run: tasks that succeeded are reused, the others run.",
        epilog=f"""{RUN_EXITS}

examples:
  glasspane retry b47e069bd129
  glasspane retry b47e -p api_key=$API_KEY --executor threads --json""",
    )
    retry.add_argument("run_id", metavar="RUN", help="a run id, or a unique prefix of one")
    retry.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a secret parameter to give again (secrets are never stored), repeatable; the "
        "other parameters are the run's own and cannot change",
    )
    executor_opts(retry)
    retry.add_argument(
        "--run-id",
        dest="new_run_id",
        default=None,
        metavar="ID",
        help="take over the run ID that Workspace.launch_retry queued (what a launched child does)",
    )

    cancel = command(
        sub,
        "cancel",
        "cancel a running run, from any shell",
        description="Ask the process running a run to cancel it: it stops at its next "
        "heartbeat (GLASSPANE_HEARTBEAT_INTERVAL, 5 s by default), records the run as "
        "cancelled and stops its tasks; the run can be resumed with `glasspane retry`.",
        epilog="""exit codes:
  0    the cancel was requested (with --wait: the run ended cancelled)
  1    the run is already over (its state is printed), or with --wait it ended otherwise
  2    a usage or configuration error, or no such run

examples:
  glasspane cancel b47e069bd129
  glasspane cancel b47e --wait""",
    )
    cancel.add_argument("run_id", metavar="RUN", help="a run id, or a unique prefix of one")
    cancel.add_argument(
        "--wait",
        action="store_true",
        help="wait until the run has ended, then print its final state",
    )

    lin = command(
        sub,
        "lineage",
        "what fed a node's output, or what consumed it",
        epilog=f"""{READ_EXITS}

examples:
  glasspane lineage b47e069bd129 train
  glasspane lineage b47e load --downstream --json""",
    )
    lin.add_argument("run_id", metavar="RUN", help="a run id, or a unique prefix of one")
    lin.add_argument("node", metavar="NODE", help="a node of that run (see `glasspane runs show`)")
    group = lin.add_mutually_exclusive_group()
    group.add_argument(
        "--upstream",
        dest="direction",
        action="store_const",
        const="upstream",
        help="the task runs and artifacts it was computed from (the default)",
    )
    group.add_argument(
        "--downstream",
        dest="direction",
        action="store_const",
        const="downstream",
        help="the task runs that consumed its outputs, in this run and later ones",
    )
    lin.add_argument("--json", action="store_true", help="print the lineage as one JSON object")

    logs = command(
        sub,
        "logs",
        "what one task printed and logged, attempt by attempt, with its traceback",
        epilog=f"""{READ_EXITS}

examples:
  glasspane logs b47e069bd129 train
  glasspane logs b47e train --attempt 2 --json""",
    )
    logs.add_argument("run_id", metavar="RUN", help="a run id, or a unique prefix of one")
    logs.add_argument("node", metavar="NODE", help="a node of that run (see `glasspane runs show`)")
    logs.add_argument(
        "--attempt",
        type=positive_int,
        default=None,
        metavar="N",
        help="only attempt N (1 is the first; default: every attempt)",
    )
    logs.add_argument("--json", action="store_true", help="print everything as one JSON object")

    cache = command(sub, "cache", "manage the output cache")
    cache_sub = cache.add_subparsers(dest="cache_command", metavar="clear", required=True)
    clear = command(
        cache_sub,
        "clear",
        "forget cached outputs, so their tasks run again",
        description="Forget cached outputs: the next run recomputes those tasks. Stored "
        "artifacts stay readable (runs, lineage and retries still find them).",
        epilog=f"""{READ_EXITS}

examples:
  glasspane cache clear --task train
  glasspane cache clear""",
    )
    clear.add_argument(
        "--task",
        default=None,
        metavar="NAME",
        help="only this task's entries, by task name (default: every task); a name the cache "
        "holds no entry for is an error that lists the names it holds",
    )
    ui = command(
        sub,
        "ui",
        "serve the web UI",
        description="Serve the web UI over the configured runs (the same settings as every "
        "other command): runs, run graphs, tasks, artifacts, lineage, metrics; launch, retry "
        "and cancel runs. It runs no pipeline code itself: runs it launches are child "
        "processes. Binding an address other than 127.0.0.1 needs GLASSPANE_UI_TOKEN.",
        epilog="""examples:
  glasspane ui
  glasspane ui --port 9000
  GLASSPANE_UI_TOKEN=$(openssl rand -hex 16) glasspane ui --host 0.0.0.0""",
    )
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    ui.add_argument("--port", type=int, default=8420, help="port to bind (default: 8420)")

    from . import deploy_cli, integrations_cli, models_cli, schedule_cli, scheduler_cli

    schedule_cli.add_parsers(sub, command)
    scheduler_cli.add_parsers(sub, command)
    integrations_cli.add_parsers(sub, command)
    models_cli.add_parsers(sub, command)
    deploy_cli.add_parsers(sub, command)
    return parser
