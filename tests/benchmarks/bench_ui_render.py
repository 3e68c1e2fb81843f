"""The UI's graph rendering: layout and SVG of big run graphs, in this process.

Run graphs are built as records (``glasspane.queries.RunGraph``, plain data: no run needed)
in three shapes, each at ``--sizes`` nodes (default 5,000 and 10,000):

- ``map:N``: one source, a static map of N - 2 elements (``m[0]``...), one sink reading
  them all; drawn expanded (every element, the worst case) and collapsed (the default
  budget of 50 folds the map into one group node);
- ``chain:N``: N nodes, each reading the one before;
- ``grid:LxW``: L layers of W plain nodes, each reading two of the previous layer (``j`` and
  ``j + 1`` modulo W, as ``bench_suite.py``'s ``wide``); W is 50, L is N / 50.

For each, the median of ``--repeat`` calls after one warm-up of :func:`layout` alone and of
``run_graph_svg`` (layout and markup), the SVG's size and, for the layout, its crossings.
The target is the issue's: layout and SVG of a 5,000-node graph well under 300 ms.

    python tests/benchmarks/bench_ui_render.py --sizes 5000,10000 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

TARGET = 0.300  # seconds, layout + SVG of a 5,000-node run graph


def node(node_id: str, state: str = "succeeded", map_index: int | None = None) -> dict[str, Any]:
    return {
        "id": node_id,
        "task": node_id.split("[")[0].rstrip("0123456789_") or "t",
        "state": state,
        "cached": map_index is not None and map_index % 3 == 0,
        "duration": 0.25,
        "map_index": map_index,
        "parent_node": None,
        "tags": [],
    }


def map_graph(n: int) -> Any:
    from glasspane.queries import RunGraph

    width = n - 2
    states = ("succeeded",) * 9 + ("failed",)
    nodes = [node("src")]
    nodes += [node(f"m[{i}]", states[i % 10], i) for i in range(width)]
    nodes.append(node("sink", "upstream_failed"))
    edges = [{"source": "src", "target": f"m[{i}]", "args": ["x"]} for i in range(width)]
    edges += [{"source": f"m[{i}]", "target": "sink", "args": ["parts"]} for i in range(width)]
    return RunGraph(
        run_id="bench",
        pipeline="map",
        version_hash="0" * 64,
        nodes=nodes,
        edges=edges,
        output=["sink"],
    )


def chain_graph(n: int) -> Any:
    from glasspane.queries import RunGraph

    nodes = [node(f"step_{i}") for i in range(n)]
    edges = [
        {"source": f"step_{i}", "target": f"step_{i + 1}", "args": ["prev"]} for i in range(n - 1)
    ]
    return RunGraph(
        run_id="bench",
        pipeline="chain",
        version_hash="0" * 64,
        nodes=nodes,
        edges=edges,
        output=[f"step_{n - 1}"],
    )


def grid_graph(layers: int, width: int) -> Any:
    from glasspane.queries import RunGraph

    nodes = [node(f"join_{k}_{j}") for k in range(layers) for j in range(width)]
    edges = [
        {"source": f"join_{k - 1}_{j2}", "target": f"join_{k}_{j}", "args": [arg]}
        for k in range(1, layers)
        for j in range(width)
        for j2, arg in ((j, "a"), ((j + 1) % width, "b"))
    ]
    return RunGraph(
        run_id="bench",
        pipeline="grid",
        version_hash="0" * 64,
        nodes=nodes,
        edges=edges,
        output=["join_0_0"],
    )


def median_seconds(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="5000,10000", help="node counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    print(
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, "
        f"Python {platform.python_version()}; median of {args.repeat} after a warm-up\n"
    )
    print("| graph | nodes drawn | layout ms | layout + SVG ms | SVG KB | crossings | target |")
    print("|---|---|---|---|---|---|---|")
    for n in (int(size) for size in args.sizes.split(",")):
        cases = [
            (f"map:{n} expanded", map_graph(n), {"m"}),
            (f"map:{n} collapsed", map_graph(n), set()),
            (f"chain:{n}", chain_graph(n), set()),
            (f"grid:{n // 50}x50", grid_graph(n // 50, 50), set()),
        ]
        for label, graph, expand in cases:
            print(measure(label, graph, expand, args.repeat, n <= 5000))


def measure(label: str, graph: Any, expand: set[str], repeat: int, targeted: bool) -> str:
    """One table row: layout alone (not for a collapsed map: it lays out 3 nodes) and SVG."""
    from glasspane.ui.render import count_crossings, layout, run_graph_svg

    ids = [item.id for item in graph.nodes]
    pairs = [(edge.source, edge.target) for edge in graph.edges]
    if expand or "map" not in label:
        layout_s, placed = median_seconds(lambda: layout(ids, pairs), repeat)
        layout_ms, crossings = f"{layout_s * 1000:.0f}", str(count_crossings(placed, pairs))
    else:
        layout_ms, crossings = "-", "-"
    svg_s, svg = median_seconds(
        lambda: run_graph_svg(graph, expand=expand, href=lambda node: f"/t/{node}"), repeat
    )
    drawn = str(svg).count('class="node ')
    verdict = ("ok" if svg_s < TARGET else "OVER") if targeted else "-"
    return (
        f"| {label} | {drawn} | {layout_ms} | {svg_s * 1000:.0f} | {len(svg) / 1024:.0f} | "
        f"{crossings} | {verdict} |"
    )


if __name__ == "__main__":
    main()
