"""The compiled pipeline: an immutable DAG of nodes, viewable as a ``networkx.DiGraph``.

A :class:`Graph` is built once from a trace and never changes. Node order is the trace
order, which is topological (a call can only use refs returned by earlier calls). The
version hash covers the graph's shape, task identities, code hashes and argument names;
constants are left to each node's cache key so that changing a parameter value does not
make a new pipeline version.

Compiling is linear in the number of nodes and refs: a 100,000-node ``.map`` must compile
in seconds. So the graph keeps its own adjacency (in the order ``networkx`` would hold it,
so layers, edges and hashes are the same as computed over the ``DiGraph``) and builds
:attr:`Graph.dag`, and imports ``networkx``, only when someone asks for it.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from .dsl.tracing import Ref, find_refs, foreign_container
from .errors import DefinitionError

if TYPE_CHECKING:
    import networkx as nx

    from .dsl.task import TaskDef
    from .dsl.tracing import NodeSpec

#: Argument values that can hold no ref, skipped without walking them.
_SCALARS = frozenset({str, int, float, bool, bytes, type(None)})


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a graph (or its JSON) is being built.

    A 100,000-node graph is a few million container objects. With the collector on, every
    full collection walks all of those made so far, and there are a dozen of them while the
    graph grows: more time than making the objects. Reference counting still frees what is
    dropped; the collector runs again on exit (the pause is process-wide, and lasts as long
    as the compile).
    """
    if not gc.isenabled():  # paused already (nested, or by the caller)
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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

    def describe(self) -> dict[str, Any]:
        opts = self.task.options
        return {
            "id": self.id,
            "task": self.task.name,
            "identity": self.task.identity,
            "outputs": self.n_outputs,
            "map_index": self.map_index,
            "expand": self.expand_arg,
            "code": self.cache_version,
            "args": list(self.args),
            "cache": opts.cache,
            "persist": opts.persist,
            "retries": opts.retries,
            "timeout": opts.timeout,
            "tags": list(opts.tags),
        }


class _Adjacency(NamedTuple):
    """The edges as ``networkx`` would hold them: nodes in insertion order (a node, then any
    unknown node it reads), successors in first-edge order, each edge with its argument names."""

    order: dict[str, None]  # a dict: ordered, and membership is O(1)
    succ: dict[str, dict[str, list[str]]]


class Graph:
    """An immutable, validated DAG of :class:`Node` s plus the pipeline's output template."""

    def __init__(
        self, pipeline: str, nodes: Mapping[str, Node], output: Any, params: Mapping[str, Any]
    ) -> None:
        self.pipeline = pipeline
        self.nodes: Mapping[str, Node] = MappingProxyType(dict(nodes))
        self.output = output
        self.params = MappingProxyType(dict(params))

    @cached_property
    def dag(self) -> nx.DiGraph:
        """The graph as a frozen ``networkx.DiGraph``; edges carry their argument names."""
        import networkx as nx

        dag = nx.DiGraph()
        for node in self.nodes.values():
            dag.add_node(node.id, task=node.task.name)
            for arg, refs in node.refs.items():
                for ref in refs:
                    if dag.has_edge(ref.node, node.id):
                        dag.edges[ref.node, node.id]["args"].append(arg)
                    else:
                        dag.add_edge(ref.node, node.id, args=[arg])
        return nx.freeze(dag)

    @cached_property
    def _adjacency(self) -> _Adjacency:
        seen: dict[str, None] = {}
        succ: dict[str, dict[str, list[str]]] = {}
        for node in self.nodes.values():
            target = node.id
            seen[target] = None
            for arg, refs in node.refs.items():
                for ref in refs:
                    source = ref.node
                    if source not in seen:
                        seen[source] = None
                    edges = succ.get(source)
                    if edges is None:
                        succ[source] = {target: [arg]}
                    elif target in edges:
                        edges[target].append(arg)
                    else:
                        edges[target] = [arg]
        return _Adjacency(seen, succ)

    @classmethod
    def from_trace(
        cls, pipeline: str, specs: Mapping[str, NodeSpec], output: Any, params: Mapping[str, Any]
    ) -> Graph:
        """Freeze a trace into a graph, checking that every ref points at a known node."""
        nodes: dict[str, Node] = {}
        codes: dict[int, str] = {}  # one fingerprint per task definition, not per node
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
            nodes[spec.id] = Node(
                spec.id,
                spec.task,
                MappingProxyType(args),
                spec.n_outputs,
                spec.map_index,
                spec.expand_arg,
                tuple(upstream),
                MappingProxyType(refs),
                code,
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
        if not self._reads_only_earlier_nodes():  # cannot happen from a trace; be sure
            import networkx as nx

            if not nx.is_directed_acyclic_graph(self.dag):
                cycle = nx.find_cycle(self.dag)
                raise DefinitionError(f"pipeline `{self.pipeline}` has a cycle: {cycle}")
        for node in self.nodes.values():
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

    def _reads_only_earlier_nodes(self) -> bool:
        """True if every node reads only nodes before it: then the order is topological and
        there is no cycle, checked in linear time."""
        seen: set[str] = set()
        for node in self.nodes.values():
            for refs in node.refs.values():
                for ref in refs:
                    if ref.node not in seen:
                        return False
            seen.add(node.id)
        return True

    # -- views -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def layers(self) -> list[list[str]]:
        """Node ids grouped by topological generation (each layer only needs earlier ones)."""
        # Kahn's algorithm in the order of networkx's topological_generations
        order, succ = self._adjacency
        indegree: dict[str, int] = {}
        for targets in succ.values():
            for target in targets:
                indegree[target] = indegree.get(target, 0) + 1
        layers: list[list[str]] = []
        ready = [node_id for node_id in order if node_id not in indegree]
        while ready:
            layers.append(ready)
            ready = []
            for node_id in layers[-1]:
                for child in succ.get(node_id, ()):
                    left = indegree[child] - 1
                    if left:
                        indegree[child] = left
                    else:
                        del indegree[child]
                        ready.append(child)
        if indegree:  # a cycle, in a graph built by hand: let networkx raise its error
            import networkx as nx

            return [list(layer) for layer in nx.topological_generations(self.dag)]
        return layers

    def downstream(self, node_id: str) -> set[str]:
        order, succ = self._adjacency
        if node_id not in order:
            import networkx as nx

            return set(nx.descendants(self.dag, node_id))  # raises "not in the graph"
        found: set[str] = set()
        stack = [node_id]
        while stack:
            for child in succ.get(stack.pop(), ()):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        found.discard(node_id)  # on a cycle, in a graph built by hand
        return found

    def output_refs(self) -> list[Ref]:
        return find_refs(self.output)

    @cached_property
    def version_hash(self) -> str:
        """Identifies the pipeline version: shape, task identities, code, argument names."""
        with gc_paused():
            return self._version_hash()

    def _version_hash(self) -> str:
        tasks: dict[int, tuple[str, str]] = {}  # one code hash per task, not per node
        parts: list[Any] = []
        for node in self.nodes.values():
            task = node.task
            identity = tasks.get(id(task))
            if identity is None:
                identity = tasks[id(task)] = (task.identity, node.cache_version)
            refs = node.refs
            parts.append(
                [
                    node.id,
                    identity[0],
                    identity[1],
                    node.n_outputs,
                    node.expand_arg,
                    [[arg, [r.label for r in refs.get(arg, ())]] for arg in node.args],
                ]
            )
        parts.append(["<output>", [r.label for r in self.output_refs()]])
        blob = json.dumps([self.pipeline, parts], separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """A JSON-able description for the metadata store and the UI."""
        with gc_paused():
            return self._to_json()

    def _to_json(self) -> dict[str, Any]:
        order, succ = self._adjacency
        return {
            "pipeline": self.pipeline,
            "version": self.version_hash,
            "nodes": [node.describe() for node in self.nodes.values()],
            "edges": [
                {"source": source, "target": target, "args": list(args)}
                for source in order
                for target, args in succ.get(source, {}).items()
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
