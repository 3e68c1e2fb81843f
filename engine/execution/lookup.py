"""The cache lookup, one for the planner (on the driver) and the worker wrapper.

A cache key's entry in the artifact store lists the outputs a task produced under it; an
entry older than the task's ``cache_expiration`` does not count.
"""

from __future__ import annotations

from ..artifacts import ArtifactStore
from ..cache import entry_is_fresh
from ..types import ArtifactInfo


def cached_outputs(
    store: ArtifactStore, key: str, expiration: float | None
) -> list[ArtifactInfo] | None:
    """The outputs recorded under ``key``, or None when there is no fresh entry.

    The values themselves are not read: the planner checks that they exist, the worker
    loads them (and recomputes, saying why, when one cannot be read).
    """
    entry = store.read_key(key)
    if entry is None or not entry_is_fresh(entry, expiration):
        return None
    return [ArtifactInfo.from_dict(o) for o in entry.get("outputs", [])]
