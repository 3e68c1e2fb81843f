"""Storing a task's outputs: content hash, materializer, cache entry; or, for a
``persist=False`` task, a descriptor of a value kept in memory only."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from ..artifacts import ArtifactStore
from ..cache import make_entry
from ..errors import SerializationError
from ..hashing import content_hash
from ..types import ArtifactInfo
from .job import Job, NodeValue


def store_outputs(
    job: Job, values: tuple[Any, ...], store: ArtifactStore, key: str | None
) -> NodeValue:
    opts = job.task.options
    if not opts.persist:  # kept in memory: it need not pickle, only its hash must be sound
        hashes = tuple(_memory_hash(job, v) for v in values)
        infos = tuple(memory_info(v, h) for v, h in zip(values, hashes))
        return NodeValue(values, hashes, infos, key)
    try:
        hashes = tuple(content_hash(v) for v in values)
    except SerializationError as exc:
        bad = next(type(v).__name__ for v in values if not _hashable(v))
        raise SerializationError(
            f"task `{job.node_id}` returned `{bad}`, which cannot be hashed or serialized "
            f"({exc}); return a picklable value, or register a materializer and a hasher for "
            f"`{bad}` with glasspane.register_materializer / glasspane.register_hasher, or "
            "keep it in memory with @task(persist=False)"
        ) from exc
    where = f"task `{job.node_id}`"
    infos = tuple(store.put(v, content_hash=h, where=where) for v, h in zip(values, hashes))
    if opts.reads_cache and key is not None:
        store.write_key(key, make_entry(job.task.name, [i.to_dict() for i in infos]))
    return NodeValue(values, hashes, infos, key)


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
