"""The timeline, the metric-across-runs chart and the state bar: their edge cases, drawn from
records (a real run cannot be pending or running when the test reads it)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from glasspane import log_metric, pipeline, queries, task
from glasspane.queries import MetricAcrossRuns, RunMetricValue, TaskSummary
from glasspane.ui.render import metric_chart_svg, state_bar_svg, timeline_svg
from glasspane.ui.render.charts import tick_label, ticks
from glasspane.ui.render.timeline import tick_label as time_label
from glasspane.ui.render.timeline import ticks as time_ticks

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.get("role") == "img" and root.get("aria-label")
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    return root


def by_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}{tag}") if cls in (e.get("class") or "").split()]


def title(element: ET.Element) -> str:
    found = element.find(f"{SVG}title")
    assert found is not None
    return found.text or ""


# ---- timeline --------------------------------------------------------------------------------


def summary(node: str, state: str, start: float | None, end: float | None, **extra: Any):
    def at(seconds: float | None) -> datetime | None:
        return None if seconds is None else T0 + timedelta(seconds=seconds)

    fields = {
        "node": node,
        "task": node.split("[")[0],
        "state": state,
        "cached": False,
        "attempts": 1,
        "started_at": at(start),
        "ended_at": at(end),
        "duration": None if start is None or end is None else end - start,
        "error": None,
        "note": None,
        "parent_node": None,
        "map_index": None,
    }
    return TaskSummary(**{**fields, **extra})


def rows(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-node") or "": g for g in by_class(root, "g", "row")}


def bar(row: ET.Element) -> ET.Element | None:
    found = by_class(row, "rect", "bar")
    return found[0] if found else None


def width(element: ET.Element) -> float:
    return float(element.get("width", 0))


def test_bars_span_start_to_end_and_running_ones_reach_now() -> None:
    tasks = [
        summary("load", "succeeded", 0, 10),
        summary("train", "running", 10, None),
        summary("evaluate", "pending", None, None),
        summary("report", "upstream_failed", None, 30),
    ]
    root = parse(timeline_svg(tasks, now=T0 + timedelta(seconds=40)))
    drawn = rows(root)
    assert list(drawn) == ["load", "train", "evaluate", "report"]  # one row each, in order
    load, train = bar(drawn["load"]), bar(drawn["train"])
    assert load is not None and train is not None
    assert bar(drawn["evaluate"]) is None and bar(drawn["report"]) is None  # never started
    assert "not started" in title(drawn["evaluate"])
    assert width(train) == pytest.approx(3 * width(load))  # 10 s to "now" at 40 s
    assert float(train.get("x", 0)) == pytest.approx(float(load.get("x", 0)) + width(load))
    assert "open" in train.get("class", "").split()
    assert title(drawn["load"]) == "load\nsucceeded\nstarted 2026-03-01 12:00:00+00:00\ntook 10.0 s"
    assert title(drawn["train"]).endswith("running for 30.0 s")


def test_without_now_running_bars_reach_the_latest_recorded_time() -> None:
    tasks = [summary("a", "succeeded", 0, 20), summary("b", "running", 5, None)]
    drawn = rows(parse(timeline_svg(tasks)))
    a, b = bar(drawn["a"]), bar(drawn["b"])
    assert a is not None and b is not None
    assert width(b) == pytest.approx(width(a) * 15 / 20)


def test_the_axis_ticks_at_round_times() -> None:
    root = parse(timeline_svg([summary("a", "succeeded", 0, 150)]))
    assert [t.text for t in by_class(root, "text", "tick")] == [
        "0s",
        "30s",
        "1m",
        "1m30s",
        "2m",
        "2m30s",
    ]
    assert time_ticks(0.9) == [0, 0.2, 0.4, 0.6, 0.8]
    assert time_ticks(7200) == [0, 1800, 3600, 5400, 7200]
    assert [time_label(s) for s in (0, 0.25, 45, 90, 3600, 8100, 129600)] == [
        "0s",
        "0.25s",
        "45s",
        "1m30s",
        "1h",
        "2h15m",
        "1d12h",
    ]


def test_mapped_elements_share_a_row_above_the_budget() -> None:
    children = [
        summary(
            f"train[{i}]",
            "failed" if i == 7 else "succeeded",
            10 + i,
            20 + i,
            parent_node="train",
            map_index=i,
        )
        for i in range(80)
    ]
    tasks = [summary("load", "succeeded", 0, 10), summary("train", "failed", 10, 100), *children]
    root = parse(timeline_svg(tasks, href=lambda node: f"/t/{node}"))
    drawn = by_class(root, "g", "row")
    # the expander keeps its row; its 80 elements share the next one
    assert [(g.get("data-node"), g.get("data-group")) for g in drawn] == [
        ("load", None),
        ("train", None),
        ("train", "true"),
    ]
    group = drawn[2:]
    assert group[0].get("data-count") == "80"
    assert group[0].get("data-state") == "failed"
    assert "80 task runs" in title(group[0]) and "79 succeeded, 1 failed" in title(group[0])
    group_bar, load_bar = bar(group[0]), bar(drawn[0])
    assert group_bar is not None and load_bar is not None
    # from the first start (10 s) to the last end (99 s)
    assert width(group_bar) == pytest.approx(width(load_bar) * 8.9)
    assert len(rows(parse(timeline_svg(tasks[:40])))) == 40  # under the budget: a row each


def test_an_empty_timeline_is_still_an_svg() -> None:
    root = parse(timeline_svg([]))
    assert rows(root) == {}


# ---- metric chart ----------------------------------------------------------------------------


def value(run_id: str, hours: float, v: float | None, **extra: Any) -> RunMetricValue:
    fields = {
        "run_id": run_id,
        "created_at": T0 + timedelta(hours=hours),
        "state": "succeeded",
        "node": "evaluate",
        "value": v,
        "step": None,
        "ts": T0 + timedelta(hours=hours),
    }
    return RunMetricValue(**{**fields, **extra})


def points(root: ET.Element) -> list[tuple[str, float, float]]:
    """``(title, cx, cy)`` of each point, left to right."""
    found = [
        (title(c), float(c.get("cx", 0)), float(c.get("cy", 0)))
        for c in by_class(root, "circle", "point")
    ]
    return sorted(found, key=lambda p: p[1])


def chart(*runs: RunMetricValue, **kwargs: Any) -> ET.Element:
    return parse(
        metric_chart_svg(MetricAcrossRuns(pipeline="p", key="acc", runs=list(runs)), **kwargs)
    )


def test_each_run_is_a_linked_point_in_creation_order() -> None:
    root = chart(
        value("r2", 2, 0.9),
        value("r1", 1, 0.8),
        value("r3", 3, 0.85),
        href=lambda run: f"/runs/{run}",
    )
    drawn = points(root)
    assert [p[0].split("\n")[0] for p in drawn] == ["run r1: 0.8", "run r2: 0.9", "run r3: 0.85"]
    assert drawn[1][2] < drawn[2][2] < drawn[0][2]  # higher value, higher up (smaller y)
    links = list(root.iter(f"{SVG}a"))
    assert [a.get("href") for a in links] == ["/runs/r1", "/runs/r2", "/runs/r3"]
    [line] = by_class(root, "polyline", "line")
    assert len(line.get("points", "").split()) == 3
    labels = [t.text for t in by_class(root, "text", "tick") if "y" in t.get("class", "")]
    assert labels == ["0.80", "0.82", "0.84", "0.86", "0.88", "0.90"]


def test_one_point_and_equal_values_draw_without_dividing_by_zero() -> None:
    [(_, x, y)] = points(chart(value("only", 0, 3.0)))
    assert math.isfinite(x) and math.isfinite(y)
    flat = points(chart(value("a", 0, 5.0), value("b", 1, 5.0), value("c", 2, 5.0)))
    assert len({y for _, _, y in flat}) == 1


def test_runs_without_a_value_are_left_out() -> None:
    drawn = points(
        chart(
            value("a", 0, 1.0), value("b", 1, None), value("c", 2, float("nan")), value("d", 3, 2.0)
        )
    )
    assert [p[0].split(":")[0] for p in drawn] == ["run a", "run d"]
    assert [t.text for t in chart(value("b", 1, None)).iter(f"{SVG}text")] == ["no values"]


def test_a_run_with_several_values_shows_its_last_step() -> None:
    root = chart(
        value("a", 0, 0.5, step=9, node="train[0]"),
        value("a", 0, 0.1, step=2, node="train[1]"),
        value("a", 0, 0.3, step=None),
        value("b", 1, 0.7, step=1),
    )
    assert [p[0].split("\n")[0] for p in points(root)] == ["run a: 0.5", "run b: 0.7"]


def test_axis_numbers_are_readable() -> None:
    marks = ticks(1_234_567, 1_234_567)
    assert [tick_label(m, marks) for m in marks][:2] == ["1.10M", "1.15M"]
    marks = ticks(-3, 2)
    assert [tick_label(m, marks) for m in marks] == ["-3", "-2", "-1", "0", "1", "2"]
    marks = ticks(0.1, 0.3)
    assert [tick_label(m, marks) for m in marks] == ["0.10", "0.15", "0.20", "0.25", "0.30"]


def test_a_metric_logged_by_real_runs_is_charted(tmp_path: Any) -> None:
    import glasspane

    @task
    def fit(rate: float) -> float:
        log_metric("loss", 1 / rate)
        return rate

    @pipeline
    def sweep(rate: float = 1.0):
        return fit(rate)

    with glasspane.Workspace(home=tmp_path) as ws:
        ids = [ws.run(sweep, {"rate": r}).run_id for r in (1.0, 2.0, 4.0)]
        series = ws.query(queries.metric_across_runs, "sweep", "loss")
    drawn = points(parse(metric_chart_svg(series, href=lambda run: f"/runs/{run}")))
    assert [p[0].split("\n")[0] for p in drawn] == [
        f"run {ids[0]}: 1",
        f"run {ids[1]}: 0.5",
        f"run {ids[2]}: 0.25",
    ]


def test_metric_keys_and_run_ids_are_escaped() -> None:
    bad = "<script>alert(1)</script>"
    series = MetricAcrossRuns(pipeline=bad, key=bad, runs=[value(bad, 0, 1.0)])
    svg = str(metric_chart_svg(series, href=lambda run: f"/runs/{run}"))
    assert "<script" not in svg
    root = parse(svg)
    assert bad in root.get("aria-label", "")
    assert points(root)[0][0].startswith(f"run {bad}: 1")


# ---- state bar -------------------------------------------------------------------------------


def test_the_state_bar_has_a_segment_per_state_filling_its_width() -> None:
    root = parse(state_bar_svg({"pending": 1, "succeeded": 5, "failed": 2, "cancelled": 0}))
    segments = by_class(root, "rect", "seg")
    assert [s.get("data-state") for s in segments] == ["succeeded", "failed", "pending"]
    widths = [int(s.get("width", 0)) for s in segments]
    assert sum(widths) == 120 and widths == [75, 30, 15]
    assert [int(s.get("x", 0)) for s in segments] == [0, 75, 105]
    assert [title(s) for s in segments] == ["5 succeeded", "2 failed", "1 pending"]
    assert root.get("aria-label") == "5 succeeded, 2 failed, 1 pending"


def test_the_state_bar_of_nothing_and_of_unknown_states() -> None:
    root = parse(state_bar_svg({}, width=60))
    assert [s.get("class") for s in by_class(root, "rect", "seg")] == ["seg empty"]
    odd = parse(state_bar_svg({"<odd state>": 3, "succeeded": 1}, width=40))
    classes = [s.get("class") for s in by_class(odd, "rect", "seg")]
    assert classes == ["seg state-succeeded", "seg state-unknown"]


def test_the_state_bar_takes_cached_counts_beside_the_states() -> None:
    root = parse(state_bar_svg({"failed": 1, "cached": 2, "succeeded": 1}, width=40))
    assert [s.get("data-state") for s in by_class(root, "rect", "seg")] == [
        "succeeded",
        "cached",
        "failed",
    ]
