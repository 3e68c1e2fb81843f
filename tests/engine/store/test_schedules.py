"""Schedules in the metadata store: identity by name, ticks claimed exactly once (also by two
processes at once), due schedules by index, and claiming what is due in one transaction."""

from __future__ import annotations

import multiprocessing
import time
import traceback
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, insert, select, update

from glasspane.errors import InvalidArgument, NotFound
from glasspane.store import MetadataStore, claims, schedules
from glasspane.store.models import ScheduleRow, ScheduleTickRow

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SPEC = {"cron": "0 3 * * *", "timezone": "UTC", "params": {}, "max_active": 1}


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def register(store: MetadataStore, name: str = "nightly", **spec: Any) -> None:
    store.upsert_schedule(name, "examples/retrain.py:retrain", {**SPEC, **spec}, minutes(0))


def count(engine: Engine, model: type, *where: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


# ---- schedules --------------------------------------------------------------------------------


def test_upsert_by_name_keeps_identity_created_at_and_place(store: MetadataStore) -> None:
    assert store.upsert_schedule("nightly", "a.py:p", SPEC, minutes(0)) == "created"
    first = store.get_schedule("nightly")
    assert (first["paused"], first["active_since"], first["next_fire_at"]) == (
        False, first["created_at"], minutes(0),
    )  # fmt: skip
    # Unchanged: nothing moves, not even the next fire time (a missed tick stays due).
    assert store.upsert_schedule("nightly", "a.py:p", SPEC, minutes(60)) == "unchanged"
    assert store.get_schedule("nightly") == first
    changed = {**SPEC, "cron": "0 4 * * *"}
    assert store.upsert_schedule("nightly", "a.py:p", changed, minutes(60)) == "updated"
    second = store.get_schedule("nightly")
    assert (second["id"], second["created_at"]) == (first["id"], first["created_at"])
    assert (second["spec"], second["next_fire_at"]) == (changed, minutes(60))
    assert second["updated_at"] >= first["updated_at"]
    assert [s["name"] for s in store.list_schedules()] == ["nightly"]


def test_upsert_rejects_bad_names(store: MetadataStore) -> None:
    with pytest.raises(InvalidArgument, match="schedule name `` must have 1 to 255 characters"):
        store.upsert_schedule("", "a.py:p", SPEC, None)
    with pytest.raises(InvalidArgument, match="pipeline reference must have 1 to 1024"):
        store.upsert_schedule("x", "", SPEC, None)


def test_unknown_schedule_names_the_ones_there_are(store: MetadataStore) -> None:
    register(store, "b")
    register(store, "a")
    message = "no schedule `c`; the schedules are: a, b; sync the pipeline that declares it"
    for call in (
        lambda: store.get_schedule("c"),
        lambda: store.pause_schedule("c"),
        lambda: store.resume_schedule("c", None),
        lambda: store.remove_schedule("c"),
        lambda: store.claim_tick("c", T0),
        lambda: store.claim_after_trigger("c", "run1"),
    ):
        with pytest.raises(NotFound, match=message):
            call()


def test_pause_and_resume(store: MetadataStore) -> None:
    register(store)
    assert store.pause_schedule("nightly") is True
    assert store.pause_schedule("nightly") is False
    assert store.due_schedules(minutes(10)) == []
    assert store.resume_schedule("nightly", minutes(120)) is True
    assert store.resume_schedule("nightly", minutes(240)) is False
    resumed = store.get_schedule("nightly")
    assert resumed["paused"] is False
    assert resumed["next_fire_at"] == minutes(120)
    assert resumed["active_since"] > resumed["created_at"]


def test_remove_deletes_ticks_and_triggers(store: MetadataStore, raw_engine: Engine) -> None:
    register(store)
    register(store, "other")
    assert store.claim_tick("nightly", T0) and store.claim_tick("other", T0)
    assert store.claim_after_trigger("nightly", "up1")
    store.remove_schedule("nightly")
    assert [s["name"] for s in store.list_schedules()] == ["other"]
    assert count(raw_engine, ScheduleTickRow) == 1
    assert store.claim_after_trigger("other", "up1") is True


# ---- ticks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("savepoint", [False, True], ids=["on-conflict", "savepoint"])
def test_second_claim_is_false_and_the_transaction_goes_on(
    store: MetadataStore, raw_engine: Engine, monkeypatch: pytest.MonkeyPatch, savepoint: bool
) -> None:
    if savepoint:  # the path for dialects without ON CONFLICT
        monkeypatch.setattr(claims, "_ON_CONFLICT", {})
    register(store)

    def work(conn: Any) -> list[bool]:
        first = claims.claim_tick(conn, "nightly", T0)
        again = claims.claim_tick(conn, "nightly", T0)
        later = claims.claim_tick(conn, "nightly", minutes(1))
        schedules.set_next_fire(conn, "nightly", minutes(2), minutes(1))
        return [first, again, later]

    assert store._write(work) == [True, False, True]
    assert store.claim_tick("nightly", T0) is False
    assert count(raw_engine, ScheduleTickRow) == 2
    assert store.get_schedule("nightly")["last_fire_at"] == minutes(1)


def test_tick_outcomes_are_recorded_once(store: MetadataStore) -> None:
    register(store)
    for n in range(3):
        store.claim_tick("nightly", minutes(n))
    assert store.finish_tick("nightly", minutes(0), "launched", run_id="run1") is True
    assert store.finish_tick("nightly", minutes(0), "failed", reason="late") is False
    assert store.finish_tick("nightly", minutes(1), "skipped", reason="max_active 1 reached")
    with pytest.raises(InvalidArgument, match="unknown tick outcome `done`; record one of"):
        store.finish_tick("nightly", minutes(2), "done")
    ticks = store.schedule_ticks("nightly", limit=2)
    assert [(t["fire_at"], t["state"], t["run_id"], t["reason"]) for t in ticks] == [
        (minutes(2), "claimed", None, None),
        (minutes(1), "skipped", None, "max_active 1 reached"),
    ]


def test_settle_claims_of_a_killed_scheduler(store: MetadataStore) -> None:
    register(store)
    for n in range(3):
        store.claim_tick("nightly", minutes(n))
    store.queue_run(
        run_id="sched1", pipeline_name="retrain", pipeline_ref="examples/retrain.py:retrain",
        params={}, trigger="schedule", executor=None, schedule_name="nightly",
        scheduled_for=minutes(1),
    )  # fmt: skip
    store.finish_tick("nightly", minutes(2), "skipped", reason="paused")
    store.claim_after_trigger("nightly", "up1")
    assert store.settle_claims(datetime.now(timezone.utc) - timedelta(hours=1)) == []
    settled = store.settle_claims(datetime.now(timezone.utc) + timedelta(seconds=1))
    assert sorted((s["state"], s["run_id"]) for s in settled) == [
        ("failed", None), ("failed", None), ("launched", "sched1"),
    ]  # fmt: skip
    states = {t["fire_at"]: t["state"] for t in store.schedule_ticks("nightly")}
    assert states == {minutes(0): "failed", minutes(1): "launched", minutes(2): "skipped"}


def test_prune_ticks_keeps_claims_and_recent_ones(store: MetadataStore, raw_engine: Engine) -> None:
    register(store)
    for n in range(4):
        store.claim_tick("nightly", minutes(n))
    for n in (0, 1, 3):
        store.finish_tick("nightly", minutes(n), "launched", run_id=f"r{n}")
    assert store.prune_ticks(minutes(3)) == 2
    assert [t["fire_at"] for t in store.schedule_ticks("nightly")] == [minutes(3), minutes(2)]


CLAIMERS, FIRE_TIMES = 2, 50


def _claimer(url: str, backwards: bool, barrier: Any, results: Any) -> None:
    try:
        store = MetadataStore(url)
        order = range(FIRE_TIMES)[::-1] if backwards else range(FIRE_TIMES)
        barrier.wait(timeout=60)
        won = []
        for n in order:
            if store.claim_tick("nightly", minutes(n)):
                won.append(n)
            time.sleep(0.002)  # so the two processes' claims interleave, even on SQLite
        store.close()
        results.put((won, None))
    except BaseException:
        results.put(([], traceback.format_exc()))


def test_two_processes_claim_each_fire_time_exactly_once(
    store: MetadataStore, db_url: str, raw_engine: Engine
) -> None:
    register(store)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(CLAIMERS), context.Queue()
    processes = [
        context.Process(target=_claimer, args=(db_url, n % 2 == 1, barrier, results))
        for n in range(CLAIMERS)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=240) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert [error for _, error in outcomes] == [None] * CLAIMERS
    won = [n for claimed, _ in outcomes for n in claimed]
    assert sorted(won) == list(range(FIRE_TIMES))  # every fire time once, none twice
    assert count(raw_engine, ScheduleTickRow) == FIRE_TIMES


# ---- due schedules ----------------------------------------------------------------------------

SCHEDULES = 1000


def _many_schedules(engine: Engine) -> None:
    # Schedule i is due at minute i; every tenth is paused.
    rows = [
        {"name": f"s{i:04d}", "pipeline_ref": "a.py:p", "spec": SPEC, "paused": i % 10 == 0,
         "created_at": T0, "updated_at": T0, "active_since": T0, "next_fire_at": minutes(i)}
        for i in range(SCHEDULES)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(ScheduleRow), rows)


def test_due_schedules_among_1000_by_index(
    store: MetadataStore, raw_engine: Engine, is_sqlite: bool
) -> None:
    _many_schedules(raw_engine)
    issued: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM schedules" in statement:
            issued.append((statement, parameters))

    event.listen(store._engines.read, "before_cursor_execute", capture)
    began = time.perf_counter()
    due = store.due_schedules(minutes(99.5), limit=SCHEDULES)
    elapsed = time.perf_counter() - began
    event.remove(store._engines.read, "before_cursor_execute", capture)
    expected = [f"s{i:04d}" for i in range(100) if i % 10]
    assert [s["name"] for s in due] == expected
    assert [s["name"] for s in store.due_schedules(minutes(99.5), limit=5)] == expected[:5]
    assert elapsed < 0.5, f"due_schedules took {elapsed:.3f}s"
    if is_sqlite:
        [(statement, parameters)] = issued
        with raw_engine.connect() as conn:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        details = " ".join(str(row[-1]) for row in plan)
        assert "USING INDEX ix_schedules_paused_next_fire_at" in details, details
        assert "SCAN schedules" not in details, details


def test_due_schedules_skip_rows_another_scheduler_locked(
    store: MetadataStore, raw_engine: Engine, is_sqlite: bool
) -> None:
    if is_sqlite:
        pytest.skip("SQLite has no row locks: one scheduler holds the lease")
    for name in ("a", "b", "c"):
        register(store, name)
    with raw_engine.begin() as other:  # another scheduler's open transaction
        taken = schedules.due_schedules(other, minutes(1), limit=2)
        assert [s["name"] for s in taken] == ["a", "b"]
        assert [s["name"] for s in store.due_schedules(minutes(1))] == ["c"]
        assert store.claim_tick("a", T0) is True  # the lock leaves tick inserts alone
    assert [s["name"] for s in store.due_schedules(minutes(1))] == ["a", "b", "c"]


def test_claim_due_claims_and_moves_schedules_on(store: MetadataStore) -> None:
    register(store, "hourly")
    register(store, "later")
    store.set_next_fire("later", minutes(600))
    store.claim_tick("hourly", minutes(0))  # claimed already, by a scheduler that died

    def plan(schedule: dict[str, Any]) -> tuple[list[datetime], datetime | None]:
        return [minutes(0), minutes(60)], minutes(120)

    [due] = store.claim_due(minutes(90), plan)
    assert (due.schedule["name"], due.fire_times) == ("hourly", [minutes(60)])
    moved = store.get_schedule("hourly")
    assert (moved["next_fire_at"], moved["last_fire_at"]) == (minutes(120), minutes(60))
    assert store.claim_due(minutes(90), plan) == []
    with pytest.raises(InvalidArgument, match="schedule `hourly`: the next fire time"):
        store.claim_due(minutes(200), lambda s: ([], s["next_fire_at"]))
    assert store.get_schedule("hourly")["next_fire_at"] == minutes(120)  # rolled back


def test_set_next_fire_on_a_removed_schedule(store: MetadataStore, raw_engine: Engine) -> None:
    assert store.set_next_fire("gone", minutes(1)) is False
    register(store)
    with raw_engine.begin() as conn:
        conn.execute(update(ScheduleRow).values(next_fire_at=None))
    assert store.due_schedules(minutes(1)) == []
