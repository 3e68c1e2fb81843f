"""The compiled pipeline: an immutable DAG of nodes, viewable as a ``networkx.DiGraph``.

A :class:`Graph` is built once from a trace (see :mod:`.compile`) and never changes. Node
order is the trace order, which is topological (a call can only use refs returned by earlier
calls). The version hash covers the graph's shape, task identities, code hashes and argument names;
constants are left to each node's cache key so that changing a parameter value does not
make a new pipeline version.

Compiling is linear in the number of nodes and refs: a 100,000-node ``.map`` must compile
in seconds. So the graph keeps its own adjacency (in the order ``networkx`` would hold it,
so layers, edges and hashes are the same as computed over the ``DiGraph``) and builds
:attr:`Graph.dag`, and imports ``networkx``, only when someone asks for it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from ..dsl.tracing import Ref, find_refs
from ..errors import DefinitionError
from .gc_pause import gc_paused
from .node import Node
from .typecheck import check_edge_types

if TYPE_CHECKING:
    import networkx as nx


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
        return self._build_adjacency()

    def _build_adjacency(self) -> _Adjacency:
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

    # -- validation --------------------------------------------------------------------------
    def validate(self) -> None:
        """Check acyclicity and, where both sides are annotated with plain classes, edge types."""
        if not self._reads_only_earlier_nodes():  # cannot happen from a trace; be sure
            import networkx as nx

            if not nx.is_directed_acyclic_graph(self.dag):
                cycle = nx.find_cycle(self.dag)
                raise DefinitionError(f"pipeline `{self.pipeline}` has a cycle: {cycle}")
        check_edge_types(self)

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
        return self._layers(self._adjacency)

    def _layers(self, adjacency: _Adjacency) -> list[list[str]]:
        # Kahn's algorithm in the order of networkx's topological_generations
        order, succ = adjacency
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
        """A JSON-able description for the metadata store and the UI (to serialize, not to
        edit: equal small lists in it are one shared object)."""
        with gc_paused():
            return self._to_json()

    def _to_json(self) -> dict[str, Any]:
        # built for this call when not already cached: a run asks for it only here, and it
        # need not stay in memory while the run goes on
        adjacency = self.__dict__.get("_adjacency") or self._build_adjacency()
        order, succ = adjacency
        outputs: dict[tuple[str, str], list[int | None]] = {}  # aligned with each edge's args
        for node in self.nodes.values():
            for refs in node.refs.values():
                for ref in refs:
                    outputs.setdefault((ref.node, node.id), []).append(ref.output)
        # equal small lists (a map's elements all have the same) are one object: the JSON is
        # the same, and a 100,000-node graph's description holds 100,000s fewer lists
        lists: dict[tuple[Any, ...], list[Any]] = {}

        def shared(items: Any) -> list[Any]:
            key = tuple(items)
            found = lists.get(key)
            if found is None:
                found = lists[key] = list(key)
            return found

        return {
            "pipeline": self.pipeline,
            "version": self.version_hash,
            "nodes": [node.describe(shared) for node in self.nodes.values()],
            "edges": [
                {
                    "source": source,
                    "target": target,
                    "args": shared(args),
                    "outputs": shared(outputs[(source, target)]),
                }
                for source in order
                for target, args in succ.get(source, {}).items()
            ],
            "layers": self._layers(adjacency),
            "output": [r.label for r in self.output_refs()],
        }
