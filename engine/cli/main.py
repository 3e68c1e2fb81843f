"""``glasspane``: run pipelines, inspect runs, resume failures, trace lineage.

Exit codes: 0 the run succeeded (or the command worked), 1 the run failed, 2 a usage,
definition or configuration error, 130 the run was cancelled. User errors print one
message naming what, where and what next — never a glasspane traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glasspane",
        description="Run ML pipelines as DAGs on Dask, cached by content, with lineage.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def executor_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--executor",
            "-e",
            default=None,
            help="inline | threads | dask | tcp://HOST:PORT (default: threads, "
            "or GLASSPANE_EXECUTOR)",
        )
        p.add_argument("--json", action="store_true", help="print one JSON object")

    def param_opt(p: argparse.ArgumentParser, help_: str) -> None:
        p.add_argument(
            "-p", "--param", action="append", default=[], metavar="NAME=VALUE", help=help_
        )

    run = sub.add_parser("run", help="run a pipeline")
    run.add_argument("pipeline", help="FILE.py:NAME or package.module:NAME")
    param_opt(run, "pipeline parameter; VALUE is read as JSON where it parses")
    executor_opts(run)

    runs = sub.add_parser("runs", help="list or show runs")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="list|show", required=True)
    lst = runs_sub.add_parser("list", help="recent runs, newest first")
    lst.add_argument("--limit", type=int, default=20)
    lst.add_argument("--pipeline", default=None)
    lst.add_argument("--state", default=None)
    lst.add_argument("--json", action="store_true")
    show = runs_sub.add_parser("show", help="one run and its tasks")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")

    retry = sub.add_parser("retry", help="resume a failed or crashed run")
    retry.add_argument("run_id")
    param_opt(retry, "a secret parameter to give again (secrets are never stored)")
    executor_opts(retry)

    lin = sub.add_parser("lineage", help="what fed a node's output, or what consumed it")
    lin.add_argument("run_id")
    lin.add_argument("node")
    group = lin.add_mutually_exclusive_group()
    group.add_argument("--upstream", dest="direction", action="store_const", const="upstream")
    group.add_argument("--downstream", dest="direction", action="store_const", const="downstream")
    lin.add_argument("--json", action="store_true")

    cache = sub.add_parser("cache", help="manage the output cache")
    cache_sub = cache.add_subparsers(dest="cache_command", metavar="clear", required=True)
    clear = cache_sub.add_parser("clear", help="forget cached outputs")
    clear.add_argument("--task", default=None, help="only this task's entries")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..errors import GlasspaneError

    signal.signal(signal.SIGTERM, _terminate)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        _err("cancelled")
        return EXIT_CANCELLED
    except GlasspaneError as exc:
        return _user_error(exc)
    except BrokenPipeError:
        # the reader went away (`glasspane runs list --json | head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _user_error(exc: Exception) -> int:
    from ..errors import NotFound, RunFailed
    from ..loader import UserCodeError

    if isinstance(exc, UserCodeError):
        sys.stderr.write(exc.user_traceback)
    _err(str(exc))
    if isinstance(exc, RunFailed):
        return EXIT_FAILED
    if isinstance(exc, NotFound):
        return EXIT_USAGE
    return EXIT_USAGE


def _err(message: str) -> None:
    sys.stderr.write(f"glasspane: error: {message}\n")


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        return _run(args)
    if args.command == "retry":
        return _retry(args)
    if args.command == "runs":
        return _runs(args)
    if args.command == "lineage":
        return _lineage(args)
    if args.command == "cache":
        from .. import api

        count = api.clear_cache(args.task)
        what = f"task `{args.task}`" if args.task else "all tasks"
        print(f"cleared {count} cache entr{'y' if count == 1 else 'ies'} for {what}")
        return EXIT_OK
    raise AssertionError(args.command)  # pragma: no cover - argparse requires a command


def _run(args: argparse.Namespace) -> int:
    from .. import api
    from ..loader import load_pipeline
    from .params import parse_params

    pipeline = load_pipeline(args.pipeline)
    params = parse_params(args.param, dict(pipeline.params_model.model_fields), pipeline.name)
    return _execute(
        args,
        lambda progress: api.run_pipeline(
            pipeline, params, executor=args.executor, raise_on_failure=False, progress=progress
        ),
        pipeline.name,
    )


def _retry(args: argparse.Namespace) -> int:
    from .. import api
    from .params import split_param

    old = api.get_run(args.run_id)
    secrets = dict(split_param(item) for item in args.param)  # kept raw: secrets are strings
    return _execute(
        args,
        lambda progress: api.retry(
            old["run_id"],
            executor=args.executor,
            raise_on_failure=False,
            progress=progress,
            secrets=secrets,
        ),
        old["pipeline"],
    )


def _execute(args: argparse.Namespace, start: Any, pipeline: str) -> int:
    from rich.console import Console

    from .. import api
    from .render import LiveProgress, run_table

    if args.json:
        result = start(None)
    else:
        with LiveProgress(Console(stderr=True), pipeline) as progress:
            result = start(progress)
    if args.json:
        print(json.dumps(result.to_dict(), default=str))
    else:
        console = Console()
        console.print(run_table(result.to_dict()))
        if result.state != "succeeded":
            console.print(f"[red]{result.error}[/red]")
            console.print(
                f"inspect: glasspane runs show {result.run_id}\n"
                f"resume:  glasspane retry {result.run_id}"
            )
        elif result.output is not None:
            console.print("output:", json.dumps(result.to_dict()["output"], default=str)[:2000])
    del api
    if result.state == "succeeded":
        return EXIT_OK
    return EXIT_CANCELLED if result.state == "cancelled" else EXIT_FAILED


def _runs(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .. import api
    from .render import run_table, runs_table

    if args.runs_command == "list":
        items = api.runs(limit=args.limit, pipeline=args.pipeline, state=args.state)
        if args.json:
            print(json.dumps(items, default=str))
        else:
            Console().print(runs_table(items))
        return EXIT_OK
    summary = api.run_summary(api.get_run(args.run_id))
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        Console().print(run_table(summary))
        if summary.get("error"):
            Console().print(f"[red]{summary['error']}[/red]")
    return EXIT_OK


def _lineage(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .. import api
    from .render import lineage_table

    data = api.lineage(args.run_id, args.node, direction=args.direction or "upstream")
    if args.json:
        print(json.dumps(data, default=str))
    else:
        Console().print(lineage_table(data))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
