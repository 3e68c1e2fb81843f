"""The compiled pipeline: an immutable DAG of nodes over ``networkx.DiGraph``.

A :class:`Graph` is built once from a trace and never changes. Node order is the trace
order, which is topological (a call can only use refs returned by earlier calls). The
version hash covers the graph's shape, task identities, code hashes and argument names;
constants are left to each node's cache key so that changing a parameter value does not
make a new pipeline version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import networkx as nx

from .dsl.tracing import Ref, find_refs, foreign_container
from .errors import DefinitionError

if TYPE_CHECKING:
    from .dsl.task import TaskDef
    from .dsl.tracing import NodeSpec


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
    """

    id: str
    task: TaskDef[Any, Any]
    args: Mapping[str, Any]
    n_outputs: int | None = None
    map_index: int | None = None
    expand_arg: str | None = None
    upstream: tuple[str, ...] = ()
    refs: Mapping[str, tuple[Ref, ...]] = field(default_factory=dict)

    @property
    def output_names(self) -> list[str]:
        return ["0"] if self.n_outputs is None else [str(i) for i in range(self.n_outputs)]

    def describe(self) -> dict[str, Any]:
        opts = self.task.options
        return {
            "id": self.id,
            "task": self.task.name,
            "identity": self.task.identity,
            "outputs": self.n_outputs,
            "map_index": self.map_index,
            "expand": self.expand_arg,
            "args": list(self.args),
            "cache": opts.cache,
            "persist": opts.persist,
            "retries": opts.retries,
            "timeout": opts.timeout,
            "tags": list(opts.tags),
        }


class Graph:
    """An immutable, validated DAG of :class:`Node` s plus the pipeline's output template."""

    def __init__(
        self, pipeline: str, nodes: Mapping[str, Node], output: Any, params: Mapping[str, Any]
    ) -> None:
        self.pipeline = pipeline
        self.nodes: Mapping[str, Node] = MappingProxyType(dict(nodes))
        self.output = output
        self.params = MappingProxyType(dict(params))
        dag = nx.DiGraph()
        for node in self.nodes.values():
            dag.add_node(node.id, task=node.task.name)
            for arg, refs in node.refs.items():
                for ref in refs:
                    if dag.has_edge(ref.node, node.id):
                        dag.edges[ref.node, node.id]["args"].append(arg)
                    else:
                        dag.add_edge(ref.node, node.id, args=[arg])
        self.dag: nx.DiGraph = nx.freeze(dag)

    @classmethod
    def from_trace(
        cls, pipeline: str, specs: Mapping[str, NodeSpec], output: Any, params: Mapping[str, Any]
    ) -> Graph:
        """Freeze a trace into a graph, checking that every ref points at a known node."""
        nodes: dict[str, Node] = {}
        for spec in specs.values():
            for name, value in spec.args.items():
                _check_container(pipeline, value, f"argument `{name}` of task `{spec.id}`")
            refs = {name: tuple(find_refs(value)) for name, value in spec.args.items()}
            upstream: list[str] = []
            for arg, arg_refs in refs.items():
                for ref in arg_refs:
                    _check_ref(pipeline, ref, nodes, f"argument `{arg}` of task `{spec.id}`")
                    if ref.node not in upstream:
                        upstream.append(ref.node)
            nodes[spec.id] = Node(
                spec.id,
                spec.task,
                MappingProxyType(spec.args),
                spec.n_outputs,
                spec.map_index,
                spec.expand_arg,
                tuple(upstream),
                MappingProxyType({k: v for k, v in refs.items() if v}),
            )
        _check_container(pipeline, output, "the return value")
        for ref in find_refs(output):
            _check_ref(pipeline, ref, nodes, "the return value")
        graph = cls(pipeline, nodes, output, params)
        graph.validate()
        return graph

    # -- validation --------------------------------------------------------------------------
    def validate(self) -> None:
        """Check acyclicity and, where both sides are annotated with plain classes, edge types."""
        if not nx.is_directed_acyclic_graph(self.dag):  # cannot happen from a trace; be sure
            cycle = nx.find_cycle(self.dag)
            raise DefinitionError(f"pipeline `{self.pipeline}` has a cycle: {cycle}")
        for node in self.nodes.values():
            hints = _hints(node.task.fn)
            for arg, refs in node.refs.items():
                if arg == node.expand_arg:  # elements of the list, known at run time
                    continue
                expected = hints.get(arg)
                if not isinstance(expected, type) or expected is object:
                    continue
                for ref in refs:
                    if node.args[arg] is not ref:  # nested in a container: not checked
                        continue
                    produced = _output_type(self.nodes[ref.node], ref.output)
                    if (
                        isinstance(produced, type)
                        and produced is not object
                        and not (issubclass(produced, expected) or _numeric_ok(produced, expected))
                    ):
                        raise DefinitionError(
                            f"pipeline `{self.pipeline}`: task `{node.id}` argument `{arg}` "
                            f"expects {expected.__name__} but `{ref.label}` returns "
                            f"{produced.__name__}; fix the annotation or the wiring"
                        )

    # -- views -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def layers(self) -> list[list[str]]:
        """Node ids grouped by topological generation (each layer only needs earlier ones)."""
        return [list(layer) for layer in nx.topological_generations(self.dag)]

    def downstream(self, node_id: str) -> set[str]:
        return set(nx.descendants(self.dag, node_id))

    def output_refs(self) -> list[Ref]:
        return find_refs(self.output)

    @cached_property
    def version_hash(self) -> str:
        """Identifies the pipeline version: shape, task identities, code, argument names."""
        parts: list[Any] = [
            [
                node.id,
                node.task.identity,
                node.task.cache_version,
                node.n_outputs,
                node.expand_arg,
                [[arg, [r.label for r in node.refs.get(arg, ())]] for arg in node.args],
            ]
            for node in self.nodes.values()
        ]
        parts.append(["<output>", [r.label for r in self.output_refs()]])
        blob = json.dumps([self.pipeline, parts], separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """A JSON-able description for the metadata store and the UI."""
        link = nx.node_link_data(self.dag, edges="edges")
        return {
            "pipeline": self.pipeline,
            "version": self.version_hash,
            "nodes": [node.describe() for node in self.nodes.values()],
            "edges": [
                {"source": e["source"], "target": e["target"], "args": e.get("args", [])}
                for e in link["edges"]
            ],
            "layers": self.layers(),
            "output": [r.label for r in self.output_refs()],
        }


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


_hint_cache: dict[Any, dict[str, Any]] = {}


def _hints(fn: Any) -> dict[str, Any]:
    """Resolved annotations of ``fn``, once per function (a 10,000-node map has one task)."""
    import typing

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
    import typing

    args = typing.get_args(hint)
    return args[output] if output < len(args) else None


def _numeric_ok(produced: type, expected: type) -> bool:
    return expected is float and produced is int
