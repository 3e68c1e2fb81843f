"""``Node``: one task call in a compiled graph, with its constants and the refs it reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..dsl.tracing import Ref

if TYPE_CHECKING:
    from ..dsl.task import TaskDef


@dataclass(frozen=True, eq=False)
class Node:
    """One task call in the compiled graph.

    Attributes:
        id: stable, readable id (``load``, ``load_2``, ``train[0]``).
        task: the task definition.
        args: argument name -> constant or template containing :class:`Ref` s.
        n_outputs: outputs of a tuple-returning task (``split.0``, ``split.1``), else ``None``.
        map_index: position in a static ``.map``, else ``None``.
        expand_arg: for a run-time expander, the argument mapped over.
        upstream: ids of the nodes this one reads, in first-use order.
        refs: argument name -> the refs it holds.
        code: the task's ``cache_version`` when the graph was compiled: ``v:<version>`` or
            ``c:<code fingerprint>`` (see :mod:`glasspane.fingerprint`), part of every cache
            key and of the version hash.
    """

    id: str
    task: TaskDef[Any, Any]
    args: Mapping[str, Any]
    n_outputs: int | None = None
    map_index: int | None = None
    expand_arg: str | None = None
    upstream: tuple[str, ...] = ()
    refs: Mapping[str, tuple[Ref, ...]] = field(default_factory=dict)
    code: str = ""

    @property
    def cache_version(self) -> str:
        return self.code or self.task.cache_version

    @property
    def output_names(self) -> list[str]:
        return ["0"] if self.n_outputs is None else [str(i) for i in range(self.n_outputs)]

    def describe(self, as_list: Callable[[Any], list[Any]] = list) -> dict[str, Any]:
        """The node as the graph's JSON describes it; ``as_list`` makes its lists (the
        graph passes one that returns a single object for equal lists)."""
        opts = self.task.options
        return {
            "id": self.id,
            "task": self.task.name,
            "identity": self.task.identity,
            "outputs": self.n_outputs,
            "map_index": self.map_index,
            "expand": self.expand_arg,
            "code": self.cache_version,
            "args": as_list(self.args),
            "cache": opts.cache,
            "persist": opts.persist,
            "retries": opts.retries,
            "timeout": opts.timeout,
            "tags": as_list(opts.tags),
        }
