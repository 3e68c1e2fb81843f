"""Layered graph layout: node ids and edges in, coordinates out (left to right).

A small Sugiyama-style layout, pure and fast enough for 10,000 nodes:

1. **Layers** by longest path from the sources: a node sits one layer right of its furthest
   predecessor, so every edge goes from a lower layer to a higher one.
2. **Order** within each layer: starting from the input order, a few barycenter sweeps
   (down using predecessors, then up using successors) sort each layer by the mean position
   of its neighbours; the order with the fewest crossings seen is kept.
3. **Coordinates**: layer ``l`` at ``x = l * layer_gap``; the nodes of a layer evenly spaced
   ``node_gap`` apart and centred on the tallest layer.

Edges spanning several layers get no dummy nodes: the sweeps use their far endpoint's
position directly, and a renderer draws them as one curve. Crossings are counted between
edges joining the same two layers (see :func:`count_crossings`).

Invariants: coordinates are node centres, from 0 to ``width`` and 0 to ``height``; the
result depends only on the inputs (no randomness, no clock).
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """Where each node goes.

    Attributes:
        positions: node id -> ``(x, y)`` of its centre.
        layers: node id -> its layer (0 for sources).
        order: the node ids of each layer, top to bottom.
        width: the largest x (the last layer's); 0 for one layer.
        height: the largest y (the tallest layer's bottom node); 0 for one node per layer.
    """

    positions: Mapping[str, tuple[float, float]]
    layers: Mapping[str, int]
    order: tuple[tuple[str, ...], ...]
    width: float
    height: float


def layout(
    nodes: Sequence[str],
    edges: Sequence[tuple[str, str]],
    *,
    layer_gap: float = 1.0,
    node_gap: float = 1.0,
    sweeps: int = 4,
) -> Layout:
    """Lay out a DAG in layers, left to right.

    Args:
        nodes: the node ids, each once; their order is the starting order within a layer.
        edges: ``(source, target)`` pairs; repeated pairs and self-loops are ignored.
        layer_gap: horizontal distance between consecutive layers.
        node_gap: vertical distance between neighbours in a layer.
        sweeps: rounds of barycenter sorting (each a sweep down and a sweep up).

    Raises:
        ValueError: a node id is repeated, an edge names a node not in ``nodes``, or the
            edges form a cycle.
    """
    n = len(nodes)
    index = {node: i for i, node in enumerate(nodes)}
    if len(index) != n:
        seen: set[str] = set()
        for node in nodes:
            if node in seen:
                raise ValueError(f"node `{node}` is listed twice; pass each node id once")
            seen.add(node)
    pred, succ = _adjacency(index, edges)
    layer = _longest_path_layers(nodes, pred, succ)
    n_layers = max(layer, default=-1) + 1
    ranks: list[list[int]] = [[] for _ in range(n_layers)]
    for i in range(n):
        ranks[layer[i]].append(i)
    ranks = _reduce_crossings(ranks, layer, pred, succ, sweeps)
    tallest = max((len(rank) for rank in ranks), default=1)
    positions: dict[str, tuple[float, float]] = {}
    for k, rank in enumerate(ranks):
        x = k * layer_gap
        offset = (tallest - len(rank)) / 2
        for p, i in enumerate(rank):
            positions[nodes[i]] = (x, (offset + p) * node_gap)
    return Layout(
        positions=positions,
        layers={node: layer[i] for i, node in enumerate(nodes)},
        order=tuple(tuple(nodes[i] for i in rank) for rank in ranks),
        width=max(n_layers - 1, 0) * layer_gap,
        height=max(tallest - 1, 0) * node_gap,
    )


def count_crossings(result: Layout, edges: Sequence[tuple[str, str]]) -> int:
    """How many pairs of edges joining the same two layers cross in ``result``.

    Two such edges cross when their sources and their targets are in opposite vertical
    order; edges sharing an endpoint never cross.
    """
    rank = {node: p for nodes in result.order for p, node in enumerate(nodes)}
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for source, target in set(edges):
        if source == target:
            continue
        key = (result.layers[source], result.layers[target])
        groups.setdefault(key, []).append((rank[source], rank[target]))
    return sum(_inversions(pairs) for pairs in groups.values())


# ---- steps -----------------------------------------------------------------------------------


def _adjacency(
    index: Mapping[str, int], edges: Sequence[tuple[str, str]]
) -> tuple[list[list[int]], list[list[int]]]:
    n = len(index)
    pred: list[list[int]] = [[] for _ in range(n)]
    succ: list[list[int]] = [[] for _ in range(n)]
    seen: set[int] = set()
    for source, target in edges:
        s, t = index.get(source), index.get(target)
        if s is None or t is None:
            missing = source if s is None else target
            raise ValueError(
                f"edge `{source}` -> `{target}` names `{missing}`, which is not a node; "
                "list every node an edge names"
            )
        key = s * n + t
        if s == t or key in seen:
            continue
        seen.add(key)
        succ[s].append(t)
        pred[t].append(s)
    return pred, succ


def _longest_path_layers(
    nodes: Sequence[str], pred: list[list[int]], succ: list[list[int]]
) -> list[int]:
    """Each node's layer: 0 for a source, else one more than its furthest predecessor's."""
    indegree = [len(p) for p in pred]
    layer = [0] * len(nodes)
    queue = [i for i, d in enumerate(indegree) if not d]
    for i in queue:  # Kahn's algorithm; the queue grows while it is read
        next_layer = layer[i] + 1
        for j in succ[i]:
            if layer[j] < next_layer:
                layer[j] = next_layer
            indegree[j] -= 1
            if not indegree[j]:
                queue.append(j)
    if len(queue) < len(nodes):
        stuck = next(nodes[i] for i, d in enumerate(indegree) if d)
        raise ValueError(f"the edges form a cycle through `{stuck}`; a layout needs a DAG")
    return layer


def _reduce_crossings(
    ranks: list[list[int]],
    layer: list[int],
    pred: list[list[int]],
    succ: list[list[int]],
    sweeps: int,
) -> list[list[int]]:
    """Barycenter sweeps; returns the order with the fewest crossings seen."""
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for s, targets in enumerate(succ):
        for t in targets:
            groups.setdefault((layer[s], layer[t]), []).append((s, t))
    # centred positions, so that layers of different sizes line up around the middle
    pos = [0.0] * len(layer)

    def place(rank: list[int]) -> None:
        half = (len(rank) - 1) / 2
        for p, i in enumerate(rank):
            pos[i] = p - half

    for rank in ranks:
        place(rank)
    best, best_count = [list(rank) for rank in ranks], _count(groups, pos)
    down = range(1, len(ranks))
    up = range(len(ranks) - 2, -1, -1)
    for _ in range(sweeps):
        improved = False
        for layers, neighbours in ((down, pred), (up, succ)):
            if best_count == 0:
                return best
            for k in layers:
                ranks[k] = _sort_by_barycenter(ranks[k], neighbours, pos)
                place(ranks[k])
            count = _count(groups, pos)
            if count < best_count:
                best, best_count, improved = [list(rank) for rank in ranks], count, True
        if not improved:
            break  # barycenter sorting settles fast: a whole round without gain ends it
    return best


def _sort_by_barycenter(
    rank: list[int], neighbours: list[list[int]], pos: list[float]
) -> list[int]:
    keys = {}
    for i in rank:
        near = neighbours[i]
        # a node with no neighbours on this side keeps its place
        keys[i] = sum(pos[j] for j in near) / len(near) if near else pos[i]
    return sorted(rank, key=keys.__getitem__)  # stable: ties keep their order


def _count(groups: Mapping[tuple[int, int], list[tuple[int, int]]], pos: list[float]) -> int:
    return sum(_inversions([(pos[s], pos[t]) for s, t in pairs]) for pairs in groups.values())


def _inversions(pairs: list[tuple[float, float]] | list[tuple[int, int]]) -> int:
    """Pairs ``(a, b)``, ``(c, d)`` with ``a < c`` and ``b > d``: crossing edges."""
    if len(pairs) < 2:
        return 0
    pairs = sorted(pairs)
    below: list[float] = []  # targets seen so far, sorted
    total = 0
    for seen, (_, target) in enumerate(pairs):
        total += seen - bisect_right(below, target)
        insort(below, target)
    return total
