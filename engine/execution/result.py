"""What a finished run looks like to the caller: :class:`RunResult` and :class:`TaskResult`."""

from __future__ import annotations

import datetime
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..types import SUCCEEDED


@dataclass
class TaskResult:
    """One node's outcome in a run."""

    node: str
    task: str
    state: str
    cached: bool = False
    attempts: int = 0
    error: str | None = None
    duration: float | None = None
    note: str | None = None
    parent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "task": self.task,
            "state": self.state,
            "cached": self.cached,
            "attempts": self.attempts,
            "error": self.error,
            "duration": self.duration,
            "note": self.note,
            "parent": self.parent,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TaskResult:
        """From a ``task_finished`` report (``started``/``ended``, ``parent``) or a stored
        task run (``duration``, ``parent_node``), whichever ``record`` is."""
        duration = record.get("duration")
        if duration is None and record.get("started") and record.get("ended"):
            duration = round(record["ended"] - record["started"], 6)
        return cls(
            record["node"],
            record["task"],
            record["state"],
            bool(record.get("cached")),
            int(record.get("attempts") or 0),
            record.get("error"),
            duration,
            record.get("note"),
            record.get("parent", record.get("parent_node")),
        )


@dataclass
class RunResult:
    """The outcome of a run: its id, final state, every task, and the pipeline's output.

    ``output`` is the pipeline's return value with task outputs filled in (``None`` when
    the run did not succeed). ``failure`` is the exception the first failed task raised,
    where the executor could hand it back (``RunFailed`` is chained from it); it is not
    part of :meth:`to_dict`.
    """

    run_id: str
    pipeline: str
    state: str
    tasks: list[TaskResult] = field(default_factory=list)
    output: Any = None
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    resumed_from: str | None = None
    failure: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.state == SUCCEEDED

    def task(self, node: str) -> TaskResult:
        for item in self.tasks:
            if item.node == node:
                return item
        raise KeyError(f"run {self.run_id} has no node `{node}`")

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``glasspane run --json`` prints."""
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "state": self.state,
            "resumed_from": self.resumed_from,
            "params": jsonable(self.params),
            "error": self.error,
            "tasks": [t.to_dict() for t in self.tasks],
            "output": jsonable(self.output),
        }


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe form of ``value``: containers kept, numpy scalars unwrapped, rest summarised."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth > 20:
        return repr(value)[:200]
    if _is_secret(value):  # pydantic SecretStr / SecretBytes: never the value in clear
        return "**********"
    if isinstance(value, (datetime.date, datetime.time)):  # a fire time: scheduled_for
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, depth + 1) for v in value]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        try:
            return jsonable(item(), depth + 1)
        except Exception:  # noqa: BLE001
            pass
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        from ..artifacts import preview

        summary = preview(value)
        return {"type": f"{type(value).__module__}.{type(value).__qualname__}", "preview": summary}


def _is_secret(value: Any) -> bool:
    """Whether ``value`` is a pydantic secret, without importing pydantic for other values."""
    types = sys.modules.get("pydantic.types")
    secret = getattr(types, "_SecretBase", None)
    return isinstance(secret, type) and isinstance(value, secret)
