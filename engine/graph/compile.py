"""Compiling a pipeline: run its body once under tracing, then freeze the trace into a graph.

The body runs with the *validated* parameter values, so ``range(n)`` and
``train.map(tr, C=grid)`` see real values. Freezing checks that every ref points at a node
of this pipeline and sits in a container the run can fill in, in time linear in the number
of nodes and refs (a 100,000-node ``.map`` compiles in seconds).
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..dsl.tracing import Ref, find_refs, foreign_container, tracing
from ..errors import DefinitionError, GlasspaneError, UserCodeError
from .dag import Graph
from .gc_pause import gc_paused
from .node import Node

if TYPE_CHECKING:
    from ..dsl.pipeline import PipelineDef
    from ..dsl.tracing import NodeSpec

#: Argument values that can hold no ref, skipped without walking them.
_SCALARS = frozenset({str, int, float, bool, bytes, type(None)})
#: Nodes reading at most this many refs share one refs mapping when they read the same.
_SHARED_READS = 16


def compile_pipeline(pipeline: PipelineDef[Any, Any], values: dict[str, Any]) -> Graph:
    """Trace the body of ``pipeline`` with validated parameter ``values``; return its graph.

    Raises:
        UserCodeError: the body raised something other than a glasspane error.
        DefinitionError: the body wired its tasks in a way that cannot run.
    """
    with gc_paused():  # a large graph is millions of objects: see gc_paused
        with tracing(pipeline.name) as trace:
            try:
                output = pipeline.fn(**values)
            except GlasspaneError:
                raise
            except Exception as exc:
                frames = traceback.extract_tb(exc.__traceback__)[1:]  # from the body on
                raise UserCodeError(
                    f"the body of pipeline `{pipeline.name}` raised {type(exc).__name__}: "
                    f"{exc}; fix the error in the pipeline body (traceback above)",
                    "Traceback (most recent call last):\n"
                    + "".join(traceback.format_list(frames))
                    + "".join(traceback.format_exception_only(type(exc), exc)),
                ) from exc
        return freeze_trace(pipeline.name, trace.nodes, output, values)


def freeze_trace(
    pipeline: str, specs: Mapping[str, NodeSpec], output: Any, params: Mapping[str, Any]
) -> Graph:
    """Freeze a trace into a validated graph, checking that every ref points at a known node."""
    nodes: dict[str, Node] = {}
    codes: dict[int, str] = {}  # one fingerprint per task definition, not per node
    # nodes reading the very same refs (a map's elements) share their refs and upstream
    reads: dict[tuple[Any, ...], tuple[MappingProxyType[str, tuple[Ref, ...]], tuple[str, ...]]]
    reads = {}
    for spec in specs.values():
        code = codes.get(id(spec.task))
        if code is None:
            code = codes[id(spec.task)] = spec.task.cache_version
        args = spec.args
        for name, value in args.items():
            if type(value) not in _SCALARS:
                _check_container(pipeline, value, f"argument `{name}` of task `{spec.id}`")
        refs: dict[str, tuple[Ref, ...]] = {}
        upstream: dict[str, None] = {}  # a dict keeps first-use order and finds in O(1)
        for arg, value in args.items():
            if type(value) in _SCALARS:
                continue
            arg_refs = (value,) if isinstance(value, Ref) else tuple(find_refs(value))
            if not arg_refs:
                continue
            where = f"argument `{arg}` of task `{spec.id}`"
            for ref in arg_refs:
                _check_ref(pipeline, ref, nodes, where)
                upstream[ref.node] = None
            refs[arg] = arg_refs
        # (the refs are alive in the cached mapping, so their ids stay theirs)
        key = None
        if sum(map(len, refs.values())) <= _SHARED_READS:  # not a fan-in's many refs
            key = tuple((arg, *map(id, arg_refs)) for arg, arg_refs in refs.items())
        read = reads.get(key) if key is not None else None
        if read is None:
            read = (MappingProxyType(refs), tuple(upstream))
            if key is not None:
                reads[key] = read
        nodes[spec.id] = Node(
            spec.id,
            spec.task,
            MappingProxyType(args),
            spec.n_outputs,
            spec.map_index,
            spec.expand_arg,
            read[1],
            read[0],
            code,
        )
    _check_container(pipeline, output, "the return value")
    for ref in find_refs(output):
        _check_ref(pipeline, ref, nodes, "the return value")
    graph = Graph(pipeline, nodes, output, params)
    graph.validate()
    return graph


def _check_ref(pipeline: str, ref: Ref, nodes: Mapping[str, Node], where: str) -> None:
    if ref.node not in nodes:
        raise DefinitionError(
            f"pipeline `{pipeline}`: {where} uses the output of `{ref.label}`, which was not "
            "produced inside this pipeline; call the task inside this pipeline's body"
        )
    n_out = nodes[ref.node].n_outputs
    if ref.output is not None and (n_out is None or ref.output >= n_out):
        raise DefinitionError(f"pipeline `{pipeline}`: {where} uses unknown output `{ref.label}`")


def _check_container(pipeline: str, value: Any, where: str) -> None:
    container = foreign_container(value)
    if container is not None:
        raise DefinitionError(
            f"pipeline `{pipeline}`: {where} holds the output of a task inside a value of type "
            f"`{container.__name__}`, where it would not be filled in at run time; use a plain "
            "list, tuple, dict or set (or a namedtuple), or build the "
            f"`{container.__name__}` inside a task"
        )
