"""The model pages (``/models``, ``/models/{name}``) and their JSON API, over a real registry:
versions registered by a pipeline run on the threads executor, an alias set by hand, a link to
MLflow's registry and a deployment serving one version. A metadata value that is markup is
shown as text."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from page_checks import by_id, by_id_html, get_page
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from starlette.testclient import TestClient

import glasspane
from glasspane import Workspace, pipeline, queries, task
from glasspane.config import Settings
from glasspane.ui.app import create_app

HOSTILE = "<script>alert(1)</script>"
HOSTILE_IMG = "<img src=x onerror=alert(1)>"
DEPLOY_URL = "http://127.0.0.1:5001"
MLFLOW_URL = "http://127.0.0.1:5000/#/models/iris/versions/7"


@task
def prepare(n: int) -> int:
    glasspane.log_metric("rows", float(n))
    return n


@task
def train(n: int, c: float, alias: str | None = None) -> float:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(C=c, max_iter=500).fit(X[:n], y[:n])
    for step, loss in enumerate((0.9, 0.4)):
        glasspane.log_metric("loss", loss, step=step)
    glasspane.log_metric("accuracy", 0.5 + c / 10)
    glasspane.register_model("iris", model, alias=alias, metadata={"C": c, "note": HOSTILE})
    return c


@task
def baseline(n: int, c: float) -> int:
    glasspane.register_model("baseline", {"predict": "majority"})
    return n


@pipeline
def retrain(c: float = 1.0, alias: str | None = None):
    n = prepare(150)
    return baseline(n, train(n, c, alias))


@dataclass(frozen=True)
class Registry:
    ws: Workspace
    client: TestClient
    first: str
    second: str


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Two runs of ``retrain`` (iris v1 and v2@champion, baseline v1 and v2), ``staging`` on
    iris v1, iris v2 linked to MLflow's registry and deployed as ``iris-prod``."""
    home = tmp_path_factory.mktemp("models-home")
    with Workspace(Settings(home=home)) as ws:
        first = ws.run(retrain, {"c": 0.5}, executor="threads").run_id
        second = ws.run(retrain, {"c": 2.0, "alias": "champion"}, executor="threads").run_id
        ws.store.set_model_alias("iris", "staging", 1)
        ws.store.link_model("iris", 2, "mlflow", "iris", "7", uri=MLFLOW_URL)
        deployment = {
            "name": "iris-prod", "target": "local", "model_name": "iris", "model_version": 2,
            "ref": "iris@champion", "url": DEPLOY_URL, "pid": None, "state": "serving",
            "details": {}, "run_id": None,
        }  # fmt: skip
        ws.store.save_deployment(deployment, "deployed")
        with TestClient(create_app(ws), base_url="http://127.0.0.1") as client:
            yield Registry(ws, client, first, second)


def row_of(page: str, attribute: str, value: str) -> str:
    start = page.index(f'<tr {attribute}="{html.escape(value)}"')
    return page[start : page.index("</tr>", start)]


def test_the_list_shows_each_model_its_latest_version_aliases_and_deployments(
    registry: Registry,
) -> None:
    page = get_page(registry.client, "/models")
    assert 'id="nav-models" class="active"' in page
    assert len(re.findall(r"<tr data-model=", page)) == 2
    iris = row_of(page, "data-model", "iris")
    assert 'href="/models/iris"' in iris
    assert '<a href="/models/iris#v2">2</a>' in iris
    assert re.findall(r'data-alias="(\w+)"', iris) == ["champion", "staging"]
    assert "v2" in iris and "v1" in iris
    assert re.search(r'deployments-count">1 <span class="muted small">\(1 serving\)', iris)
    baseline_row = row_of(page, "data-model", "baseline")
    assert 'class="num deployments-count">0</td>' in baseline_row


def test_a_model_shows_its_versions_newest_first_with_where_they_came_from(
    registry: Registry,
) -> None:
    page = get_page(registry.client, "/models/iris")
    assert by_id(page, "model-name") == "iris"
    assert re.findall(r'<tr id="v(\d+)" data-version=', page) == ["2", "1"]
    detail = registry.ws.query(queries.model, "iris")
    v2, v1 = detail.versions
    row = row_of(page, "id", "v2")
    assert re.findall(r'data-alias="(\w+)"', row) == ["champion"]
    assert f'href="/runs/{registry.second}"' in row
    assert f'href="/runs/{registry.second}/tasks/train"' in row
    assert f'href="/artifacts/{v2.content_hash}"' in row
    assert "LogisticRegression" in row
    assert re.findall(r'data-metric="(\w+)"', row) == ["accuracy", "loss"]  # train's own
    assert re.search(r"accuracy</span> = <strong class=\"mono\">0.7</strong>", row)
    assert re.search(r"loss</span> = <strong class=\"mono\">0.4</strong>", row)  # the last
    assert f'<a href="{MLFLOW_URL}" rel="noopener noreferrer">iris v7</a>' in row
    assert "MLflow: " in row
    assert '<li data-deployment="iris-prod">' in row
    assert f'href="{DEPLOY_URL}"' in row and 'class="badge deploy-serving">serving<' in row
    old = row_of(page, "id", "v1")
    assert re.findall(r'data-alias="(\w+)"', old) == ["staging"]
    assert f'href="/runs/{registry.first}/tasks/train"' in old
    assert "iris-prod" not in old and "MLflow" not in old
    assert f'href="/artifacts/{v1.content_hash}"' in old


def test_a_model_lists_its_deployments_with_their_history(registry: Registry) -> None:
    page = get_page(registry.client, "/models/iris")
    table = by_id_html(page, "deployments-table")
    row = row_of(table, "data-deployment", "iris-prod")
    assert "local" in row and "iris@champion" in row and f'href="{DEPLOY_URL}"' in row
    assert 'data-deployment-state="serving"' in row
    assert re.findall(r'<li data-action="(\w+)">', row) == ["deployed"]
    assert "deployments-empty" not in page
    other = get_page(registry.client, "/models/baseline")
    assert "No deployment of this model yet" in by_id(other, "deployments-empty")


def test_metrics_are_the_runs_when_the_registering_task_logged_none(registry: Registry) -> None:
    second, first = registry.ws.query(queries.model, "baseline").versions
    assert [(m.key, m.value, m.node) for m in first.metrics] == [
        ("accuracy", 0.55, "train"),
        ("loss", 0.4, "train"),
        ("rows", 150.0, "prepare"),
    ]
    # in the second run `prepare` was a cache hit: it did not run, so it logged nothing
    assert [(m.key, m.value, m.node) for m in second.metrics] == [
        ("accuracy", 0.7, "train"),
        ("loss", 0.4, "train"),
    ]
    page = get_page(registry.client, "/models/baseline")
    assert '<span class="muted small">(prepare)</span>' in row_of(page, "id", "v1")


def test_a_metadata_value_that_is_markup_is_text(registry: Registry) -> None:
    page = get_page(registry.client, "/models/iris")  # get_page: no raw payload on the page
    assert html.escape(HOSTILE) in row_of(page, "id", "v2")


def test_an_unknown_model_is_a_404_naming_the_registered_ones(registry: Registry) -> None:
    page = get_page(registry.client, "/models/churn", status=404)
    message = (
        "no model `churn` is registered (registered: `baseline`, `iris`); register one in a "
        "task with glasspane.register_model('churn', model)"
    )
    assert html.unescape(by_id(page, "error-message")) == message
    assert 'href="/models"' in by_id_html(page, "error-back")
    hostile = get_page(registry.client, "/models/" + quote(HOSTILE_IMG, safe=""), 404)
    assert f"no model `{html.escape(HOSTILE_IMG)}`" in hostile  # get_page: and never raw
    response = registry.client.get("/api/models/churn")
    assert response.status_code == 404 and response.json() == {"error": message}


def test_the_api_serves_the_same_records(registry: Registry) -> None:
    listed = registry.client.get("/api/models").json()
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in listed] == [
        ("baseline", 2, {}),
        ("iris", 2, {"champion": 2, "staging": 1}),
    ]
    assert listed[1]["n_deployments"] == 1 and listed[1]["n_serving"] == 1
    one = registry.client.get("/api/models/iris").json()
    assert one == registry.ws.query(queries.model, "iris").model_dump(mode="json")
    v2 = one["versions"][0]
    assert (v2["version"], v2["run_id"], v2["node_id"]) == (2, registry.second, "train")
    assert v2["metadata"] == {"C": 2.0, "note": HOSTILE}
    assert v2["links"] == [
        {"registry": "mlflow", "external_name": "iris", "external_version": "7", "uri": MLFLOW_URL}
    ]
    assert v2["deployments"] == [
        {"name": "iris-prod", "target": "local", "url": DEPLOY_URL, "state": "serving"}
    ]
    deployments = registry.client.get("/api/deployments").json()
    assert [(d["name"], d["model_name"], d["model_version"], d["state"]) for d in deployments] == [
        ("iris-prod", "iris", 2, "serving")
    ]
    assert [e["action"] for e in deployments[0]["history"]] == ["deployed"]
    assert registry.client.get("/api/models/no%20such").status_code == 422


def test_with_no_model_the_pages_say_how_to_register_one(
    fresh_workspace: Workspace, tmp_path: Path
) -> None:
    with TestClient(create_app(fresh_workspace), base_url="http://127.0.0.1") as client:
        page = get_page(client, "/models")
        assert "glasspane.register_model(" in by_id(page, "models-empty")
        assert client.get("/api/models").json() == []
        assert client.get("/api/deployments").json() == []
    empty = Workspace(Settings(home=tmp_path / "empty"))  # no database yet
    with empty, TestClient(create_app(empty), base_url="http://127.0.0.1") as client:
        page = get_page(client, "/models")
        assert by_id(page, "models-empty")
        assert client.get("/api/models").json() == []
