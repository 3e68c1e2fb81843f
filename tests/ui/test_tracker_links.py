"""A run's runs in the trackers on its page and in the API: a pipeline run with the mlflow
tracker on (a real ``mlflow server``) links to its MLflow run ("MLflow run ↗"), and the
pipeline page lists that MLflow run with a link back to the glasspane run."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from page_checks import by_id_html, get_page
from starlette.testclient import TestClient

from glasspane import Workspace
from glasspane.config import Settings
from glasspane.ui.app import create_app


@pytest.fixture
def tracked_run(
    mlflow_uri: str, tmp_path: Path, flow: Callable[[str], Any]
) -> Iterator[tuple[TestClient, str]]:
    experiment = f"links-{uuid.uuid4().hex[:8]}/{{pipeline}}"
    settings = Settings(
        home=tmp_path / "home",
        trackers=["mlflow"],
        tracker_options={"mlflow": {"experiment": experiment}},
    )
    ws = Workspace(settings)
    try:
        run_id = ws.run(flow("mapped"), {"n": 2}).run_id
        with TestClient(create_app(ws), base_url="http://127.0.0.1") as client:
            yield client, run_id
    finally:
        ws.close()


def test_the_run_page_links_to_its_mlflow_run(
    tracked_run: tuple[TestClient, str], mlflow_uri: str
) -> None:
    client, run_id = tracked_run
    links = client.get(f"/api/runs/{run_id}/trackers")
    assert links.status_code == 200, links.text
    (link,) = links.json()
    assert link["tracker"] == "mlflow" and link["state"] == "delivered" and link["error"] is None
    external = link["external_id"]
    assert link["url"].startswith(f"{mlflow_uri}/#/experiments/") and link["url"].endswith(external)
    html = get_page(client, f"/runs/{run_id}")
    header = by_id_html(html, "run-tracker-mlflow")
    assert f'href="{link["url"]}"' in header and "MLflow run ↗" in header
    assert f'href="/compare?runs={run_id},mlflow:{external}"' in header
    page = get_page(client, "/pipelines/mapped")  # the pipeline page lists it, linked back
    row = re.search(rf'<tr data-external-id="{external}" data-run-id="{run_id}">.*?</tr>',
                    by_id_html(page, "tracker-mlflow-runs"), re.S)  # fmt: skip
    assert row is not None and f'href="/runs/{run_id}"' in row.group(0)
    compare = get_page(client, f"/compare?runs={run_id},mlflow:{external}")
    params = by_id_html(compare, "compare-params")
    assert 'data-param="n" data-equal="true"' in params  # 2 and MLflow's "2"
    assert 'data-param="label" data-equal="true"' in params
    metrics = by_id_html(compare, "compare-metrics")  # logged in the task's nested run
    assert '<tr class="" data-metric="loss">' in metrics and "0.25" in metrics


def test_a_run_without_trackers_has_no_links(client: TestClient, ui_runs: Any) -> None:
    assert client.get(f"/api/runs/{ui_runs.succeeded}/trackers").json() == []
    assert 'id="run-tracker-' not in get_page(client, f"/runs/{ui_runs.succeeded}")
    missing = client.get("/api/runs/ffffffffffff/trackers")
    assert missing.status_code == 404 and "ffffffffffff" in missing.json()["error"]
