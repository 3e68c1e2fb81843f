"""The outcome events a run reports, built in one place.

Workers, the driver's planner (cache hits) and the run loop (tasks that never reported)
all describe a finished task with the same ``task_finished`` dict, which the metadata
store records (see ``glasspane.store.events`` for what each field becomes). Events are
plain JSON/msgpack-able dicts so they can travel through ``Worker.log_event``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..types import SUCCEEDED, ArtifactInfo

if TYPE_CHECKING:
    from .context import Captured

#: captured text kept per task (the tail)
TEXT_LIMIT = 64 * 1024


def describe(error: BaseException) -> str:
    """``Type: message`` (or just the type) for an error."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def task_finished(
    node: str,
    task: str,
    state: str,
    *,
    cached: bool = False,
    cache_key: str | None = None,
    attempts: int = 0,
    started: float | None = None,
    ended: float | None = None,
    inputs: Sequence[dict[str, Any]] = (),
    outputs: Sequence[ArtifactInfo] = (),
    note: str | None = None,
    error: str | None = None,
    traceback: str | None = None,
    parent: str | None = None,
    map_index: int | None = None,
    text: Captured | None = None,
    attempt_text: Captured | None = None,
    key_parts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``task_finished`` event.

    ``text`` is the output and log lines of all its attempts, ``attempt_text`` those of the
    final attempt alone (metrics and params went out as they were logged).
    """
    return {
        "kind": "task_finished",
        "node": node,
        "task": task,
        "state": state,
        "cached": cached,
        "cache_key": cache_key,
        "attempts": attempts,
        "started": started,
        "ended": time.time() if ended is None else ended,
        "error": error,
        "traceback": traceback[-TEXT_LIMIT:] if traceback else None,
        "stdout": text.stdout[-TEXT_LIMIT:] if text else "",
        "stderr": text.stderr[-TEXT_LIMIT:] if text else "",
        "log_tail": text.log_tail if text else "",
        "attempt_stdout": attempt_text.stdout[-TEXT_LIMIT:] if attempt_text else None,
        "attempt_stderr": attempt_text.stderr[-TEXT_LIMIT:] if attempt_text else None,
        "attempt_log_tail": attempt_text.log_tail if attempt_text else None,
        "note": note,
        "parent": parent,
        "map_index": map_index,
        "inputs": list(inputs),
        "outputs": [{"name": str(i), "artifact": info.to_dict()} for i, info in enumerate(outputs)],
        "key_parts": key_parts,
    }


def key_parts(code: str | None, consts: dict[str, Any], cache: bool) -> dict[str, Any]:
    """What a task's cache key was made of, besides its inputs (which lineage records): its
    code fingerprint or ``version=``, its constant arguments' digests, whether it caches.
    Stored with the task run, so a task can say why it hit or missed the cache."""
    return {"code": code, "consts": consts, "cache": cache}


def cache_hit(
    node: str,
    task: str,
    key: str | None,
    inputs: Sequence[dict[str, Any]],
    outputs: Sequence[ArtifactInfo],
    *,
    note: str | None = None,
    parent: str | None = None,
    map_index: int | None = None,
    parts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``task_finished`` event of a node resolved without running (cache, resume)."""
    now = time.time()
    return task_finished(
        node, task, SUCCEEDED, cached=True, cache_key=key, started=now, ended=now,
        inputs=inputs, outputs=outputs, note=note, parent=parent, map_index=map_index,
        key_parts=parts,
    )  # fmt: skip


def attempt_finished(
    node: str,
    attempt: int,
    state: str,
    error: BaseException | None,
    text: Captured | None = None,
    traceback: str | None = None,
) -> dict[str, Any]:
    """The ``attempt_finished`` event of an attempt that was not the last, with its own text."""
    return {
        "kind": "attempt_finished",
        "node": node,
        "attempt": attempt,
        "state": state,
        "ts": time.time(),
        "error": describe(error) if error else None,
        "stdout": text.stdout[-TEXT_LIMIT:] if text else None,
        "stderr": text.stderr[-TEXT_LIMIT:] if text else None,
        "log_tail": text.log_tail if text else None,
        "traceback": traceback[-TEXT_LIMIT:] if traceback else None,
    }


def task_started(
    node: str,
    task: str,
    attempt: int,
    parent: str | None,
    map_index: int | None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``task_started`` event of one attempt (``params``: the node's constants)."""
    event = {
        "kind": "task_started",
        "node": node,
        "task": task,
        "attempt": attempt,
        "ts": time.time(),
        "parent": parent,
        "map_index": map_index,
    }
    if params:
        event["params"] = params
    return event


#: characters of a constant argument a task_started event carries (a short ``repr``)
PARAM_CHARS = 250


def constants(args: Any) -> dict[str, Any]:
    """A node's constant arguments as trackers show them: JSON scalars as they are, others
    by a short ``repr`` (arguments fed by other tasks are left out)."""
    from ..dsl.tracing import find_refs

    found: dict[str, Any] = {}
    for name, value in args.items():
        if find_refs(value):
            continue
        if value is None or isinstance(value, (bool, int, float)):
            found[name] = value
        else:
            text = value if isinstance(value, str) else repr(value)
            found[name] = text[:PARAM_CHARS]
    return found


def input_record(name: str, source: str, info: ArtifactInfo) -> dict[str, Any]:
    """One consumed input: the parameter, the node of this run that produced it, the artifact."""
    return {"name": name, "source": source, "artifact": info.to_dict()}
