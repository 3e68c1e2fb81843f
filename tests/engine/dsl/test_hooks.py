"""The DSL compiles and runs through what the facade registers, never by importing it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from glasspane import GlasspaneError, pipeline, task
from glasspane.dsl import hooks


@task
def double(x: int) -> int:
    return 2 * x


@pipeline
def twice(x: int = 2):
    return double(x)


def test_importing_only_the_dsl_registers_the_compiler_and_the_runner() -> None:
    code = (
        "from glasspane.dsl.pipeline import pipeline\n"
        "from glasspane.dsl.task import task\n"
        "@task\n"
        "def one() -> int:\n"
        "    return 1\n"
        "@pipeline\n"
        "def p():\n"
        "    return one()\n"
        "print(list(p.compile().nodes))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['one']"


@pytest.mark.parametrize(
    ("slot", "call", "what"),
    [
        ("_compiler", lambda: twice.compile(x=1), "compile"),
        ("_runner", lambda: twice(x=1), "run"),
    ],
)
def test_an_unregistered_hook_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, slot: str, call, what: str
) -> None:
    monkeypatch.setattr(hooks, slot, None)
    with pytest.raises(GlasspaneError) as info:
        call()
    assert str(info.value) == (
        f"cannot {what} a pipeline: nothing is registered to {what} it, because the `glasspane` "
        "package did not finish importing; `import glasspane` and fix the error it raises"
    )


def test_a_registered_compiler_receives_the_validated_parameters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = []
    monkeypatch.setattr(hooks, "_compiler", lambda pipe, values: seen.append((pipe, values)))
    twice.compile(x="3")
    assert seen == [(twice, {"x": 3})]
