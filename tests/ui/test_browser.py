"""The web UI in a real browser: Playwright driving Debian's chromium against `glasspane ui`
serving a home with real runs (the pipelines of ``ui_flows``).

A user opens the runs list, opens a run, clicks a node and reads its output, launches a run
from the pipeline's form and watches its node turn green without reloading, opens the
compare view; none of the hostile values the runs carry (a task named ``<script>...``, a
parameter ``<img src=x onerror=...>``, output and an error message with markup) ever runs
as script. Screenshots land in ``GLASSPANE_SCREENSHOTS`` (default: the test's tmp dir);
docs/ui.md shows the best of them.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from glasspane import Workspace

CHROMIUM = "/usr/bin/chromium"

GATED = """
import time
from pathlib import Path

from glasspane import pipeline, task


def wait(gate: str) -> None:
    deadline = time.time() + 120
    while not Path(gate).exists() and time.time() < deadline:
        time.sleep(0.02)


@task(cache=False)
def prepare(gate: str) -> str:
    wait(gate + ".prepare")
    return gate


@task(cache=False)
def train(gate: str, epochs: int) -> int:
    wait(gate + ".train")
    return epochs


@pipeline
def gated(gate: str, epochs: int = 3):
    return train(prepare(gate), epochs)
"""

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)",
)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, flow: Callable[[str], Any]
) -> Iterator[dict[str, Any]]:
    """`glasspane ui` (the real command, in its own process) over a home with real runs."""
    home = tmp_path_factory.mktemp("browser-home")
    gates = tmp_path_factory.mktemp("gates")
    for step in ("prepare", "train"):
        (gates / f"warm.{step}").touch()
    (gates / "gated.py").write_text(GATED)
    with Workspace(home=home) as ws:
        first = ws.run(flow("mapped"), {"n": 3}).run_id
        second = ws.run(flow("mapped"), {"n": 4}).run_id
        failed = ws.run(flow("failing"), {}, raise_on_failure=False).run_id
        gated = __import__("glasspane.loader").loader.load_pipeline(f"{gates / 'gated.py'}:gated")
        ws.run(gated, {"gate": str(gates / "warm")})  # stores its parameters' form
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GLASSPANE_HOME": str(home)}
    for name in ("GLASSPANE_DATABASE_URL", "GLASSPANE_ARTIFACT_ROOT", "GLASSPANE_UI_TOKEN"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "glasspane.cli.main", "ui", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    assert line == f"glasspane UI: http://127.0.0.1:{port}/", line
    yield {
        "base": f"http://127.0.0.1:{port}",
        "first": first,
        "second": second,
        "failed": failed,
        "gates": gates,
    }
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    """A page that fails the test if any script a run carries executes (an alert dialog, or
    the payload's side effect), and on any console error (a CSP violation included)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on(
        "console",
        lambda m: (
            errors.append(f"{m.text} ({m.location.get('url')})") if m.type == "error" else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "response",
        lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    yield page
    assert not dialogs, f"script from a run executed: alert({dialogs})"
    assert not errors, f"errors in the browser console: {errors}"
    context.close()


def shot(page: Any, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("GLASSPANE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=False)


def test_runs_list_run_page_and_task_panel(served: dict, page: Any, tmp_path: Path) -> None:
    page.goto(served["base"] + "/")
    rows = page.locator("#runs-table tbody tr")
    assert rows.count() >= 4
    assert "failed" in page.locator("#runs-table").inner_text()
    shot(page, "runs", tmp_path)

    page.locator(f"#runs-table a[href='/runs/{served['first']}']").first.click()
    page.wait_for_url(f"**/runs/{served['first']}")
    assert page.locator("#run-state").inner_text().strip().lower() == "succeeded"
    nodes = page.locator("#run-graph [data-node]")
    assert nodes.count() >= 3
    assert page.locator("#run-graph [data-node='load']").get_attribute("data-state") == "succeeded"
    shot(page, "run", tmp_path)

    # click a node: its panel opens beside the graph, with what the task printed, as text
    page.locator("#run-graph [data-node='load']").first.click()
    panel = page.locator("#task-panel")
    panel.wait_for(state="visible")
    expect(panel).to_contain_text("loaded", timeout=10000)
    assert "<b>loaded</b> 3" in panel.inner_text()  # markup shown as text, not rendered
    assert page.url.endswith(f"/runs/{served['first']}")  # no navigation
    shot(page, "task-panel", tmp_path)

    # the hostile task: its name, output and parameter are text; nothing executes
    page.goto(served["base"] + f"/runs/{served['first']}")
    assert "<script>alert(1)</sc" in page.locator("#run-graph").inner_text()  # shortened
    assert "<img src=x onerror=alert(1)>" in page.locator("#run-params").inner_text()
    assert page.locator("img[src='x']").count() == 0
    page.goto(served["base"] + f"/runs/{served['failed']}")
    assert "<b>bad</b> value 1" in page.locator("body").inner_text()
    assert page.locator("b", has_text="bad").count() == 0


def test_launch_from_the_form_and_watch_it_turn_green(
    served: dict, page: Any, tmp_path: Path
) -> None:
    gate = served["gates"] / "launch"
    page.goto(served["base"] + "/pipelines/gated")
    form = page.locator("#launch-form")
    form.locator("[name='gate']").fill(str(gate))
    form.locator("[name='epochs']").fill("5")
    form.locator("button[type='submit'], input[type='submit']").first.click()
    page.wait_for_url("**/runs/*")

    prepare = page.locator("#run-graph [data-node='prepare']").first
    train = page.locator("#run-graph [data-node='train']").first
    expect(prepare).to_have_attribute("data-state", "running", timeout=60000)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    shot(page, "live-running", tmp_path)
    began = time.monotonic()
    Path(f"{gate}.prepare").touch()
    expect(prepare).to_have_attribute("data-state", "succeeded", timeout=30000)
    seen_after = time.monotonic() - began
    expect(train).to_have_attribute("data-state", "running", timeout=30000)
    assert page.evaluate("window.__sameDocument") is True  # updated live, not reloaded
    assert seen_after < 5, seen_after
    Path(f"{gate}.train").touch()
    expect(page.locator("#run-state")).to_have_text(re.compile("succeeded", re.I), timeout=30000)
    expect(train).to_have_attribute("data-state", "succeeded", timeout=30000)
    shot(page, "live-succeeded", tmp_path)


def test_compare_two_runs(served: dict, page: Any, tmp_path: Path) -> None:
    page.goto(served["base"] + f"/compare?runs={served['first']},{served['second']}")
    table = page.locator("#compare-table")
    table.wait_for(state="visible")
    text = page.locator("#compare-params").inner_text()
    assert "n" in text and "3" in text and "4" in text
    assert page.locator("#compare-nodes").count() == 1
    shot(page, "compare", tmp_path)
