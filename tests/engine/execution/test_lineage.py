"""Lineage of real runs: producers are exact even when different tasks output equal values."""

from __future__ import annotations

from typing import Any

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
