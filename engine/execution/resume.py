"""What a retry may reuse from the run it resumes, and why a task runs again.

``glasspane retry`` starts a new run of the same pipeline, linked to the old one. A task's
stored output from the old run is reused only when it is certainly what the task would
compute now: the old task run succeeded, its output is still in the artifact store, and
its cache key (the task's identity, its code fingerprint or ``version=``, its constant
arguments and the content of its inputs) is the key the task has now. A task whose code
changed, or one fed an input that changed, runs again, and so does everything downstream
whose inputs change with it; a task whose upstream ran again but gave an identical value
is still reused (early cut-off). Every task says in its note which of these happened.

Pure functions: the old run comes in as the dict ``MetadataStore.get_run`` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..types import SUCCEEDED, ArtifactInfo


@dataclass(frozen=True)
class Reusable:
    """One task run of the resumed run, as far as deciding on reuse needs it.

    Attributes:
        run_id: the resumed run.
        state: the old task run's final state.
        cache_key: its cache key (``None`` when the old run did not record one).
        outputs: its stored outputs, in output order.
        code: the task's code fingerprint in the old run (``None`` if unknown).
        inputs: argument name -> content hashes of the inputs it consumed.
    """

    run_id: str
    state: str
    cache_key: str | None
    outputs: tuple[ArtifactInfo, ...] = ()
    code: str | None = None
    inputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return (
            self.state == SUCCEEDED
            and bool(self.outputs)
            and all(o.uri is not None for o in self.outputs)
        )


def reusable_from_run(run: Mapping[str, Any]) -> dict[str, Reusable]:
    """Every task run of ``run`` (a ``get_run`` dict) by node id."""
    codes: dict[str, str] = {}
    for node in (run.get("graph") or {}).get("nodes", []):
        if node.get("code"):
            codes[node["id"]] = node["code"]
    found: dict[str, Reusable] = {}
    for task in run.get("tasks", []):
        inputs: dict[str, list[str]] = {}
        for item in task.get("inputs") or ():
            inputs.setdefault(item["name"], []).append(item["content_hash"])
        outputs = tuple(
            ArtifactInfo.from_dict(o)
            for o in sorted(task.get("outputs") or (), key=lambda o: _index(o["name"]))
        )
        found[task["node"]] = Reusable(
            run_id=run["run_id"],
            state=task["state"],
            cache_key=task.get("cache_key"),
            outputs=outputs,
            code=codes.get(task.get("parent_node") or task["node"]),
            inputs={name: tuple(hashes) for name, hashes in inputs.items()},
        )
    return found


def _index(name: str) -> int:
    return int(name) if name.isdigit() else 1 << 30


#: the name prefix of a task run's input edge of a model it loaded (``model:churn/3``)
MODEL_INPUT = "model:"


def decide(
    old: Reusable | None,
    key: str | None,
    code: str,
    inputs: Mapping[str, list[str]] | None = None,
) -> tuple[bool, str | None]:
    """Whether to reuse ``old`` for a task whose key is now ``key``, and why.

    Returns ``(True, "reused from run X")`` or ``(False, reason)``, where ``reason`` says
    why the old output does not fit (``"its code changed since run X"``), for the caller to
    put in the task's note; ``(False, None)`` when the old run had no such task.

    Args:
        old: the old run's task run of this node, or ``None`` if it had none.
        key: the task's cache key in this run.
        code: the task's code fingerprint in this run.
        inputs: argument name -> content hashes of this run's inputs, to name the changed
            ones.
    """
    if old is None:
        return False, None
    since = f"run {old.run_id}"
    if old.state != SUCCEEDED:
        return False, _STATE_WORDS.get(old.state, f"it ended {old.state} in {{}}").format(since)
    if not old.usable:
        return False, f"its output in {since} was not stored (persist=False)"
    if old.cache_key is not None and old.cache_key == key:
        if any(name.startswith(MODEL_INPUT) for name in old.inputs):
            # a reference such as churn@champion may name another version by now: the cache
            # lookup checks that (see .model_reads), not the key
            return False, f"it loaded a model in {since}, whose reference is checked again"
        return True, f"reused from {since}"
    if old.code is not None and old.code != code:
        return False, f"its code changed since {since}"
    changed = sorted(
        name
        for name, hashes in (inputs or {}).items()
        if name in old.inputs and tuple(hashes) != old.inputs[name]
    )
    if changed:
        names = ", ".join(f"`{n}`" for n in changed)
        return False, f"input {names} differs from {since}"
    return False, f"its code or inputs changed since {since}"


_STATE_WORDS = {
    "failed": "it failed in {}",
    "timed_out": "it timed out in {}",
    "upstream_failed": "it did not run in {} (an upstream task failed)",
    "cancelled": "it was cancelled in {}",
    "crashed": "it crashed in {}",
    "pending": "it never started in {}",
    "running": "it never finished in {}",
}


def ran_note(reason: str | None) -> str | None:
    """The note of a task that ran although the resumed run had it: ``ran again: why``."""
    return None if reason is None else f"ran again: {reason}"
