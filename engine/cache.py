"""Cache keys and cache policy: pure functions, no I/O.

A node's cache key is the hash of (task identity, code hash or ``version``, and for each
argument either the content hash of a constant or, where the argument holds refs, the
*content* hashes of the upstream outputs). Keying on upstream content rather than on
upstream keys gives early cut-off: an upstream that recomputes to an identical value
still hits downstream.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from .dsl.tracing import Ref
from .hashing import content_hash

#: cache-key format version; bump when the key layout changes so old entries stop matching
KEY_FORMAT = "1"


def template_digest(value: Any, ref_hash: Callable[[Ref], str]) -> Any:
    """A JSON-able digest of an argument, with each ref replaced by its content hash."""
    if isinstance(value, Ref):
        return ["ref", ref_hash(value)]
    if type(value) in (list, tuple, set, frozenset) and _contains_ref(value):
        items = [template_digest(v, ref_hash) for v in value]
        if isinstance(value, (set, frozenset)):
            items.sort(key=lambda d: json.dumps(d))
        return [type(value).__name__, items]
    if isinstance(value, tuple) and hasattr(value, "_fields") and _contains_ref(value):
        # a namedtuple: ``substitute`` fills its refs in, so the key must follow their content
        items = [template_digest(v, ref_hash) for v in value]
        return [f"{type(value).__module__}.{type(value).__qualname__}", items]
    if type(value) is dict and _contains_ref(value):
        pairs = [
            [template_digest(k, ref_hash), template_digest(v, ref_hash)] for k, v in value.items()
        ]
        pairs.sort(key=lambda d: json.dumps(d))
        return ["dict", pairs]
    return ["const", content_hash(value)]


def _contains_ref(value: Any) -> bool:
    from .dsl.tracing import find_refs

    return bool(find_refs(value))


def cache_key(
    identity: str,
    cache_version: str,
    args: Mapping[str, Any],
    ref_hash: Callable[[Ref], str],
    const_digests: Mapping[str, Any] | None = None,
    kind: str | None = None,
) -> str:
    """The cache key of one task call.

    Args:
        identity: the task's ``module.qualname``.
        cache_version: ``v:<version>`` or ``c:<code hash>``.
        args: argument name -> constant or template with refs.
        ref_hash: content hash of an upstream output.
        const_digests: precomputed digests of ref-free arguments (saves rehashing).
        kind: ``"expand"`` for a whole ``task.map(expand(ref))`` (the list of every element's
            output), which must not share a key with ``task(ref)``; ``None`` for one call.
    """
    parts = []
    for name, value in args.items():
        if const_digests is not None and name in const_digests:
            parts.append([name, const_digests[name]])
        else:
            parts.append([name, template_digest(value, ref_hash)])
    head = (
        [KEY_FORMAT, identity, cache_version]
        if kind is None
        else [KEY_FORMAT, kind, identity, cache_version]
    )
    blob = json.dumps([*head, parts], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def entry_is_fresh(
    entry: Mapping[str, Any], expiration: float | None, now: float | None = None
) -> bool:
    """Whether a key-index entry written at ``entry["created"]`` is still valid."""
    if expiration is None:
        return True
    created = float(entry.get("created", 0.0))
    return (now if now is not None else time.time()) - created <= expiration


def make_entry(
    task: str, outputs: list[dict[str, Any]], now: float | None = None, **extra: Any
) -> dict[str, Any]:
    """A key-index entry: which artifacts a key's outputs are stored as (``extra``: more
    JSON-able fields, such as an expansion's ``children``)."""
    created = now if now is not None else time.time()
    return {"task": task, "outputs": outputs, "created": created, **extra}
