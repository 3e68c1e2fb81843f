"""The model pages in a real browser: Playwright driving Debian's chromium against `glasspane ui`
over a home where a pipeline registered two versions of a model. A user opens Models from the
nav bar, clicks through to the model and sees its versions, the alias badge on the champion,
the run's metric and the deployment; the metadata value that is markup stays text.
Screenshots land in ``GLASSPANE_SCREENSHOTS`` (default: the test's tmp dir)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_process import serve, watched_page
from playwright.sync_api import expect

import glasspane
from glasspane import Workspace, pipeline, task

CHROMIUM = "/usr/bin/chromium"
HOSTILE = "<script>alert(1)</script>"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)",
)


@task
def fit(c: float, alias: str | None = None) -> float:
    glasspane.log_metric("accuracy", 0.5 + c / 10)
    glasspane.register_model("churn", {"c": c}, alias=alias, metadata={"note": HOSTILE})
    return c


@pipeline
def retrain(c: float = 1.0, alias: str | None = None):
    return fit(c, alias)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`glasspane ui` (the real command, in its own process) over a home where ``churn`` has
    two versions, the second ``champion`` and deployed; its base URL."""
    home = tmp_path_factory.mktemp("browser-models-home")
    with Workspace(home=home) as ws:
        ws.run(retrain, {"c": 0.5}, executor="threads")
        ws.run(retrain, {"c": 2.0, "alias": "champion"}, executor="threads")
        ws.store.save_deployment(
            {"name": "churn-prod", "target": "local", "model_name": "churn", "model_version": 2,
             "ref": "churn@champion", "url": "http://127.0.0.1:5001", "pid": None,
             "state": "serving", "details": {}, "run_id": None},
            "deployed",
        )  # fmt: skip
    yield from serve(home, "ui")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page that fails the test if a script the metadata carries runs (an alert dialog), and
    on any console error (a CSP violation included) or error response."""
    yield from watched_page(browser, "a model's metadata")


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("GLASSPANE_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_user_finds_the_champion_version_of_a_model(
    served: str, page: Any, tmp_path: Path
) -> None:
    page.goto(served + "/")
    page.locator("#nav-models").click()
    expect(page).to_have_url(served + "/models")
    row = page.locator('tr[data-model="churn"]')
    expect(row.locator(".badge.alias")).to_have_text("champion")
    expect(row.locator(".deployments-count")).to_contain_text("1")
    page.screenshot(path=str(shots(tmp_path) / "ui-models.png"), full_page=True)
    row.locator("a.model-link").click()
    expect(page).to_have_url(served + "/models/churn")
    expect(page.locator("#model-name")).to_have_text("churn")
    expect(page.locator("#versions-table tbody tr")).to_have_count(2)
    newest = page.locator("#versions-table tbody tr").first
    expect(newest).to_have_attribute("data-version", "2")
    expect(newest.locator('.badge.alias[data-alias="champion"]')).to_be_visible()
    expect(newest.locator('[data-metric="accuracy"]')).to_contain_text("accuracy = 0.7")
    expect(newest.locator('[data-deployment="churn-prod"]')).to_contain_text("serving")
    expect(newest.locator(".meta")).to_contain_text(HOSTILE)  # shown as text
    expect(page.locator('tr[data-version="1"] .badge.alias')).to_have_count(0)
    page.screenshot(path=str(shots(tmp_path) / "ui-model.png"), full_page=True)
    newest.locator("a.task-link").click()
    expect(page).to_have_url(re.compile(r"/runs/\w+/tasks/fit$"))
