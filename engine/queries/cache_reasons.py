"""Why a task run hit or missed the cache, said in words.

A task's cache key is made of its identity, its code fingerprint (or ``version=``), the
digests of its constant arguments and the content hashes of its inputs; each task run
stores those parts (``key_parts``) and its inputs (lineage). A hit names the task run that
computed the output it reused. A miss is compared with the last earlier run of the same
node of the same pipeline: what differs — code, a constant, an input — is the reason; when
nothing does, the earlier output could not be reused (it failed, expired or was removed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..store import MetadataStore, cache_history
from ..types import SUCCEEDED
from .records import CacheExplanation, TaskRunRef


def explain_cache(metadata: MetadataStore, row: Mapping[str, Any]) -> CacheExplanation | None:
    """The explanation for a task run (a row of ``browse.task_run``); ``None`` when it has
    no cache key (it never got as far as computing one: skipped, or not started)."""
    if row["cache_key"] is None:
        return None
    if row["cached"]:
        producer = None
        for output in row["outputs"]:
            producer = metadata.read(cache_history.producer, output["content_hash"])
            break
        return hit(row, producer)
    earlier = metadata.read(cache_history.earlier_task_run, row["run_id"], row["node_id"])
    return miss(row, earlier)


def hit(row: Mapping[str, Any], producer: tuple[str, str] | None) -> CacheExplanation:
    """A reused output: which task run computed it."""
    note = row.get("note") or ""
    if producer is None:
        reasons = ["an output stored under the same cache key was reused"]
    else:
        run, node = producer
        where = f"run {run}" if node == row["node_id"] else f"run {run} (node `{node}`)"
        reasons = [f"same code, constants and inputs as {where}, which computed this output"]
    if "reused from run" in note:
        reasons = [note]
    ref = (
        None if producer is None else TaskRunRef(run_id=producer[0], node=producer[1], cached=False)
    )
    return CacheExplanation(hit=True, compared_with=ref, reasons=reasons)


def miss(row: Mapping[str, Any], earlier: Mapping[str, Any] | None) -> CacheExplanation:
    """A computed output: what changed since the last earlier run of the node."""
    parts = row.get("key_parts") or {}
    reasons: list[str] = []
    if parts.get("cache") is False:
        reasons.append("caching is off for this task (`cache=False`): it always runs")
    if earlier is None:
        reasons.append(f"`{row['node_id']}` never ran before in this pipeline")
        return CacheExplanation(hit=False, compared_with=None, reasons=reasons)
    run = earlier["run_id"]
    ref = TaskRunRef(run_id=run, node=row["node_id"], cached=bool(earlier["cached"]))
    old = earlier.get("key_parts") or {}
    diffs: list[str] = []
    if parts and old:
        if parts.get("code") != old.get("code"):
            diffs.append(f"its code (or `version=`) changed since run {run}")
        diffs.extend(_changed("constant", parts.get("consts") or {}, old.get("consts") or {}))
    elif not old:
        diffs.append(f"run {run} did not record its cache key parts (an older glasspane)")
    diffs.extend(_changed("input", _input_hashes(row["inputs"]), earlier.get("inputs") or {}))
    if not diffs and row["cache_key"] == earlier["cache_key"]:
        if earlier["state"] != SUCCEEDED:
            diffs.append(f"same cache key as run {run}, where it {earlier['state']}")
        elif parts.get("cache") is not False:
            diffs.append(
                f"same cache key as run {run}, but its output could not be reused (expired, "
                "removed with `glasspane cache clear`, or missing from the artifact store)"
            )
    reasons.extend(diffs)
    return CacheExplanation(hit=False, compared_with=ref, reasons=reasons)


def _input_hashes(inputs: list[Mapping[str, Any]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for item in inputs:
        found.setdefault(item["name"], []).append(item["content_hash"])
    return found


def _changed(what: str, now: Mapping[str, Any], before: Mapping[str, Any]) -> list[str]:
    reasons = []
    for name in sorted(set(now) | set(before)):
        if name not in before:
            reasons.append(f"{what} `{name}` is new")
        elif name not in now:
            reasons.append(f"{what} `{name}` was removed")
        elif now[name] != before[name]:
            reasons.append(f"{what} `{name}` changed")
    return reasons
