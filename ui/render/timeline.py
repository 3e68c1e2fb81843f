"""A run's task runs on a time axis (a Gantt chart), as inline SVG.

One row per task run, in the order given (a run's creation order): its node id, and a bar
from ``started_at`` to ``ended_at`` coloured by state, with a ``<title>`` giving node, state,
duration and start. A task run that never started (pending, upstream failed) has a row and
no bar. One still running (or with no end recorded) extends to ``now``; without ``now``, to
the latest time any task run recorded, so the function stays pure.

With more than ``budget`` rows, the elements of each map (see :mod:`.groups`) share one row,
``train ×400``, spanning their earliest start to their latest end, in their most relevant
state; the expander keeps its own row. A group's row links to ``href(group id)`` only when
the group id is a task run of its own (an expander's: a static map's group is none). The
axis on top has a few ticks at round seconds, minutes or hours from the first start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup

from glasspane.queries import TaskSummary
from glasspane.types import TERMINAL_STATES

from .groups import group_key
from .states import most_relevant, spelled_counts, state_class, symbol
from .svg import duration, num, open_svg, text, truncate

LABEL_W, PLOT_W, PAD = 200, 560, 12
ROW_H, BAR_H, AXIS_H = 22, 14, 26
LABEL_CHARS = 27
#: round tick steps in seconds, from a millisecond to a week
STEPS = (
    *(m * 10.0**e for e in range(-3, 1) for m in (1, 2, 5)),
    10, 15, 30, 60, 120, 300, 600, 900, 1800,
    3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
)  # fmt: skip


@dataclass(frozen=True)
class _Row:
    node: str
    label: str
    state: str
    start: datetime | None
    end: datetime | None
    open: bool
    seconds: float | None
    cached: bool = False
    size: int = 0  # a group's row: how many task runs
    counts: tuple[tuple[str, int], ...] = ()
    linked: bool = True


def timeline_svg(
    tasks: Sequence[TaskSummary],
    *,
    now: datetime | None = None,
    href: Callable[[str], str] | None = None,
    budget: int = 50,
) -> Markup:
    """The timeline of a run's task runs (``RunDetail.tasks``).

    Args:
        now: where running task runs end (timezone-aware, like the records' times).
        href: a task panel's link given a node id; the label links to it.
        budget: more rows than this and maps share one row each.
    """
    horizon = now or max(
        (t for task in tasks for t in (task.started_at, task.ended_at) if t is not None),
        default=None,
    )
    rows = [_row(task, horizon) for task in tasks]
    if len(rows) > budget:
        rows = _grouped(tasks, rows)
    starts = [row.start for row in rows if row.start is not None]
    t0 = min(starts, default=None)
    t1 = max((row.end for row in rows if row.end is not None), default=t0)
    span = max((t1 - t0).total_seconds(), 0.0) if t0 is not None and t1 is not None else 0.0
    scale = PLOT_W / (span or 1.0)
    width = LABEL_W + PLOT_W + PAD
    height = AXIS_H + len(rows) * ROW_H + PAD
    parts = [open_svg("gp-timeline", width, height, f"timeline of {len(tasks)} task runs")]
    if t0 is not None:
        parts.append(_axis(span, height))
    for i, row in enumerate(rows):
        parts.append(_row_markup(row, AXIS_H + i * ROW_H, t0, scale, href))
    parts.append("</svg>")
    return Markup("".join(parts))


def ticks(span: float, most: int = 6) -> list[float]:
    """Tick offsets in seconds from 0 to ``span``: the smallest round step giving at most
    ``most`` intervals."""
    longest = STEPS[-1] * math.ceil(span / (STEPS[-1] * most) or 1)
    step = next((s for s in STEPS if span / s <= most), longest)
    count = int(span / step + 1e-9)
    return [round(i * step, 6) for i in range(count + 1)]


def tick_label(seconds: float) -> str:
    """``0s``, ``0.25s``, ``45s``, ``1m30s``, ``2h``, ``2h15m``, ``1d12h``."""
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    whole = int(round(seconds))
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes}m" + (f"{rest:02d}s" if rest else "")
    if whole < 86400:
        hours, rest = divmod(whole, 3600)
        return f"{hours}h" + (f"{rest // 60:02d}m" if rest // 60 else "")
    days, rest = divmod(whole, 86400)
    return f"{days}d" + (f"{rest // 3600}h" if rest // 3600 else "")


def _row(task: TaskSummary, horizon: datetime | None) -> _Row:
    start, end, still = task.started_at, task.ended_at, False
    if start is not None and end is None:
        still = task.state not in TERMINAL_STATES
        if not still and task.duration is not None:
            end = start + timedelta(seconds=task.duration)
        else:
            end = max(horizon or start, start)
    seconds = task.duration
    if seconds is None and start is not None and end is not None:
        seconds = (end - start).total_seconds()
    return _Row(task.node, task.node, task.state, start, end, still, seconds, task.cached)


def _grouped(tasks: Sequence[TaskSummary], rows: list[_Row]) -> list[_Row]:
    """``rows`` with the elements of each map (two or more) merged into one row."""
    members: dict[str, list[_Row]] = {}
    keys = [group_key(t.node, t.map_index, t.parent_node) for t in tasks]
    for key, row in zip(keys, rows):
        if key is not None:
            members.setdefault(key, []).append(row)
    nodes = {task.node for task in tasks}
    out: list[_Row] = []
    for key, row in zip(keys, rows):
        group = members.get(key) if key is not None else None
        if group is None or len(group) < 2:
            out.append(row)
        elif group[0] is row and key is not None:  # where its first element was
            out.append(_group_row(key, group, key in nodes))
    return out


def _group_row(key: str, rows: list[_Row], linked: bool) -> _Row:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    start = min((r.start for r in rows if r.start is not None), default=None)
    end = max((r.end for r in rows if r.end is not None), default=None)
    seconds = (end - start).total_seconds() if start and end else None
    return _Row(
        node=key,
        label=f"{key} ×{len(rows)}",
        state=most_relevant(counts),
        start=start,
        end=end,
        open=any(r.open for r in rows),
        seconds=seconds,
        cached=all(r.cached for r in rows),
        size=len(rows),
        counts=tuple(counts.items()),
        linked=linked,
    )


def _axis(span: float, height: int) -> str:
    parts = ['<g class="axis">']
    for offset in ticks(span):
        x = num(LABEL_W + offset / (span or 1.0) * PLOT_W)
        parts.append(
            f'<line class="grid" x1="{x}" y1="{AXIS_H - 6}" x2="{x}" y2="{height - PAD}"/>'
            f'<text class="tick" x="{x}" y="{AXIS_H - 10}">{tick_label(offset)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def _row_markup(
    row: _Row, y: int, t0: datetime | None, scale: float, href: Callable[[str], str] | None
) -> str:
    classes = f"row {state_class(row.state)}" + (" cached" if row.cached else "")
    attrs = f'data-node="{text(row.node)}" data-state="{text(row.state)}"'
    if row.size:
        classes += " group"
        attrs += f' data-group="true" data-count="{row.size}"'
    name = text(f"{symbol(row.state)} {truncate(row.label, LABEL_CHARS)}")
    label = f'<text class="label" x="4" y="{ROW_H // 2 + 4}">{name}</text>'
    if href is not None and row.linked:
        label = f'<a href="{text(href(row.node))}">{label}</a>'
    if row.start is not None and row.end is not None and t0 is not None:
        x = LABEL_W + (row.start - t0).total_seconds() * scale
        w = max((row.end - row.start).total_seconds() * scale, 2.0)
        bar = (
            f'<rect class="bar{" open" if row.open else ""}" x="{num(x)}" '
            f'y="{(ROW_H - BAR_H) // 2}" width="{num(w)}" height="{BAR_H}" rx="2"/>'
        )
    else:
        words = f"{symbol(row.state)} {row.state.replace('_', ' ')}"
        bar = f'<text class="note" x="{LABEL_W + 4}" y="{ROW_H // 2 + 4}">{text(words)}</text>'
    return (
        f'<g class="{classes}" {attrs} transform="translate(0,{y})">'
        f"<title>{text(_title(row))}</title>{label}{bar}</g>"
    )


def _title(row: _Row) -> str:
    if row.size:
        lines = [f"{row.node}: {row.size} task runs", spelled_counts(dict(row.counts))]
    else:
        state = row.state.replace("_", " ") + (", cached" if row.cached else "")
        lines = [row.node, state]
    if row.start is not None:
        lines.append(f"started {row.start.isoformat(sep=' ', timespec='seconds')}")
        lines.append(("running for " if row.open else "took ") + duration(row.seconds))
    else:
        lines.append("not started")
    return "\n".join(lines)
