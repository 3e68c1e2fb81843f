"""How the worker calls a task's function with its bound arguments: every parameter kind
(positional-only, keyword-only, ``*args``, ``**kwargs``, defaults) reaches the function as a
direct call would pass it."""

from __future__ import annotations

from typing import Any

import pytest

from glasspane import pipeline, task


@task
def plain(a: int, b: int = 10) -> list[int]:
    return [a, b]


@task
def positional_only(a: int, /, b: int, c: int = 3) -> list[int]:
    return [a, b, c]


@task
def keyword_only(a: int, *, scale: int = 2) -> int:
    return a * scale


@task
def star_args(first: int, *rest: int) -> list[int]:
    return [first, *rest]


@task
def star_kwargs(a: int, **options: Any) -> dict[str, Any]:
    return {"a": a, **options}


@task
def source(n: int) -> int:
    return n


@pipeline
def calls(n: int = 1):
    x = source(n)
    return [
        plain(x),
        plain(x, b=x),
        positional_only(x, 2),
        keyword_only(x, scale=5),
        star_args(x, 7, 8),
        star_kwargs(x, k="v", m=x),
    ]


@pytest.mark.parametrize("executor", ["inline", "threads"])
def test_every_parameter_kind_reaches_the_function(executor: str) -> None:
    result = calls(n=4, executor=executor)
    assert result.ok
    assert result.output == [
        [4, 10],
        [4, 4],
        [4, 2, 3],
        20,
        [4, 7, 8],
        {"a": 4, "k": "v", "m": 4},
    ]
