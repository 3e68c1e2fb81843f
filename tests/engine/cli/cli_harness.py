"""Running the ``glasspane`` console script in a subprocess, as a user would, for the CLI tests.

``PIPELINES`` is the ``flows.py`` each test's working directory starts with.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PIPELINES = """
import os
from pathlib import Path

from glasspane import pipeline, task

HERE = Path(__file__).parent


def mark(name):
    with open(HERE / "calls.txt", "a") as fh:
        fh.write(name + "\\n")


@task
def load(n: int) -> list:
    mark("load")
    return list(range(n))


@task
def total(rows: list) -> int:
    mark("total")
    return sum(rows)


@pipeline
def demo(n: int = 3, tag: str = "dev"):
    return {"total": total(load(n)), "tag": tag}


@task
def spread(grid: list) -> list:
    return [type(g).__name__ for g in grid]


@task
def echo(tag: str) -> str:
    return tag


@pipeline
def typed(grid: list = [1], tag: str = "x", n: int = 0, note=None):
    return {"grid": grid, "types": spread(grid), "tag": echo(tag), "n": n, "note": note}


@task(cache=False)
def first(n: int) -> int:
    mark("first")
    return n


@task
def second(x: int) -> int:
    mark("second")
    if (HERE / "fail.flag").exists():
        raise RuntimeError("fail.flag is present")
    return x * 2


@pipeline
def flaky(n: int = 5):
    return second(first(n))


@task
def boom() -> int:
    raise ValueError("this task always fails")


@pipeline
def always_fails():
    return boom()


not_a_pipeline = 42
"""


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Cli:
    """Runs the ``glasspane`` command in ``workdir`` with its own GLASSPANE_HOME."""

    def __init__(self, command: list[str], workdir: Path, home: Path, columns: int = 200) -> None:
        # the console script, not ``python -m``: with -m the working directory would come
        # first on sys.path, and a user's ``string.py`` there would shadow the stdlib's
        self.command = command
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GLASSPANE_")}
        self.env.update(GLASSPANE_HOME=str(home), COLUMNS=str(columns), NO_COLOR="1", TZ="UTC")

    @property
    def columns(self) -> int:
        """The terminal width the command sees (``COLUMNS``); set it to test narrow output."""
        return int(self.env["COLUMNS"])

    @columns.setter
    def columns(self, value: int) -> None:
        self.env["COLUMNS"] = str(value)

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Result:
        proc = subprocess.run(
            [*self.command, *args],
            cwd=self.workdir,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def calls(self) -> list[str]:
        path = self.workdir / "calls.txt"
        return path.read_text().split() if path.exists() else []


def assert_usage_error(result: Result, message: str) -> None:
    """Exit 2, one ``glasspane: error:`` line matching ``message``, no traceback."""
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("glasspane: error: ")
    assert message in lines[0], lines[0]
