"""Planning a run on the driver: which nodes are already done, which must be executed.

Walking the graph in topological order, a node whose inputs are all known is resolved
without running when its output can be reused (resume: same cache key as in the resumed
run) or its cache key has a stored, verified entry; a whole expansion
(``task.map(expand(ref))``) is resolved from its own entry. Everything else becomes a
:class:`Job`; its workers compute the key again once upstream values exist, which gives
early cut-off downstream of misses.
A fully cached run therefore produces no jobs and never touches an executor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..artifacts import ArtifactStore
from ..cache import cache_key, template_digest
from ..dsl.tracing import Ref
from ..graph import Graph, Node
from ..types import ArtifactInfo
from .expansion import cached_expansion, expansion_key
from .job import Job, OutputKey
from .lookup import cached_outputs
from .outcomes import cache_hit, input_record, key_parts
from .resume import Reusable, decide
from .worker import input_hashes


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
    reuse: Mapping[str, Reusable] | None = None,
) -> Plan:
    """Resolve what can be resolved on the driver; return the rest as jobs.

    ``reuse`` holds the task runs of the run being resumed (see :mod:`.resume`): a node
    whose key is the one it had there is reused, checked here when its inputs are known
    and by the worker otherwise.
    """
    reuse = dict(reuse or {})
    plan = Plan()
    for node in graph:
        digests = const_digests(node)
        if all(u in plan.resolved for u in node.upstream) and _resolve_on_driver(
            plan, node, digests, reuse, store
        ):
            continue
        stored: dict[OutputKey, ArtifactInfo] = {}
        for upstream in node.upstream:
            if upstream in plan.resolved:
                for i, info in enumerate(plan.resolved[upstream]):
                    stored[(upstream, i)] = info
                    if i == 0:
                        stored[(upstream, None)] = info
        if node.expand_arg is not None:
            prefix = f"{node.id}["
            mine = {k: v for k, v in reuse.items() if k.startswith(prefix)}
        else:
            mine = {node.id: reuse[node.id]} if node.id in reuse else {}
        plan.jobs.append(
            Job(
                run_id=run_id,
                node_id=node.id,
                task=node.task,
                args=node.args,
                deps=_unresolved(node.upstream, plan.resolved),
                stored=stored,
                const_digests=digests,
                store_root=store.root,
                cache_version=node.cache_version,
                n_outputs=node.n_outputs,
                expand_arg=node.expand_arg,
                reuse=mine,
                map_index=node.map_index,
            )
        )
    return plan


def _unresolved(upstream: tuple[str, ...], resolved: Mapping[str, Any]) -> tuple[str, ...]:
    """The upstream nodes not resolved on the driver: ``upstream`` itself (shared by a map's
    elements) when none is."""
    if not any(u in resolved for u in upstream):
        return upstream
    return tuple(u for u in upstream if u not in resolved)


def _resolve_on_driver(
    plan: Plan,
    node: Node,
    digests: dict[str, Any],
    reuse: Mapping[str, Reusable],
    store: ArtifactStore,
) -> bool:
    """Resolve ``node``, whose inputs are all known, from the resumed run or the cache."""
    ref_hash = lambda r: _hash_of(plan.resolved, r)  # noqa: E731
    inputs = _inputs(node, plan.resolved)
    if node.expand_arg is not None:
        if not node.task.options.reads_cache:
            return False
        key = expansion_key(node.task, node.cache_version, node.args, ref_hash, digests)
        found = cached_expansion(node, key, store, inputs, None)
        if found is None:
            return False
        plan.resolved[node.id], events = found
        plan.events.extend(events)
        return True
    key = cache_key(node.task.identity, node.cache_version, node.args, ref_hash, digests)
    old = reuse.get(node.id)
    reused, reason = decide(old, key, node.cache_version, input_hashes(inputs))
    infos: list[ArtifactInfo] | None = None
    if reused and old is not None and all(store.verify(i) for i in old.outputs):
        infos, note = list(old.outputs), reason
    elif node.task.options.reads_cache:
        infos = _cached(node, key, store)
        note = f"cache hit; {reason}" if reason and not reused else None
    if infos is None:
        return False
    plan.resolved[node.id] = infos
    plan.events.append(
        cache_hit(
            node.id,
            node.task.name,
            key,
            inputs,
            infos,
            note=note,
            map_index=node.map_index,
            parts=key_parts(node.cache_version, digests, node.task.options.cache),
        )  # fmt: skip
    )
    return True


def _hash_of(resolved: Mapping[str, list[ArtifactInfo]], ref: Ref) -> str:
    return resolved[ref.node][ref.output or 0].content_hash


def _cached(node: Node, key: str, store: ArtifactStore) -> list[ArtifactInfo] | None:
    infos = cached_outputs(store, key, node.task.options.cache_expiration)
    if infos is None:
        return None
    if len(infos) != len(node.output_names) or not all(store.verify(i) for i in infos):
        return None  # the worker recomputes and records why
    return infos


def _inputs(node: Node, resolved: Mapping[str, list[ArtifactInfo]]) -> list[dict[str, Any]]:
    return [
        input_record(name, ref.node, resolved[ref.node][ref.output or 0])
        for name, refs in node.refs.items()
        for ref in refs
    ]
