"""The schedule pages (``/schedules``, ``/schedules/{name}``) and their JSON API, over a real
store holding schedules and ticks: what fires when (UTC and the schedule's zone), what each
fire time became, Pause and Resume through forms and the API, hostile names and params shown
as text."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
from page_checks import by_id, by_id_html, get_page, post
from starlette.testclient import TestClient

from glasspane import Schedule, Workspace, queries
from glasspane.scheduling import register
from glasspane.ui.app import create_app

UTC = timezone.utc
#: a schedule name that is markup, with a slash in it, and a param value that is markup (both
#: are payloads ``get_page`` checks no page carries raw)
HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_PARAM = "<img src=x onerror=alert(1)>"


@dataclass(frozen=True)
class Scheduled:
    ws: Workspace
    client: TestClient
    run_id: str
    fires: list[datetime]


@pytest.fixture
def scheduled(fresh_workspace: Workspace, ui_flows: Path) -> Iterator[Scheduled]:
    """``fresh_workspace`` with four schedules of ``ui_flows`` and three ticks of ``nightly``:
    one launched (the run ``mapped`` made there), one skipped, one failed."""
    ws, ref = fresh_workspace, f"{ui_flows}:mapped"
    params = {"n": 2, "label": HOSTILE_PARAM}
    register(ws.store, ref, Schedule(name="nightly", cron="0 3 * * *",
                                     timezone="Europe/Berlin", params=params))  # fmt: skip
    register(ws.store, ref, Schedule(name=HOSTILE_NAME, every="15m"))
    register(ws.store, ref, Schedule(name="hourly", every="1h", paused=True))
    register(ws.store, f"{ui_flows}:failing", Schedule(name="then", after="mapped"))
    run_id = ws.query(queries.list_runs).runs[0].run_id
    base = datetime(2025, 3, 1, 2, tzinfo=UTC)
    fires = [base + timedelta(days=d) for d in range(3)]
    for at in fires:
        assert ws.store.claim_tick("nightly", at)
    ws.store.finish_tick("nightly", fires[0], "launched", run_id=run_id)
    ws.store.finish_tick("nightly", fires[1], "skipped", reason="`max_active` 1 reached")
    ws.store.finish_tick("nightly", fires[2], "failed", reason="launching failed: <b>bad</b>")
    with TestClient(create_app(ws), base_url="http://127.0.0.1") as client:
        yield Scheduled(ws, client, run_id, fires)


def row_of(page: str, name: str) -> str:
    start = page.index(f'<tr data-schedule="{html.escape(name)}"')
    return page[start : page.index("</tr>", start)]


def test_the_list_shows_each_schedule_its_timing_state_and_runs(scheduled: Scheduled) -> None:
    page = get_page(scheduled.client, "/schedules")
    assert 'id="nav-schedules" class="active"' in page
    assert len(re.findall(r"<tr data-schedule=", page)) == 4
    nightly = row_of(page, "nightly")
    assert 'href="/schedules/nightly"' in nightly and 'href="/pipelines/mapped"' in nightly
    assert 'cron <code class="mono">0 3 * * *</code>' in nightly and "Europe/Berlin" in nightly
    assert 'data-schedule-state="active"' in nightly
    # the next fire time in UTC, and as Berlin's wall clock shows it (03:00, CET or CEST)
    next_fire = scheduled.ws.query(queries.schedule, "nightly").next_fire_at
    assert next_fire is not None and next_fire.strftime("%Y-%m-%d %H:%M:%S UTC") in nightly
    assert re.search(r'<span class="zoned small">\d{4}-\d\d-\d\d 03:00:00 CES?T</span>', nightly)
    assert 'href="/?schedule=nightly"' in nightly
    assert 'data-schedule-state="paused"' in row_of(page, "hourly")
    assert 'every <code class="mono">1h</code>' in row_of(page, "hourly")
    then = row_of(page, "then")
    assert "after each successful run of" in then and "on an upstream run" in then
    hostile = row_of(page, HOSTILE_NAME)
    assert f'href="/schedules/{quote(HOSTILE_NAME, safe="")}"' in hostile
    assert html.escape(HOSTILE_NAME) in hostile


def test_a_schedule_page_shows_definition_next_fires_and_ticks(scheduled: Scheduled) -> None:
    page = get_page(scheduled.client, "/schedules/nightly")
    assert by_id(page, "schedule-name") == "nightly"
    assert by_id(page, "schedule-state") == "active"
    assert "0 3 * * *" in by_id(page, "schedule-when")
    assert by_id(page, "schedule-catchup") == "latest"
    params = by_id_html(page, "schedule-params")
    assert html.escape(HOSTILE_PARAM) in params and "<img" not in params
    upcoming = re.findall(r"<li>(.*?)</li>", by_id_html(page, "schedule-upcoming"))
    assert len(upcoming) == 5
    assert all(re.search(r"\d\d:00:00 UTC.*03:00:00 CES?T", item) for item in upcoming)
    ticks = re.findall(r'<tr data-tick-state="(\w+)"', page)
    assert ticks == ["failed", "skipped", "launched"]  # latest fire time first
    launched = page[page.index('data-tick-state="launched"') :]
    assert f'href="/runs/{scheduled.run_id}"' in launched[: launched.index("</tr>")]
    assert "<code>max_active</code> 1 reached" in page  # the reason, its names as code
    assert "launching failed: &lt;b&gt;bad&lt;/b&gt;" in page
    assert "2025-03-03 02:00:00 UTC" in page and "2025-03-03 03:00:00 CET" in page
    assert 'action="/schedules/nightly/pause"' in page and 'id="resume-form"' not in page
    assert 'id="schedule-runs"' in page and 'href="/?schedule=nightly"' in page


def test_paused_and_after_schedules_have_no_next_fire_times(scheduled: Scheduled) -> None:
    hourly = get_page(scheduled.client, "/schedules/hourly")
    assert by_id(hourly, "schedule-state") == "paused"
    assert "None while paused" in by_id(hourly, "schedule-upcoming")
    assert 'action="/schedules/hourly/resume"' in hourly and 'id="pause-form"' not in hourly
    then = get_page(scheduled.client, "/schedules/then")
    assert "after each successful run of mapped" in by_id(then, "schedule-when")
    assert 'id="ticks-table"' not in then  # no fire times: the upstream runs it reacted to
    assert by_id(then, "triggers-empty").startswith("No successful run of mapped yet")


def test_an_after_schedule_page_lists_the_upstream_runs_and_what_they_launched(
    scheduled: Scheduled,
) -> None:
    ws, upstream = scheduled.ws, scheduled.run_id
    assert ws.store.claim_after_trigger("then", upstream)
    ws.store.finish_after_trigger("then", upstream, "launched", run_id="down00000001")
    assert ws.store.claim_after_trigger("then", "up000000002")
    ws.store.finish_after_trigger("then", "up000000002", "skipped", reason="<b>busy</b>")
    page = get_page(scheduled.client, "/schedules/then")
    start = page.index('id="triggers-table"')
    table = page[start : page.index("</table>", start)]
    assert f'href="/runs/{upstream}"' in table and 'href="/runs/down00000001"' in table
    assert "launched" in table and "skipped" in table and "&lt;b&gt;busy&lt;/b&gt;" in table
    detail = scheduled.client.get("/api/schedules/then").json()
    assert [(t["upstream_run_id"], t["state"]) for t in detail["triggers"]] == [
        ("up000000002", "skipped"), (upstream, "launched"),
    ]  # fmt: skip


def test_an_unknown_schedule_is_a_404_page_naming_the_schedules(scheduled: Scheduled) -> None:
    page = get_page(scheduled.client, "/schedules/nighty", status=404)
    assert by_id(page, "error-message") == (
        f"no schedule `nighty`; the schedules are: {html.escape(HOSTILE_NAME)}, hourly, "
        "nightly, then; sync the pipeline that declares it to register it"
    )
    assert 'id="error-back" href="/schedules"' in page


def test_pause_and_resume_forms_change_the_store(scheduled: Scheduled) -> None:
    client, store = scheduled.client, scheduled.ws.store
    paused = post(client, "/schedules/nightly/pause")
    assert paused.status_code == 303
    assert paused.headers["location"] == "/schedules/nightly?changed=paused"
    assert store.get_schedule("nightly")["paused"] is True
    page = get_page(client, paused.headers["location"])
    assert by_id(page, "schedule-state") == "paused"
    assert by_id(page, "schedule-notice").startswith("Paused: it fires nothing until resumed")
    assert post(client, "/schedules/nightly/pause").headers["location"] == "/schedules/nightly"

    before = datetime.now(UTC)
    resumed = post(client, "/schedules/nightly/resume")
    assert resumed.headers["location"] == "/schedules/nightly?changed=resumed"
    row = store.get_schedule("nightly")
    assert row["paused"] is False and row["active_since"] >= before
    assert row["next_fire_at"] > before  # from now: nothing missed while paused is caught up


def test_a_cross_site_pause_is_refused_and_changes_nothing(scheduled: Scheduled) -> None:
    response = scheduled.client.post(
        "/schedules/nightly/pause", headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert scheduled.ws.store.get_schedule("nightly")["paused"] is False
    api = scheduled.client.post(
        "/api/schedules/nightly/pause", headers={"Origin": "https://evil.example"}
    )
    assert api.status_code == 403
    assert scheduled.ws.store.get_schedule("nightly")["paused"] is False


def test_a_hostile_name_round_trips_through_page_form_and_api(scheduled: Scheduled) -> None:
    url = f"/schedules/{quote(HOSTILE_NAME, safe='')}"
    page = get_page(scheduled.client, url)
    assert by_id(page, "schedule-name") == html.escape(HOSTILE_NAME)
    assert f'action="{url}/pause"' in page
    assert post(scheduled.client, f"{url}/pause").headers["location"] == f"{url}?changed=paused"
    assert scheduled.ws.store.get_schedule(HOSTILE_NAME)["paused"] is True
    detail = scheduled.client.get(f"/api{url}").json()
    assert (detail["name"], detail["paused"]) == (HOSTILE_NAME, True)


def test_the_api_serves_the_query_records(scheduled: Scheduled) -> None:
    client, ws = scheduled.client, scheduled.ws
    listed = client.get("/api/schedules")
    assert listed.status_code == 200
    assert listed.json() == [s.model_dump(mode="json") for s in ws.query(queries.schedules)]
    detail = client.get("/api/schedules/nightly", params={"ticks": 2}).json()
    assert [t["state"] for t in detail["ticks"]] == ["failed", "skipped"]
    assert detail["params"] == {"n": 2, "label": HOSTILE_PARAM}
    assert len(detail["upcoming"]) == 5 and detail["timezone"] == "Europe/Berlin"

    missing = client.get("/api/schedules/nighty")
    assert missing.status_code == 404
    assert missing.json()["error"].startswith("no schedule `nighty`; the schedules are: ")
    bad = client.get("/api/schedules/nightly", params={"ticks": 0})
    assert bad.status_code == 422 and "query parameter `ticks`" in bad.json()["error"]


def test_the_api_pauses_and_resumes(scheduled: Scheduled) -> None:
    client, store = scheduled.client, scheduled.ws.store
    assert client.post("/api/schedules/nightly/pause").json() == {
        "name": "nightly", "paused": True, "changed": True
    }  # fmt: skip
    assert client.post("/api/schedules/nightly/pause").json()["changed"] is False
    assert store.get_schedule("nightly")["paused"] is True
    assert client.post("/api/schedules/nightly/resume").json() == {
        "name": "nightly", "paused": False, "changed": True
    }  # fmt: skip
    assert store.get_schedule("nightly")["paused"] is False
    missing = client.post("/api/schedules/nope/resume")
    assert missing.status_code == 404 and "the schedules are:" in missing.json()["error"]


def test_the_openapi_document_has_the_schedule_routes(scheduled: Scheduled) -> None:
    doc = scheduled.client.get("/api/openapi.json").json()
    paths = doc["paths"]
    assert set(paths["/api/schedules/{name}/pause"]) == {"post"}
    one = paths["/api/schedules/{name}"]["get"]
    assert one["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ScheduleDetail"
    }
    assert [p["name"] for p in one["parameters"]] == ["name", "ticks"]
    assert "ScheduleTick" in doc["components"]["schemas"]


def test_with_no_database_the_list_says_so(tmp_path: Path) -> None:
    ws = Workspace(home=tmp_path / "empty")
    with ws, TestClient(create_app(ws), base_url="http://127.0.0.1") as client:
        assert client.get("/api/schedules").json() == []
        page = get_page(client, "/schedules")
        assert "schedules-notice" in page and "No schedule is registered" in page
        assert client.get("/api/schedules/x").status_code == 404
