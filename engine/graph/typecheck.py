"""Edge type checks: a task's output must fit the annotation of the argument that reads it.

Only plain classes on both sides are compared (``int`` into ``float`` is allowed); generics,
``Any``, ``object`` and refs nested inside containers are not checked.
"""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Any

from ..errors import DefinitionError

if TYPE_CHECKING:
    from .dag import Graph
    from .node import Node


def check_edge_types(graph: Graph) -> None:
    """Raise :class:`DefinitionError` naming the first edge whose types cannot match."""
    for node in graph.nodes.values():
        if not node.refs:
            continue
        hints = _hints(node.task.fn)
        for arg, refs in node.refs.items():
            if arg == node.expand_arg:  # elements of the list, known at run time
                continue
            expected = hints.get(arg)
            # (typing.Any is a class on Python 3.11+: it accepts anything, as object does)
            if not isinstance(expected, type) or expected is object or expected is Any:
                continue
            for ref in refs:
                if node.args[arg] is not ref:  # nested in a container: not checked
                    continue
                produced = _output_type(graph.nodes[ref.node], ref.output)
                if (
                    isinstance(produced, type)
                    and produced is not object
                    and not (issubclass(produced, expected) or _numeric_ok(produced, expected))
                ):
                    raise DefinitionError(
                        f"pipeline `{graph.pipeline}`: task `{node.id}` argument `{arg}` "
                        f"expects {expected.__name__} but `{ref.label}` returns "
                        f"{produced.__name__}; fix the annotation or the wiring"
                    )


_hint_cache: dict[Any, dict[str, Any]] = {}


def _hints(fn: Any) -> dict[str, Any]:
    """Resolved annotations of ``fn``, once per function (a 10,000-node map has one task)."""
    hints = _hint_cache.get(fn)
    if hints is None:
        try:
            hints = typing.get_type_hints(fn)
        except Exception:
            hints = {}
        if len(_hint_cache) > 4096:
            _hint_cache.clear()
        _hint_cache[fn] = hints
    return hints


def _output_type(node: Node, output: int | None) -> Any:
    hint = _hints(node.task.fn).get("return")
    if node.expand_arg is not None:
        return list
    if output is None:
        return hint
    args = typing.get_args(hint)
    return args[output] if output < len(args) else None


def _numeric_ok(produced: type, expected: type) -> bool:
    return expected is float and produced is int
