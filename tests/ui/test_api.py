"""The JSON API: the queries' records as they are, errors that say what and what next, and
launch / retry / cancel of real runs in other processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from glasspane import Workspace, queries
from glasspane.ui.app import create_app

if TYPE_CHECKING:
    from conftest import UIRuns


def wait_over(ws: Workspace, run_id: str) -> dict:
    """The run's detail (as JSON) once its process has finished it."""
    list(ws.follow(run_id, timeout=120))
    return ws.query(queries.get_run, run_id).model_dump(mode="json")


def node_url(run_id: str, node: str) -> str:
    return f"/api/runs/{run_id}/tasks/{quote(node, safe='')}"


# ---- reads: the records as the queries return them --------------------------------------------


def test_runs_are_the_query_page_newest_first(
    client: TestClient, ui_workspace: Workspace, ui_runs: UIRuns
) -> None:
    response = client.get("/api/runs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == ui_workspace.query(queries.list_runs).model_dump(mode="json")
    ids = [run["run_id"] for run in response.json()["runs"]]
    assert ids[:3] == [ui_runs.failed, ui_runs.second, ui_runs.succeeded]


def test_runs_filter_and_page_with_a_cursor(client: TestClient, ui_runs: UIRuns) -> None:
    failed = client.get("/api/runs", params={"state": "failed"}).json()["runs"]
    assert [r["run_id"] for r in failed] == [ui_runs.failed]
    both = client.get("/api/runs", params={"state": "failed,succeeded", "pipeline": "mapped"})
    assert [r["run_id"] for r in both.json()["runs"]] == [ui_runs.second, ui_runs.succeeded]
    first = client.get("/api/runs", params={"limit": 1, "pipeline": "mapped"}).json()
    assert [r["run_id"] for r in first["runs"]] == [ui_runs.second]
    rest = client.get("/api/runs", params={"pipeline": "mapped", "cursor": first["next_cursor"]})
    assert [r["run_id"] for r in rest.json()["runs"]] == [ui_runs.succeeded]
    assert client.get("/api/runs", params={"since": "2100-01-01T00:00:00"}).json()["runs"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"state": "bogus"}, "unknown run state `bogus`; use one of queued, "),
        ({"limit": "0"}, "query parameter `limit`: Input should be greater than or equal to 1"),
        ({"limit": "many"}, "query parameter `limit`: Input should be a valid integer"),
        ({"since": "yesterday"}, "query parameter `since`: Input should be a valid datetime"),
        ({"cursor": "garbage"}, "cursor `garbage` is not one a page of runs returned"),
    ],
)
def test_bad_run_filters_are_422_naming_the_parameter(
    client: TestClient, params: dict, message: str
) -> None:
    response = client.get("/api/runs", params=params)
    assert response.status_code == 422
    assert response.json()["error"].startswith(message)


def test_one_run_its_graph_metrics_and_tasks(
    client: TestClient, ui_workspace: Workspace, ui_runs: UIRuns
) -> None:
    run_id = ui_runs.succeeded
    detail = client.get(f"/api/runs/{run_id[:6]}")  # a unique prefix
    assert detail.json() == ui_workspace.query(queries.get_run, run_id).model_dump(mode="json")
    assert detail.json()["params"] == {"n": 3, "label": ui_runs.hostile_param}
    graph = client.get(f"/api/runs/{run_id}/graph").json()
    nodes = {node["id"]: node for node in graph["nodes"]}
    assert {"load", "square[0]", "square[2]", ui_runs.hostile_node} <= set(nodes)
    assert nodes["square[1]"]["parent_node"] == "square"
    assert nodes[ui_runs.hostile_node]["tags"] == ["<i>hostile</i>"]
    metrics = client.get(f"/api/runs/{run_id}/metrics").json()
    assert [(m["key"], m["step"], m["value"]) for m in metrics["metrics"]] == [
        ("loss", 0, 0.5),
        ("loss", 1, 0.25),
    ]
    assert metrics["params"][0]["value"] == ui_runs.hostile_param


def test_a_task_with_a_hostile_name_is_served_as_json_verbatim(
    client: TestClient, ui_workspace: Workspace, ui_runs: UIRuns
) -> None:
    response = client.get(node_url(ui_runs.succeeded, ui_runs.hostile_node))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    task = response.json()
    expected = ui_workspace.query(queries.task_detail, ui_runs.succeeded, ui_runs.hostile_node)
    assert task == expected.model_dump(mode="json")
    assert task["node"] == "<script>alert(1)</script>"
    assert task["stdout"] == "<img src=x onerror=alert(1)> <img src=x onerror=alert(1)>\n"
    assert task["metrics"] == {"loss": 0.25}
    mapped = client.get(node_url(ui_runs.second, "square[1]")).json()
    assert mapped["cache_hit"] is True and mapped["map_index"] == 1


def test_a_failed_task_has_its_error_and_traceback(client: TestClient, ui_runs: UIRuns) -> None:
    task = client.get(node_url(ui_runs.failed, "boom")).json()
    assert task["state"] == "failed"
    assert task["error"] == "ValueError: <b>bad</b> value 1"
    assert 'raise ValueError(f"<b>bad</b> value {x}")' in task["traceback"]


def test_unknown_things_are_404_saying_what_exists(client: TestClient, ui_runs: UIRuns) -> None:
    run = client.get("/api/runs/zzzz")
    assert run.status_code == 404
    assert run.json() == {"error": "no run `zzzz`; list runs with `glasspane runs list`"}
    node = client.get(node_url(ui_runs.failed, "nope"))
    assert node.status_code == 404 and "boom" in node.json()["error"]
    pipeline = client.get("/api/pipelines/nope")
    assert pipeline.status_code == 404 and "mapped" in pipeline.json()["error"]
    artifact = client.get("/api/artifacts/" + "0" * 64)
    assert artifact.status_code == 404
    route = client.get("/api/nothing/here")
    assert route.status_code == 404
    assert route.json() == {
        "error": "nothing at /api/nothing/here; see /api/openapi.json for the routes"
    }
    method = client.delete(f"/api/runs/{ui_runs.failed}")
    assert method.status_code == 405 and "does not take DELETE" in method.json()["error"]


@pytest.mark.parametrize(
    "content_hash", ["not-hex!", "ABCDEF0123456789", "abc1234", "a" * 65, "abcd..ef01", "%00" * 8]
)
def test_an_artifact_hash_is_checked_before_any_lookup(
    client: TestClient, content_hash: str
) -> None:
    response = client.get(f"/api/artifacts/{content_hash}")
    assert response.status_code == 422
    assert response.json()["error"].startswith("path parameter `content_hash`: ")


def test_paths_with_dots_never_reach_the_filesystem(client: TestClient) -> None:
    for path in ("/api/artifacts/../../etc/passwd", "/static/../app.py", "/static/%2e%2e/app.py"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "import" not in response.text


def test_an_artifact_by_hash_or_prefix(client: TestClient, ui_runs: UIRuns) -> None:
    full = client.get(f"/api/artifacts/{ui_runs.artifact}").json()
    assert full["content_hash"] == ui_runs.artifact
    assert {"run_id": ui_runs.succeeded, "node": ui_runs.hostile_node, "cached": False} in full[
        "produced_by"
    ]
    assert full["preview"]["kind"] in ("json", "none")
    assert client.get(f"/api/artifacts/{ui_runs.artifact[:12]}").json() == full


def test_lineage_upstream_and_downstream(client: TestClient, ui_runs: UIRuns) -> None:
    node = quote(ui_runs.hostile_node, safe="")
    up = client.get(f"/api/lineage/{ui_runs.succeeded}/{node}").json()
    assert up["direction"] == "upstream"
    assert {"load", "square[0]"} <= {t["node"] for t in up["task_runs"]}
    down = client.get(f"/api/lineage/{ui_runs.succeeded}/load", params={"direction": "downstream"})
    assert ui_runs.hostile_node in {t["node"] for t in down.json()["task_runs"]}
    bad = client.get(f"/api/lineage/{ui_runs.succeeded}/load", params={"direction": "sideways"})
    assert bad.status_code == 422
    assert bad.json()["error"].startswith("query parameter `direction`: Input should be ")


def test_pipelines_versions_and_a_metric_across_runs(
    client: TestClient, ui_workspace: Workspace, ui_flows: Path, ui_runs: UIRuns
) -> None:
    listed = client.get("/api/pipelines").json()
    expected = [p.model_dump(mode="json") for p in ui_workspace.query(queries.pipelines)]
    assert listed == expected
    mapped = next(p for p in listed if p["name"] == "mapped")
    assert mapped["reference"] == f"{ui_flows.resolve()}:mapped"
    assert set(mapped["params_schema"]["properties"]) == {"n", "label"}
    versions = client.get("/api/pipelines/mapped").json()
    assert [v["n_runs"] for v in versions] == [2]
    one = client.get(f"/api/pipelines/mapped/versions/{versions[0]['hash'][:12]}").json()
    assert one == versions[0]
    small = client.get("/api/pipelines/mapped", params={"graphs": "false"}).json()
    assert small[0]["graph"] is None
    loss = client.get("/api/pipelines/mapped/metrics/loss").json()
    assert [(r["run_id"], r["value"]) for r in loss["runs"]] == [
        (ui_runs.succeeded, 0.25),
        (ui_runs.second, 0.25),
    ]


def test_compare_two_runs(client: TestClient, ui_runs: UIRuns) -> None:
    both = client.get("/api/compare", params={"runs": f"{ui_runs.succeeded},{ui_runs.second}"})
    diff = both.json()
    assert diff["same_version"] is True
    assert {"key": "n", "left": 3, "right": 2, "equal": False} in diff["params"]
    one = client.get("/api/compare", params={"runs": ui_runs.succeeded})
    assert one.status_code == 422
    assert one.json()["error"].startswith("query parameter `runs`: String should match pattern")


def test_with_nothing_run_yet_lists_are_empty_and_a_run_is_404(tmp_path: Path) -> None:
    with Workspace(home=tmp_path / "empty") as ws:
        client = TestClient(create_app(ws), base_url="http://127.0.0.1")
        assert client.get("/api/runs").json() == {"runs": [], "next_cursor": None}
        assert client.get("/api/pipelines").json() == []
        run = client.get("/api/runs/abcd")
        assert run.status_code == 404
        assert run.json()["error"].startswith("no glasspane database exists at ")
    assert not (tmp_path / "empty" / "glasspane.db").exists()  # reading created nothing


# ---- launch, retry, cancel: runs in other processes --------------------------------------------


def test_launch_runs_a_pipeline_in_another_process(fresh_workspace: Workspace) -> None:
    client = TestClient(create_app(fresh_workspace), base_url="http://127.0.0.1")
    response = client.post("/api/pipelines/mapped/launch", json={"params": {"n": 4, "label": "x"}})
    assert response.status_code == 202
    run_id = response.json()["run_id"]
    run = wait_over(fresh_workspace, run_id)
    assert run["state"] == "succeeded" and run["trigger"] == "ui"
    assert run["output"] == 0 + 1 + 4 + 9
    assert run["params"] == {"n": 4, "label": "x"}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"params": {"n": "many"}}, 422, "`n`"),
        ({"params": {"bogus": 1}}, 422, "bogus"),
        ({"parameters": {}}, 422, "body field `parameters`: Extra inputs are not permitted"),
        (None, 422, "the request body is not JSON"),
    ],
)
def test_bad_launches_are_refused_and_launch_nothing(
    fresh_workspace: Workspace, body: dict | None, status: int, message: str
) -> None:
    client = TestClient(create_app(fresh_workspace), base_url="http://127.0.0.1")
    before = fresh_workspace.query(queries.list_runs).runs
    if body is None:
        response = client.post("/api/pipelines/mapped/launch", content=b"{not json")
    else:
        response = client.post("/api/pipelines/mapped/launch", json=body)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert fresh_workspace.query(queries.list_runs).runs == before
    unknown = client.post("/api/pipelines/nope/launch", json={})
    assert unknown.status_code == 404
    assert unknown.json()["error"].startswith("no pipeline named `nope` has run here")


def test_retry_gives_secrets_again_and_resumes_in_another_process(
    fresh_workspace: Workspace, flow: Callable[[str], Any], tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    old = fresh_workspace.run(
        flow("guarded"), {"marker": str(marker), "api_key": "k-123"}, raise_on_failure=False
    )
    assert old.state == "failed"
    marker.touch()
    client = TestClient(create_app(fresh_workspace), base_url="http://127.0.0.1")
    missing = client.post(f"/api/runs/{old.run_id}/retry")
    assert missing.status_code == 422
    assert "api_key" in missing.json()["error"]
    response = client.post(f"/api/runs/{old.run_id}/retry", json={"secrets": {"api_key": "k-12"}})
    assert response.status_code == 202
    run = wait_over(fresh_workspace, response.json()["run_id"])
    assert run["state"] == "succeeded" and run["output"] == 4
    assert run["resumed_from"] == old.run_id


def test_a_live_run_cannot_be_retried_and_can_be_cancelled(
    fresh_workspace: Workspace, ui_flows: Path, tmp_path: Path
) -> None:
    client = TestClient(create_app(fresh_workspace), base_url="http://127.0.0.1")
    run_id = fresh_workspace.launch(f"{ui_flows}:live", {"gate": str(tmp_path / "never")})
    for event in fresh_workspace.follow(run_id, timeout=120):
        if event.kind == "task_started":
            break
    busy = client.post(f"/api/runs/{run_id}/retry")
    assert busy.status_code == 409
    assert run_id in busy.json()["error"]
    cancel = client.post(f"/api/runs/{run_id[:8]}/cancel")
    assert cancel.json() == {"run_id": run_id, "cancelled": True}
    assert wait_over(fresh_workspace, run_id)["state"] == "cancelled"
    again = client.post(f"/api/runs/{run_id}/cancel")
    assert again.json() == {"run_id": run_id, "cancelled": False}  # already over
    assert client.post("/api/runs/zzzz/cancel").status_code == 404


def test_a_succeeded_run_is_not_retried(client: TestClient, ui_runs: UIRuns) -> None:
    response = client.post(f"/api/runs/{ui_runs.succeeded}/retry")
    assert response.status_code == 400
    assert "there is nothing to resume" in response.json()["error"]
