"""Every user error glasspane can detect: its type, its message, and what it leaves behind.

Errors found before a run starts must write nothing (no run row); errors that only show
while a task runs fail the run, and the failed task says what went wrong and how to fix it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import glasspane
from glasspane import (
    ConfigError,
    DefinitionError,
    ExecutorError,
    NotFound,
    ParameterError,
    Ref,
    RunFailed,
    UserCodeError,
    pipeline,
    task,
)
from glasspane.loader import load_pipeline
from glasspane.params import parse_params

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
def pair_of_text() -> tuple[str, str]:
    return "ab"  # type: ignore[return-value]


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
def text_for_a_tuple():
    first, second = pair_of_text()
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


@task
def raises(x: int) -> int:
    calls.append("raises")
    raise ValueError(f"x must be even, got {x}")


@pipeline
def task_raises(x: int = 3):
    return raises(x)


@task
def one() -> int:
    return 1


@pipeline
def ref_as_bool():
    if one():
        return None
    return None


@pipeline
def ref_iterated():
    return [square(x) for x in one()]


@pipeline
def ref_arithmetic():
    return square(one() * 2)


@pipeline
def tagged(tags: list[str] = []):  # noqa: B006 - pipeline defaults are validated copies
    return square(len(tags))


def define_task(**options: Any) -> Action:
    def action(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
        return task(**options)(pair_up)

    return action


def load_file(name: str, text: str | None = None, *, make: str = "file") -> Action:
    """Load ``NAME:p`` from ``tmp_path``, after writing ``text`` to it (or making a directory
    or a broken symbolic link)."""

    def action(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
        path = tmp_path / name
        if make == "dir":
            path.mkdir()
        elif make == "broken-link":
            path.symlink_to(tmp_path / "gone" / "pipeline.py")
        else:
            path.write_text(text or "")
        return load_pipeline(f"{path}:p")

    return action


def run_with_toml(text: str) -> Action:
    def action(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
        (tmp_path / "glasspane.toml").write_text(text)  # the working directory (conftest)
        return squares(executor="inline")

    return action


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
                r"values but returned a tuple of 3; return exactly 2 values \(a tuple or list\) "
                r"or change the return annotation$",
            ),
        ),
        id="tuple-wrong-length",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: text_for_a_tuple(executor="inline"),
            RunFailed,
            r"task `pair_of_text` failed",
            failed_task=(
                "pair_of_text",
                r"task `pair_of_text` is annotated to return a tuple of 2 values but "
                r"returned a str; return exactly 2 values",
            ),
        ),
        id="tuple-got-str",
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
            r".*map_over_a_scalar, .*squares, .*text_for_a_tuple",
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
            r"`dask_workers` comes from GLASSPANE_DASK_WORKERS: fix the value there",
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
    pytest.param(
        Case(
            lambda tmp, mp: ref_as_bool(executor="inline"),
            DefinitionError,
            r"^cannot test the truth of the output of task `one` \(node `one`\) inside a "
            r"pipeline: it is only known when the pipeline runs; do this inside a @task "
            r"that takes it as an argument$",
        ),
        id="ref-as-bool",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: ref_iterated(executor="inline"),
            DefinitionError,
            r"^cannot iterate over the output of task `one` \(node `one`\) inside a "
            r"pipeline: .*annotate the task's return as `tuple\[A, B\]`; to map over it "
            r"use `task\.map\(expand\(ref\)\)`",
        ),
        id="ref-iterated",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: ref_arithmetic(executor="inline"),
            DefinitionError,
            r"^cannot apply `__mul__` to the output of task `one` \(node `one`\) inside a "
            r"pipeline: it is only known when the pipeline runs",
        ),
        id="ref-arithmetic",
    ),
    pytest.param(
        Case(
            define_task(retries=-1),
            DefinitionError,
            r"^invalid options for task `pair_up`: `retries`: Input should be greater than or "
            r"equal to 0; see TaskOptions",
        ),
        id="task-option-negative-retries",
    ),
    pytest.param(
        Case(
            define_task(timeout=0),
            DefinitionError,
            r"^invalid options for task `pair_up`: `timeout`: Input should be greater than 0",
        ),
        id="task-option-zero-timeout",
    ),
    pytest.param(
        Case(
            define_task(retrys=2),
            DefinitionError,
            r"^invalid options for task `pair_up`: `retrys`: Extra inputs are not permitted; "
            r"`retrys` is not an option \(did you mean `retries`\?\); see TaskOptions for the "
            r"accepted options: name, retries, retry_delay, ",
        ),
        id="task-option-unknown-name",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: task_raises(executor="threads"),
            RunFailed,
            r"run \w+ of pipeline `task_raises` failed: task `raises` failed: ValueError: x must "
            r"be even, got 3; inspect it with `glasspane runs show \w+` and resume it with "
            r"`glasspane retry \w+`",
            failed_task=("raises", r"^ValueError: x must be even, got 3$"),
        ),
        id="task-raises",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: parse_params(["n={bad"], dict(squares.params_model.model_fields), "s"),
            ParameterError,
            r"^invalid parameter for pipeline `s`: `n`: Input should be a valid integer, unable "
            r"to parse string as an integer \(got '\{bad': -p `n=\{bad` is not valid JSON "
            r"\(Expecting property name .*\), so it was read as a string, but `n` expects "
            r"int\); write VALUE as JSON, e\.g\. -p n=300",
        ),
        id="p-malformed-json-for-int",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: parse_params(["tags=[a,"], dict(tagged.params_model.model_fields), "t"),
            ParameterError,
            r"^invalid parameter for pipeline `t`: `tags`: Input should be a valid list \(got "
            r"'\[a,': -p `tags=\[a,` is not valid JSON .*, so it was read as a string, but `tags` "
            r"expects list\[str\]\); write VALUE as JSON",
        ),
        id="p-malformed-json-for-list",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: tagged(tags="a", executor="inline"),
            ParameterError,
            r"^invalid parameter for pipeline `tagged`: `tags`: Input should be a valid list "
            r"\(got 'a'\); it takes: tags: list\[str\] = \[\]$",
        ),
        id="wrong-parameter-type-list",
    ),
    pytest.param(
        Case(
            load_file("broken.py", "def p(:\n    pass\n"),
            UserCodeError,
            r"^importing `.*broken\.py` raised SyntaxError: .*\(broken\.py, line 1\); fix the "
            r"error in your module \(traceback above\)$",
        ),
        id="module-syntax-error",
    ),
    pytest.param(
        Case(
            load_file("imports.py", "import glasspane_no_such_dependency\n"),
            UserCodeError,
            r"^importing `.*imports\.py` raised ModuleNotFoundError: No module named "
            r"'glasspane_no_such_dependency'; fix the error in your module",
        ),
        id="module-import-error",
    ),
    pytest.param(
        Case(
            load_file("names.py", "x = 1\ny = undefined_name\n"),
            UserCodeError,
            r"^importing `.*names\.py` raised NameError: name 'undefined_name' is not defined; "
            r"fix the error in your module",
        ),
        id="module-name-error",
    ),
    pytest.param(
        Case(
            load_file("pipelines.py", make="dir"),
            DefinitionError,
            r"^pipeline file `.*pipelines\.py` is a directory, not a Python file; pass the \.py "
            r"file that defines the pipeline",
        ),
        id="pipeline-file-is-a-directory",
    ),
    pytest.param(
        Case(
            load_file("link.py", make="broken-link"),
            DefinitionError,
            r"^pipeline file `.*link\.py` is a symbolic link to `.*gone/pipeline\.py`, which does "
            r"not exist; fix the link or pass the file itself$",
        ),
        id="pipeline-file-broken-symlink",
    ),
    pytest.param(
        Case(
            run_with_toml("dask_workers = [\n"),
            ConfigError,
            r"^cannot read .*glasspane\.toml: .*; fix the TOML syntax$",
        ),
        id="toml-syntax-error",
    ),
    pytest.param(
        Case(
            run_with_toml('heartbeat_interval = "often"\n'),
            ConfigError,
            r"^invalid glasspane setting \(`heartbeat_interval`: Input should be a valid "
            r"number.*\); `heartbeat_interval` is set in .*glasspane\.toml: fix the value there",
        ),
        id="toml-wrong-type",
    ),
    pytest.param(
        Case(
            run_with_env("GLASSPANE_DATABASE_URL", "not a url"),
            ConfigError,
            r"^cannot open metadata database `not a url`: Could not parse SQLAlchemy URL.*; set "
            r"GLASSPANE_DATABASE_URL to a SQLAlchemy URL",
        ),
        id="database-url-unparseable",
    ),
    pytest.param(
        Case(
            lambda tmp, mp: glasspane.get_run("0123abcd"),
            NotFound,
            r"^no run `0123abcd`; list runs with `glasspane runs list`$",
        ),
        id="get-run-unknown-id",
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
    (tmp_path / "glasspane.toml").unlink(missing_ok=True)
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


@task(timeout=0.2)
def sleeps() -> int:
    time.sleep(5)
    return 1


@pipeline
def hangs():
    return sleeps()


def test_task_past_its_timeout_fails_the_run() -> None:
    started = time.monotonic()
    with pytest.raises(RunFailed, match=r"task `sleeps` timed_out: TaskTimeout") as info:
        hangs(executor="threads")
    assert time.monotonic() - started < 4
    result = info.value.result
    [row] = glasspane.runs()
    assert (row["run_id"], row["state"]) == (result.run_id, "failed")
    [stored] = glasspane.get_run(result.run_id)["tasks"]
    assert stored["state"] == "timed_out"
    assert stored["error"] == (
        "TaskTimeout: task `sleeps` ran past its timeout of 0.2s and was abandoned; raise "
        "`timeout=` on the task or make it faster"
    )


def test_failed_task_records_the_users_traceback() -> None:
    result = task_raises.run(executor="inline", raise_on_failure=False)
    [stored] = glasspane.get_run(result.run_id)["tasks"]
    assert stored["traceback"].endswith("ValueError: x must be even, got 3\n")
    line = raises.fn.__code__.co_firstlineno + 3
    assert f'File "{__file__}", line {line}, in raises' in stored["traceback"]


def test_retry_of_a_succeeded_run_writes_nothing() -> None:
    done = squares(executor="inline")
    with pytest.raises(
        glasspane.GlasspaneError,
        match=rf"^run {done.run_id} succeeded; there is nothing to resume\. Start a new run with "
        r"`glasspane run` \(cached tasks are reused automatically\)$",
    ):
        glasspane.retry(done.run_id)
    assert [r["run_id"] for r in glasspane.runs()] == [done.run_id]


def test_lineage_of_an_unknown_node() -> None:
    done = squares(executor="inline")
    with pytest.raises(
        NotFound,
        match=rf"^run {done.run_id} has no node `sqaure\[0\]`; its nodes are: square\[0\], "
        r"square\[1\], square\[2\]$",
    ):
        glasspane.lineage(done.run_id, "sqaure[0]")


# -- through the real console script -----------------------------------------------------------

FLOW = """
import time

from pydantic import SecretStr

from glasspane import pipeline, task


@task
def double(n: int, rate: float) -> float:
    return n * rate


@task
def fail(n: int) -> int:
    raise RuntimeError(f"simulated failure for n={n}; unset FAIL and retry")


@task
def secret_length(token: SecretStr) -> int:
    print("token type:", type(token).__name__, token)
    return len(token.get_secret_value())


@pipeline
def flow(n: int = 1, rate: float = 0.5, tags: list[str] = []):
    return double(n + len(tags), rate)


@pipeline
def failing(n: int = 1):
    return fail(n)


@pipeline
def secret(token: SecretStr):
    return secret_length(token)
"""


@dataclass
class CliCase:
    args: list[str]
    exit_code: int
    stderr: str
    env: dict[str, str | Callable[[Path], str]] | None = None
    files: dict[str, str] | None = None


def _not_a_directory(tmp: Path) -> str:
    (tmp / "plain-file").write_text("")
    return f"sqlite:///{tmp}/plain-file/glasspane.db"


CLI_CASES = [
    pytest.param(
        CliCase(
            ["run", "flow.py:flow", "-p", "n=three"],
            2,
            r"^glasspane: error: invalid parameter for pipeline `flow`: `n`: Input should be a "
            r"valid integer, unable to parse string as an integer \(got 'three': -p `n=three` is "
            r"not valid JSON \(Expecting value: .*\), so it was read as a string, but `n` "
            r"expects int\); write VALUE as JSON, e\.g\. -p n=300",
        ),
        id="p-wrong-type",
    ),
    pytest.param(
        CliCase(
            ["run", "flow.py:flow", "-p", "tags=[a, b"],
            2,
            r"^glasspane: error: invalid parameter for pipeline `flow`: `tags`: Input should be "
            r"a valid list \(got '\[a, b': -p `tags=\[a, b` is not valid JSON \(Expecting value: "
            r"line 1 column 2 \(char 1\)\), so it was read as a string, but `tags` expects "
            r"list\[str\]\)",
        ),
        id="p-malformed-json",
    ),
    pytest.param(
        CliCase(
            ["run", "flow.py:flow", "-p", "tags=7"],
            2,
            r"^glasspane: error: invalid parameter for pipeline `flow`: `tags`: Input should be a "
            r"valid list \(got 7\); it takes: n: int = 1, rate: float = 0\.5, tags: list\[str\] "
            r"= \[\]$",
        ),
        id="p-valid-json-wrong-type",
    ),
    pytest.param(
        CliCase(
            ["run", "flow.py:flow", "-p", "rte=0.1"],
            2,
            r"^glasspane: error: unknown parameter `rte` for pipeline `flow`; it takes: n: int = "
            r"1, rate: float = 0\.5, tags: list\[str\] = \[\]$",
        ),
        id="p-unknown-name",
    ),
    pytest.param(
        CliCase(
            ["run", "flow.py:flow", "-p", "n"],
            2,
            r"^glasspane: error: -p `n` is not of the form NAME=VALUE; for example -p n=300$",
        ),
        id="p-without-equals-cli",
    ),
    pytest.param(
        CliCase(
            ["run", "flow.py:flow", "-p", "n=1", "-p", "n=2"],
            2,
            r"^glasspane: error: parameter `n` of pipeline `flow` given twice$",
        ),
        id="p-duplicate-cli",
    ),
    pytest.param(
        CliCase(
            ["run", "bad_syntax.py:flow"],
            2,
            r'^  File ".*bad_syntax\.py", line 3\n    def flow\(:\n.*\nSyntaxError: .*\n'
            r"glasspane: error: importing `bad_syntax\.py` raised SyntaxError: .*\(bad_syntax\.py, "
            r"line 3\); fix the error in your module \(traceback above\)$",
            files={"bad_syntax.py": "import glasspane\n\ndef flow(:\n    pass\n"},
        ),
        id="cli-syntax-error",
    ),
    pytest.param(
        CliCase(
            ["run", "bad_import.py:flow"],
            2,
            r'^Traceback \(most recent call last\):\n  File ".*bad_import\.py", line 2, in '
            r"<module>\n    from glasspane_missing_helper import x\n"
            r"ModuleNotFoundError: No module named 'glasspane_missing_helper'\n"
            r"glasspane: error: importing `bad_import\.py` raised ModuleNotFoundError",
            files={"bad_import.py": "import os\nfrom glasspane_missing_helper import x\n"},
        ),
        id="cli-import-error",
    ),
    pytest.param(
        CliCase(
            ["run", "bad_name.py:flow"],
            2,
            r'^Traceback \(most recent call last\):\n  File ".*bad_name\.py", line 1, in '
            r"<module>\n    SETTINGS = lod_settings\(\)\n.*NameError: name 'lod_settings' is not "
            r"defined\nglasspane: error: importing `bad_name\.py` raised NameError",
            files={"bad_name.py": "SETTINGS = lod_settings()\n"},
        ),
        id="cli-name-error",
    ),
    pytest.param(
        CliCase(
            ["run", "pipelines:flow"],
            2,
            r"^glasspane: error: cannot import module `pipelines` .*; check the name",
        ),
        id="cli-missing-module",
    ),
    pytest.param(
        CliCase(
            ["run", "flow.py:flwo"],
            2,
            r"^glasspane: error: `flow\.py` has no attribute `flwo`; pipelines defined there: "
            r"failing, flow, secret$",
        ),
        id="cli-missing-attribute",
    ),
    pytest.param(
        CliCase(
            ["run", "flow.py:flow", "--executor", "tcp://localhost"],
            2,
            r"^glasspane: error: malformed Dask scheduler address `tcp://localhost`; expected "
            r"tcp://HOST:PORT",
        ),
        id="cli-malformed-scheduler",
    ),
    pytest.param(
        CliCase(
            ["run", "flow.py:flow", "--executor", "tcp://127.0.0.1:1"],
            2,
            r"^glasspane: error: cannot reach the Dask scheduler at tcp://127\.0\.0\.1:1 within "
            r"\d+s \(\w+\); start it with `dask scheduler`",
        ),
        id="cli-unreachable-scheduler",
    ),
    pytest.param(
        CliCase(
            ["run", "flow.py:flow"],
            2,
            r"^glasspane: error: cannot open metadata database `postgresql://u@h:port/db`: .*; "
            r"set GLASSPANE_DATABASE_URL to a SQLAlchemy URL",
            env={"GLASSPANE_DATABASE_URL": "postgresql://u@h:port/db"},
        ),
        id="cli-database-url-unparseable",
    ),
    pytest.param(
        CliCase(
            ["run", "flow.py:flow"],
            2,
            r"^glasspane: error: cannot open metadata database `sqlite:///.*/plain-file/glasspane"
            # the store reports makedirs' "File exists" here: see the report on engine/store
            r"\.db`: .*(Not a directory|File exists: '.*/plain-file')",
            env={"GLASSPANE_DATABASE_URL": _not_a_directory},
        ),
        id="cli-database-under-a-file",
    ),
    pytest.param(
        CliCase(
            ["run", "flow.py:flow"],
            2,
            r"^glasspane: error: artifact root `gopher://x` is not usable: .*; set "
            r"GLASSPANE_ARTIFACT_ROOT to a local path or an fsspec URL",
            env={"GLASSPANE_ARTIFACT_ROOT": "gopher://x"},
        ),
        id="cli-artifact-root-unknown-protocol",
    ),
    pytest.param(
        CliCase(
            ["runs", "list"],
            2,
            r"^glasspane: error: cannot read .*glasspane\.toml: .*; fix the TOML syntax$",
            files={"glasspane.toml": "executor = 'threads\n"},
        ),
        id="cli-toml-syntax",
    ),
    pytest.param(
        CliCase(
            ["runs", "show", "feedbeef"],
            2,
            r"^glasspane: error: no run `feedbeef`; list runs with `glasspane runs list`$",
        ),
        id="cli-runs-show-unknown",
    ),
    pytest.param(
        CliCase(
            ["lineage", "feedbeef", "train"],
            2,
            r"^glasspane: error: no run `feedbeef`",
        ),
        id="cli-lineage-unknown-run",
    ),
    pytest.param(
        CliCase(
            ["retry", "feedbeef"],
            2,
            r"^glasspane: error: no run `feedbeef`",
        ),
        id="cli-retry-unknown-run",
    ),
]


def _cli(glasspane_cmd: list[str], env: dict[str, str], cwd: Path, *args: str) -> Any:
    import subprocess

    return subprocess.run(
        [*glasspane_cmd, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_user_error(
    case: CliCase, tmp_path: Path, glasspane_cmd: list[str], cli_env: dict[str, str]
) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    for name, text in (case.files or {}).items():
        (tmp_path / name).write_text(text)
    env = dict(cli_env)
    for name, value in (case.env or {}).items():
        env[name] = value(tmp_path) if callable(value) else value
    done = _cli(glasspane_cmd, env, tmp_path, *case.args)
    assert done.returncode == case.exit_code, done.stderr
    assert re.search(case.stderr, done.stderr.rstrip("\n"), re.DOTALL), done.stderr
    # never glasspane's own frames, whatever the user's code did
    assert "engine/" not in done.stderr and "importlib" not in done.stderr, done.stderr
    assert done.stdout == ""
    (tmp_path / "glasspane.toml").unlink(missing_ok=True)
    assert glasspane.runs() == [], "an error found before running must write no run"


def test_cli_failed_task_exits_1_and_says_how_to_resume(
    tmp_path: Path, glasspane_cmd: list[str], cli_env: dict[str, str]
) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    env = {**cli_env, "COLUMNS": "300"}  # no line wrapping in the message
    done = _cli(glasspane_cmd, env, tmp_path, "run", "flow.py:failing", "-p", "n=4")
    assert done.returncode == 1, done.stderr
    [row] = glasspane.runs()
    assert row["state"] == "failed"
    run_id = row["run_id"]
    assert (
        "task `fail` failed: RuntimeError: simulated failure for n=4; unset FAIL and retry"
        in done.stdout
    )
    assert f"inspect: glasspane runs show {run_id}\nresume:  glasspane retry {run_id}" in (
        done.stdout
    )
    [stored] = glasspane.get_run(run_id)["tasks"]
    assert stored["error"] == "RuntimeError: simulated failure for n=4; unset FAIL and retry"
    assert 'flow.py", line 16, in fail' in stored["traceback"]


def test_cli_retry_of_a_succeeded_run_and_lineage_of_an_unknown_node(
    tmp_path: Path, glasspane_cmd: list[str], cli_env: dict[str, str]
) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    assert (
        _cli(glasspane_cmd, cli_env, tmp_path, "run", "flow.py:flow", "-e", "inline").returncode
        == 0
    )
    [row] = glasspane.runs()
    run_id = row["run_id"]
    done = _cli(glasspane_cmd, cli_env, tmp_path, "retry", run_id)
    assert done.returncode == 2
    assert done.stderr == (
        f"glasspane: error: run {run_id} succeeded; there is nothing to resume. Start a new run "
        "with `glasspane run` (cached tasks are reused automatically)\n"
    )
    done = _cli(glasspane_cmd, cli_env, tmp_path, "lineage", run_id, "dobule")
    assert done.returncode == 2
    assert done.stderr == (
        f"glasspane: error: run {run_id} has no node `dobule`; its nodes are: double\n"
    )
    assert [r["run_id"] for r in glasspane.runs()] == [run_id]


# -- secrets ---------------------------------------------------------------------------------


def test_secret_parameters_are_never_stored_or_printed_in_clear(
    tmp_path: Path, glasspane_cmd: list[str], cli_env: dict[str, str], glasspane_home: Path
) -> None:
    secret = "hunter2-s3cr3t-value"
    (tmp_path / "flow.py").write_text(FLOW)
    done = _cli(
        glasspane_cmd, cli_env, tmp_path, "run", "flow.py:secret", "-p", f"token={secret}", "--json"
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["params"] == {"token": "**********"}
    assert printed["output"] == len(secret)  # the task read the real value
    run_id = printed["run_id"]
    assert glasspane.get_run(run_id)["params"] == {"token": "**********"}
    [stored] = glasspane.get_run(run_id)["tasks"]
    assert stored["stdout"] == "token type: SecretStr **********\n"
    shown = _cli(glasspane_cmd, cli_env, tmp_path, "runs", "show", run_id, "--json")
    assert json.loads(shown.stdout)["params"] == {"token": "**********"}
    listed = _cli(glasspane_cmd, cli_env, tmp_path, "runs", "list", "--json")
    table = _cli(glasspane_cmd, cli_env, tmp_path, "runs", "show", run_id)
    for output in (done, shown, listed, table):
        assert secret not in output.stdout + output.stderr
    for path in glasspane_home.rglob("*"):  # the database, artifacts and key index
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


@task
def reveal(token: SecretStr) -> bool:
    return isinstance(token, SecretStr) and token.get_secret_value() == "abc123"


@pipeline
def uses_secret(token: SecretStr):
    return reveal(token)


def test_secret_parameter_through_the_python_api() -> None:
    result = uses_secret(token="abc123", executor="threads")
    assert result.output is True
    assert result.to_dict()["params"] == {"token": "**********"}
    assert glasspane.get_run(result.run_id)["params"] == {"token": "**********"}


def test_unresolvable_parameter_annotation_is_a_definition_error() -> None:
    # `from __future__ import annotations` (this module) keeps annotations as strings; one that
    # does not resolve used to make every parameter `Any`, unvalidated (and secrets in clear)
    from pydantic import SecretBytes

    def body(token: SecretBytes, n: int = 1) -> None:
        return None

    with pytest.raises(
        DefinitionError,
        match=r"^pipeline `body`: cannot resolve the annotation `SecretBytes` of parameter "
        r"`token` \(NameError: name 'SecretBytes' is not defined\); import the types used in "
        r"parameter annotations at module level",
    ):
        pipeline(body)
