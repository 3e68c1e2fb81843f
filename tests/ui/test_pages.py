"""The HTML pages, through the real app and the shared Workspace's real runs (conftest.py):
what a user sees on each page, error pages, and that nothing a user or a task controls
reaches a page unescaped (every page goes through ``page_checks.check_safe``)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from page_checks import by_id, by_id_html, check_safe, get_page, post
from starlette.testclient import TestClient

from glasspane.ui.pages_format import duration, reltime, task_url


def test_runs_list_shows_each_run_newest_first(client: TestClient, ui_runs: Any) -> None:
    html = get_page(client, "/")
    rows = re.findall(r'<tr data-run-id="([0-9a-f]+)" data-state="(\w+)"', html)
    assert rows[:3] == [
        (ui_runs.failed, "failed"),
        (ui_runs.second, "succeeded"),
        (ui_runs.succeeded, "succeeded"),
    ]
    assert f'href="/runs/{ui_runs.failed}"' in html
    assert 'href="/pipelines/mapped"' in html and "gp-state-bar" in html
    assert 'name="runs"' in html and 'form="compare-form"' in html and 'id="compare-button"' in html
    assert "0/1 · 1 failed" in html


def test_runs_list_filters_by_state_and_pipeline(client: TestClient, ui_runs: Any) -> None:
    failed = get_page(client, "/?state=failed")
    assert ui_runs.failed in failed and ui_runs.succeeded not in failed
    assert '<option value="failed" selected>' in failed
    mapped = get_page(client, "/?pipeline=mapped&window=24h")
    assert ui_runs.succeeded in mapped and ui_runs.failed not in mapped
    none = get_page(client, "/?trigger=schedule")
    assert "No runs match these filters." in by_id(none, "runs-empty")


def test_a_bad_filter_says_what_to_type(client: TestClient) -> None:
    html = get_page(client, "/?since=yesterday", status=400)
    assert "since must be a date and time such as 2025-03-01T14:30" in by_id(html, "runs-error")
    assert "<code>since</code>" in html  # a `name` in a message is set as code
    html = get_page(client, "/?cursor=nonsense", status=400)
    assert "is not one a page of runs returned" in by_id(html, "runs-error")


def test_run_page_shows_header_graph_timeline_and_tasks(client: TestClient, ui_runs: Any) -> None:
    run_id = ui_runs.succeeded
    html = get_page(client, f"/runs/{run_id}")
    assert by_id(html, "run-state") == "succeeded"
    assert 'id="run-state" ' in html or 'id="run-state">' in html
    assert "data-live-run" not in html  # a finished run is not followed
    assert "&lt;img src=x onerror=alert(1)&gt;" in by_id_html(html, "run-params")
    assert "loss" in by_id(html, "run-metrics") and "0.25" in by_id(html, "run-metrics")
    graph = by_id_html(html, "run-graph")
    assert 'data-node="load" data-state="succeeded"' in graph
    assert 'data-node="square[0]"' in graph
    assert f'href="/runs/{run_id}/tasks/load"' in graph
    assert "gp-timeline" in by_id_html(html, "run-timeline")
    table = by_id_html(html, "task-table")
    assert 'data-node="&lt;script&gt;alert(1)&lt;/script&gt;"' in table
    assert f'href="{task_url(run_id, ui_runs.hostile_node)}"' in table
    assert "cancel-form" not in html and "retry-form" not in html  # succeeded: nothing to retry
    assert f'href="/pipelines/mapped?from={run_id}#launch"' in html


def test_failed_run_page_shows_the_error_and_a_retry_form(client: TestClient, ui_runs: Any) -> None:
    html = get_page(client, f"/runs/{ui_runs.failed}")
    assert by_id(html, "run-state") == "failed"
    assert "&lt;b&gt;bad&lt;/b&gt; value 1" in html
    assert 'data-node="boom" data-state="failed"' in html
    assert f'action="/runs/{ui_runs.failed}/retry"' in html and 'id="retry-button"' in html


def test_live_partial_is_a_fragment_with_the_parts_live_js_swaps(
    client: TestClient, ui_runs: Any
) -> None:
    html = get_page(client, f"/runs/{ui_runs.succeeded}?partial=live")
    assert "<html" not in html
    swapped = ("run-counts", "run-ended", "run-duration", "run-metrics-body", "run-output-body")
    for element_id in (*swapped, "run-graph", "graph-groups", "run-timeline", "task-table"):
        assert f'id="{element_id}"' in html


def test_task_page_shows_output_cache_inputs_and_lineage(client: TestClient, ui_runs: Any) -> None:
    url = task_url(ui_runs.succeeded, ui_runs.hostile_node)
    html = get_page(client, url)
    assert by_id(html, "task-state") == "succeeded"
    assert "&lt;img src=x onerror=alert(1)&gt;" in by_id_html(html, "task-output")
    assert 'id="task-cache-key"' in html and "miss" in by_id(html, "task-cache")
    assert by_id(html, "task-inputs").count("No preview") == 0
    assert f'href="/artifacts/{ui_runs.artifact}"' in html
    assert "square" in by_id(html, "task-upstream")
    assert f'href="{url}/output.txt"' in html


def test_a_cache_hit_says_which_run_computed_it(client: TestClient, ui_runs: Any) -> None:
    html = get_page(client, task_url(ui_runs.second, "square[1]"))
    assert by_id(html, "task-cache-result") == "hit"
    assert f'href="/runs/{ui_runs.succeeded}/tasks/square' in by_id_html(html, "task-cache")


def test_task_panel_fragment_for_the_side_panel(client: TestClient, ui_runs: Any) -> None:
    html = get_page(client, task_url(ui_runs.failed, "boom") + "?partial=1")
    assert "<html" not in html and html.lstrip().startswith("<article")
    assert by_id(html, "task-state") == "failed"
    assert "ValueError: &lt;b&gt;bad&lt;/b&gt; value 1" in by_id_html(html, "task-error")
    assert "<pre" in by_id_html(html, "task-traceback")


def test_output_txt_is_a_plain_text_download(client: TestClient, ui_runs: Any) -> None:
    response = client.get(task_url(ui_runs.succeeded, ui_runs.hostile_node) + "/output.txt")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "script" in disposition
    assert "<" not in disposition and "/" not in disposition.split("filename=")[1]
    assert "<img src=x onerror=alert(1)>" in response.text  # text/plain: as it was printed
    failed = client.get(task_url(ui_runs.failed, "boom") + "/output.txt").text
    assert "## attempt 1: failed" in failed and "ValueError: <b>bad</b> value 1" in failed


def test_artifact_page_shows_preview_and_who_made_it(client: TestClient, ui_runs: Any) -> None:
    html = get_page(client, f"/artifacts/{ui_runs.artifact}")
    assert by_id(html, "artifact-hash") == ui_runs.artifact
    assert "int" in by_id(html, "artifact-type")
    assert by_id(html, "artifact-preview").startswith("Preview 5")  # JSON: 0+1+4
    produced = by_id_html(html, "artifact-produced-by")
    assert f'href="{task_url(ui_runs.succeeded, ui_runs.hostile_node)}"' in produced
    assert "square[0]" in by_id(html, "artifact-upstream")


def test_pipelines_list_and_page(client: TestClient, ui_runs: Any) -> None:
    html = get_page(client, "/pipelines")
    assert 'data-pipeline="mapped"' in html and 'data-pipeline="failing"' in html
    page = get_page(client, "/pipelines/mapped")
    assert by_id(page, "pipeline-name") == "mapped"
    form = by_id_html(page, "launch-form")
    assert 'action="/pipelines/mapped/launch"' in form
    assert 'type="number" id="param-n" name="n" value="3" step="1"' in form
    assert 'id="param-label" name="label" value="&lt;img src=x onerror=alert(1)&gt;"' in form
    assert "gp-graph" in by_id_html(page, "pipeline-versions")
    assert ui_runs.second in by_id_html(page, "pipeline-runs")
    assert 'data-metric="loss"' in page and "gp-chart" in by_id_html(page, "pipeline-metrics")
    again = get_page(client, f"/pipelines/mapped?from={ui_runs.second}")
    assert 'name="n" value="2"' in again and ui_runs.second[:12] in by_id(again, "launch-from")


def test_unknown_pipeline_is_a_404_naming_those_there_are(client: TestClient) -> None:
    html = get_page(client, "/pipelines/nope", status=404)
    assert "no pipeline named `nope` has run here" in by_id(html, "error-message")
    assert 'href="/pipelines"' in by_id_html(html, "error-back")


def test_retrying_a_succeeded_run_says_there_is_nothing_to_resume(
    client: TestClient, ui_runs: Any
) -> None:
    response = post(client, f"/runs/{ui_runs.succeeded}/retry")
    assert response.status_code == 400
    assert "nothing to resume" in by_id(response.text, "error-message")


def test_compare_marks_differences_and_where_runs_diverged(
    client: TestClient, ui_runs: Any
) -> None:
    html = get_page(client, f"/compare?runs={ui_runs.succeeded},{ui_runs.second}")
    table = by_id_html(html, "compare-table")
    assert f'href="/runs/{ui_runs.succeeded}"' in table
    assert 'data-param="n" data-equal="false"' in table
    assert 'data-param="label" data-equal="true"' in table
    nodes = by_id_html(html, "compare-nodes")
    assert 'data-node="square[0]" data-outputs="same"' in nodes
    assert 'data-node="load" data-outputs="different"' in nodes
    assert by_id(html, "compare-divergence") == "load"
    # the runs list's checkboxes send runs=A&runs=B, newest first: the older run goes left
    ticked = get_page(client, f"/compare?runs={ui_runs.second}&runs={ui_runs.succeeded}")
    assert by_id(ticked, "compare-left") == ui_runs.succeeded
    assert by_id(ticked, "compare-right") == ui_runs.second


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("", 400, "pick two different runs to compare (got none)"),
        ("?runs=abcd", 400, "pick two different runs to compare (got abcd)"),
        ("?runs=abcd,abcd", 400, "pick two different runs"),
        ("?runs=ffffffff,eeeeeeee", 404, "ffffffff"),
    ],
)
def test_bad_compare_input(client: TestClient, query: str, status: int, message: str) -> None:
    html = get_page(client, f"/compare{query}", status=status)
    assert message in by_id(html, "error-message")


def test_not_found_pages_say_what_and_link_back(client: TestClient, ui_runs: Any) -> None:
    html = get_page(client, "/runs/ffffffffffff", status=404)
    assert "ffffffffffff" in by_id(html, "error-message")
    assert 'href="/"' in by_id_html(html, "error-back")
    html = get_page(client, task_url(ui_runs.failed, "nope"), status=404)
    assert "nope" in by_id(html, "error-message")
    assert f'href="/runs/{ui_runs.failed}"' in by_id_html(html, "error-back")
    html = get_page(client, "/artifacts/" + "0" * 64, status=404)
    assert "0" * 16 in by_id(html, "error-message")
    get_page(client, task_url(ui_runs.failed, "nope") + "/output.txt", status=404)


def test_every_page_links_the_stylesheets_and_deferred_scripts(client: TestClient) -> None:
    tags = check_safe(get_page(client, "/pipelines"))
    links = [attrs["href"] for tag, attrs in tags if tag == "link" and attrs["rel"] == "stylesheet"]
    scripts = [attrs["src"] for tag, attrs in tags if tag == "script"]
    assert links == ["/static/style.css", "/static/graph.css"]
    assert scripts == ["/static/app.js", "/static/live.js"]
    for path in (*links, *scripts):
        assert client.get(path).status_code == 200, path


def test_times_and_durations_read_naturally() -> None:
    from datetime import datetime, timedelta, timezone

    now = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert reltime(now - timedelta(seconds=2), now) == "just now"
    assert reltime(now - timedelta(minutes=5, seconds=3), now) == "5 min ago"
    assert reltime(now - timedelta(days=3), now) == "3 days ago"
    assert reltime(now + timedelta(hours=2), now) == "in 2 h"
    assert reltime(None) == "—"
    assert [duration(s) for s in (None, 0.004, 12.34, 184, 3725)] == [
        "—", "4 ms", "12.3 s", "3 min 04 s", "1 h 02 min",
    ]  # fmt: skip
    assert task_url("ab12", "<script>alert(1)</script>") == (
        f"/runs/ab12/tasks/{quote('<script>alert(1)</script>', safe='/')}"
    )
