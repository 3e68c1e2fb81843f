"""Cache keys (pure functions) and cache behaviour across runs on the threads executor."""

from __future__ import annotations

import collections
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import glasspane
from glasspane import Ref, pipeline, task
from glasspane.cache import cache_key, entry_is_fresh, make_entry, template_digest
from glasspane.hashing import content_hash


class _CallLog:
    """Counts task calls. Tasks read it as a module-level value, which is part of their code
    fingerprint: it refuses to be pickled, so only its type and its class's code are (the
    counts it keeps are state, not data a result depends on)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, name: str) -> None:
        self.counts[name] += 1

    def __reduce__(self) -> Any:
        raise TypeError("a call log is not data")


note = _CallLog()
calls = note.counts


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    # GLASSPANE_HOME is a fresh directory per test (tests/conftest.py)
    calls.clear()


# -- cache_key: a pure function ----------------------------------------------------------------

HASHES = {"load": "a" * 64, "other": "b" * 64}


def by_node(ref: Ref) -> str:
    return HASHES[ref.node]


def key(
    args: dict[str, Any], version: str = "c:code", identity: str = "m.fit", ref_hash: Any = by_node
) -> str:
    return cache_key(identity, version, args, ref_hash)


def test_same_inputs_give_the_same_key() -> None:
    args = {"rows": Ref("load"), "C": 1.0, "grid": [1, 2], "opts": {"a": 1}}
    assert key(args) == key(dict(args))
    assert len(key(args)) == 64


def test_a_different_constant_gives_a_different_key() -> None:
    assert key({"C": 1.0}) != key({"C": 2.0})
    assert key({"grid": [1, 2]}) != key({"grid": [2, 1]})
    assert key({"C": 1}) != key({"C": "1"})


def test_argument_names_are_part_of_the_key() -> None:
    assert key({"a": 1, "b": 2}) != key({"a": 2, "b": 1})


def test_identity_and_code_are_part_of_the_key() -> None:
    assert key({"C": 1.0}, identity="m.fit") != key({"C": 1.0}, identity="m.fit2")
    assert key({"C": 1.0}, version="c:code") != key({"C": 1.0}, version="c:edited")


def test_version_option_replaces_the_code_hash() -> None:
    def fit_a(rows: list[int]) -> int:
        return len(rows)

    def fit_b(rows: list[int]) -> int:
        return 2 * len(rows)

    a, b = task(version="1")(fit_a), task(version="1")(fit_b)
    assert a.cache_version == b.cache_version == "v:1"
    assert task(fit_a).cache_version != task(fit_b).cache_version
    assert task(fit_a).cache_version == f"c:{task(fit_a).code_hash}"
    assert key({"x": 1}, version=a.cache_version) == key({"x": 1}, version=b.cache_version)
    assert task(version="2")(fit_a).cache_version == "v:2"


def test_ref_content_hash_drives_the_key_not_the_node() -> None:
    # two different upstream nodes that produced the same content: same key (early cut-off)
    assert key({"rows": Ref("load")}) == key({"rows": Ref("load_2")}, ref_hash=lambda r: "a" * 64)
    # same node, different content: different key
    assert key({"rows": Ref("load")}) != key({"rows": Ref("load")}, ref_hash=lambda r: "c" * 64)


def test_refs_nested_in_containers_use_their_content_hash() -> None:
    def nested(hash_of_load: str) -> str:
        return key(
            {"models": [Ref("load"), Ref("other")], "cfg": {"data": Ref("load"), "k": 1}},
            ref_hash=lambda r: hash_of_load if r.node == "load" else "b" * 64,
        )

    assert nested("a" * 64) == nested("a" * 64)
    assert nested("a" * 64) != nested("d" * 64)
    # a ref and a constant in the same position are told apart
    assert key({"x": Ref("load")}) != key({"x": "a" * 64})


def test_refs_in_a_namedtuple_use_their_content_hash() -> None:
    pair = collections.namedtuple("pair", "rows n")

    def digest(content: str) -> Any:
        return template_digest(pair(Ref("load"), 3), lambda r: content)

    assert digest("a" * 64) != digest("e" * 64)


def test_const_digests_are_used_as_given() -> None:
    args = {"C": 1.0, "rows": Ref("load")}
    precomputed = {"C": template_digest(1.0, by_node)}
    assert cache_key("m.fit", "c:x", args, by_node, precomputed) == key(args, version="c:x")
    assert precomputed["C"] == ["const", content_hash(1.0)]


def test_entry_freshness() -> None:
    entry = make_entry("fit", [], now=1000.0)
    assert entry == {"task": "fit", "outputs": [], "created": 1000.0}
    assert entry_is_fresh(entry, None, now=10**9)
    assert entry_is_fresh(entry, 60.0, now=1059.0)
    assert entry_is_fresh(entry, 60.0, now=1060.0)
    assert not entry_is_fresh(entry, 60.0, now=1060.5)


# -- end to end --------------------------------------------------------------------------------


@task
def parity(n: int) -> int:
    note("parity")
    return n % 2


@task
def heavy(bit: int, label: str = "x") -> str:
    note("heavy")
    return f"{label}{bit}"


@task(cache=False)
def fresh(n: int) -> int:
    note("fresh")
    return n * 10


@pipeline
def cut_off(n: int = 1, label: str = "x"):
    return heavy(parity(n), label)


@pipeline
def uncached(n: int = 1):
    return heavy(fresh(n))


def run(pipe: Any, **params: Any) -> Any:
    return pipe(executor="threads", **params)


def cached(result: Any) -> dict[str, bool]:
    return {t.node: t.cached for t in result.tasks}


def test_second_run_is_all_cached() -> None:
    first = run(cut_off, n=3)
    second = run(cut_off, n=3)
    assert cached(first) == {"parity": False, "heavy": False}
    assert cached(second) == {"parity": True, "heavy": True}
    assert second.output == first.output == "x1"
    assert [t.attempts for t in second.tasks] == [0, 0]
    assert calls == Counter({"parity": 1, "heavy": 1})
    stored = glasspane.get_run(second.run_id)
    assert [t["cached"] for t in stored["tasks"]] == [True, True]
    assert stored["n_cached"] == 2


def test_changing_a_constant_recomputes_only_what_depends_on_it() -> None:
    run(cut_off, n=1, label="x")
    second = run(cut_off, n=1, label="y")
    assert cached(second) == {"parity": True, "heavy": False}
    assert second.output == "y1"
    assert calls == Counter({"parity": 1, "heavy": 2})


def test_cache_false_task_reruns_every_time() -> None:
    run(uncached, n=2)
    second = run(uncached, n=2)
    assert second.task("fresh").cached is False
    assert second.task("fresh").attempts == 1
    assert calls["fresh"] == 2
    # its identical output still lets the downstream task hit the cache
    assert second.task("heavy").cached is True
    assert calls["heavy"] == 1


def test_early_cut_off_when_an_upstream_recomputes_to_the_same_value() -> None:
    first = run(cut_off, n=1)
    second = run(cut_off, n=3)  # parity has a new input, but 3 % 2 == 1 % 2
    assert second.task("parity").cached is False
    assert second.task("heavy").cached is True
    assert second.output == first.output == "x1"
    assert calls == Counter({"parity": 2, "heavy": 1})
    third = run(cut_off, n=4)  # now the upstream value changes
    assert cached(third) == {"parity": False, "heavy": False}
    assert third.output == "x0"
    assert calls == Counter({"parity": 3, "heavy": 2})


@task
def source(n: int) -> int:
    note("source")
    return n


@task
def through_namedtuple(pair: Any) -> int:
    note("through_namedtuple")
    return pair.value * 10


Pair = collections.namedtuple("Pair", "value tag")


@pipeline
def namedtuple_input(n: int = 1):
    return through_namedtuple(Pair(source(n), "t"))


def test_a_ref_inside_a_namedtuple_argument_is_keyed_by_content() -> None:
    assert run(namedtuple_input, n=1).output == 10
    assert run(namedtuple_input, n=2).output == 20
    assert calls["through_namedtuple"] == 2


@task(cache_expiration=0.5)
def stale_soon(n: int) -> int:
    note("stale_soon")
    return n


@pipeline
def expiring(n: int = 1):
    return stale_soon(n)


def test_cache_expiration_recomputes_stale_entries() -> None:
    run(expiring)
    assert run(expiring).task("stale_soon").cached is True
    time.sleep(0.6)
    third = run(expiring)
    assert third.task("stale_soon").cached is False
    assert calls["stale_soon"] == 2
    assert run(expiring).task("stale_soon").cached is True


def test_cache_expiration_accepts_a_timedelta() -> None:
    assert task(cache_expiration=timedelta(minutes=2))(lambda: 1).options.cache_expiration == 120


@task
def value(n: int) -> list[int]:
    note("value")
    return [n, n]


@task
def consume(rows: list[int]) -> int:
    note("consume")
    return sum(rows)


@pipeline
def pair_of_tasks(n: int = 2):
    return consume(value(n))


def output_uri(run_id: str, node: str) -> str:
    task_run = next(t for t in glasspane.get_run(run_id)["tasks"] if t["node"] == node)
    return str(task_run["outputs"][0]["uri"])


def test_corrupted_blob_is_recomputed_with_a_note() -> None:
    first = run(pair_of_tasks)
    uri = output_uri(first.run_id, "value")
    Path(uri).write_bytes(b"\x00 not what was stored")

    second = run(pair_of_tasks)
    assert second.ok and second.output == 4
    assert second.task("value").cached is False
    assert second.task("value").note is not None
    assert "corrupted" in second.task("value").note
    assert uri in second.task("value").note
    assert second.task("consume").cached is True  # the recomputed value is identical
    assert calls == Counter({"value": 2, "consume": 1})
    stored = next(t for t in glasspane.get_run(second.run_id)["tasks"] if t["node"] == "value")
    assert "corrupted" in stored["note"]
    # the blob was rewritten: the next run is fully cached again
    assert cached(run(pair_of_tasks)) == {"value": True, "consume": True}


def test_corrupted_blob_that_still_loads_is_replaced_not_trusted() -> None:
    first = run(pair_of_tasks)  # value() stores [2, 2] as JSON
    uri = output_uri(first.run_id, "value")
    Path(uri).write_text("[2, 3]")  # still valid JSON, but not the stored value
    second = run(pair_of_tasks)
    assert second.task("value").cached is False
    assert "corrupted" in (second.task("value").note or "")
    assert Path(uri).read_text().replace(" ", "") == "[2,2]"  # rewritten with the true value
    third = run(pair_of_tasks)
    assert cached(third) == {"value": True, "consume": True}
    assert third.output == 4


def test_missing_blob_is_recomputed() -> None:
    first = run(pair_of_tasks)
    Path(output_uri(first.run_id, "value")).unlink()
    second = run(pair_of_tasks)
    assert second.ok and second.output == 4
    assert second.task("value").cached is False
    assert "missing" in (second.task("value").note or "")
    assert calls["value"] == 2


def test_clear_cache_for_one_task_recomputes_only_that_task() -> None:
    run(pair_of_tasks)
    run(cut_off)
    assert glasspane.clear_cache(task="value") == 1
    second = run(pair_of_tasks)
    assert cached(second) == {"value": False, "consume": True}
    assert cached(run(cut_off)) == {"parity": True, "heavy": True}
    assert calls == Counter({"value": 2, "consume": 1, "parity": 1, "heavy": 1})


def test_clear_cache_for_all_tasks() -> None:
    run(pair_of_tasks)
    assert glasspane.clear_cache() == 2
    assert glasspane.clear_cache() == 0
    assert cached(run(pair_of_tasks)) == {"value": False, "consume": False}
    assert calls == Counter({"value": 2, "consume": 2})
