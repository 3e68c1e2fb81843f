"""The schedule pages in a real browser: Playwright driving Debian's chromium against
`glasspane server` over a home with registered schedules. A user opens Schedules from the
nav bar, clicks through to a schedule, pauses it and sees it paused, resumes it; the hostile
schedule name and parameter stay text. Screenshots land in ``GLASSPANE_SCREENSHOTS``
(default: the test's tmp dir)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_process import serve, watched_page
from playwright.sync_api import expect

from glasspane import Schedule, Workspace

CHROMIUM = "/usr/bin/chromium"
HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_PARAM = "<img src=x onerror=alert(1)>"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)",
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, ui_flows: Path) -> Iterator[str]:
    """`glasspane server` (the real command, in its own process) over a home with three
    schedules that do not fire while the test runs; its base URL."""
    from glasspane.scheduling import register

    home = tmp_path_factory.mktemp("browser-schedules-home")
    ref = f"{ui_flows}:mapped"
    with Workspace(home=home) as ws:
        register(ws.store, ref, Schedule(name="nightly", cron="0 3 * * *",
                                         timezone="Europe/Berlin", params={"n": 2}))  # fmt: skip
        register(ws.store, ref, Schedule(name=HOSTILE_NAME, cron="0 4 1 1 *",
                                         params={"label": HOSTILE_PARAM}))  # fmt: skip
        register(ws.store, f"{ui_flows}:failing", Schedule(name="then", after="mapped"))
    yield from serve(home, "server")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page that fails the test if a script a schedule carries runs (an alert dialog), and
    on any console error (a CSP violation included) or error response."""
    yield from watched_page(browser, "a schedule")


def shot(page: Any, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("GLASSPANE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=False)


def test_list_click_through_pause_and_resume(served: str, page: Any, tmp_path: Path) -> None:
    page.goto(served + "/")
    page.locator("#nav-schedules").click()
    page.wait_for_url("**/schedules")
    rows = page.locator("#schedules-table tbody tr")
    expect(rows).to_have_count(3)
    nightly = page.locator("tr[data-schedule='nightly']")
    expect(nightly).to_contain_text("0 3 * * *")
    expect(nightly).to_contain_text("Europe/Berlin")
    expect(nightly.locator("[data-schedule-state]")).to_have_text("active")
    expect(page.locator("#schedules-table")).to_contain_text(HOSTILE_NAME)  # as text
    shot(page, "schedules", tmp_path)

    nightly.locator("a.schedule-link").click()
    page.wait_for_url("**/schedules/nightly")
    expect(page.locator("#schedule-state")).to_have_text("active")
    expect(page.locator("#schedule-upcoming li")).to_have_count(5)
    page.locator("#pause-button").click()
    page.wait_for_url("**/schedules/nightly?changed=paused")
    expect(page.locator("#schedule-state")).to_have_text("paused")
    expect(page.locator("#schedule-notice")).to_contain_text("Paused")
    expect(page.locator("#schedule-upcoming")).to_contain_text("None while paused")
    shot(page, "schedule-paused", tmp_path)

    page.locator("#nav-schedules").click()
    expect(page.locator("tr[data-schedule='nightly'] [data-schedule-state]")).to_have_text("paused")
    page.locator("tr[data-schedule='nightly'] a.schedule-link").click()
    page.locator("#resume-button").click()
    page.wait_for_url("**/schedules/nightly?changed=resumed")
    expect(page.locator("#schedule-state")).to_have_text("active")


def test_a_hostile_schedule_is_text(served: str, page: Any) -> None:
    page.goto(served + "/schedules")
    page.get_by_role("link", name=HOSTILE_NAME).click()
    expect(page.locator("#schedule-name")).to_have_text(HOSTILE_NAME)
    expect(page.locator("#schedule-params")).to_contain_text(HOSTILE_PARAM)
    assert page.locator("img[src='x']").count() == 0
    page.locator("#pause-button").click()
    expect(page.locator("#schedule-state")).to_have_text("paused")
    expect(page.locator("#schedule-name")).to_have_text(HOSTILE_NAME)
