"""The models a running task loads (``glasspane.load_model`` in a task): where its worker reads
the registry, and what a cached result of such a task must still match.

A worker resolves a reference (``churn@champion``) in the metadata store itself, when the task
loads it: the truth at that moment, never a copy taken when the run was planned. It reads
through a store opened once per process and URL, without creating or migrating anything; a
driver shares its own store with the executors that run tasks in its process (inline,
threads) for the length of the run. An in-memory SQLite database cannot be read by tasks (its
one connection is the driver's). The model's bytes come from the task's artifact store.

Every load is recorded with the task: as a ``model_loaded`` event, which the driver records as
an input of the task run (lineage, with the task run that registered that version as its
source), and in the cache entry of the task's result (:func:`entry_models`). A cached result
whose task loaded a model by alias or as the latest version is reused only while each such
reference still names the version it loaded (:func:`stale_reason`); only a worker checks that,
so the planner leaves such entries to it (:mod:`.lookup`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..events import wire

if TYPE_CHECKING:
    from ..store import MetadataStore

#: read-only stores one process keeps open (least recently used closed first): a Dask worker
#: of a long-lived cluster serves runs against a few databases, not hundreds
READERS_MAX = 8
_readers: OrderedDict[str, MetadataStore] = OrderedDict()
_shared: dict[str, list[MetadataStore]] = {}
_lock = threading.Lock()


@contextmanager
def shared(store: MetadataStore) -> Iterator[None]:
    """Tasks running in this process while the block runs read the registry through ``store``
    (the driver's own) when their run's URL is its URL."""
    if _in_memory(store.url):  # its one connection is the driver's recorder's: not shared
        yield
        return
    with _lock:
        _shared.setdefault(store.url, []).append(store)
    try:
        yield
    finally:
        with _lock:
            stores = _shared[store.url]
            stores.remove(store)
            if not stores:
                del _shared[store.url]


def metadata_reader(url: str) -> MetadataStore:
    """The metadata store at ``url``, to read from: the driver's when it runs in this process,
    otherwise one opened once per process (never created nor migrated here).

    Raises:
        ConfigError: the database cannot be opened, or is an in-memory one; NotFound: there
            is no glasspane database at ``url`` (a SQLite file of another machine).
    """
    if _in_memory(url):
        from ..errors import ConfigError

        raise ConfigError(
            "an in-memory SQLite database lives on the driver's one connection, which tasks "
            "cannot share"
        )
    with _lock:
        if url in _shared:
            return _shared[url][-1]
        store = _readers.get(url)
        if store is not None:
            _readers.move_to_end(url)
            return store
    from ..store import MetadataStore

    opened = MetadataStore(url, create=False)
    with _lock:
        store = _readers.setdefault(url, opened)
        while len(_readers) > READERS_MAX:
            _readers.popitem(last=False)[1].close()
    if store is not opened:  # another thread of this process opened it meanwhile
        opened.close()
    return store


def _in_memory(url: str) -> bool:
    from ..store.engines import is_sqlite, parse_url, sqlite_path

    parsed = parse_url(url)
    return is_sqlite(parsed) and sqlite_path(parsed) is None


def close_readers() -> None:
    """Close the stores :func:`metadata_reader` opened in this process."""
    with _lock:
        stores = list(_readers.values())
        _readers.clear()
    for store in stores:
        store.close()


def load_record(ref: str, version: dict[str, Any], artifact: dict[str, Any]) -> dict[str, Any]:
    """What a task's load of ``ref`` is remembered by: the reference, the version it named
    (a row of :func:`~glasspane.store.registry.resolve`) and the stored model."""
    return {"ref": ref, "name": version["name"], "version": int(version["version"]),
            "artifact": artifact}  # fmt: skip


def loaded_event(node: str, record: dict[str, Any], **placement: Any) -> dict[str, Any]:
    """The ``model_loaded`` report of a load (a :func:`load_record`) by the task of ``node``;
    ``placement`` (``task``, ``parent``, ``map_index``) names the task run it may be the first
    report of (a cache hit reports its loads before the hit)."""
    return wire("model_loaded", node, **placement, **record)


def entry_models(entry: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The model loads a cache entry recorded (none for a task that loaded no model)."""
    models = (entry or {}).get("models")
    return list(models) if isinstance(models, list) else []


def floating(ref: str) -> bool:
    """Whether ``ref`` may name another version later: an alias, or a name alone (latest)."""
    return "@" in ref or "/" not in ref


def stale_reason(loads: list[dict[str, Any]], url: str | None) -> str | None:
    """Why a cached result whose task made ``loads`` must not be reused now (a reference it
    loaded by alias or as the latest version names another version, or cannot be checked);
    None when every such reference still names the version it loaded."""
    for load in loads:
        ref = str(load.get("ref"))
        if not floating(ref):
            continue  # a numbered version is immutable
        if url is None:
            return f"model `{ref}` could not be checked (no metadata store given to the worker)"
        try:
            now = int(metadata_reader(url).resolve_model(ref)["version"])
        except Exception as exc:  # noqa: BLE001 - any doubt recomputes; the task says why
            return f"model `{ref}` could not be resolved to check the cached result ({exc})"
        if now != int(load["version"]):
            return (
                f"model `{ref}` now names version {now}; the cached result was computed with "
                f"version {load['version']}"
            )
    return None
