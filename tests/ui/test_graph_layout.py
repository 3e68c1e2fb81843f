"""The layered layout: layers by longest path, crossings reduced, coordinates evenly spaced."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glasspane.ui.render import Layout, count_crossings, layout


def test_layers_are_longest_paths_from_the_sources() -> None:
    # a -> b -> c and a shortcut a -> c: c must sit right of b, not beside it
    result = layout(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("a", "c"), ("d", "c")])
    assert result.layers == {"a": 0, "b": 1, "c": 2, "d": 0}
    assert result.order == (("a", "d"), ("b",), ("c",))


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, str]]]:
    """Random DAGs: edges only from a node to a later one, the nodes then shuffled."""
    n = draw(st.integers(1, 25))
    pairs = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
    edges = [(f"n{a}", f"n{b}") for a, b in draw(st.lists(pairs, max_size=60)) if a < b]
    nodes = draw(st.permutations([f"n{i}" for i in range(n)]))
    return list(nodes), edges


@settings(max_examples=150, deadline=None)
@given(dags())
def test_every_edge_goes_from_a_lower_to_a_higher_layer(
    dag: tuple[list[str], list[tuple[str, str]]],
) -> None:
    nodes, edges = dag
    result = layout(nodes, edges, layer_gap=10, node_gap=3)
    assert set(result.positions) == set(nodes)
    for source, target in edges:
        assert result.layers[source] < result.layers[target]
        assert result.positions[source][0] < result.positions[target][0]
    targets = {target for _, target in edges}
    for node in nodes:  # longest path: a node with predecessors sits right after the furthest
        if node in targets:
            furthest = max(result.layers[s] for s, t in edges if t == node)
            assert result.layers[node] == furthest + 1
        else:
            assert result.layers[node] == 0
    assert sorted(n for layer in result.order for n in layer) == sorted(nodes)


def test_nodes_of_a_layer_are_evenly_spaced_and_centred() -> None:
    edges = [("src", f"m{i}") for i in range(5)] + [(f"m{i}", "sink") for i in range(5)]
    nodes = ["src", *(f"m{i}" for i in range(5)), "sink"]
    result = layout(nodes, edges, layer_gap=100, node_gap=20)
    ys = [result.positions[node][1] for node in result.order[1]]
    assert ys == [0, 20, 40, 60, 80]
    assert {result.positions[node][0] for node in result.order[1]} == {100}
    assert result.positions["src"] == (0, 40) and result.positions["sink"] == (200, 40)
    assert (result.width, result.height) == (200, 80)


def test_a_graph_built_with_crossings_is_untangled() -> None:
    # two layers whose input order reverses every edge: 10 crossings, all avoidable
    tops = [f"t{i}" for i in range(5)]
    bottoms = [f"b{i}" for i in range(5)]
    edges = [(f"t{i}", f"b{4 - i}") for i in range(5)]
    before = count_crossings(layout(tops + bottoms, edges, sweeps=0), edges)
    after = count_crossings(layout(tops + bottoms, edges), edges)
    assert (before, after) == (10, 0)


def test_crossings_drop_on_a_shuffled_layered_graph() -> None:
    # a ladder (each node feeds the same and the next position of the next layer) whose
    # layers are listed in a random order: many crossings in input order, far fewer after
    rng = random.Random(7)
    layers, width = 8, 12
    names = [[f"n{k}_{j}" for j in range(width)] for k in range(layers)]
    edges = [
        (names[k][j], names[k + 1][j + d])
        for k in range(layers - 1)
        for j in range(width)
        for d in (0, 1)
        if j + d < width
    ]
    nodes = [node for row in names for node in rng.sample(row, width)]
    before = count_crossings(layout(nodes, edges, sweeps=0), edges)
    after = count_crossings(layout(nodes, edges), edges)
    assert before > 500
    assert after <= before // 5  # a heuristic: it need not find the crossing-free order


def test_count_crossings_counts_only_edges_in_opposite_order() -> None:
    result = Layout(
        positions={},
        layers={"a": 0, "b": 0, "x": 1, "y": 1},
        order=(("a", "b"), ("x", "y")),
        width=1,
        height=1,
    )
    assert count_crossings(result, [("a", "x"), ("b", "y")]) == 0
    assert count_crossings(result, [("a", "y"), ("b", "x")]) == 1
    assert count_crossings(result, [("a", "x"), ("a", "y"), ("b", "y")]) == 0  # shared ends


def test_repeated_edges_and_self_loops_are_ignored() -> None:
    result = layout(["a", "b"], [("a", "b"), ("a", "b"), ("b", "b")])
    assert result.layers == {"a": 0, "b": 1}


def test_the_layout_depends_only_on_its_inputs() -> None:
    edges = [(f"n{i}", f"n{(i * 7) % 20 + 20}") for i in range(20)]
    nodes = [f"n{i}" for i in range(40)]
    assert layout(nodes, edges) == layout(nodes, edges)


def test_empty_and_single_node_graphs() -> None:
    empty = layout([], [])
    assert (empty.positions, empty.order, empty.width, empty.height) == ({}, (), 0, 0)
    single = layout(["only"], [], layer_gap=50, node_gap=50)
    assert single.positions == {"only": (0, 0)} and (single.width, single.height) == (0, 0)


@pytest.mark.parametrize(
    ("nodes", "edges", "message"),
    [
        (["a", "b"], [("a", "b"), ("b", "a")], "the edges form a cycle through `a`"),
        (["a"], [("a", "ghost")], "edge `a` -> `ghost` names `ghost`, which is not a node"),
        (["a", "a"], [], "node `a` is listed twice; pass each node id once"),
    ],
)
def test_bad_graphs_are_refused_with_what_is_wrong(
    nodes: list[str], edges: list[tuple[str, str]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        layout(nodes, edges)


def test_a_5000_node_grid_lays_out_in_layers() -> None:
    width, layers = 50, 100
    nodes = [f"j{k}_{j}" for k in range(layers) for j in range(width)]
    edges = [
        (f"j{k - 1}_{(j + d) % width}", f"j{k}_{j}")
        for k in range(1, layers)
        for j in range(width)
        for d in (0, 1)
    ]
    result = layout(nodes, edges, layer_gap=2, node_gap=1)
    assert len(result.order) == layers and {len(layer) for layer in result.order} == {width}
    assert (result.width, result.height) == (2 * (layers - 1), width - 1)
    assert count_crossings(result, edges) <= count_crossings(layout(nodes, edges, sweeps=0), edges)
