"""Two runs side by side (``/compare?runs=A,B``): parameters, metrics and durations with the
differences marked, and per node whether both runs produced the same output (content hash),
so the first node where they diverged stands out.

Either side may be a tracker's run, written ``TRACKER:RUN_ID`` (``/compare?runs=A,mlflow:0a1b``):
then parameters and the last value of each metric are compared (a tracker's run has no task
graph), differences marked the same way.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from glasspane import queries
from glasspane.queries.compare import compare_tracked

from .pages_base import error_page, html_errors, render, workspace
from .pages_trackers import compare_side, side_label, tracker_side


def run_ids(values: list[str]) -> list[str]:
    """The run ids of ``?runs=A,B`` or ``?runs=A&runs=B`` (the runs list's checkboxes)."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def divergence(nodes: list[queries.NodeDiff]) -> tuple[str | None, int]:
    """The first node (in run order) whose outputs or state differ, and its 1-based row."""
    for i, node in enumerate(nodes, start=1):
        if node.outputs_equal is False or node.left_state != node.right_state:
            return node.node, i
    return None, 0


@html_errors
def compare_page(request: Request) -> Response:
    """``GET /compare?runs=A,B``."""
    given = request.query_params.getlist("runs")
    ids = run_ids(given)
    if len(given) > 1:  # ticked in the runs list, newest first: the older run goes left
        ids.reverse()
    if len(ids) != 2 or ids[0] == ids[1]:
        got = "none" if not ids else ", ".join(ids)
        return error_page(
            request,
            400,
            f"pick two different runs to compare (got {got}): tick two runs in the runs "
            "list and press Compare, or open /compare?runs=RUN_A,RUN_B (a tracker's run as "
            "TRACKER:RUN_ID, such as mlflow:0a1b2c...)",
        )
    if any(tracker_side(part) is not None for part in ids):
        return _compare_tracked(request, ids[0], ids[1])
    cmp = workspace(request).query(queries.compare_runs, ids[0], ids[1])
    first, index = divergence(cmp.nodes)
    context: dict[str, Any] = {
        "nav": "runs",
        "cmp": cmp,
        "swap_url": f"/compare?{urlencode({'runs': f'{cmp.right.run_id},{cmp.left.run_id}'})}",
        "divergence": first,
        "divergence_index": index,
        "same_nodes": sum(1 for n in cmp.nodes if n.outputs_equal),
        "different_nodes": sum(1 for n in cmp.nodes if n.outputs_equal is False),
        "unknown_nodes": sum(1 for n in cmp.nodes if n.outputs_equal is None),
    }
    return render(request, "compare.html", context)


def _compare_tracked(request: Request, left: str, right: str) -> Response:
    """The compare view with a tracker's run on one side or both (blocking)."""
    ws = workspace(request)
    sides = [compare_side(ws.settings, part) for part in (left, right)]
    cmp = ws.query(compare_tracked, sides[0], sides[1])
    swap = f"{side_label(cmp.right)},{side_label(cmp.left)}"
    context: dict[str, Any] = {
        "nav": "runs",
        "cmp": cmp,
        "swap_url": f"/compare?{urlencode({'runs': swap})}",
        "different_params": sum(1 for p in cmp.params if not p.equal),
    }
    return render(request, "compare_tracked.html", context)
