"""``glasspane runs list`` and ``runs show`` say what launched a run (trigger, schedule, fire
time, upstream run), and ``runs list`` filters by trigger and schedule."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from cli_harness import Cli

from glasspane.api import metadata_store
from glasspane.config import load_settings
from glasspane.store import MetadataStore

NIGHT = datetime(2026, 1, 31, 3, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(cli: Cli) -> Iterator[MetadataStore]:
    """The metadata store the ``cli`` commands read (the test's GLASSPANE_HOME)."""
    opened = metadata_store(load_settings())
    yield opened
    opened.close()


def queue(store: MetadataStore, run_id: str, trigger: str, **launched: object) -> None:
    """A run queued as the scheduler queues one, whose process runs it with ``--run-id``."""
    store.queue_run(
        run_id=run_id, pipeline_name="demo", pipeline_ref="flows.py:demo", params={},
        trigger=trigger, executor=None, **launched,
    )  # fmt: skip


def run_queued(cli: Cli, run_id: str, trigger: str) -> None:
    ran = cli("run", "flows.py:demo", "--run-id", run_id, "--trigger", trigger, "-e", "inline")
    assert ran.code == 0, ran.stderr


def test_runs_list_json_says_what_launched_each_run(cli: Cli, store: MetadataStore) -> None:
    manual = cli("run", "flows.py:demo", "--json", "-e", "inline").json()["run_id"]
    queue(store, "sched0001", "schedule", schedule_name="nightly", scheduled_for=NIGHT)
    run_queued(cli, "sched0001", "schedule")

    result = cli("runs", "list", "--json")
    assert result.code == 0, result.stderr
    runs = {run["run_id"]: run for run in result.json()}
    launched = {k: runs["sched0001"][k] for k in ("trigger", "schedule", "scheduled_for")}
    assert launched == {
        "trigger": "schedule", "schedule": "nightly", "scheduled_for": "2026-01-31T03:00:00+00:00",
    }  # fmt: skip
    assert runs["sched0001"]["state"] == "succeeded"
    assert runs["sched0001"]["upstream_run_id"] is None
    assert {k: runs[manual][k] for k in ("trigger", "schedule", "scheduled_for")} == {
        "trigger": "manual", "schedule": None, "scheduled_for": None,
    }  # fmt: skip


def test_runs_list_filters_by_trigger_and_schedule(cli: Cli, store: MetadataStore) -> None:
    manual = cli("run", "flows.py:demo", "--json", "-e", "inline").json()["run_id"]
    queue(store, "night0001", "schedule", schedule_name="nightly", scheduled_for=NIGHT)
    queue(store, "backfill01", "backfill", schedule_name="nightly", scheduled_for=NIGHT)
    queue(store, "hourly0001", "schedule", schedule_name="hourly", scheduled_for=NIGHT)

    def ids(*flags: str) -> list[str]:
        result = cli("runs", "list", "--json", *flags)
        assert result.code == 0, result.stderr
        return [run["run_id"] for run in result.json()]

    assert ids("--schedule", "nightly") == ["backfill01", "night0001"]
    assert ids("--trigger", "schedule", "--schedule", "nightly") == ["night0001"]
    assert ids("--trigger", "backfill", "--trigger", "manual") == ["backfill01", manual]
    assert ids("--trigger", "backfill,manual") == ["backfill01", manual]
    assert ids("--schedule", "nobody") == []


def test_runs_list_table_shows_the_trigger_and_the_fire_time(
    cli: Cli, store: MetadataStore
) -> None:
    cli("run", "flows.py:demo", "-e", "inline")
    plain = cli("runs", "list")
    assert plain.code == 0, plain.stderr
    assert "trigger" in plain.stdout and "manual" in plain.stdout
    assert "scheduled for" not in plain.stdout  # no listed run has a fire time

    queue(store, "night0001", "schedule", schedule_name="nightly", scheduled_for=NIGHT)
    table = cli("runs", "list")
    assert table.code == 0, table.stderr
    assert "scheduled for" in table.stdout
    [row] = [line for line in table.stdout.splitlines() if "night0001" in line]
    assert "schedule" in row and "2026-01-31T03:00Z" in row and "queued" in row

    # fire times of an every-20s schedule are told apart: seconds show when they are not zero
    queue(
        store, "fast00001", "schedule", schedule_name="fast", scheduled_for=NIGHT.replace(second=20)
    )
    [row] = [line for line in cli("runs", "list").stdout.splitlines() if "fast00001" in line]
    assert "2026-01-31T03:00:20Z" in row

    cli.columns = 80  # the wide fire time gives way first; the trigger stays
    narrow = cli("runs", "list").stdout.splitlines()
    assert max(len(line) for line in narrow) <= 80
    assert "trigger" in narrow[1].split() and "scheduled" not in narrow[1]
    [row] = [line for line in narrow if line.startswith("night0001 ")]
    assert row.split()[:4] == ["night0001", "demo", "queued", "schedule"]


def test_runs_show_says_what_launched_the_run(cli: Cli, store: MetadataStore) -> None:
    upstream = cli("run", "flows.py:demo", "--json", "-e", "inline").json()["run_id"]
    queue(store, "after0001", "after", schedule_name="report", upstream_run_id=upstream)
    run_queued(cli, "after0001", "after")

    shown = cli("runs", "show", "after0001", "--json")
    assert shown.code == 0, shown.stderr
    data = shown.json()
    assert (data["trigger"], data["schedule"], data["upstream_run_id"]) == (
        "after", "report", upstream,
    )  # fmt: skip
    assert data["scheduled_for"] is None and data["state"] == "succeeded"

    human = cli("runs", "show", "after0001")
    assert human.code == 0, human.stderr
    assert f"trigger: after · schedule: report · upstream run: {upstream}" in human.stdout
    assert "scheduled for" not in human.stdout

    queue(store, "night0001", "schedule", schedule_name="nightly", scheduled_for=NIGHT)
    night = cli("runs", "show", "night0001")
    assert (
        "trigger: schedule · schedule: nightly · scheduled for: 2026-01-31T03:00:00+00:00"
        in night.stdout
    )
    assert cli("runs", "show", "night0001", "--json").json()["scheduled_for"] == (
        "2026-01-31T03:00:00+00:00"
    )
    manual = cli("runs", "show", upstream)
    assert "trigger: manual" in manual.stdout and "schedule:" not in manual.stdout
