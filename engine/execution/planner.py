"""Planning a run on the driver: which nodes are already done, which must be executed.

Walking the graph in topological order, a node whose inputs are all known is resolved
without running when its output can be reused (resume) or its cache key has a stored,
verified entry. Everything else becomes a :class:`Job`; its workers compute the key
again once upstream values exist, which gives early cut-off downstream of misses.
A fully cached run therefore produces no jobs and never touches an executor.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..artifacts import ArtifactStore
from ..cache import cache_key, entry_is_fresh, template_digest
from ..dsl.tracing import Ref
from ..graph import Graph, Node
from ..types import SUCCEEDED, ArtifactInfo
from .job import Job, OutputKey
from .outcomes import input_record, task_finished


@dataclass
class Plan:
    """Resolved outputs, the events that record them, and the jobs left to run."""

    resolved: dict[str, list[ArtifactInfo]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)


def const_digests(node: Node) -> dict[str, Any]:
    return {
        name: template_digest(value, _no_ref)
        for name, value in node.args.items()
        if name not in node.refs
    }


def _no_ref(ref: Ref) -> str:  # pragma: no cover - only called for ref-free arguments
    raise AssertionError(ref)


def plan_run(
    graph: Graph,
    run_id: str,
    store: ArtifactStore,
    reuse: Mapping[str, list[ArtifactInfo]] | None = None,
) -> Plan:
    """Resolve what can be resolved on the driver; return the rest as jobs."""
    reuse = dict(reuse or {})
    plan = Plan()
    children_reuse = {k: v for k, v in reuse.items() if k not in graph.nodes}
    for node in graph:
        digests = const_digests(node)
        ready = all(u in plan.resolved for u in node.upstream)
        if ready and node.expand_arg is None:
            infos = _reusable(node, reuse, store)
            note = "reused from the resumed run" if infos is not None else None
            key = None
            if infos is None and node.task.options.reads_cache:
                key = cache_key(
                    node.task.identity,
                    node.task.cache_version,
                    node.args,
                    lambda r: _hash_of(plan.resolved, r),
                    digests,
                )
                infos = _cached(node, key, store)
            if infos is not None:
                plan.resolved[node.id] = infos
                plan.events.append(_cached_event(node, key, infos, plan.resolved, note))
                continue
        stored: dict[OutputKey, ArtifactInfo] = {}
        for upstream in node.upstream:
            if upstream in plan.resolved:
                for i, info in enumerate(plan.resolved[upstream]):
                    stored[(upstream, i)] = info
                    if i == 0:
                        stored[(upstream, None)] = info
        plan.jobs.append(
            Job(
                run_id,
                node.id,
                node.task,
                node.args,
                tuple(u for u in node.upstream if u not in plan.resolved),
                stored,
                digests,
                store.root,
                node.n_outputs,
                node.expand_arg,
                {k: v for k, v in children_reuse.items() if k.startswith(f"{node.id}[")}
                if node.expand_arg
                else {},
                None,
                node.map_index,
            )
        )
    return plan


def _hash_of(resolved: Mapping[str, list[ArtifactInfo]], ref: Ref) -> str:
    return resolved[ref.node][ref.output or 0].content_hash


def _reusable(
    node: Node, reuse: Mapping[str, list[ArtifactInfo]], store: ArtifactStore
) -> list[ArtifactInfo] | None:
    infos = reuse.get(node.id)
    if not infos or any(i.uri is None for i in infos):
        return None
    return infos if all(store.verify(i) for i in infos) else None


def _cached(node: Node, key: str, store: ArtifactStore) -> list[ArtifactInfo] | None:
    entry = store.read_key(key)
    if entry is None or not entry_is_fresh(entry, node.task.options.cache_expiration):
        return None
    infos = [ArtifactInfo.from_dict(o) for o in entry.get("outputs", [])]
    if len(infos) != len(node.output_names) or not all(store.verify(i) for i in infos):
        return None  # the worker recomputes and records why
    return infos


def _cached_event(
    node: Node,
    key: str | None,
    infos: list[ArtifactInfo],
    resolved: Mapping[str, list[ArtifactInfo]],
    note: str | None,
) -> dict[str, Any]:
    inputs = [
        input_record(name, ref.node, resolved[ref.node][ref.output or 0])
        for name, refs in node.refs.items()
        for ref in refs
    ]
    now = time.time()
    return task_finished(
        node.id,
        node.task.name,
        SUCCEEDED,
        cached=True,
        cache_key=key,
        started=now,
        ended=now,
        inputs=inputs,
        outputs=infos,
        note=note,
        map_index=node.map_index,
    )
