"""``glasspane runs list --tracker NAME --experiment EXP``: a tracker's runs of an experiment
(MLflow...), read back through the tracker's own search API, page by page; runs glasspane did
not create included, so a team's history is there from day one.

The tracker must be one the settings turn on (``trackers``) and able to read back (a
:class:`~glasspane.tracking.TrackerReader`). ``--json`` prints the page
(:class:`~glasspane.tracking.TrackedRunPage`) and nothing else on stdout; otherwise a table
fitted to the terminal, then the command for the next page when there is one.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from ..errors import ConfigError, InvalidArgument
from .parser import EXIT_OK

#: runs a tracker is asked for at most in one page (``--limit``)
MAX_PAGE = 1000
#: parameters and metrics shown in a row at most (each); ``--json`` has them all
SHOWN_VALUES = 4
#: from this many terminal columns on, params and metrics get a column of their own
WIDE = 100
#: ``runs list`` options that filter glasspane's own runs, which a tracker's runs do not have
GLASSPANE_ONLY = ("pipeline", "state", "trigger", "schedule")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--tracker``, ``--experiment`` and ``--page-token`` to ``runs list``."""
    parser.add_argument(
        "--tracker",
        default=None,
        metavar="NAME",
        help="list a tracker's runs instead of glasspane's (a tracker the settings turn on "
        "that can read back, such as mlflow), runs glasspane did not create included; needs "
        "--experiment; --limit is then the page size (at most 1000), and --json prints the "
        "page as one object: {runs, next_page_token}",
    )
    parser.add_argument(
        "--experiment",
        default=None,
        metavar="EXP",
        help="with --tracker: the tracker's experiment whose runs to list",
    )
    parser.add_argument(
        "--page-token",
        default=None,
        metavar="TOKEN",
        help="with --tracker: the next page, from the token the previous page printed",
    )


def wanted(args: argparse.Namespace) -> bool:
    """Whether ``runs list`` lists a tracker's runs (checking the options go together).

    Raises:
        InvalidArgument: ``--experiment`` or ``--page-token`` without ``--tracker``,
            ``--tracker`` without ``--experiment``, or with a glasspane-only filter.
    """
    if args.tracker is None:
        for option in ("experiment", "page_token"):
            if getattr(args, option) is not None:
                flag = "--" + option.replace("_", "-")
                raise InvalidArgument(
                    f"{flag} goes with --tracker NAME: `glasspane runs list --tracker mlflow "
                    f"--experiment EXP`; see `glasspane runs list --help`"
                )
        return False
    given = [f"--{name}" for name in GLASSPANE_ONLY if getattr(args, name)]
    if given:
        raise InvalidArgument(
            f"{', '.join(given)} filter{'s' if len(given) == 1 else ''} glasspane's own runs, "
            f"not a tracker's: drop {'it' if len(given) == 1 else 'them'}, or drop --tracker "
            "to list glasspane's runs; see `glasspane runs list --help`"
        )
    if not args.experiment:
        raise InvalidArgument(
            f"--tracker {args.tracker} needs --experiment EXP, the tracker's experiment to "
            f"list: `glasspane runs list --tracker {args.tracker} --experiment EXP`; see "
            "`glasspane runs list --help`"
        )
    return True


def main(args: argparse.Namespace, console: Any) -> int:
    """List one page of the tracker's runs (see the module docstring)."""
    from ..config import load_settings
    from ..tracking import configured, open_reader

    settings = load_settings()
    name = args.tracker
    on = configured(settings)
    if name not in on:
        have = ", ".join(on) or "none"
        raise ConfigError(
            f"tracker `{name}` is not configured (configured: {have}); turn it on with "
            f'GLASSPANE_TRACKERS={name} or `trackers = ["{name}"]` in glasspane.toml'
        )
    reader = open_reader(settings, name)
    try:
        page = reader.search_runs(
            args.experiment, page_token=args.page_token, max_results=min(args.limit, MAX_PAGE)
        )
    finally:
        reader.close()
    if args.json:
        print(page.model_dump_json())
        return EXIT_OK
    out = console()
    if not page.runs:
        out.print(f"no runs in experiment `{args.experiment}` of tracker `{name}`", markup=False)
    else:
        out.print(tracked_table(page.runs, name, out.width))
    if page.next_page_token:
        command = (
            f"glasspane runs list --tracker {shlex.quote(name)} --experiment "
            f"{shlex.quote(args.experiment)} --limit {args.limit} --page-token "
            f"{shlex.quote(page.next_page_token)}"
        )
        out.print(f"next page: {command}", markup=False, soft_wrap=True)
    return EXIT_OK


def tracked_table(runs: list[Any], tracker: str, width: int = 80) -> Any:
    """A tracker's runs, one a row: id (in full: ``compare`` and the API take it), name (and
    the glasspane run it records), status, start (local time), and a few params and metrics:
    in a column of their own from :data:`WIDE` columns on, else on a line under the row."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from .render import when

    wide = width >= WIDE
    table = Table(
        title=f"runs in {tracker}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
    )
    table.add_column("id", min_width=32, max_width=None if wide else 36)
    table.add_column("name", overflow="fold", ratio=1, min_width=8)
    table.add_column("status", no_wrap=True)
    table.add_column("started", no_wrap=True)
    if wide:
        table.add_column("params · metrics", overflow="fold", ratio=2, min_width=12)
    for run in runs:
        name = run.name or ""
        if run.glasspane_run_id:
            name += f" (glasspane {run.glasspane_run_id[:12]})"
        started = when(run.start_time.isoformat() if run.start_time else None)
        row = [run.external_id, name, run.status or "", started]
        if wide:
            table.add_row(*row, values(run))
        else:
            table.add_row(*row)
            if run.params or run.metrics:
                table.add_row(Text("  " + values(run), style="dim"), "", "", "")
    return table


def values(run: Any) -> str:
    """``n=100 lr=0.1 · acc=0.81``: the first few params and metrics of a run, by name."""
    params = [f"{k}={v}" for k, v in sorted(run.params.items())[:SHOWN_VALUES]]
    metrics = [f"{k}={v:.4g}" for k, v in sorted(run.metrics.items())[:SHOWN_VALUES]]
    more = len(run.params) + len(run.metrics) - len(params) - len(metrics)
    text = " · ".join(part for part in (" ".join(params), " ".join(metrics)) if part)
    return text + (f" (+{more})" if more else "")
