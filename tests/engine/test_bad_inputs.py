"""Every user error glasspane can detect: its type, its message, and what it leaves behind.

Errors found before a run starts must write nothing (no run row); errors that only show
while a task runs fail the run, and the failed task says what went wrong and how to fix it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import glasspane
from glasspane import (
    ConfigError,
    DefinitionError,
    ExecutorError,
    ParameterError,
    Ref,
    RunFailed,
    pipeline,
    task,
)
from glasspane.cli.params import parse_params
from glasspane.loader import load_pipeline

calls: list[str] = []


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    # GLASSPANE_HOME is a fresh directory per test (tests/conftest.py)
    calls.clear()


@task
def load(n: int) -> list[int]:
    calls.append("load")
    return list(range(n))


@task
def square(x: int) -> int:
    calls.append("square")
    return x * x


@pipeline
def squares(n: int = 3, scale: float = 1.0):
    return square.map([1, 2, 3][:n])


@task
def make_generator() -> Any:
    return (i for i in range(3))


@task
def make_lock() -> Any:
    return threading.Lock()


@task
def pair_of_three() -> tuple[int, int]:
    return 1, 2, 3  # type: ignore[return-value]


@task
def pair_of_list() -> tuple[int, int]:
    return [1, 2]  # type: ignore[return-value]


@pipeline
def returns_generator():
    return make_generator()


@pipeline
def returns_lock():
    return make_lock()


@pipeline
def wrong_tuple_length():
    first, second = pair_of_three()
    return first


@pipeline
def list_for_a_tuple():
    first, second = pair_of_list()
    return second


@pipeline
def map_over_a_scalar(n: int = 3):
    return square.map(n)


@pipeline
def map_unequal():
    return pair_up.map([1, 2, 3], [1, 2])


@task
def pair_up(a: int, b: int) -> int:
    return a + b


@pipeline
def ref_from_outside():
    return square(Ref("load", None, "load"))


# -- the cases ---------------------------------------------------------------------------------

Action = Callable[[Path, pytest.MonkeyPatch], Any]


@dataclass
class Case:
    action: Action
    error: type[Exception]
    match: str
    #: the failing task and a pattern its error must match, when the run itself fails
    failed_task: tuple[str, str] | None = None


def run_with_env(
    name: str,
    value: str | Callable[[Path], str],
    executor: str | None = "threads",
) -> Action:
    """Run ``squares`` with the setting ``name`` set (``executor=None``: from the settings)."""

    def action(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
        monkeypatch.setenv(name, value(tmp_path) if callable(value) else value)
        return squares(executor=executor)

    return action


def regular_file_as_directory(tmp_path: Path) -> str:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file")
    return f"sqlite:///{blocker / 'sub' / 'glasspane.db'}"


CASES = [
    pytest.param(
        Case(
            lambda tmp, mp: squares(n=2, scael=2.0, executor="inline"),
            ParameterError,
            r"unknown parameter `scael` for pipeline `squares`; it takes: n: int = 3, "
            r"scale: float = 1\.0",
        ),
        id="mistyped-parameter",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: squares(n="three", executor="inline"),
            ParameterError,
            r"invalid parameter for pipeline `squares`: `n`: Input should be a valid integer, "
            r"unable to parse string as an integer \(got 'three'\)",
        ),
        id="wrong-parameter-type",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: squares(2, n=3, executor="inline"),
            ParameterError,
            r"pipeline `squares` got parameter `n` both by position and by name; pass it once",
        ),
        id="positional-and-keyword",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: squares(1, 2.0, 3, executor="inline"),
            ParameterError,
            r"pipeline `squares` takes 2 parameters \(n: int = 3, scale: float = 1\.0\) but was "
            r"given 3 positional arguments; pass parameters by name",
        ),
        id="too-many-positional",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: square(Ref("load", None, "load")),
            DefinitionError,
            r"task `square` was given the output of another task outside a pipeline; call it "
            r"inside a @pipeline body, or pass a plain value",
        ),
        id="ref-outside-pipeline",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: ref_from_outside(executor="inline"),
            DefinitionError,
            r"pipeline `ref_from_outside`: argument `x` of task `square` uses the output of "
            r"`load`, which was not produced inside this pipeline; call the task inside this "
            r"pipeline's body",
        ),
        id="ref-from-another-pipeline",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: returns_generator(executor="threads"),
            RunFailed,
            r"run \w+ of pipeline `returns_generator` failed: task `make_generator` failed: "
            r"SerializationError: .*`generator`",
            failed_task=(
                "make_generator",
                r"task `make_generator` returned .*`generator`.*picklable",
            ),
        ),
        id="unserializable-generator",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: returns_lock(executor="threads"),
            RunFailed,
            r"run \w+ of pipeline `returns_lock` failed: task `make_lock` failed: "
            r"SerializationError: .*`lock`",
            failed_task=("make_lock", r"task `make_lock` returned .*`lock`.*picklable"),
        ),
        id="unserializable-lock",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: wrong_tuple_length(executor="threads"),
            RunFailed,
            r"task `pair_of_three` failed: TaskError: task `pair_of_three` is annotated to "
            r"return a tuple of 2 values but returned a tuple of 3",
            failed_task=(
                "pair_of_three",
                r"^TaskError: task `pair_of_three` is annotated to return a tuple of 2 "
                r"values but returned a tuple of 3; return exactly 2 values or change the "
                r"return annotation$",
            ),
        ),
        id="tuple-wrong-length",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: list_for_a_tuple(executor="inline"),
            RunFailed,
            r"task `pair_of_list` failed",
            failed_task=(
                "pair_of_list",
                r"task `pair_of_list` is annotated to return a tuple of 2 values but "
                r"returned a list; return exactly 2 values",
            ),
        ),
        id="tuple-got-list",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: map_over_a_scalar(executor="inline"),
            DefinitionError,
            r"`square\.map` needs at least one list or tuple argument to map over \(got `x`: "
            r"int\); pass a list, or use expand\(ref\)",
        ),
        id="map-over-non-iterable",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: map_unequal(executor="inline"),
            DefinitionError,
            r"`pair_up\.map` got lists of unequal lengths \(`a` has 3, `b` has 2\)",
        ),
        id="map-unequal-lengths",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: load_pipeline(f"{tmp}/missing.py:squares"),
            DefinitionError,
            r"pipeline file `.*missing\.py` does not exist \(looked in .*\); check the path",
        ),
        id="missing-file",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: load_pipeline(f"{__name__}:no_such_pipeline"),
            DefinitionError,
            rf"`{__name__}` has no attribute `no_such_pipeline`; pipelines defined there: "
            r"list_for_a_tuple, map_over_a_scalar, .*squares",
        ),
        id="missing-attribute",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: load_pipeline(f"{__name__}:square"),
            DefinitionError,
            rf"`{__name__}:square` is a TaskDef, not a pipeline; decorate it with @pipeline",
        ),
        id="not-a-pipeline",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: load_pipeline("glasspane_no_such_module:p"),
            DefinitionError,
            r"cannot import module `glasspane_no_such_module` .*; check the name, install the "
            r"package, or pass a file path",
        ),
        id="missing-module",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: load_pipeline("squares"),
            DefinitionError,
            r"pipeline reference `squares` is not of the form FILE\.py:NAME or module:NAME",
        ),
        id="reference-without-colon",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: squares(executor="tcp://127.0.0.1"),
            ConfigError,
            r"malformed Dask scheduler address `tcp://127\.0\.0\.1`; expected tcp://HOST:PORT",
        ),
        id="malformed-tcp-address",
    ),
    pytest.param(
        Case(
            run_with_env("GLASSPANE_DASK_ADDRESS", "tcp://host:99999", executor="dask"),
            ConfigError,
            r"malformed Dask scheduler address `tcp://host:99999`",
        ),
        id="malformed-dask-address-setting",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: squares(executor="fast"),
            ConfigError,
            r"unknown executor `fast`; use inline, threads, dask or tcp://HOST:PORT",
        ),
        id="unknown-executor",
    ),
    pytest.param(
        Case(
            run_with_env("GLASSPANE_EXECUTOR", "procs", executor=None),
            ConfigError,
            r"unknown executor `procs`",
        ),
        id="unknown-executor-setting",
    ),
    pytest.param(
        Case(
            run_with_env("GLASSPANE_DATABASE_URL", "nosuchdb://x"),
            ConfigError,
            r"cannot open metadata database `nosuchdb://x`: .*; set GLASSPANE_DATABASE_URL to a "
            r"SQLAlchemy URL",
        ),
        id="database-url-unknown-dialect",
    ),
    pytest.param(
        Case(
            run_with_env("GLASSPANE_DATABASE_URL", regular_file_as_directory),
            ConfigError,
            r"cannot open metadata database `sqlite:///.*not-a-directory/sub/glasspane\.db`: "
            r".*Not a directory",
        ),
        id="database-under-a-regular-file",
    ),
    pytest.param(
        Case(
            run_with_env("GLASSPANE_ARTIFACT_ROOT", "nosuch://x"),
            ConfigError,
            r"artifact root `nosuch://x` is not usable: .*; set GLASSPANE_ARTIFACT_ROOT to a local "
            r"path or an fsspec URL",
        ),
        id="artifact-root-unknown-protocol",
    ),
    pytest.param(
        Case(
            run_with_env("GLASSPANE_DASK_WORKERS", "two"),
            ConfigError,
            r"invalid glasspane setting \(`dask_workers`: Input should be a valid integer.*\); "
            r"check the GLASSPANE_\* variables",
        ),
        id="invalid-setting",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: parse_params(["n"], {}, "squares"),
            ParameterError,
            r"-p `n` is not of the form NAME=VALUE; for example -p n=300",
        ),
        id="p-without-equals",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: parse_params(["=3"], {}, "squares"),
            ParameterError,
            r"-p `=3` is not of the form NAME=VALUE",
        ),
        id="p-without-name",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: parse_params(["n=1", "n=2"], {}, "squares"),
            ParameterError,
            r"parameter `n` of pipeline `squares` given twice",
        ),
        id="p-twice",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_user_error(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(case.error, match=case.match) as info:
        case.action(tmp_path, monkeypatch)
    for name in (
        "GLASSPANE_DATABASE_URL",
        "GLASSPANE_ARTIFACT_ROOT",
        "GLASSPANE_DASK_WORKERS",
        "GLASSPANE_EXECUTOR",
        "GLASSPANE_DASK_ADDRESS",
    ):
        monkeypatch.delenv(name, raising=False)
    runs = glasspane.runs()
    if case.failed_task is None:
        assert runs == [], "an error found before running must write no run"
        assert calls == []
        return
    node, pattern = case.failed_task
    assert isinstance(info.value, RunFailed)
    result = info.value.result
    assert [(r["run_id"], r["state"]) for r in runs] == [(result.run_id, "failed")]
    assert result.task(node).state == "failed"
    assert result.task(node).error is not None
    assert re.search(pattern, result.task(node).error), result.task(node).error
    stored = next(t for t in glasspane.get_run(result.run_id)["tasks"] if t["node"] == node)
    assert stored["error"] == result.task(node).error
    assert stored["outputs"] == []


def test_unreachable_scheduler_fails_fast_and_writes_no_run() -> None:
    started = time.monotonic()
    with pytest.raises(
        ExecutorError,
        match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:1 within \d+s "
        r"\(\w+\); start it with `dask scheduler`, check the address, or run with --executor "
        r"threads",
    ):
        squares(executor="tcp://127.0.0.1:1")
    assert time.monotonic() - started < 10
    assert glasspane.runs() == []
    assert calls == []


def test_errors_are_also_builtin_exceptions() -> None:
    # ``except ValueError`` / ``except TypeError`` keep working around glasspane calls
    with pytest.raises(ValueError, match="unknown parameter `x`"):
        squares(x=1)
    with pytest.raises(TypeError, match="needs at least one list"):
        map_over_a_scalar.compile()
    with pytest.raises(ValueError, match="unknown executor"):
        squares(executor="nope")
