"""One task run (``/runs/{run_id}/tasks/{node}``, a full page or, with ``?partial=1``, the
fragment the run page shows in its side panel), its captured output as a download, and one
artifact (``/artifacts/{hash}``).

Previews come from ``queries.preview``/``queries.artifact``, which read JSON, Parquet and
``.npy`` without unpickling; a pickled value shows its type and size only.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from glasspane import GlasspaneError, queries
from glasspane.types import TERMINAL_STATES, ArtifactInfo

from .pages_base import html_errors, render, workspace

#: artifacts of one task run previewed (each reads its blob's head)
MAX_PREVIEWS = 8
#: task runs a lineage list shows
MAX_LINEAGE = 100
#: inputs or outputs a panel lists (a reduce over a 5,000-element map has 5,000 inputs)
MAX_LISTED = 100

STREAMS = (("stdout", "stdout"), ("stderr", "stderr"), ("log", "log"))


def _previews(request: Request, refs: list[queries.ArtifactRef]) -> list[dict[str, Any]]:
    artifacts = workspace(request).artifacts
    items = []
    for i, ref in enumerate(refs):
        preview = None
        if i < MAX_PREVIEWS:
            info = ArtifactInfo(
                content_hash=ref.content_hash,
                uri=ref.uri,
                digest=None,
                type_name=ref.type_name,
                materializer=ref.materializer,
                size=ref.size,
            )
            preview = queries.preview(artifacts, info)
        items.append({"ref": ref, "preview": preview})
    return items


def _lineage(request: Request, run_id: str, node: str, direction: str) -> list[Any]:
    """The task runs one hop up or downstream of a task run (not the task run itself)."""
    try:
        walk = workspace(request).query(queries.lineage, run_id, node, direction=direction, depth=1)
    except GlasspaneError:
        return []
    found = [t for t in walk.task_runs if (t.run_id, t.node) != (run_id, node)]
    return found[:MAX_LINEAGE]


def task_context(request: Request, run_id: str, node: str) -> dict[str, Any]:
    """Everything the task panel shows (blocking)."""
    ws = workspace(request)
    task = ws.query(queries.task_detail, run_id, node)
    live = task.state not in TERMINAL_STATES
    texts = {"stdout": task.stdout, "stderr": task.stderr, "log": task.log_tail}
    return {
        "nav": "runs",
        "task": task,
        "cache": task.cache,
        "live": live,
        "streams": [(key, label, texts[key]) for key, label in STREAMS],
        "has_output": any(texts.values()),
        "inputs": _previews(request, task.inputs[:MAX_LISTED]),
        "outputs": _previews(request, task.outputs[:MAX_LISTED]),
        "inputs_more": max(0, len(task.inputs) - MAX_LISTED),
        "outputs_more": max(0, len(task.outputs) - MAX_LISTED),
        "upstream": _lineage(request, task.run_id, task.node, "upstream"),
        "downstream": _lineage(request, task.run_id, task.node, "downstream"),
    }


@html_errors
def task_page(request: Request) -> Response:
    """``GET /runs/{run_id}/tasks/{node}``; ``?partial=1``: the side panel's fragment."""
    context = task_context(request, request.path_params["run_id"], request.path_params["node"])
    if request.query_params.get("partial"):
        return render(request, "_task.html", context)
    return render(request, "task.html", context)


def output_text(task: queries.TaskDetail) -> str:
    """A task run's captured output as one text file: each attempt's error, traceback,
    stdout, stderr and log lines, under a header naming the attempt."""
    lines = [f"# run {task.run_id}, task {task.node} ({task.task}): {task.state}", ""]
    attempts = task.attempts
    if not attempts:
        sections = [("stdout", task.stdout), ("stderr", task.stderr), ("log", task.log_tail)]
        sections += [("error", task.error), ("traceback", task.traceback)]
        lines += [f"## {name}\n{text.rstrip()}\n" for name, text in sections if text]
    for attempt in attempts:
        lines.append(f"## attempt {attempt.attempt}: {attempt.state}")
        sections = [
            ("stdout", attempt.stdout),
            ("stderr", attempt.stderr),
            ("log", attempt.log_tail),
            ("error", attempt.error),
            ("traceback", attempt.traceback),
        ]
        lines += [f"### {name}\n{text.rstrip()}\n" for name, text in sections if text]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


@html_errors
def task_output(request: Request) -> Response:
    """``GET /runs/{run_id}/tasks/{node}/output.txt``: the captured output, as a download."""
    ws = workspace(request)
    task = ws.query(queries.task_detail, request.path_params["run_id"], request.path_params["node"])
    safe_node = re.sub(r"[^A-Za-z0-9_.-]+", "_", task.node).strip("_") or "task"
    filename = f"{task.run_id[:12]}-{safe_node}-output.txt"
    return PlainTextResponse(
        output_text(task),
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@html_errors
def artifact_page(request: Request) -> Response:
    """``GET /artifacts/{content_hash}``: what it is, a safe preview, who produced and
    consumed it, and its lineage up and downstream of its first producer."""
    ws = workspace(request)
    art = ws.query(queries.artifact, request.path_params["content_hash"])
    upstream: list[Any] = []
    downstream: list[Any] = []
    if art.produced_by:
        first = art.produced_by[0]
        for direction, found in (("upstream", upstream), ("downstream", downstream)):
            try:
                walk = ws.query(queries.lineage, first.run_id, first.node, direction=direction)
            except GlasspaneError:
                continue
            found += [t for t in walk.task_runs if t.depth > 0]
    context = {
        "nav": "runs",
        "art": art,
        "upstream": upstream[:MAX_LINEAGE],
        "downstream": downstream[:MAX_LINEAGE],
        "downstream_cut": len(downstream) > MAX_LINEAGE,
    }
    return render(request, "artifact.html", context)
