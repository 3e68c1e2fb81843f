"""A run's graph, or a pipeline version's, as inline SVG: boxes in layers, left to right.

Each node is ``<g class="node state-<state>[ cached]" data-node data-state data-cached>``
holding a ``<title>`` (the full id, task, state, duration), a rect and two lines of text:
the task name (cut with ``…`` when long) and a line with the state's symbol, the element
index, ``cached`` and the duration. With ``href``, the rect and text are inside
``<a href="href(node id)">``. A cached node has the ``cached`` class (a dashed border in
``graph.css``) and the word ``cached``, so it differs from a computed one by more than colour.

A map of more than ``budget`` elements is drawn as one group node (see :mod:`.groups`):
``<g class="node group ..." data-group="true" data-expand="<group id>" data-count="<n>">``
reading ``train ×400`` over ``398 ✓ 2 ✗``, linked (with ``href``) to ``href(group id)``;
the page passes the group id in ``expand`` to draw every element. Elements of a map drawn
one by one carry ``data-parent="<group id>"``; an expander drawn with its elements has the
class ``expander``. Nodes the pipeline returns have the class ``output``.

Edges are ``<g class="edge" data-source data-target>`` with a ``<title>`` naming the
arguments they feed (and the number of merged edges), a cubic Bézier, and the argument names
as a short label when the graph is small enough for labels to stay readable. An argument fed
by one output of a tuple-returning task reads ``[i] → name``, in the title and the label
(``split → score: [0] → evens, [1] → odds``); edges recorded before the engine kept output
indices (``outputs`` empty) name their arguments only. A label too long for the gap between
layers shows the first argument and how many more: ``[0] → evens +1``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from markupsafe import Markup

from glasspane.queries import RunGraph
from glasspane.types import SUCCEEDED

from .groups import Box, Link, collapse, group_key
from .layout import layout
from .states import NONE, spelled_counts, state_class, symbol, symbol_counts
from .svg import duration, open_svg, text, truncate

NODE_W, NODE_H = 168, 40
LAYER_GAP, NODE_GAP = NODE_W + 72, NODE_H + 14
MARGIN = 16
NAME_CHARS, META_CHARS, LABEL_CHARS = 21, 27, 14
#: above this many edges, argument names go in titles only (labels would pile up)
MAX_LABELLED_EDGES = 300
#: a version graph cannot be expanded: its static maps collapse above this many elements
VERSION_BUDGET = 50
#: graphs of at least this many nodes are drawn with the cyclic garbage collector paused
GC_PAUSE_FROM = 1000

_ARROW = (
    '<defs><marker id="gp-arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" '
    'markerHeight="7" orient="auto"><path d="M0,0L8,4L0,8z"/></marker></defs>'
)


def run_graph_svg(
    graph: RunGraph,
    *,
    expand: Collection[str] = (),
    budget: int = 50,
    href: Callable[[str], str] | None = None,
) -> Markup:
    """A run's graph, each node coloured by its task run's state.

    Args:
        graph: from ``glasspane.queries.run_graph``.
        expand: ids of groups (``data-expand``) to draw element by element.
        budget: a map of more elements than this is drawn as one group node.
        href: a node's link, given its id (URL-quoting it is the caller's part; the
            result is escaped here): its task panel, or for a group node (its id is in
            ``data-expand``), whatever expands it. A static map's group is no task.
    """
    returned = _returned({node.id for node in graph.nodes}, graph.output)
    boxes = [
        Box(
            id=node.id,
            task=node.task,
            state=node.state,
            cached=node.cached,
            duration=node.duration,
            map_index=node.map_index,
            group=group_key(node.id, node.map_index, node.parent_node),
            output=node.id in returned,
            tags=tuple(node.tags),
        )
        for node in graph.nodes
    ]
    edges = ((e.source, e.target, _feeds(e.args, e.outputs)) for e in graph.edges)
    label = f"graph of run {graph.run_id} of pipeline {graph.pipeline}: {len(graph.nodes)} tasks"
    with _gc_paused(len(boxes)):
        shown, links = collapse(boxes, edges, expand=expand, budget=budget)
        return _render(shown, links, label, href)


def version_graph_svg(graph_json: Mapping[str, Any]) -> Markup:
    """A pipeline version's graph (``Graph.to_json()``), its nodes without state
    (``state-none``); static maps over :data:`VERSION_BUDGET` elements drawn as one group."""
    nodes = graph_json.get("nodes") or []
    returned = _returned({node["id"] for node in nodes}, graph_json.get("output") or [])
    outputs = {node["id"]: node.get("outputs") for node in nodes}
    boxes = [
        Box(
            id=node["id"],
            task=node.get("task") or node["id"],
            state=NONE,
            map_index=node.get("map_index"),
            group=group_key(node["id"], node.get("map_index"), None),
            expands=node.get("expand"),
            outputs=node.get("outputs"),
            output=node["id"] in returned,
            tags=tuple(node.get("tags") or ()),
        )
        for node in nodes
    ]
    edges = (
        (e["source"], e["target"], _feeds(e.get("args") or (), e.get("outputs") or ()))
        for e in graph_json.get("edges", ())
    )
    version = str(graph_json.get("version") or "")[:12]
    label = f"graph of pipeline {graph_json.get('pipeline', '')} version {version}"
    with _gc_paused(len(boxes)):
        shown, links = collapse(boxes, edges, budget=VERSION_BUDGET)
        return _render(shown, links, f"{label}: {len(nodes)} tasks", None, outputs)


@contextmanager
def _gc_paused(size: int) -> Iterator[None]:
    """Pause the cyclic garbage collector while a big graph is drawn.

    Drawing 5,000 nodes makes some 100,000 short-lived containers; with the collector on,
    its full passes over everything alive (the records included) took as long as the
    drawing itself. Reference counting still frees what is dropped. The pause is
    process-wide, so small graphs, drawn in a few milliseconds, are left alone.
    """
    if size < GC_PAUSE_FROM or not gc.isenabled():  # small, or paused already
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _feeds(args: Sequence[str], outputs: Sequence[int | None]) -> Sequence[str]:
    """What an edge feeds, as written on it: each argument's name, after ``[i] → `` when
    output ``i`` of a tuple-returning source feeds it (``outputs`` is aligned with ``args``;
    ``None`` is a source's only output; empty for edges recorded before it was kept)."""
    if not any(out is not None for out in outputs):
        return args
    return [
        name if i >= len(outputs) or outputs[i] is None else f"[{outputs[i]}] → {name}"
        for i, name in enumerate(args)
    ]


def _short(feeds: Sequence[str]) -> str:
    """An edge's label: what it feeds, or the first of it and how many more (``x +2``)."""
    words = ", ".join(feeds)
    if len(words) <= LABEL_CHARS or len(feeds) == 1:
        return truncate(words, LABEL_CHARS)
    more = f" +{len(feeds) - 1}"
    return truncate(feeds[0], LABEL_CHARS - len(more)) + more


def _returned(ids: set[str], output: Sequence[str]) -> set[str]:
    """The nodes the pipeline returns, from its output labels (``node`` or ``node.<i>``)."""
    found = set()
    for label in output:
        node = label if label in ids else label.rpartition(".")[0]
        if node in ids:
            found.add(node)
    return found


def _render(
    boxes: list[Box],
    links: list[Link],
    label: str,
    href: Callable[[str], str] | None,
    outputs: Mapping[str, int | None] | None = None,
) -> Markup:
    placed = layout(
        [box.id for box in boxes],
        [(link.source, link.target) for link in links],
        layer_gap=LAYER_GAP,
        node_gap=NODE_GAP,
    )
    width = placed.width + NODE_W + 2 * MARGIN
    height = placed.height + NODE_H + 2 * MARGIN
    # top-left corners in the picture (the layout gives centres from 0)
    corner = {node: (int(x) + MARGIN, int(y) + MARGIN) for node, (x, y) in placed.positions.items()}
    ids = {box.id: text(box.id) for box in boxes}  # each id is written several times
    parts = [open_svg("gp-graph", width, height, label), _ARROW]
    if not boxes:
        parts.append(f'<text class="empty" x="{MARGIN}" y="{MARGIN + 14}">no tasks</text>')
    labelled = len(links) <= MAX_LABELLED_EDGES
    parts.append('<g class="edges">')
    by_id = {box.id: box for box in boxes}
    for link in links:
        n_out = outputs.get(link.source) if outputs else None
        parts.append(_edge(link, ids, corner, by_id[link.target], labelled, n_out))
    parts.append('</g><g class="nodes">')
    for box in boxes:
        parts.append(_node(box, ids, corner[box.id], href))
    parts.append("</g></svg>")
    return Markup("".join(parts))


def _node(
    box: Box, ids: Mapping[str, str], at: tuple[int, int], href: Callable[[str], str] | None
) -> str:
    node_id = ids[box.id]
    classes = f"node {state_class(box.state)}"
    attrs = (
        f'data-node="{node_id}" data-state="{text(box.state)}" '
        f'data-cached="{"true" if box.cached else "false"}"'
    )
    stack = ""
    if box.size:
        classes += " group"
        attrs += f' data-group="true" data-expand="{node_id}" data-count="{box.size}"'
        stack = f'<rect class="stack" x="4" y="-4" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
        name = f"{truncate(box.task, NAME_CHARS - 6)} ×{box.size}"
        meta = symbol_counts(dict(box.counts))
    else:
        name = truncate(box.task, NAME_CHARS)
        meta = _meta(box)
    if box.cached:
        classes += " cached"
    if box.expands or box.children:
        classes += " expander"
    if box.output:
        classes += " output"
    if box.group is not None:
        attrs += f' data-parent="{ids.get(box.group) or text(box.group)}"'
    body = (
        f'{stack}<rect class="box" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
        f'<text class="name" x="10" y="17">{text(name)}</text>'
        f'<text class="meta" x="10" y="32">{text(truncate(meta, META_CHARS))}</text>'
    )
    if href is not None:
        body = f'<a href="{text(href(box.id))}">{body}</a>'
    return (
        f'<g class="{classes}" {attrs} transform="translate({at[0]},{at[1]})">'
        f"<title>{text(_node_title(box))}</title>{body}</g>"
    )


def _meta(box: Box) -> str:
    parts = [] if box.state in (SUCCEEDED, NONE) else [box.state.replace("_", " ")]
    if box.map_index is not None:
        parts.append(f"[{box.map_index}]")
    elif box.id != box.task:
        parts.append(box.id)
    if box.expands:
        parts.append(f"map over {box.expands}")
    if box.children:
        parts.append(f"×{box.children}")
    if box.outputs:
        parts.append(f"{box.outputs} outputs")
    if box.cached:
        parts.append("cached")
    if box.duration is not None:
        parts.append(duration(box.duration))
    line = " · ".join(parts)
    return f"{symbol(box.state)} {line}".strip() if box.state != NONE else line


def _node_title(box: Box) -> str:
    if box.size:
        lines = [f"{box.id}: {box.size} elements of task {box.task}"]
        counts = spelled_counts(dict(box.counts))
        if counts:
            lines.append(counts + (f" ({box.n_cached} cached)" if box.n_cached else ""))
        lines.append("expand the group to draw every element")
    else:
        lines = [box.id, f"task {box.task}"]
        state = [] if box.state == NONE else [box.state.replace("_", " ")]
        state += ["cached"] if box.cached else []
        state += [duration(box.duration)] if box.duration is not None else []
        if state:
            lines.append(", ".join(state))
    if box.expands:
        lines.append(f"maps over argument {box.expands} at run time")
    if box.children:
        lines.append(f"expanded into {box.children} elements")
    if box.outputs:
        lines.append(f"returns a tuple of {box.outputs} outputs")
    if box.output:
        lines.append("returned by the pipeline")
    if box.tags:
        lines.append("tags: " + ", ".join(box.tags))
    return "\n".join(lines)


def _edge(
    link: Link,
    ids: Mapping[str, str],
    corner: Mapping[str, tuple[int, int]],
    target: Box,
    labelled: bool,
    source_outputs: int | None,
) -> str:
    sx, sy = corner[link.source]
    tx, ty = corner[link.target]
    x1, x2 = sx + NODE_W, tx - 2  # from the right side's middle to the left side's
    y1, y2 = sy + NODE_H // 2, ty + NODE_H // 2
    mid = (x1 + x2) // 2
    title = f"{link.source} → {link.target}"
    if link.args:
        title += f": {', '.join(link.args)}"
    elif target.group == link.source and target.map_index is not None:
        title += f": element [{target.map_index}]"
    if link.count > 1:
        title += f" ({link.count} edges)"
    if source_outputs:
        title += f"\n{link.source} returns {source_outputs} outputs"
    label = ""
    if labelled and link.args:
        words = text(_short(link.args))
        label = f'<text class="edge-label" x="{mid}" y="{(y1 + y2) // 2 - 3}">{words}</text>'
    return (
        f'<g class="edge" data-source="{ids[link.source]}" data-target="{ids[link.target]}">'
        f"<title>{text(title)}</title>"
        f'<path d="M{x1},{y1}C{mid},{y1} {mid},{y2} {x2},{y2}"/>{label}</g>'
    )
