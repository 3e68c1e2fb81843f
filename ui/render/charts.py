"""Small charts as inline SVG: one metric across a pipeline's runs, and a runs-list state bar.

The metric chart puts runs along x in ``created_at`` order, evenly spaced, and the value on
y, with round ticks (1, 2 or 5 times a power of ten) labelled readably. Each run is a circle
in ``<a href="href(run id)">`` with ``<title>run <id>: <value></title>``, joined by a
polyline. Runs with no value (None, NaN, infinite) are left out; one value, or all values
equal, still draw (a flat line, never a division by zero).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime

from markupsafe import Markup

from glasspane.queries import MetricAcrossRuns, RunMetricValue

from .states import ordered, state_class
from .svg import num, open_svg, text

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 40, 14, 34
BAR_H = 10


def metric_chart_svg(
    series: MetricAcrossRuns, *, href: Callable[[str], str] | None = None
) -> Markup:
    """Metric ``series.key`` across runs, oldest run left.

    A run holding several values (several nodes logged the key, or several steps) shows
    its last step: the value with the highest ``step`` (a value without a step counts as
    before any step), the latest ``ts`` among equals. ``glasspane.queries.
    metric_across_runs`` already gives one value per run, the last logged.

    Args:
        href: a run page's link given a run id; each point links to it.
    """
    points = last_values(series.runs)
    label = f"metric {series.key} across {len(points)} runs of pipeline {series.pipeline}"
    parts = [open_svg("gp-chart", WIDTH, HEIGHT, label)]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    if not points:
        parts.append(f'<text class="empty" x="{LEFT}" y="{TOP + plot_h // 2}">no values</text>')
        parts.append("</svg>")
        return Markup("".join(parts))
    values = [p.value or 0.0 for p in points]  # last_values left out the runs without one
    marks = ticks(min(values), max(values))
    lo, hi = marks[0], marks[-1]

    def y_of(value: float) -> float:
        return TOP + plot_h - (value - lo) / (hi - lo) * plot_h

    def x_of(i: int) -> float:
        return LEFT + (plot_w / 2 if len(points) == 1 else i * plot_w / (len(points) - 1))

    parts.append('<g class="axis">')
    for mark in marks:
        at = num(y_of(mark))
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{at}" x2="{WIDTH - RIGHT}" y2="{at}"/>'
            f'<text class="tick y" x="{LEFT - 6}" y="{at}">{tick_label(mark, marks)}</text>'
        )
    for i in _spread(len(points), 6):
        when = points[i].created_at.strftime("%m-%d %H:%M")
        parts.append(f'<text class="tick x" x="{num(x_of(i))}" y="{HEIGHT - 12}">{when}</text>')
    parts.append("</g>")
    coords = [(x_of(i), y_of(value)) for i, value in enumerate(values)]
    line = " ".join(f"{num(x)},{num(y)}" for x, y in coords)
    parts.append(f'<polyline class="line" points="{line}"/>')
    for point, (x, y) in zip(points, coords):
        dot = (
            f'<circle class="point {state_class(point.state)}" cx="{num(x)}" cy="{num(y)}" r="4">'
            f"<title>{text(_point_title(point))}</title></circle>"
        )
        if href is not None:
            dot = f'<a href="{text(href(point.run_id))}" data-run="{text(point.run_id)}">{dot}</a>'
        parts.append(dot)
    parts.append("</svg>")
    return Markup("".join(parts))


def state_bar_svg(counts: Mapping[str, int], *, width: int = 120) -> Markup:
    """A bar of ``width`` pixels, one segment per state with a non-zero count, its length
    proportional to the count (``<rect class="seg state-<state>">`` with a ``<title>``);
    segment edges are rounded so the segments always fill the bar exactly."""
    segments = [(state, n) for state, n in ordered(counts) if n > 0]
    total = sum(n for _, n in segments)
    label = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in segments) or "no tasks"
    parts = [open_svg("gp-state-bar", width, BAR_H, label)]
    if not total:
        parts.append(f'<rect class="seg empty" x="0" y="0" width="{width}" height="{BAR_H}"/>')
    done = 0
    for state, n in segments:
        start = round(width * done / total)
        done += n
        end = round(width * done / total)
        parts.append(
            f'<rect class="seg {state_class(state)}" data-state="{text(state)}" x="{start}" '
            f'y="0" width="{end - start}" height="{BAR_H}">'
            f"<title>{n} {text(state.replace('_', ' '))}</title></rect>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def last_values(runs: list[RunMetricValue]) -> list[RunMetricValue]:
    """One value per run (its last step, see :func:`metric_chart_svg`) with a finite value,
    in ``created_at`` order (ties in the given order)."""
    last: dict[str, RunMetricValue] = {}
    for point in runs:
        if point.value is None or not math.isfinite(point.value):
            continue
        held = last.get(point.run_id)
        if held is None or _step_order(point) >= _step_order(held):
            last[point.run_id] = point
    return sorted(last.values(), key=lambda p: p.created_at)


def _step_order(point: RunMetricValue) -> tuple[bool, int, datetime]:
    return (point.step is not None, point.step or 0, point.ts)


def ticks(lo: float, hi: float, most: int = 5) -> list[float]:
    """Round ticks covering ``lo`` to ``hi``: at most ``most`` + 1, a step of 1, 2 or 5 times
    a power of ten. Equal ends are widened around the value."""
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / most
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step + 1e-9) * step
    count = math.ceil((hi - first) / step - 1e-9)
    return [first + i * step for i in range(count + 1)]


def tick_label(value: float, marks: list[float]) -> str:
    """``value`` with as many decimals as the ticks' step needs: ``0.85``, ``12``; from ten
    thousand up with a suffix (``250k``, ``1.35M``), below a thousandth as ``2.5e-05``."""
    step = abs(marks[1] - marks[0]) if len(marks) > 1 else 1.0
    biggest = max(abs(m) for m in marks)
    if abs(value) < step / 2:
        return "0"  # not "-0.00" nor "5.55e-17"
    if biggest < 1e-3:
        return f"{value:.3g}"
    units = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
    unit, suffix = next(((u, x) for u, x in units if biggest >= u), (1.0, ""))
    if biggest < 1e4:
        unit, suffix = 1.0, ""
    decimals = max(0, -math.floor(math.log10(step / unit) + 1e-9))
    return f"{value / unit:.{decimals}f}{suffix}"


def _spread(n: int, most: int) -> list[int]:
    """At most ``most`` indices out of ``range(n)``, evenly spread, first and last included."""
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


def _point_title(point: RunMetricValue) -> str:
    value = f"{point.value:.6g}" if point.value is not None else "-"
    when = point.created_at.isoformat(sep=" ", timespec="seconds")
    details = [point.state.replace("_", " "), when]
    if point.step is not None:
        details.append(f"step {point.step}")
    if point.node:
        details.append(f"node {point.node}")
    return f"run {point.run_id}: {value}\n" + ", ".join(details)
