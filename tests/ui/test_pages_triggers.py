"""What launched a run, in the web UI: the runs list's trigger and fire time columns and its
trigger and schedule filters, the run page's header (schedule, fire time, upstream run), and
the JSON API's records and filters, on real runs and on runs queued as a scheduler queues
them (every page through ``page_checks.check_safe``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import pytest
from page_checks import by_id, by_id_html, get_page
from starlette.testclient import TestClient

from glasspane import Workspace, queries
from glasspane.queries import RunSummary
from glasspane.ui.app import create_app
from glasspane.ui.pages_runs import PAGE_SIZE

NIGHT = datetime(2026, 1, 31, 3, 0, tzinfo=timezone.utc)
HOSTILE_SCHEDULE = "<script>alert(1)</script>"


@dataclass(frozen=True)
class Launched:
    """The runs of the ``launched`` fixture."""

    manual: str
    scheduled: str
    backfill: str
    after: str
    hostile: str


def queue(ws: Workspace, run_id: str, trigger: str, **launched: Any) -> None:
    ws.store.queue_run(
        run_id=run_id, pipeline_name="mapped", pipeline_ref="ui_flows.py:mapped", params={},
        trigger=trigger, executor=None, **launched,
    )  # fmt: skip


@pytest.fixture
def launched(fresh_workspace: Workspace, flow: Callable[[str], Any]) -> Launched:
    """A manual run, a scheduled run that really ran, a queued backfill of the same schedule,
    a queued ``after`` run reacting to the manual one, and a run of a hostile schedule name."""
    ws = fresh_workspace
    [manual] = [run.run_id for run in ws.query(queries.list_runs).runs]
    queue(ws, "sched0001", "schedule", schedule_name="nightly", scheduled_for=NIGHT)
    ws.run(flow("mapped"), {"n": 2}, trigger="schedule", run_id="sched0001")
    queue(ws, "backfill01", "backfill", schedule_name="nightly", scheduled_for=NIGHT)
    queue(ws, "after0001", "after", schedule_name="report", upstream_run_id=manual)
    queue(ws, "hostile01", "schedule", schedule_name=HOSTILE_SCHEDULE, scheduled_for=NIGHT)
    return Launched(manual, "sched0001", "backfill01", "after0001", "hostile01")


@pytest.fixture
def launched_client(fresh_workspace: Workspace, launched: Launched) -> Iterator[TestClient]:
    with TestClient(create_app(fresh_workspace), base_url="http://127.0.0.1") as client:
        yield client


def rows(html: str) -> dict[str, str]:
    """Each runs-table row's markup, by run id."""
    found = re.findall(r'<tr data-run-id="([^"]+)"[^>]*>(.*?)</tr>', html, flags=re.S)
    return dict(found)


# ---- the runs list ---------------------------------------------------------------------------


def test_runs_list_shows_trigger_schedule_and_fire_time(
    launched_client: TestClient, launched: Launched
) -> None:
    html = get_page(launched_client, "/")
    assert "<th>Scheduled for</th>" in html
    by_run = rows(html)
    scheduled = by_run[launched.scheduled]
    link = '<a class="small schedule-link" href="/schedules/nightly">nightly</a>'
    assert f'<td class="run-trigger">schedule {link}</td>' in scheduled
    assert '<time datetime="2026-01-31T03:00:00+00:00">2026-01-31 03:00:00 UTC</time>' in scheduled
    assert 'class="run-trigger">backfill <a' in by_run[launched.backfill]
    assert 'href="/schedules/report">report</a>' in by_run[launched.after]
    manual = by_run[launched.manual]
    assert 'class="run-trigger">manual</td>' in manual
    assert '<td class="run-scheduled-for"><span class="muted">—</span></td>' in manual
    hostile = by_run[launched.hostile]  # escaped as text, quoted in the link
    assert f'href="/schedules/{quote(HOSTILE_SCHEDULE, safe="")}"' in hostile
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</a>" in hostile


def test_runs_list_has_no_fire_time_column_without_scheduled_runs(client: TestClient) -> None:
    html = get_page(client, "/")  # the shared workspace: manual runs only
    assert "Scheduled for" not in html and "run-scheduled-for" not in html
    assert "<th>Trigger</th>" in html


def test_runs_list_filters_by_trigger_and_schedule(
    launched_client: TestClient, launched: Launched
) -> None:
    nightly = get_page(launched_client, "/?schedule=nightly")
    assert list(rows(nightly)) == [launched.backfill, launched.scheduled]
    assert 'id="filter-schedule" value="nightly"' in nightly
    assert 'id="filters-clear"' in nightly
    backfills = get_page(launched_client, "/?schedule=nightly&trigger=backfill")
    assert list(rows(backfills)) == [launched.backfill]
    assert 'id="filter-trigger" value="backfill"' in backfills
    after = get_page(launched_client, "/?trigger=after")
    assert list(rows(after)) == [launched.after]
    none = get_page(launched_client, "/?schedule=weekly")
    assert "No runs match these filters." in by_id(none, "runs-empty")
    hostile = get_page(launched_client, "/?" + f"schedule={quote(HOSTILE_SCHEDULE)}")
    assert list(rows(hostile)) == [launched.hostile]
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in hostile
    assert '<option value="backfill">' in by_id_html(nightly, "known-triggers")


def test_the_older_link_keeps_the_schedule_filter(
    fresh_workspace: Workspace, launched: Launched, launched_client: TestClient
) -> None:
    for i in range(PAGE_SIZE):
        queue(fresh_workspace, f"many{i:04d}", "schedule", schedule_name="nightly",
              scheduled_for=NIGHT)  # fmt: skip
    html = get_page(launched_client, "/?schedule=nightly")
    assert len(rows(html)) == PAGE_SIZE
    older = re.search(r'href="([^"]+)" id="runs-older"', html)
    assert older is not None and "schedule=nightly" in older.group(1)
    rest = get_page(launched_client, older.group(1).replace("&amp;", "&"))
    assert list(rows(rest)) == [launched.backfill, launched.scheduled]


# ---- a run's page ----------------------------------------------------------------------------


def test_run_page_header_says_which_schedule_and_fire_time(
    launched_client: TestClient, launched: Launched
) -> None:
    html = get_page(launched_client, f"/runs/{launched.scheduled}")
    assert by_id(html, "run-trigger") == "schedule"
    assert '<a id="run-schedule" href="/schedules/nightly">nightly</a>' in html
    assert by_id(html, "run-scheduled-for").startswith("2026-01-31 03:00:00 UTC")
    assert 'datetime="2026-01-31T03:00:00+00:00"' in by_id_html(html, "run-scheduled-for")
    assert 'id="run-upstream"' not in html


def test_run_page_header_links_the_upstream_run(
    launched_client: TestClient, launched: Launched
) -> None:
    html = get_page(launched_client, f"/runs/{launched.after}")
    assert by_id(html, "run-trigger") == "after"
    assert by_id(html, "run-upstream") == launched.manual
    assert f'id="run-upstream" href="/runs/{launched.manual}"' in html
    assert '<a id="run-schedule" href="/schedules/report">report</a>' in html
    assert 'id="run-scheduled-for"' not in html


def test_run_page_of_a_manual_run_has_no_schedule(
    launched_client: TestClient, launched: Launched
) -> None:
    html = get_page(launched_client, f"/runs/{launched.manual}")
    assert by_id(html, "run-trigger") == "manual"
    for element in ("run-schedule", "run-scheduled-for", "run-upstream"):
        assert f'id="{element}"' not in html


def test_run_page_escapes_a_hostile_schedule_name(
    launched_client: TestClient, launched: Launched
) -> None:
    html = get_page(launched_client, f"/runs/{launched.hostile}")
    assert by_id(html, "run-schedule") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f'href="/schedules/{quote(HOSTILE_SCHEDULE, safe="")}"' in html


# ---- the JSON API ----------------------------------------------------------------------------


def test_api_runs_carry_and_filter_by_what_launched_them(
    launched_client: TestClient, launched: Launched
) -> None:
    response = launched_client.get("/api/runs", params={"schedule": "nightly"})
    assert response.status_code == 200, response.text
    runs = response.json()["runs"]
    assert [r["run_id"] for r in runs] == [launched.backfill, launched.scheduled]
    assert {k: runs[1][k] for k in ("trigger", "schedule", "scheduled_for", "upstream_run_id")} == {
        "trigger": "schedule", "schedule": "nightly", "scheduled_for": "2026-01-31T03:00:00Z",
        "upstream_run_id": None,
    }  # fmt: skip
    both = launched_client.get("/api/runs", params={"trigger": "after,backfill"}).json()["runs"]
    assert [r["run_id"] for r in both] == [launched.after, launched.backfill]
    one = launched_client.get(f"/api/runs/{launched.after}").json()
    assert (one["trigger"], one["schedule"], one["upstream_run_id"], one["scheduled_for"]) == (
        "after", "report", launched.manual, None,
    )  # fmt: skip


def test_api_refuses_a_schedule_name_longer_than_a_schedule_can_have(
    launched_client: TestClient,
) -> None:
    response = launched_client.get("/api/runs", params={"schedule": "x" * 256})
    assert response.status_code == 422
    assert response.json()["error"].startswith("query parameter `schedule`: String should have")


def test_openapi_documents_the_fields_and_the_filter(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    summary = doc["components"]["schemas"]["RunSummary"]
    assert summary == RunSummary.model_json_schema(
        ref_template="#/components/schemas/{model}", mode="serialization"
    )
    for name in ("schedule", "scheduled_for", "upstream_run_id"):
        assert name in summary["properties"] and name not in summary["required"]
        assert name in doc["components"]["schemas"]["RunDetail"]["properties"]
    assert summary["properties"]["scheduled_for"]["anyOf"][0]["format"] == "date-time"
    params = {p["name"]: p for p in doc["paths"]["/api/runs"]["get"]["parameters"]}
    assert params["schedule"]["description"] == "Only runs the schedule of this name launched."
    assert params["schedule"]["schema"] == {"type": "string", "maxLength": 255}
    assert "backfill" in params["trigger"]["description"]
