"""``queries.schedules`` and ``queries.schedule``: registered schedules as records, with their
next fire times (DST included), newest ticks and active runs, read without writing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from query_flows import Stores

from glasspane import NotFound, Schedule, queries
from glasspane.errors import InvalidArgument
from glasspane.scheduling import register

UTC = timezone.utc
#: the Saturday before Europe/Berlin moves to summer time (Sunday 2025-03-30, 02:00 -> 03:00)
BEFORE_DST = datetime(2025, 3, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def registered(stores: Stores) -> Stores:
    metadata = stores.metadata
    ref = "/srv/flows/retrain.py:retrain"
    register(
        metadata, ref,
        Schedule(name="nightly", cron="0 3 * * *", timezone="Europe/Berlin",
                 params={"n": 2, "label": "<b>x</b>"}, catchup="all", max_catchup=3),
        now=BEFORE_DST,
    )  # fmt: skip
    register(metadata, ref, Schedule(name="often", every="15m", paused=True), now=BEFORE_DST)
    register(metadata, "/srv/flows/report.py:report", Schedule(name="then", after="retrain"))
    return stores


def test_schedules_are_listed_by_name_with_their_definition(registered: Stores) -> None:
    found = queries.schedules(registered.metadata)
    assert [s.name for s in found] == ["nightly", "often", "then"]
    nightly, often, then = found
    assert (nightly.pipeline, nightly.pipeline_ref) == ("retrain", "/srv/flows/retrain.py:retrain")
    assert (nightly.kind, nightly.cron, nightly.timezone) == ("cron", "0 3 * * *", "Europe/Berlin")
    assert nightly.params == {"n": 2, "label": "<b>x</b>"}
    assert (nightly.catchup, nightly.max_catchup, nightly.max_active) == ("all", 3, 1)
    assert nightly.next_fire_at == datetime(2025, 3, 30, 1, 0, tzinfo=UTC)  # 03:00 CEST
    assert (nightly.paused, nightly.last_fire_at, nightly.active_runs) == (False, None, 0)
    assert (often.kind, often.every, often.paused, often.timezone) == ("every", "15m", True, "UTC")
    assert (then.kind, then.after, then.next_fire_at, then.pipeline) == (
        "after", "retrain", None, "report"
    )  # fmt: skip


def test_one_schedule_has_its_next_five_fire_times_across_dst(registered: Stores) -> None:
    detail = queries.schedule(registered.metadata, "nightly", now=BEFORE_DST)
    # 03:00 in Berlin is 02:00 UTC in winter, 01:00 UTC from the 30th (summer time)
    assert detail.upcoming == [datetime(2025, 3, d, 1, 0, tzinfo=UTC) for d in (30, 31)] + [
        datetime(2025, 4, d, 1, 0, tzinfo=UTC) for d in (1, 2, 3)
    ]
    assert detail.ticks == []
    assert queries.schedule(registered.metadata, "often").upcoming == []  # paused
    assert queries.schedule(registered.metadata, "then").upcoming == []  # after


def test_ticks_newest_first_with_their_outcomes(registered: Stores) -> None:
    metadata = registered.metadata
    fires = [BEFORE_DST + timedelta(days=d) for d in range(3)]
    for at in fires:
        assert metadata.claim_tick("nightly", at)
    metadata.finish_tick("nightly", fires[0], "launched", run_id="abc123def456")
    metadata.finish_tick("nightly", fires[1], "skipped", reason="max_active 1 reached")
    detail = queries.schedule(metadata, "nightly", ticks=2)
    assert [(t.fire_at, t.state, t.run_id, t.reason) for t in detail.ticks] == [
        (fires[2], "claimed", None, None),
        (fires[1], "skipped", None, "max_active 1 reached"),
    ]
    assert detail.ticks[0].created_at <= detail.ticks[0].updated_at
    assert queries.schedule(metadata, "nightly").ticks[-1].state == "launched"


def test_an_after_schedule_lists_the_upstream_runs_it_reacted_to(registered: Stores) -> None:
    metadata = registered.metadata
    for upstream in ("up000000001", "up000000002", "up000000003"):
        assert metadata.claim_after_trigger("then", upstream)
    metadata.finish_after_trigger("then", "up000000001", "launched", run_id="down00000001")
    metadata.finish_after_trigger("then", "up000000002", "skipped", reason="max_active 1 reached")
    detail = queries.schedule(metadata, "then", triggers=2)
    assert detail.ticks == []  # no fire times of its own
    assert [(t.upstream_run_id, t.state, t.run_id, t.reason) for t in detail.triggers] == [
        ("up000000003", "claimed", None, None),
        ("up000000002", "skipped", None, "max_active 1 reached"),
    ]
    oldest = queries.schedule(metadata, "then").triggers[-1]
    assert (oldest.upstream_run_id, oldest.state, oldest.run_id) == (
        "up000000001", "launched", "down00000001",
    )  # fmt: skip
    assert queries.schedule(metadata, "nightly").triggers == []


def test_an_unknown_schedule_names_those_there_are(registered: Stores) -> None:
    with pytest.raises(NotFound) as err:
        queries.schedule(registered.metadata, "nighty")
    assert str(err.value) == (
        "no schedule `nighty`; the schedules are: nightly, often, then; sync the pipeline "
        "that declares it to register it"
    )


def test_a_tick_limit_out_of_range_is_refused(registered: Stores) -> None:
    with pytest.raises(InvalidArgument, match="^ticks must be 1 to 500, not 0$"):
        queries.schedule(registered.metadata, "nightly", ticks=0)


def test_schedules_read_without_writing(registered: Stores) -> None:
    before = registered.metadata.get_schedule("nightly")
    queries.schedules(registered.metadata)
    queries.schedule(registered.metadata, "nightly")
    assert registered.metadata.get_schedule("nightly") == before
