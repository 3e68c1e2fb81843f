"""The cache lookup, one for the planner (on the driver) and the worker wrapper.

A cache key's entry in the artifact store lists the outputs a task produced under it; an
entry older than the task's ``cache_expiration`` does not count. An entry whose task loaded
models (``glasspane.load_model``) is the worker's to answer: it checks that the references
still name the versions the task loaded (see :mod:`.model_reads`); the planner does not read
the registry.
"""

from __future__ import annotations

from typing import Any

from ..artifacts import ArtifactStore
from ..cache import entry_is_fresh
from ..types import ArtifactInfo


def cached_entry(store: ArtifactStore, key: str, expiration: float | None) -> dict[str, Any] | None:
    """The fresh entry recorded under ``key``, or None."""
    entry = store.read_key(key)
    if entry is None or not entry_is_fresh(entry, expiration):
        return None
    return entry


def entry_outputs(entry: dict[str, Any]) -> list[ArtifactInfo]:
    return [ArtifactInfo.from_dict(o) for o in entry.get("outputs", [])]


def cached_outputs(
    store: ArtifactStore, key: str, expiration: float | None
) -> list[ArtifactInfo] | None:
    """The outputs recorded under ``key``, or None when there is no fresh entry, or its task
    loaded models (the worker checks those).

    The values themselves are not read: the planner checks that they exist, the worker
    loads them (and recomputes, saying why, when one cannot be read).
    """
    entry = cached_entry(store, key, expiration)
    if entry is None or entry.get("models"):
        return None
    return entry_outputs(entry)
