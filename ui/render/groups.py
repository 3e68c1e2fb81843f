"""Mapped groups: which nodes are elements of one map, and the graph with big maps collapsed.

A map's elements are the nodes with a ``map_index``, in one of two shapes:

- the children an expander (``task.map(expand(ref))``) created at run time: ``train[0]``,
  ``train[1]``... with ``parent_node`` ``train``, the expander, itself a node of the graph
  (upstream nodes feed it, downstream nodes read its list; it has an edge to each child);
- the elements of a static ``.map``: ``train_2[0]``, ``train_2[1]``... with no parent; their
  group is named by the id without the index, which is no node.

:func:`collapse` turns a group of more than ``budget`` elements, unless listed in ``expand``,
into ONE box named like the group. It absorbs the expander too, so the collapsed map looks
like the single call the pipeline made: the expander's edges become the group's, and its
state counts towards the group's (the most relevant of all). Every edge to or from an
absorbed node becomes an edge of the group; parallel edges merge into one (what they feed
united, in order) and edges inside the group disappear.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace

from .states import most_relevant


@dataclass(slots=True)
class Box:
    """A node as drawn: one task call, or a collapsed group (``size`` > 0).

    Not frozen: thousands are made per drawing, and a frozen dataclass is slower to build.

    Attributes:
        group: the map this node is an element of (see the module docstring).
        expands: a version graph's expander: the argument it maps over at run time.
        outputs: a version graph's tuple-returning task: how many outputs.
        output: the pipeline returns (an output of) this node.
        children: an expander drawn with its elements: how many there are.
        size: a collapsed group: how many elements it stands for.
        counts: a collapsed group: its elements by state, in first-seen order.
        n_cached: a collapsed group: how many elements were cache hits.
    """

    id: str
    task: str
    state: str
    cached: bool = False
    duration: float | None = None
    map_index: int | None = None
    group: str | None = None
    expands: str | None = None
    outputs: int | None = None
    output: bool = False
    tags: tuple[str, ...] = ()
    children: int = 0
    size: int = 0
    counts: tuple[tuple[str, int], ...] = ()
    n_cached: int = 0


@dataclass(frozen=True, slots=True)
class Link:
    """An edge as drawn; ``count`` edges of the graph were merged into it.

    ``args`` are the arguments it feeds as written on it: a name, or ``[i] → name`` when
    output ``i`` of a tuple-returning source feeds it.
    """

    source: str
    target: str
    args: tuple[str, ...]
    count: int = 1


def group_key(node_id: str, map_index: int | None, parent_node: str | None) -> str | None:
    """The group a node is an element of, or None (see the module docstring)."""
    if map_index is None:
        return None
    if parent_node:
        return parent_node
    suffix = f"[{map_index}]"
    return node_id[: -len(suffix)] if node_id.endswith(suffix) else None


def collapse(
    boxes: Sequence[Box],
    edges: Iterable[tuple[str, str, Sequence[str]]],
    *,
    expand: Collection[str] = (),
    budget: int = 50,
) -> tuple[list[Box], list[Link]]:
    """The boxes and links to draw: groups over ``budget`` elements not in ``expand``
    collapsed (see the module docstring); order is kept, a group at its first node's place.

    Args:
        boxes: every node, in the graph's order.
        edges: ``(source, target, arguments fed)``, as :class:`Link` writes them.
    """
    members: dict[str, list[Box]] = {}
    for box in boxes:
        if box.group is not None:
            members.setdefault(box.group, []).append(box)
    expand = frozenset(expand)
    collapsed = {key for key, elements in members.items() if len(elements) > budget} - expand
    by_id = {box.id: box for box in boxes}
    alias: dict[str, str] = {}
    placed: set[str] = set()
    shown: list[Box] = []
    for box in boxes:
        key = box.group if box.group in collapsed else box.id if box.id in collapsed else None
        if key is None:
            children = len(members.get(box.id, ()))
            shown.append(replace(box, children=children) if children else box)
            continue
        if key not in placed:
            placed.add(key)
            shown.append(group_box(key, members[key], by_id.get(key)))
        alias[box.id] = key
    return shown, merge_edges(edges, alias)


def group_box(key: str, elements: Sequence[Box], parent: Box | None) -> Box:
    """The box standing for a collapsed group of ``elements`` (and its expander ``parent``)."""
    counts: dict[str, int] = {}
    for element in elements:
        counts[element.state] = counts.get(element.state, 0) + 1
    states = [*counts, *([parent.state] if parent else [])]
    n_cached = sum(1 for element in elements if element.cached)
    return Box(
        id=key,
        task=parent.task if parent else elements[0].task,
        state=most_relevant(states),
        cached=n_cached == len(elements) and (parent is None or parent.cached),
        duration=parent.duration if parent else None,
        expands=parent.expands if parent else None,
        output=any(b.output for b in elements) or bool(parent and parent.output),
        tags=parent.tags if parent else elements[0].tags,
        size=len(elements),
        counts=tuple(counts.items()),
        n_cached=n_cached,
    )


def merge_edges(
    edges: Iterable[tuple[str, str, Sequence[str]]], alias: dict[str, str]
) -> list[Link]:
    """``edges`` with each end renamed by ``alias``; loops dropped, parallel edges merged."""
    merged: dict[tuple[str, str], tuple[list[str], int]] = {}
    for source, target, args in edges:
        source = alias.get(source, source)
        target = alias.get(target, target)
        if source == target:
            continue
        found = merged.get((source, target))
        if found is None:
            merged[(source, target)] = (list(args), 1)
        else:
            names, count = found
            names.extend(arg for arg in args if arg not in names)
            merged[(source, target)] = (names, count + 1)
    return [Link(s, t, tuple(names), count) for (s, t), (names, count) in merged.items()]
