"""Run and version graphs as SVG, drawn from real runs: nodes, states, cached marks, links,
edges with their arguments, mapped groups collapsed and expanded, and escaping."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import glasspane
from glasspane import expand, pipeline, queries, task
from glasspane.queries import RunGraph
from glasspane.ui.render import group_key, run_graph_svg, timeline_svg, version_graph_svg

SVG = "{http://www.w3.org/2000/svg}"


@task
def load(n: int) -> list[int]:
    return list(range(n))


@task
def split(xs: list[int]) -> tuple[list[int], list[int]]:
    return xs[::2], xs[1::2]


@task
def score(evens: list[int], odds: list[int]) -> int:
    return len(evens) - len(odds)


@task
def train(x: int, rate: float) -> float:
    if x == 3:
        raise ValueError("x = 3 diverges")
    return x * rate


@task
def total(values: list[float]) -> float:
    return sum(values)


@pipeline
def fit(n: int = 5):
    xs = load(n)
    evens, odds = split(xs)
    return score(evens, odds), total(train.map(expand(xs), rate=0.5))


@task
def count(values: list[int]) -> int:
    return len(values)


@task
def peak(rows: list[int]) -> int:
    return max(rows, default=0)


@pipeline
def halves(n: int = 4):
    train_rows, test_rows = split(load(n))
    return count(train_rows), peak(test_rows)


@task(name="<script>alert(1)</script>")
def hostile(x: int) -> int:
    return x


@task(name='say "hi" & <b>bye</b>')
def quoted(x: int) -> int:
    return x


@pipeline
def evil():
    return quoted(hostile(1))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two runs of ``fit`` (the second reuses every output it can) and one of ``evil``."""
    with glasspane.Workspace(home=tmp_path_factory.mktemp("render")) as ws:
        first = ws.run(fit, {"n": 5}, raise_on_failure=False)
        second = ws.run(fit, {"n": 5}, raise_on_failure=False)
        bad = ws.run(evil)
        graph = ws.query(queries.run_graph, first.run_id)
        return {
            "graph": graph,
            "cached": ws.query(queries.run_graph, second.run_id),
            "tasks": ws.query(queries.get_run, first.run_id).tasks,
            "version": ws.query(queries.pipeline_version, "fit", graph.version_hash).graph,
            "evil": ws.query(queries.run_graph, bad.run_id),
        }


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img" and root.get("aria-label")
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    return root


def nodes(root: ET.Element) -> dict[str, ET.Element]:
    found = [g for g in root.iter(f"{SVG}g") if "node" in (g.get("class") or "").split()]
    by_id = {g.get("data-node"): g for g in found}
    assert len(by_id) == len(found)  # no node drawn twice
    return by_id  # type: ignore[return-value]


def edges(root: ET.Element) -> dict[tuple[str, str], ET.Element]:
    found = [g for g in root.iter(f"{SVG}g") if g.get("class") == "edge"]
    by_ends = {(g.get("data-source"), g.get("data-target")): g for g in found}
    assert len(by_ends) == len(found)  # merged, never drawn twice
    return by_ends  # type: ignore[return-value]


def texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text")]


def title(element: ET.Element) -> str:
    found = element.find(f"{SVG}title")
    assert found is not None
    return found.text or ""


def test_every_node_of_a_run_is_drawn_with_its_state(runs: dict[str, Any]) -> None:
    graph: RunGraph = runs["graph"]
    drawn = nodes(parse(run_graph_svg(graph)))
    assert set(drawn) == {node.id for node in graph.nodes}
    assert {"load", "split", "score", "train", "train[3]", "total"} <= set(drawn)
    for node in graph.nodes:
        g = drawn[node.id]
        assert g.get("data-state") == node.state
        assert f"state-{node.state}" in g.get("class", "").split()
        assert g.get("data-cached") == "false"
        assert title(g).startswith(node.id)
        assert texts(g)[0] == node.task
    assert drawn["train[3]"].get("data-state") == "failed"
    assert drawn["total"].get("data-state") == "upstream_failed"
    assert "✗ failed" in texts(drawn["train[3]"])[1]  # the state in words, not only colour


def test_cached_nodes_differ_by_more_than_colour(runs: dict[str, Any]) -> None:
    graph: RunGraph = runs["cached"]
    drawn = nodes(parse(run_graph_svg(graph)))
    cached = {node.id for node in graph.nodes if node.cached}
    assert {"load", "split", "score", "train[0]"} <= cached and "train[3]" not in cached
    for node_id, g in drawn.items():
        is_cached = node_id in cached
        assert g.get("data-cached") == ("true" if is_cached else "false")
        assert ("cached" in g.get("class", "").split()) is is_cached
        assert ("cached" in texts(g)[1]) is is_cached


def test_nodes_link_to_their_task_panel(runs: dict[str, Any]) -> None:
    graph: RunGraph = runs["graph"]
    root = parse(run_graph_svg(graph, href=lambda node: f"/runs/{graph.run_id}/tasks/{node}"))
    for node_id, g in nodes(root).items():
        link = g.find(f"{SVG}a")
        assert link is not None and link.get("href") == f"/runs/{graph.run_id}/tasks/{node_id}"
    assert all(g.find(f"{SVG}a") is None for g in nodes(parse(run_graph_svg(graph))).values())


def test_edges_name_the_arguments_they_feed(runs: dict[str, Any]) -> None:
    drawn = edges(parse(run_graph_svg(runs["graph"])))
    # both outputs of the tuple-returning split feed score: one edge, both arguments
    assert title(drawn[("split", "score")]) == "split → score: [0] → evens, [1] → odds"
    assert texts(drawn[("split", "score")]) == ["[0] → evens +1"]  # too long for the gap
    assert title(drawn[("load", "split")]) == "load → split: xs"  # a single output: no index
    assert title(drawn[("load", "train")]) == "load → train: x"
    assert title(drawn[("train", "train[3]")]) == "train → train[3]: element [3]"


def test_edges_from_a_tuple_say_which_output_feeds_them(tmp_path: Path) -> None:
    with glasspane.Workspace(home=tmp_path) as ws:
        run = ws.run(halves, {"n": 4})
        graph = ws.query(queries.run_graph, run.run_id)
        version = ws.query(queries.pipeline_version, "halves", graph.version_hash).graph
    drawn = edges(parse(run_graph_svg(graph)))
    assert title(drawn[("split", "count")]) == "split → count: [0] → values"
    assert texts(drawn[("split", "count")]) == ["[0] → values"]
    assert title(drawn[("split", "peak")]) == "split → peak: [1] → rows"
    assert texts(drawn[("split", "peak")]) == ["[1] → rows"]
    assert texts(drawn[("load", "split")]) == ["xs"]
    drawn = edges(parse(version_graph_svg(version)))
    assert title(drawn[("split", "peak")]) == "split → peak: [1] → rows\nsplit returns 2 outputs"
    assert texts(drawn[("split", "count")]) == ["[0] → values"]
    # a version recorded before output indices were kept still names its arguments
    old = {
        **version,
        "edges": [{k: v for k, v in e.items() if k != "outputs"} for e in version["edges"]],
    }
    assert texts(edges(parse(version_graph_svg(old)))[("split", "peak")]) == ["rows"]


def test_an_expander_is_drawn_before_its_elements(runs: dict[str, Any]) -> None:
    drawn = nodes(parse(run_graph_svg(runs["graph"])))
    assert "expander" in drawn["train"].get("class", "").split()
    assert "expanded into 5 elements" in title(drawn["train"])
    for i in range(5):
        assert drawn[f"train[{i}]"].get("data-parent") == "train"
        assert texts(drawn[f"train[{i}]"])[1].split()[:3] in (
            ["✓", f"[{i}]", "·"],
            ["✗", "failed", "·"],
        )


def test_a_map_above_the_budget_collapses_into_one_group(runs: dict[str, Any]) -> None:
    root = parse(run_graph_svg(runs["graph"], budget=3, href=lambda node: f"/t/{node}"))
    drawn = nodes(root)
    assert not any(node.startswith("train[") for node in drawn)
    group = drawn["train"]
    assert group.get("data-group") == "true" and group.get("data-expand") == "train"
    assert group.get("data-count") == "5"
    assert group.get("data-state") == "failed"  # the most relevant of its elements'
    assert "group" in group.get("class", "").split()
    assert texts(group) == ["train ×5", "4 ✓ 1 ✗"]
    assert "4 succeeded, 1 failed" in title(group)
    link = group.find(f"{SVG}a")
    assert link is not None and link.get("href") == "/t/train"  # the expander's panel
    # the expander's edges become the group's; its edges to the elements disappear
    assert set(edges(root)) == {
        ("load", "split"),
        ("split", "score"),
        ("load", "train"),
        ("train", "total"),
    }


def test_an_expanded_group_draws_every_element(runs: dict[str, Any]) -> None:
    drawn = nodes(parse(run_graph_svg(runs["graph"], budget=3, expand=["train"])))
    assert {f"train[{i}]" for i in range(5)} <= set(drawn)
    assert drawn["train"].get("data-group") is None


def static_map(width: int, failed: int = 0) -> RunGraph:
    """A source, a static map of ``width`` elements (``m[i]``), and a sink reading them all."""

    def node(node_id: str, map_index: int | None = None, state: str = "succeeded") -> dict:
        return {
            "id": node_id,
            "task": node_id.split("[")[0],
            "state": state,
            "cached": False,
            "duration": 0.5,
            "map_index": map_index,
            "parent_node": None,
            "tags": [],
        }

    elements = [node(f"m[{i}]", i, "failed" if i < failed else "succeeded") for i in range(width)]
    return RunGraph(
        run_id="r1",
        pipeline="wide",
        version_hash="0" * 64,
        nodes=[node("src"), *elements, node("sink", state="upstream_failed")],
        edges=[{"source": "src", "target": f"m[{i}]", "args": ["x"]} for i in range(width)]
        + [{"source": f"m[{i}]", "target": "sink", "args": ["parts"]} for i in range(width)],
        output=["sink"],
    )


def test_the_group_of_a_node() -> None:
    assert group_key("train[3]", 3, "train") == "train"  # an expander's child
    assert group_key("fit_2[12]", 12, None) == "fit_2"  # a static map's element
    assert group_key("fit_2", None, None) is None
    assert group_key("odd", 4, None) is None  # no index in the id: no group to name


def test_a_static_map_collapses_with_its_edges_merged() -> None:
    root = parse(run_graph_svg(static_map(400, failed=2), href=lambda node: f"/t/{node}"))
    drawn = nodes(root)
    assert set(drawn) == {"src", "m", "sink"}
    assert texts(drawn["m"]) == ["m ×400", "398 ✓ 2 ✗"]
    assert drawn["m"].get("data-expand") == "m" and drawn["m"].get("data-state") == "failed"
    link = drawn["m"].find(f"{SVG}a")
    assert link is not None and link.get("href") == "/t/m"  # the page's href expands it
    drawn_edges = edges(root)
    assert set(drawn_edges) == {("src", "m"), ("m", "sink")}
    assert title(drawn_edges[("m", "sink")]) == "m → sink: parts (400 edges)"


def test_a_5000_node_map_stays_small_unless_expanded() -> None:
    graph = static_map(4998)
    started = time.perf_counter()
    collapsed = parse(run_graph_svg(graph))
    expanded = parse(run_graph_svg(graph, expand={"m"}))
    elapsed = time.perf_counter() - started
    assert len(nodes(collapsed)) == 3 and float(collapsed.get("height", 0)) < 200
    assert len(nodes(expanded)) == 5000 and len(edges(expanded)) == 2 * 4998
    # layers run left to right: 3 layers wide, however many elements
    assert float(expanded.get("width", 0)) < 800
    assert elapsed < 5  # the benchmark measures it; this only catches a quadratic slip


def test_hostile_names_are_text_not_markup(runs: dict[str, Any]) -> None:
    graph: RunGraph = runs["evil"]
    svg = str(run_graph_svg(graph, href=lambda node: f"/t/{node}"))
    assert "<script" not in svg and "<b>" not in svg
    root = parse(svg)
    drawn = nodes(root)
    assert set(drawn) == {"<script>alert(1)</script>", 'say "hi" & <b>bye</b>'}
    g = drawn["<script>alert(1)</script>"]
    assert title(g).startswith("<script>alert(1)</script>")
    assert g.find(f"{SVG}a").get("href") == "/t/<script>alert(1)</script>"  # type: ignore[union-attr]
    assert texts(drawn['say "hi" & <b>bye</b>'])[0] == 'say "hi" & <b>bye</b>'
    assert root.get("aria-label", "").startswith(f"graph of run {graph.run_id}")
    assert set(edges(root)) == {("<script>alert(1)</script>", 'say "hi" & <b>bye</b>')}


def test_hostile_argument_names_and_ids_are_escaped() -> None:
    bad = '"><script>x()</script>'
    graph = RunGraph(
        run_id=bad,
        pipeline=bad,
        version_hash="0",
        nodes=[
            {
                "id": i,
                "task": bad,
                "state": "succeeded",
                "cached": False,
                "duration": None,
                "map_index": None,
                "parent_node": None,
                "tags": [bad],
            }
            for i in ("a\x00\ud800", "b")
        ],
        edges=[{"source": "a\x00\ud800", "target": "b", "args": [bad, "onload=alert(1)"]}],
        output=[],
    )
    svg = str(run_graph_svg(graph))
    assert "<script" not in svg and "\x00" not in svg
    svg.encode()  # a lone surrogate would not encode
    root = parse(svg)
    assert bad in root.get("aria-label", "")
    [edge] = edges(root).values()
    assert title(edge) == f"a\ufffd → b: {bad}, onload=alert(1)"  # NUL dropped, surrogate shown
    assert all(not name.startswith("on") for el in root.iter() for name in el.attrib)


def test_a_version_graph_has_no_states(runs: dict[str, Any]) -> None:
    graph_json = runs["version"]
    drawn = nodes(parse(version_graph_svg(graph_json)))
    assert set(drawn) == {node["id"] for node in graph_json["nodes"]}
    for g in drawn.values():
        assert g.get("data-state") == "none" and "state-none" in g.get("class", "").split()
    assert texts(drawn["train"])[1] == "map over x"  # an expander: elements only at run time
    assert texts(drawn["split"])[1] == "2 outputs"
    assert "returned by the pipeline" in title(drawn["score"])


def test_empty_graph_still_renders(runs: dict[str, Any]) -> None:
    graph = runs["graph"].model_copy(update={"nodes": [], "edges": []})
    root = parse(run_graph_svg(graph))
    assert nodes(root) == {} and texts(root) == ["no tasks"]


def test_a_real_runs_timeline_has_a_bar_per_task_that_started(runs: dict[str, Any]) -> None:
    tasks = runs["tasks"]
    root = parse(timeline_svg(tasks, href=lambda node: f"/t/{node}"))
    rows = {g.get("data-node"): g for g in root.iter(f"{SVG}g") if "row" in g.get("class", "")}
    assert set(rows) == {t.node for t in tasks}
    for t in tasks:
        bars = [r for r in rows[t.node].iter(f"{SVG}rect") if "bar" in r.get("class", "")]
        assert len(bars) == (t.started_at is not None)
        assert rows[t.node].get("data-state") == t.state
    assert rows["total"].get("data-state") == "upstream_failed"  # never started: no bar


def test_the_stylesheet_colours_every_state() -> None:
    css = (Path(__file__).parents[2] / "ui" / "static" / "graph.css").read_text()
    for state in (*glasspane.types.STATES, "none"):
        assert f".state-{state}" in css
