"""What schedules need from runs and from each other: ``max_active`` counts, ``after``
triggers once per upstream run, the scheduler lease, and the migration that adds them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import create_engine, make_url, select, text, update

from glasspane.store import MetadataStore
from glasspane.store.migrate import alembic_config
from glasspane.store.models import RunRow

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SPEC = {"cron": "0 3 * * *", "timezone": "UTC", "params": {}, "max_active": 1}


def register(store: MetadataStore, name: str, **spec: Any) -> None:
    store.upsert_schedule(name, "examples/retrain.py:retrain", {**SPEC, **spec}, T0)


def queue(store: MetadataStore, run_id: str, pipeline: str = "retrain", **fields: Any) -> None:
    store.queue_run(
        run_id=run_id, pipeline_name=pipeline, pipeline_ref=f"p.py:{pipeline}", params={},
        trigger=fields.pop("trigger", "schedule"), executor=None, **fields,
    )  # fmt: skip


# ---- max_active -------------------------------------------------------------------------------


def test_count_active_runs_counts_only_that_schedules_open_runs(store: MetadataStore) -> None:
    register(store, "nightly")
    states = {"q": "queued", "p": "pending", "r": "running", "s": "succeeded", "f": "failed"}
    for run_id, state in states.items():
        queue(store, run_id, schedule_name="nightly", scheduled_for=T0)
        if state != "queued":
            store.set_run_state(run_id, state)
    queue(store, "other", schedule_name="hourly", scheduled_for=T0)
    queue(store, "manual", trigger="manual")
    assert store.count_active_runs("nightly") == 3
    assert store.count_active_runs("hourly") == 1
    assert store.count_active_runs("unknown") == 0


def test_a_launched_run_keeps_what_launched_it(store: MetadataStore, raw_engine: Any) -> None:
    queue(store, "sched1", schedule_name="nightly", scheduled_for=T0, upstream_run_id="up1")
    assert store.take_over("sched1")
    version = store.ensure_pipeline_version("retrain", "h", {"nodes": []})
    store.create_run(
        run_id="sched1", pipeline_name="retrain", version_id=version, pipeline_ref="p.py:r",
        params={}, executor="inline", trigger="schedule", nodes=[],
    )  # fmt: skip
    with raw_engine.connect() as conn:
        row = conn.execute(
            select(RunRow.schedule_name, RunRow.scheduled_for, RunRow.upstream_run_id)
        ).one()
    assert tuple(row) == ("nightly", T0, "up1")


# ---- after triggers ---------------------------------------------------------------------------


def test_after_trigger_is_claimed_once_per_upstream_run(store: MetadataStore) -> None:
    register(store, "train", after="features")
    register(store, "nightly")
    assert [s["name"] for s in store.after_schedules()] == ["train"]
    assert store.claim_after_trigger("train", "up1") is True
    assert store.claim_after_trigger("train", "up1") is False
    assert store.claim_after_trigger("train", "up2") is True
    assert store.finish_after_trigger("train", "up1", "launched", run_id="down1") is True
    assert store.finish_after_trigger("train", "up1", "failed") is False
    store.pause_schedule("train")
    assert store.after_schedules() == []


def test_succeeded_runs_since_leaves_out_claimed_and_unfinished(store: MetadataStore) -> None:
    register(store, "train", after="features")
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    for run_id in ("up1", "up2", "up3", "failed1", "running1"):
        queue(store, run_id, pipeline="features", trigger="manual")
    queue(store, "elsewhere", pipeline="other", trigger="manual")
    for run_id in ("up1", "up2", "up3", "elsewhere"):
        store.set_run_state(run_id, "succeeded")
    store.set_run_state("failed1", "failed")
    store.set_run_state("running1", "running")
    store.claim_after_trigger("train", "up2")
    found = store.succeeded_runs_since("features", since, schedule_name="train")
    assert sorted(r["run_id"] for r in found) == ["up1", "up3"]
    assert all(r["ended_at"] >= since for r in found)
    assert len(store.succeeded_runs_since("features", since)) == 3
    assert store.succeeded_runs_since("features", since, limit=1) == found[:1]
    later = datetime.now(timezone.utc) + timedelta(seconds=5)
    assert store.succeeded_runs_since("features", later) == []


# ---- the scheduler lease ----------------------------------------------------------------------


def test_lease_is_held_by_one_until_stale(store: MetadataStore) -> None:
    stale_after = 10.0
    assert store.acquire_lease("scheduler", "a", T0, stale_after) is True
    assert store.acquire_lease("scheduler", "b", T0 + timedelta(seconds=5), stale_after) is False
    assert store.renew_lease("scheduler", "a", T0 + timedelta(seconds=8)) is True
    assert store.acquire_lease("scheduler", "b", T0 + timedelta(seconds=17), stale_after) is False
    # a renewing by acquiring again keeps the time it first took the lease
    assert store.acquire_lease("scheduler", "a", T0 + timedelta(seconds=9), stale_after) is True
    assert store.lease("scheduler") == {
        "name": "scheduler", "holder": "a", "heartbeat_at": T0 + timedelta(seconds=9),
        "acquired_at": T0,
    }  # fmt: skip
    taken = T0 + timedelta(seconds=20)
    assert store.acquire_lease("scheduler", "b", taken, stale_after) is True
    assert store.renew_lease("scheduler", "a", taken) is False  # a must stop
    assert store.release_lease("scheduler", "a") is False
    assert store.lease("scheduler") == {
        "name": "scheduler", "holder": "b", "heartbeat_at": taken, "acquired_at": taken,
    }  # fmt: skip
    assert store.release_lease("scheduler", "b") is True
    assert store.lease("scheduler") is None
    assert store.acquire_lease("scheduler", "a", taken, stale_after) is True


def test_two_standbys_racing_for_a_stale_lease_one_wins(store: MetadataStore) -> None:
    store.acquire_lease("scheduler", "dead", T0, 5.0)
    later = T0 + timedelta(seconds=6)
    won = [store.acquire_lease("scheduler", holder, later, 5.0) for holder in ("b", "c")]
    assert won == [True, False]


# ---- migration --------------------------------------------------------------------------------


def test_upgrade_from_0004_keeps_runs(db_url: str, is_sqlite: bool) -> None:
    if is_sqlite:
        Path(make_url(db_url).database or "").parent.mkdir(parents=True)
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0004")
            conn.execute(
                text("INSERT INTO pipelines (id, name, created_at) VALUES (1, 'p', '2025-01-01')")
            )
            conn.execute(
                text(
                    "INSERT INTO pipeline_versions (id, pipeline_id, hash, graph_json, created_at)"
                    " VALUES (1, 1, 'h', '{}', '2025-01-01')"
                )
            )
            for run_id, state in (("run00001", "succeeded"), ("run00002", "queued")):
                conn.execute(
                    text(
                        "INSERT INTO runs (id, pipeline_id, version_id, pipeline_name, params,"
                        " state, trigger, executor, created_at) VALUES (:id, 1, 1, 'p', '{}',"
                        " :state, 'manual', 'inline', '2025-01-01')"
                    ),
                    {"id": run_id, "state": state},
                )
    finally:
        engine.dispose()
    with MetadataStore(db_url) as store:
        assert {r["run_id"]: r["state"] for r in store.list_runs()} == {
            "run00001": "succeeded", "run00002": "queued",
        }  # fmt: skip
        assert store.count_active_runs("nightly") == 0
        register(store, "nightly")
        assert store.claim_tick("nightly", T0) is True
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(update(RunRow).values(schedule_name="nightly"))
            assert conn.execute(select(RunRow.scheduled_for)).scalars().all() == [None, None]
            command.downgrade(alembic_config(conn), "0004")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 2
    finally:
        engine.dispose()
