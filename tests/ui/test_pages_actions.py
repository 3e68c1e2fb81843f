"""The pages' forms that start, retry and cancel runs, and pages of runs made for one test
(a big map, a DataFrame, 10,000 runs), each on a Workspace of its own."""

from __future__ import annotations

import re
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from page_checks import by_id, by_id_html, check_safe, get_page, graph_of, post
from starlette.testclient import TestClient

from glasspane import Workspace, queries
from glasspane.ui.app import create_app


def test_first_page_of_10000_runs_is_fast_and_older_pages_keep_filters(tmp_path: Path) -> None:
    from glasspane.api import metadata_store
    from glasspane.store import lifecycle

    def fill(conn: Any) -> None:  # one transaction: 10,000 runs in a second or two
        for i in range(10_000):
            run_id = uuid.uuid4().hex[:12]
            lifecycle.create_run(
                conn,
                run_id=run_id,
                version_id=version,
                nodes=nodes,
                pipeline_name="history",
                pipeline_ref="flows.py:history",
                params={"n": i},
                executor="threads",
                trigger="schedule" if i % 3 else "manual",
            )
            state = "failed" if i % 10 == 0 else "succeeded"
            lifecycle.set_run_state(conn, run_id, state, error=None, output=None)

    with Workspace(home=tmp_path / "big") as ws:
        store = metadata_store(ws.settings)
        nodes = [(name, name) for name in ("load", "train", "report")]
        graph = {"nodes": [{"id": n, "task": n, "tags": []} for n, _ in nodes], "edges": []}
        version = store.ensure_pipeline_version("history", "ab" * 32, graph)
        store._write(fill)
        with TestClient(create_app(ws), base_url="http://127.0.0.1") as client:
            client.get("/")  # warm-up: connections, templates
            times = []
            for _ in range(5):
                began = time.perf_counter()
                response = client.get("/")
                times.append(time.perf_counter() - began)
                assert response.status_code == 200
            assert statistics.median(times) < 0.2, times
            first = response.text
            assert first.count("<tr data-run-id=") == 50
            failed = client.get("/?state=failed&trigger=manual").text
            older = re.search(
                r'id="runs-older" href="([^"]+)"|href="([^"]+)" id="runs-older"', failed
            )
            assert older, "no Older link"
            url = (older.group(1) or older.group(2)).replace("&amp;", "&")
            assert "state=failed" in url and "trigger=manual" in url and "cursor=" in url
            second = client.get(url).text
            ids_first = set(re.findall(r'<tr data-run-id="(\w+)"', failed))
            ids_second = set(re.findall(r'<tr data-run-id="(\w+)" data-state="failed"', second))
            assert len(ids_second) == 50 and not ids_first & ids_second
            assert 'id="runs-newest"' in second


def test_a_big_map_is_one_group_node_that_expands(fresh_workspace: Workspace, flow: Any) -> None:
    run = fresh_workspace.run(flow("mapped"), {"n": 60})
    with TestClient(create_app(fresh_workspace), base_url="http://127.0.0.1") as client:
        html = get_page(client, f"/runs/{run.run_id}")
        graph = graph_of(html)
        assert 'data-group="true" data-expand="square"' in graph
        assert 'href="?expand=square"' in graph and 'data-node="square[7]"' not in graph
        assert 'data-expand-link="square"' in html
        expanded = get_page(client, f"/runs/{run.run_id}?expand=square")
        assert 'data-node="square[7]"' in graph_of(expanded) and 'id="graph-collapse"' in expanded


def test_a_dataframe_preview_is_a_table_head(fresh_workspace: Workspace, tmp_path: Path) -> None:
    flows = tmp_path / "frames.py"
    flows.write_text(
        "import pandas as pd\nfrom glasspane import pipeline, task\n\n"
        "@task\ndef frame(n: int) -> pd.DataFrame:\n"
        "    return pd.DataFrame({'x': list(range(n)), 'name': ['<b>bad</b>'] * n})\n\n"
        "@pipeline\ndef frames(n: int = 8):\n    return frame(n)\n"
    )
    from glasspane.loader import load_pipeline

    run = fresh_workspace.run(load_pipeline(f"{flows}:frames"), {})
    detail = fresh_workspace.query(queries.task_detail, run.run_id, "frame")
    with TestClient(create_app(fresh_workspace), base_url="http://127.0.0.1") as client:
        html = get_page(client, f"/artifacts/{detail.outputs[0].content_hash}")
        assert "8 rows × 2 columns" in by_id(html, "artifact-preview")
        assert "&lt;b&gt;bad&lt;/b&gt;" in by_id_html(html, "artifact-preview")
        assert html.count('<td class="mono">') == 10  # the first 5 rows


def test_launch_with_bad_params_shows_the_cli_message(fresh_workspace: Workspace) -> None:
    with TestClient(create_app(fresh_workspace), base_url="http://127.0.0.1") as client:
        response = post(client, "/pipelines/mapped/launch", {"n": "three", "label": "<i>x</i>"})
        assert response.status_code == 422
        check_safe(response.text)
        message = by_id(response.text, "launch-error")
        assert "invalid parameter for pipeline mapped" in message and "n" in message
        assert 'value="three"' in response.text  # what the user typed stays in the form
        assert "&lt;i&gt;x&lt;/i&gt;" in response.text


def test_launch_starts_a_run_and_goes_to_its_page(fresh_workspace: Workspace) -> None:
    with TestClient(create_app(fresh_workspace), base_url="http://127.0.0.1") as client:
        response = post(client, "/pipelines/mapped/launch", {"n": "4", "label": "from the UI"})
        assert response.status_code == 303, response.text[:2000]
        run_url = response.headers["location"]
        run_id = run_url.rsplit("/", 1)[1]
        assert run_url == f"/runs/{run_id}"
        starting = get_page(client, run_url)  # readable at once: the live page to watch
        assert by_id(starting, "run-state") in ("queued", "pending", "running", "succeeded")
        list(fresh_workspace.follow(run_id, timeout=60))
        html = get_page(client, run_url)
        assert by_id(html, "run-state") == "succeeded"
        assert by_id(html, "run-trigger") == "ui"
        assert "from the UI" in by_id(html, "run-params")


def test_retry_asks_for_secrets_again_then_starts_the_new_run(
    fresh_workspace: Workspace, flow: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    failed = fresh_workspace.run(
        flow("guarded"), {"marker": str(marker), "api_key": "s3cret"}, raise_on_failure=False
    )
    with TestClient(create_app(fresh_workspace), base_url="http://127.0.0.1") as client:
        html = get_page(client, f"/runs/{failed.run_id}")
        assert 'type="password" id="retry-api_key" name="api_key"' in by_id_html(html, "retry")
        assert "s3cret" not in html
        refused = post(client, f"/runs/{failed.run_id}/retry")
        assert refused.status_code == 422
        assert "api_key" in by_id(refused.text, "retry-error")
        marker.write_text("now")
        response = post(client, f"/runs/{failed.run_id}/retry", {"api_key": "s3cret"})
        assert response.status_code == 303, response.text[:2000]
        new_id = response.headers["location"].rsplit("/", 1)[1]
        get_page(client, f"/runs/{new_id}")
        list(fresh_workspace.follow(new_id, timeout=60))
        html = get_page(client, f"/runs/{new_id}")
        assert by_id(html, "run-state") == "succeeded"
        assert by_id(html, "run-resumed-from") == failed.run_id


def test_cancel_a_running_run(fresh_workspace: Workspace, tmp_path: Path, ui_flows: Path) -> None:
    gate = tmp_path / "gate"
    run_id = fresh_workspace.launch(f"{ui_flows}:live", {"gate": str(gate)}, trigger="ui")
    with TestClient(create_app(fresh_workspace), base_url="http://127.0.0.1") as client:
        for event in fresh_workspace.follow(run_id, timeout=60):
            if event.kind == "task_started":
                break
        html = get_page(client, f"/runs/{run_id}")
        assert by_id(html, "run-state") == "running"
        # the page is as of the events stored so far: the live stream goes on from there
        assert f'data-live-run="{run_id}"' in html
        shown = re.search(r'data-last-seq="(\d+)"', html)
        assert shown is not None and int(shown.group(1)) >= event.seq
        assert 'id="cancel-button"' in html and "retry-form" not in html
        assert 'data-node="wait_for" data-state="running"' in html
        early = post(client, f"/runs/{run_id}/retry")
        assert early.status_code == 409
        assert "is still running; wait for it to finish" in by_id(early.text, "error-message")
        response = post(client, f"/runs/{run_id}/cancel")
        assert response.status_code == 303
        assert response.headers["location"] == f"/runs/{run_id}?cancelling=1"
        html = get_page(client, response.headers["location"])
        if by_id(html, "run-state") == "running":  # the driver sees it at its next heartbeat
            assert "Cancel requested" in by_id(html, "cancel-notice")
        list(fresh_workspace.follow(run_id, timeout=60))
        html = get_page(client, f"/runs/{run_id}")
        assert by_id(html, "run-state") == "cancelled"
        assert "cancel-button" not in html and 'id="retry-form"' in html


def test_a_task_with_hundreds_of_inputs_lists_the_first_hundred(
    fresh_workspace: Workspace,
) -> None:
    from glasspane import pipeline, task

    @task
    def leaf(i: int) -> int:
        return i

    @task
    def gather(parts: list[int]) -> int:
        return len(parts)

    @pipeline
    def wide(n: int = 150):
        return gather(leaf.map(i=list(range(n))))

    run = fresh_workspace.run(wide)
    with TestClient(create_app(fresh_workspace), base_url="http://127.0.0.1") as client:
        html = get_page(client, f"/runs/{run.run_id}/tasks/gather?partial=1")
        assert html.count("<strong>parts</strong>") == 100  # the first hundred inputs
        assert 'data-more="50"' in html and "and 50 more" in html
        check_safe(html)
