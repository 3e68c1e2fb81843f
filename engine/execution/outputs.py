"""A task's outputs: split from what it returned, then stored (content hash, materializer,
cache entry); or, for a ``persist=False`` task, a descriptor of a value kept in memory only."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from ..artifacts import ArtifactStore
from ..cache import make_entry
from ..errors import SerializationError, TaskError
from ..hashing import content_hash
from ..types import ArtifactInfo
from .job import Job, NodeValue


def store_outputs(
    job: Job,
    values: tuple[Any, ...],
    store: ArtifactStore,
    key: str | None,
    models: list[dict[str, Any]] | None = None,
) -> NodeValue:
    """Store ``values`` and record them under ``key`` with the ``models`` the task loaded
    (see :mod:`.model_reads`)."""
    opts = job.task.options
    loads = tuple(models or ())
    if not opts.persist:  # kept in memory: it need not pickle, only its hash must be sound
        hashes = tuple(_memory_hash(job, v) for v in values)
        infos = tuple(memory_info(v, h) for v, h in zip(values, hashes))
        return NodeValue(values, hashes, infos, key, loads)
    where = f"task `{job.node_id}`"
    try:  # the store hashes each value, a large one while it writes it
        infos = tuple(store.put(v, where=where) for v in values)
    except SerializationError as exc:
        bad = next((type(v).__name__ for v in values if not _hashable(v)), None)
        if bad is None:
            raise
        raise SerializationError(
            f"task `{job.node_id}` returned `{bad}`, which cannot be hashed or serialized "
            f"({exc}); return a picklable value, or register a materializer and a hasher for "
            f"`{bad}` with glasspane.register_materializer / glasspane.register_hasher, or "
            "keep it in memory with @task(persist=False)"
        ) from exc
    hashes = tuple(info.content_hash for info in infos)
    if opts.reads_cache and key is not None:
        entry = make_entry(job.task.name, [i.to_dict() for i in infos])
        if loads:
            entry["models"] = list(loads)
        store.write_key(key, entry)
    return NodeValue(values, hashes, infos, key, loads)


def split_outputs(job: Job, result: Any) -> tuple[Any, ...]:
    """The task's outputs: one value, or the n values of a ``-> tuple[...]`` task, from any
    sequence of the right length, as tuple unpacking would take them."""
    n = job.n_outputs
    if n is None:
        return (result,)
    if isinstance(result, tuple):
        values: tuple[Any, ...] | None = result
    elif isinstance(result, (str, bytes, bytearray, dict, set, frozenset)):
        values = None  # unpacks, but into characters or keys: surely not what was meant
    else:
        try:
            values = tuple(result)
        except TypeError:
            values = None
    if values is None or len(values) != n:
        if values is None:
            got = f"a {type(result).__name__}"
        else:
            kind = "tuple" if isinstance(result, tuple) else type(result).__name__
            got = f"a {kind} of {len(values)}"
        raise TaskError(
            f"task `{job.node_id}` is annotated to return a tuple of {n} values but returned "
            f"{got}; return exactly {n} values (a tuple or list) or change the return "
            "annotation"
        )
    return values


def _memory_hash(job: Job, value: Any) -> str:
    """The content hash of a value kept in memory; one that cannot be hashed gets a hash of
    its own, unique to this run, so no task reading it is ever a cache hit."""
    try:
        return content_hash(value)
    except SerializationError:
        unique = f"unhashable:{job.run_id}:{job.node_id}:{uuid.uuid4().hex}"
        return hashlib.sha256(unique.encode()).hexdigest()


def _hashable(value: Any) -> bool:
    try:
        content_hash(value)
    except SerializationError:
        return False
    return True


def memory_info(value: Any, digest: str) -> ArtifactInfo:
    """The descriptor of a value that has no stored copy."""
    from ..artifacts import preview, type_name

    return ArtifactInfo(digest, None, None, type_name(value), None, 0, preview(value))
