"""``glasspane``: run pipelines, inspect runs, read task logs, resume failures, trace lineage.

Exit codes: 0 the run succeeded (or the command worked), 1 the run failed, 2 a usage,
definition or configuration error, 130 the run was cancelled. User errors print one
message naming what, where and what next — never a glasspane traceback. Warnings glasspane
gives on purpose (:class:`~glasspane.errors.GlasspaneWarning`) are one
``glasspane: warning: ...`` line each.

With ``--json``, stdout holds the JSON object and nothing else: while the run runs, file
descriptor 1 points at stderr, so whatever tasks print (through Python, C code, or Dask
worker processes started meanwhile) lands on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .parser import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, EXIT_USAGE, build_parser
from .reads import cache_clear, console, lineage, logs, runs, say_swept, warn

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..errors import GlasspaneError

    signal.signal(signal.SIGTERM, _terminate)
    with warnings.catch_warnings():  # restores the display hook when main returns
        warnings.showwarning = _show_warning
        try:
            code = _dispatch(args)
        except KeyboardInterrupt:
            _err("cancelled")
            code = EXIT_CANCELLED
        except GlasspaneError as exc:
            return _user_error(exc)
        except BrokenPipeError:
            # the reader went away (`glasspane runs list --json | head`): not an error of ours
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_OK
    if code == EXIT_CANCELLED:
        _quiet_second_interrupt()
    return code


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _quiet_second_interrupt() -> None:
    """After a cancelled run, a second Ctrl-C (or SIGTERM) exits at once with 130.

    Interpreter shutdown still closes an embedded Dask cluster in an atexit hook, which can
    take seconds; interrupting it would print a long traceback from deep inside Dask.
    """

    def leave(signum: int, frame: Any) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - exiting anyway
                pass
        os._exit(EXIT_CANCELLED)

    try:
        signal.signal(signal.SIGINT, leave)
        signal.signal(signal.SIGTERM, leave)
    except ValueError:  # not the main thread (main() called from a thread): nothing to do
        pass


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    from ..errors import GlasspaneWarning

    if issubclass(category, GlasspaneWarning):
        warn(str(message))
        return
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _user_error(exc: Exception) -> int:
    from ..errors import RunFailed, UserCodeError

    if isinstance(exc, UserCodeError):
        sys.stderr.write(exc.user_traceback)
    _err(str(exc))
    return EXIT_FAILED if isinstance(exc, RunFailed) else EXIT_USAGE


def _err(message: str) -> None:
    sys.stderr.write(f"glasspane: error: {message}\n")


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        return _run(args)
    if args.command == "retry":
        return _retry(args)
    if args.command == "cancel":
        return _cancel(args)
    if args.command == "runs":
        return runs(args)
    if args.command == "lineage":
        return lineage(args)
    if args.command == "logs":
        return logs(args)
    if args.command == "cache":
        return cache_clear(args)
    if args.command == "ui":
        return _plugin("ui")(args)
    if args.command in ("schedule", "backfill"):
        from . import schedule_cli

        return schedule_cli.main(args)
    if args.command == "scheduler":
        from . import scheduler_cli

        return scheduler_cli.main(args)
    if args.command == "server":
        return _plugin("server")(args)
    if args.command == "integrations":
        from . import integrations_cli

        return integrations_cli.main(args)
    if args.command == "models":
        from . import models_cli

        return models_cli.main(args)
    if args.command in ("deploy", "deployments"):
        from . import deploy_cli

        return deploy_cli.main(args)
    raise AssertionError(args.command)  # pragma: no cover - argparse requires a command


def _plugin(name: str) -> Any:
    """The command ``name`` an installed package provides (entry-point group
    ``glasspane.commands``): the web UI lives in ``glasspane.ui``, which the engine never
    imports."""
    from importlib.metadata import entry_points

    from ..errors import ConfigError

    for ep in entry_points(group="glasspane.commands", name=name):
        return ep.load()
    raise ConfigError(
        f"the `{name}` command is not installed (no entry point `{name}` in group "
        "glasspane.commands); reinstall glasspane: pip install glasspane"
    )


# ---- run and retry ------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    from .. import api
    from ..launching import launched_params
    from ..loader import load_pipeline
    from ..params import parse_params

    launched = launched_params()  # before any user code runs: tasks never see them
    pipeline = load_pipeline(args.pipeline)
    fields = dict(pipeline.params_model.model_fields)
    params = parse_params(args.param, fields, pipeline.name)
    params.update(launched)
    if args.scheduled_for is not None and "scheduled_for" in fields:
        params.setdefault("scheduled_for", args.scheduled_for)
    say_swept(api.sweep(), stderr=True)  # the maintenance step reads leave to writers
    return _execute(
        args,
        lambda listeners: api.run_pipeline(
            pipeline,
            params,
            executor=args.executor,
            raise_on_failure=False,
            listeners=listeners,
            trigger=args.trigger,
            run_id=args.run_id,
        ),  # fmt: skip
        pipeline.name,
    )


def _retry(args: argparse.Namespace) -> int:
    from .. import api
    from ..launching import launched_params
    from ..params import split_param

    old = api.get_run(args.run_id)
    secrets = dict(split_param(item) for item in args.param)  # kept raw: secrets are strings
    secrets.update(launched_params())
    return _execute(
        args,
        lambda listeners: api.retry(
            old["run_id"],
            executor=args.executor,
            raise_on_failure=False,
            listeners=listeners,
            secrets=secrets,
            new_run_id=args.new_run_id,
        ),
        old["pipeline"],
    )


def _cancel(args: argparse.Namespace) -> int:
    from .. import api

    run = api.get_run(args.run_id)
    if not api.cancel(run["run_id"]):
        print(f"run {run['run_id']} is already {run['state']}; nothing to cancel")
        return EXIT_FAILED
    print(f"cancel requested for run {run['run_id']}; its driver stops it at its next heartbeat")
    if not args.wait:
        return EXIT_OK
    for _event in api.follow(run["run_id"]):
        pass  # the iteration ends once the run is over
    state = api.get_run(run["run_id"])["state"]
    print(f"run {run['run_id']} {state}")
    return EXIT_OK if state == "cancelled" else EXIT_FAILED


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Point file descriptor 1 at stderr meanwhile: only the JSON object goes to stdout.

    At the descriptor level, so output that bypasses ``sys.stdout`` (C code, ``os.write``,
    worker processes started meanwhile, which inherit the descriptor) is moved too.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()  # what Python buffered meanwhile belongs on stderr too
        os.dup2(saved, 1)
        os.close(saved)


def _execute(args: argparse.Namespace, start: Any, pipeline: str) -> int:
    from .render import LiveProgress

    if args.json:
        with _stdout_to_stderr():
            result = start(())
        print(json.dumps(result.to_dict(), default=str))
    else:
        with LiveProgress(console(stderr=True), pipeline) as progress:
            result = start([progress])
        _print_result(result)
    if result.state == "succeeded":
        return EXIT_OK
    return EXIT_CANCELLED if result.state == "cancelled" else EXIT_FAILED


def _print_result(result: Any) -> None:
    from rich.text import Text

    from .. import api
    from .render import failed_tracebacks, run_table

    out = console()
    data = result.to_dict()
    out.print(run_table(data, out.width))
    if result.state == "succeeded":
        if result.output is not None:
            out.print("output:", json.dumps(data["output"], default=str)[:2000], markup=False)
        return
    summary = api.run_summary(api.get_run(result.run_id))
    failed_tracebacks(out, summary)
    out.print(Text(str(result.error), style="red"), soft_wrap=True)
    failed = [t["node"] for t in summary["tasks"] if t.get("traceback")]
    hint = f"logs:    glasspane logs {result.run_id} {failed[0]}\n" if failed else ""
    out.print(
        f"{hint}inspect: glasspane runs show {result.run_id}\n"
        f"resume:  glasspane retry {result.run_id}",
        markup=False,
        soft_wrap=True,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
