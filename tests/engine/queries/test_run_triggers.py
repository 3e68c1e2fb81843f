"""What launched a run: its trigger, schedule, fire time and upstream run, as every read shows
them (``glasspane.queries``, the store's dicts, ``glasspane.api``), and filtering by them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from query_flows import Stores, retrain

from glasspane import api, queries
from glasspane.errors import InvalidArgument

NIGHT = datetime(2026, 1, 31, 3, 0, tzinfo=timezone.utc)


def queue(stores: Stores, run_id: str, trigger: str, **launched: Any) -> None:
    """A run a schedule (or someone) launched, queued as the scheduler queues it."""
    stores.metadata.queue_run(
        run_id=run_id, pipeline_name="retrain", pipeline_ref="query_flows.py:retrain",
        params={}, trigger=trigger, executor=None, **launched,
    )  # fmt: skip


def scheduled_run(stores: Stores, run_id: str, **launched: Any) -> str:
    """A run the scheduler queued that then really ran (its process took the queued row)."""
    queue(stores, run_id, launched.pop("trigger", "schedule"), **launched)
    result = api.default_workspace().run(
        retrain, {"n": 3}, executor="inline", trigger="schedule", run_id=run_id
    )
    return result.run_id


def test_a_scheduled_run_says_which_schedule_and_fire_time_it_is_for(stores: Stores) -> None:
    manual = retrain.run(n=3, executor="inline").run_id
    ran = scheduled_run(stores, "sched0001", schedule_name="nightly", scheduled_for=NIGHT)

    page = queries.list_runs(stores.metadata)
    [latest, earliest] = page.runs
    assert (latest.run_id, earliest.run_id) == (ran, manual)
    assert (latest.trigger, latest.schedule, latest.upstream_run_id) == (
        "schedule", "nightly", None,
    )  # fmt: skip
    assert latest.scheduled_for == NIGHT and latest.scheduled_for.tzinfo is not None
    assert latest.state == "succeeded" and latest.n_tasks == 4
    assert (earliest.trigger, earliest.schedule, earliest.scheduled_for) == ("manual", None, None)

    detail = queries.get_run(stores.metadata, ran)
    assert (detail.trigger, detail.schedule, detail.scheduled_for) == (
        "schedule", "nightly", NIGHT,
    )  # fmt: skip
    assert detail.model_dump(mode="json")["scheduled_for"] == "2026-01-31T03:00:00Z"


def test_an_after_run_names_the_upstream_run_it_reacted_to(stores: Stores) -> None:
    upstream = retrain.run(n=3, executor="inline").run_id
    queue(stores, "after0001", "after", schedule_name="report", upstream_run_id=upstream)
    run = queries.get_run(stores.metadata, "after0001")
    assert (run.state, run.trigger, run.schedule, run.upstream_run_id, run.scheduled_for) == (
        "queued", "after", "report", upstream, None,
    )  # fmt: skip
    stored = stores.metadata.get_run("after0001")
    assert (stored["schedule"], stored["upstream_run_id"], stored["scheduled_for"]) == (
        "report", upstream, None,
    )  # fmt: skip


def test_pages_filter_by_trigger_and_schedule_and_keep_their_cursor(stores: Stores) -> None:
    manual = retrain.run(n=3, executor="inline").run_id
    nightly = [f"night{i:04d}" for i in range(3)]
    for run_id in nightly:
        queue(stores, run_id, "schedule", schedule_name="nightly", scheduled_for=NIGHT)
    queue(stores, "backfill01", "backfill", schedule_name="nightly", scheduled_for=NIGHT)
    queue(stores, "hourly0001", "schedule", schedule_name="hourly", scheduled_for=NIGHT)

    def ids(**filters: Any) -> list[str]:
        return [r.run_id for r in queries.list_runs(stores.metadata, **filters).runs]

    assert ids(trigger="schedule", schedule="nightly") == nightly[::-1]
    assert ids(schedule="nightly") == ["backfill01", *nightly[::-1]]
    assert ids(trigger=["backfill", "manual"]) == ["backfill01", manual]
    assert ids(trigger="manual") == [manual]
    assert ids(schedule="unknown") == []

    first = queries.list_runs(stores.metadata, limit=2, schedule="nightly")
    second = queries.list_runs(
        stores.metadata, limit=2, schedule="nightly", cursor=first.next_cursor
    )
    assert [r.run_id for r in first.runs] == ["backfill01", nightly[2]]
    assert [r.run_id for r in second.runs] == nightly[1::-1]
    assert second.next_cursor is None


def test_the_stores_dicts_and_the_api_filter_alike(stores: Stores) -> None:
    manual = retrain.run(n=3, executor="inline").run_id
    queue(stores, "night0001", "schedule", schedule_name="nightly", scheduled_for=NIGHT)
    queue(stores, "backfill01", "backfill", schedule_name="nightly", scheduled_for=NIGHT)

    [summary] = stores.metadata.list_runs(trigger="schedule")
    assert {k: summary[k] for k in ("run_id", "trigger", "schedule", "scheduled_for")} == {
        "run_id": "night0001", "trigger": "schedule", "schedule": "nightly",
        "scheduled_for": "2026-01-31T03:00:00+00:00",
    }  # fmt: skip
    assert [r["run_id"] for r in stores.metadata.list_runs(schedule="nightly")] == [
        "backfill01", "night0001",
    ]  # fmt: skip
    both = stores.metadata.list_runs(trigger=["schedule", "manual"])
    assert [r["run_id"] for r in both] == ["night0001", manual]
    assert [r["run_id"] for r in api.runs(schedule="nightly", trigger="backfill")] == ["backfill01"]
    assert api.get_run("night0001")["scheduled_for"] == "2026-01-31T03:00:00+00:00"
    shown = api.run_summary(api.get_run("backfill01"))
    assert (shown["trigger"], shown["schedule"], shown["scheduled_for"]) == (
        "backfill", "nightly", "2026-01-31T03:00:00+00:00",
    )  # fmt: skip
    assert shown["upstream_run_id"] is None


def test_an_unknown_state_beside_a_trigger_filter_is_still_refused(stores: Stores) -> None:
    with pytest.raises(InvalidArgument, match="unknown run state `done`; use one of"):
        queries.list_runs(stores.metadata, trigger="schedule", state="done")
