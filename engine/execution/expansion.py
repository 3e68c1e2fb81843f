"""Expanders: ``task.map(expand(ref))``, a map over a list known only at run time.

An expander job resolves the list, makes one child job per element (``train[0]``,
``train[1]``, ...) and hands them to the executor's ``spawn``, which runs them like the
elements of a static ``.map``: each child is cached, reused on retry, retried and recorded
on its own, and its cache key is the one a static map element with that constant would
have. The expander's output is the list of the children's outputs.

Lineage has no holes here: each child records its element as an input whose source is the
node that produced the list, and the expander records every child's output as an input.

The whole expansion is cached too, under its own key (``kind="expand"``: the task, its
code and its inputs, the list included), with each child's key, outputs and element in the
entry: a fully cached run resolves it on the driver, without loading the list or starting
an executor (see :func:`cached_expansion`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ..artifacts import ArtifactStore
from ..cache import cache_key, entry_is_fresh, make_entry
from ..dsl.tracing import Ref, find_refs, substitute
from ..errors import ArtifactError, SerializationError, TaskError
from ..hashing import content_hash
from ..types import FAILED, SUCCEEDED, ArtifactInfo
from .job import Emit, Job, NodeValue, Spawn, TaskFailed
from .model_reads import entry_models
from .outcomes import cache_hit, input_record, task_started
from .outputs import memory_info, store_outputs
from .worker import fail, finished, resolve


def expansion_key(
    task: Any,
    cache_version: str,
    args: Mapping[str, Any],
    ref_hash: Callable[[Ref], str],
    const_digests: Mapping[str, Any],
) -> str:
    """The cache key of a whole expansion of ``task`` (see the module docstring)."""
    return cache_key(task.identity, cache_version, args, ref_hash, const_digests, kind="expand")


def expand(
    job: Job,
    deps: Mapping[str, NodeValue],
    store: ArtifactStore,
    emit: Emit,
    spawn: Spawn | None,
    inputs: list[dict[str, Any]],
    ref_hash: Callable[[Ref], str],
) -> NodeValue:
    """Run an expander: one child job per element of the expanded list."""
    started = time.time()
    arg = job.expand_arg or ""
    emit(task_started(job.node_id, job.task.name, 1, None, None))
    key = expansion_key(job.task, job.cache_version, job.args, ref_hash, job.const_digests)
    try:
        items = substitute(job.args[arg], lambda r: resolve(job, deps, store, r))
    except ArtifactError as exc:
        return fail(job, emit, FAILED, exc, key, 1, started, inputs, None)
    if not isinstance(items, (list, tuple)):
        error: Exception = TaskError(
            f"`{job.task.name}.map(expand(...))` needs a list for argument `{arg}`, but the "
            f"upstream task returned {type(items).__name__}; return a list from it"
        )
        return fail(job, emit, FAILED, error, key, 1, started, inputs, None)
    try:
        children = child_jobs(job, items)
    except SerializationError as exc:
        return fail(job, emit, FAILED, exc, key, 1, started, inputs, None)
    if spawn is None:  # pragma: no cover - every executor passes one
        raise RuntimeError(f"executor gave no way to run the children of `{job.node_id}`")
    needed = {dep for child in children for dep in child.deps}
    results = spawn(children, {d: deps[d] for d in needed}) if children else []
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        names = [c.node_id for c, r in zip(children, results) if isinstance(r, BaseException)]
        error = TaskError(
            f"{len(names)} of {len(children)} mapped elements failed: {', '.join(names[:10])}"
            + (" and more" if len(names) > 10 else "")
        )
        first = failures[0]
        error.__cause__ = first.cause if isinstance(first, TaskFailed) else first
        return fail(job, emit, FAILED, error, key, 1, started, inputs, None)
    done: list[NodeValue] = results  # type: ignore[assignment]
    values = [r.output(None) if job.n_outputs is None else r.values for r in done]
    try:
        value = store_outputs(job, (values,), store, None)
    except (SerializationError, ArtifactError) as exc:
        return fail(job, emit, FAILED, exc, key, 1, started, inputs, None)
    if job.task.options.reads_cache:
        children_entry = [
            {
                "key": r.cache_key,
                "outputs": [a.to_dict() for a in r.artifacts],
                "element": c.element,
            }
            for c, r in zip(children, done)
        ]
        outputs = [a.to_dict() for a in value.artifacts]
        entry = make_entry(job.task.name, outputs, children=children_entry)
        loads = [m for r in done for m in r.models]
        if loads:  # children loaded models: only a worker can tell whether the whole holds
            entry["models"] = loads
        try:
            store.write_key(key, entry)
        except (SerializationError, ArtifactError):
            pass  # the expansion still succeeded; its next run expands again
    consumed = [*inputs, *children_inputs(job.node_id, children, [r.artifacts for r in done])]
    emit(
        finished(
            job,
            SUCCEEDED,
            cached=False,
            key=key,
            attempts=1,
            started=started,
            inputs=consumed,
            outputs=list(value.artifacts),
            note=None,
        )
    )
    return NodeValue(value.values, value.hashes, value.artifacts, key)


def child_jobs(job: Job, items: list[Any] | tuple[Any, ...]) -> list[Job]:
    """One job per element of ``items``, each with the element as a constant argument."""
    arg = job.expand_arg or ""
    source = job.args[arg]
    producer = source.node if isinstance(source, Ref) else job.node_id
    used = {ref.node for name, value in job.args.items() if name != arg for ref in find_refs(value)}
    deps = tuple(d for d in job.deps if d in used)
    stored = {k: v for k, v in job.stored.items() if k[0] in used}
    children = []
    for i, item in enumerate(items):
        digest = content_hash(item)
        node_id = f"{job.node_id}[{i}]"
        args = dict(job.args)
        args[arg] = item
        children.append(
            Job(
                run_id=job.run_id,
                node_id=node_id,
                task=job.task,
                args=args,
                deps=deps,
                stored=stored,
                const_digests={**job.const_digests, arg: ["const", digest]},
                store_root=job.store_root,
                cache_version=job.cache_version,
                n_outputs=job.n_outputs,
                reuse={node_id: job.reuse[node_id]} if node_id in job.reuse else {},
                parent=job.node_id,
                map_index=i,
                tee=job.tee,
                element=input_record(arg, producer, memory_info(item, digest)),
                metadata_url=job.metadata_url,
            )
        )
    return children


def children_inputs(
    parent: str, children: list[Any], outputs: list[tuple[ArtifactInfo, ...]]
) -> list[dict[str, Any]]:
    """The expander's input records of its children's outputs (``children``: jobs or ids)."""
    records = []
    for child, infos in zip(children, outputs):
        node_id = child if isinstance(child, str) else child.node_id
        for index, info in enumerate(infos):
            name = node_id if len(infos) == 1 else f"{node_id}.{index}"
            records.append(input_record(name, node_id, info))
    return records


def cached_expansion(
    node: Any,
    key: str,
    store: ArtifactStore,
    inputs: list[dict[str, Any]],
    note: str | None,
) -> tuple[list[ArtifactInfo], list[dict[str, Any]]] | None:
    """The outputs and events of an expansion stored under ``key``, or ``None``.

    Only the expander's own output (the list) is verified: that is what downstream tasks
    load. The children are recorded as cache hits with the outputs they had. An expansion
    whose children loaded models is left to the workers (see :mod:`.model_reads`).
    """
    entry = store.read_key(key)
    if entry is None or not entry_is_fresh(entry, node.task.options.cache_expiration):
        return None
    if entry_models(entry):  # its children loaded models: their workers check them
        return None
    children = entry.get("children")
    outputs = [ArtifactInfo.from_dict(o) for o in entry.get("outputs", [])]
    if not isinstance(children, list) or len(outputs) != 1 or not store.verify(outputs[0]):
        return None
    events = []
    child_outputs = []
    for i, child in enumerate(children):
        infos = [ArtifactInfo.from_dict(o) for o in child["outputs"]]
        child_outputs.append(tuple(infos))
        element = child.get("element")
        events.append(
            cache_hit(
                f"{node.id}[{i}]",
                node.task.name,
                child.get("key"),
                [element] if element else [],
                infos,
                parent=node.id,
                map_index=i,
            )  # fmt: skip
        )
    ids = [f"{node.id}[{i}]" for i in range(len(children))]
    consumed = [*inputs, *children_inputs(node.id, ids, child_outputs)]
    events.append(cache_hit(node.id, node.task.name, key, consumed, outputs, note=note))
    return outputs, events
