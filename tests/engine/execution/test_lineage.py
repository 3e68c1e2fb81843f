"""Lineage of real runs: producers are exact even when different tasks output equal values."""

from __future__ import annotations

from typing import Any

import pytest

import glasspane
from glasspane import pipeline, task


@task
def source(x: int) -> int:
    return x


@task
def parity(v: int) -> int:
    return v % 2


@task
def report(p: int) -> str:
    return "odd" if p else "even"


@pipeline
def parity_report(x: int = 1):
    return report(parity(source(x)))


def walked(lineage: dict[str, Any]) -> list[tuple[str, str, int, bool]]:
    return [(t["run_id"], t["node"], t["depth"], t["cached"]) for t in lineage["task_runs"]]


def test_equal_values_from_different_tasks_keep_their_own_producers() -> None:
    # source and parity both output 1: one artifact, two producers
    first = parity_report.run(x=1, executor="threads")
    assert first.output == "odd"
    run1 = first.run_id

    up = glasspane.lineage(run1, "report", direction="upstream")
    assert walked(up) == [
        (run1, "report", 0, False), (run1, "parity", 1, False), (run1, "source", 2, False),
    ]  # fmt: skip
    assert [(a["type_name"], a["produced_by"]) for a in up["artifacts"]] == [
        ("int", {"run_id": run1, "node": "parity"})
    ]

    down = glasspane.lineage(run1, "source", direction="downstream")
    assert walked(down) == [
        (run1, "source", 0, False), (run1, "parity", 1, False), (run1, "report", 2, False),
    ]  # fmt: skip

    # a cached rerun reuses source's output: its consumers are downstream of the first run's
    second = parity_report.run(x=1, executor="threads")
    run2 = second.run_id
    assert all(t.cached for t in second.tasks)

    down = glasspane.lineage(run1, "source", direction="downstream")
    assert walked(down) == [
        (run1, "source", 0, False), (run1, "parity", 1, False), (run2, "parity", 1, True),
        (run1, "report", 2, False), (run2, "report", 2, True),
    ]  # fmt: skip
    one = next(a["content_hash"] for a in down["artifacts"] if a["preview"] == {"value": 1})
    assert (one, f"{run2}/parity") in {(e["from"], e["to"]) for e in down["edges"]}

    # upstream of the cached rerun stays in its own run: its cached task runs are the producers
    up = glasspane.lineage(run2, "report", direction="upstream")
    assert walked(up) == [
        (run2, "report", 0, True), (run2, "parity", 1, True), (run2, "source", 2, True),
    ]  # fmt: skip

    # a run computing an equal value elsewhere is not downstream of the first run's source
    third = parity_report.run(x=3, executor="threads")
    assert third.output == "odd"
    down = glasspane.lineage(run1, "source", direction="downstream")
    assert third.run_id not in {t["run_id"] for t in down["task_runs"]}


@task
def shards(n: int) -> list[int]:
    return list(range(10, 10 + n))


@task
def inc(x: int) -> int:
    return x + 1


@task
def total(values: list[int]) -> int:
    return sum(values)


@pipeline
def expanded(n: int = 2):
    return total(inc.map(glasspane.expand(shards(n))))


def _shown(preview: dict[str, Any]) -> str:
    return str(preview["value"]) if "value" in preview else str(preview["repr"])


def edges(lineage: dict[str, Any]) -> set[tuple[str, str]]:
    names = {a["content_hash"]: f"<{_shown(a['preview'])}>" for a in lineage["artifacts"]}
    return {
        (names.get(e["from"], e["from"]), names.get(e["to"], e["to"])) for e in lineage["edges"]
    }


@pytest.mark.parametrize(
    "executor", ["inline", "threads", pytest.param("dask", marks=pytest.mark.dask)]
)
def test_expanded_elements_have_their_input_and_output_edges(executor: str) -> None:
    result = expanded.run(n=2, executor=executor)
    assert result.output == 23
    run = result.run_id

    up = glasspane.lineage(run, "inc[0]", direction="upstream")
    assert walked(up) == [(run, "inc[0]", 0, False), (run, "shards", 1, False)]
    # the element is an input of inc[0], produced by shards (as part of its list)
    assert edges(up) == {("<10>", f"{run}/inc[0]"), (f"{run}/shards", "<10>")}

    up = glasspane.lineage(run, "total", direction="upstream")
    assert {t["node"] for t in up["task_runs"]} == {"total", "inc", "inc[0]", "inc[1]", "shards"}
    assert (f"{run}/inc[1]", "<12>") in edges(up) and ("<12>", f"{run}/inc") in edges(up)

    down = glasspane.lineage(run, "shards", direction="downstream")
    assert {t["node"] for t in down["task_runs"]} == {"shards", "inc[0]", "inc[1]", "inc", "total"}

    # a fully cached rerun records every element as a cache hit, with the same edges
    again = expanded.run(n=2, executor=executor)
    assert [(t.node, t.cached) for t in again.tasks] == [
        ("shards", True), ("inc", True), ("inc[0]", True), ("inc[1]", True), ("total", True),
    ]  # fmt: skip
    up = glasspane.lineage(again.run_id, "inc[1]", direction="upstream")
    assert walked(up) == [
        (again.run_id, "inc[1]", 0, True), (again.run_id, "shards", 1, True),
    ]  # fmt: skip
