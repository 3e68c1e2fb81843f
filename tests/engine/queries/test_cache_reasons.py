"""Why a task hit or missed the cache (``TaskDetail.cache``), on real runs: the first run,
an unchanged rerun, a changed constant, a changed input, a changed ``version=``,
``cache=False``, and an output removed from the cache."""

from __future__ import annotations

from typing import Any

from query_flows import Stores

from glasspane import pipeline, task
from glasspane.queries import task_detail


@task
def load(n: int) -> list[int]:
    return list(range(n))


@task
def scale(xs: list[int], factor: float) -> list[float]:
    return [x * factor for x in xs]


@task(cache=False)
def report(values: list[float]) -> float:
    return sum(values)


@pipeline
def flow(n: int = 3, factor: float = 2.0) -> Any:
    return report(scale(load(n), factor))


def reasons(stores: Stores, run_id: str, node: str) -> tuple[bool, str | None, list[str]]:
    cache = task_detail(stores.metadata, run_id, node).cache
    assert cache is not None
    compared = cache.compared_with.run_id if cache.compared_with else None
    return cache.hit, compared, cache.reasons


def test_each_task_says_why_it_hit_or_missed(stores: Stores) -> None:
    first = flow.run().run_id
    assert reasons(stores, first, "load") == (
        False,
        None,
        ["`load` never ran before in this pipeline"],
    )

    second = flow.run().run_id
    hit, compared, why = reasons(stores, second, "scale")
    assert (hit, compared) == (True, first)
    assert why == [f"same code, constants and inputs as run {first}, which computed this output"]
    hit, compared, why = reasons(stores, second, "report")
    assert (hit, compared) == (False, first)
    assert why == ["caching is off for this task (`cache=False`): it always runs"]

    third = flow.run(factor=3.0).run_id
    assert reasons(stores, third, "load")[0] is True
    assert reasons(stores, third, "scale") == (False, second, ["constant `factor` changed"])
    hit, _, why = reasons(stores, third, "report")
    assert not hit and "input `values` changed" in why

    fourth = flow.run(n=4, factor=3.0).run_id
    assert reasons(stores, fourth, "load") == (False, third, ["constant `n` changed"])
    assert reasons(stores, fourth, "scale") == (False, third, ["input `xs` changed"])


@pipeline
def versioned(n: int = 3) -> Any:
    return scale.with_options(version="2")(load(n), 2.0)


@pipeline
def unversioned(n: int = 3) -> Any:
    return scale(load(n), 2.0)


def test_a_changed_version_and_a_cleared_cache_are_named(stores: Stores) -> None:
    from glasspane import clear_cache

    before = unversioned.run().run_id
    clear_cache("load")
    after = unversioned.run().run_id
    hit, compared, why = reasons(stores, after, "load")
    assert (hit, compared) == (False, before)
    assert why == [
        f"same cache key as run {before}, but its output could not be reused (expired, "
        "removed with `glasspane cache clear`, or missing from the artifact store)"
    ]
    assert reasons(stores, after, "scale")[0] is True  # the same input content: reused
    # a pipeline of another name has its own history
    bumped = versioned.run().run_id
    assert reasons(stores, bumped, "scale")[2] == ["`scale` never ran before in this pipeline"]
    again = versioned.run().run_id
    assert reasons(stores, again, "scale")[0] is True
