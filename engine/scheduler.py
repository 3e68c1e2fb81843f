"""The scheduler loop: claims due fire times and upstream runs, launches runs for them.

One :meth:`Scheduler.step` at a given instant does everything a tick needs, so tests pass
exact instants; :meth:`Scheduler.run` calls it until told to stop, sleeping until the next
fire time (at most ``poll`` seconds, to notice new schedules and upstream runs).

Invariants:

- Exactly one run per (schedule, fire time) and per (``after`` schedule, upstream run): the
  store's unique claims decide (:meth:`~glasspane.store.MetadataStore.claim_due`), whatever
  the number of schedulers or how often they are killed and restarted.
- Every claimed fire time records its outcome: ``launched`` (the run id), ``skipped`` (the
  catch-up policy, or ``max_active`` reached) or ``failed`` (the launch error). A scheduler
  killed between claim and launch leaves a claim that the next one settles
  (:meth:`~glasspane.store.MetadataStore.settle_claims`).
- Each pass reads only what is due: an index seek on (``paused``, ``next_fire_at``), the
  unpaused ``after`` schedules, and the earliest next fire time. Idle, it never scans every
  schedule.
- On SQLite (one writer at a time) one scheduler works and others wait as standbys behind
  a lease with a heartbeat, taking over within ``stale_after`` seconds of it stopping. On
  PostgreSQL every scheduler works; due rows are split between them with ``SKIP LOCKED``.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import TYPE_CHECKING, Any

from .errors import ScheduleBusy
from .schedules import Due, due
from .scheduling import schedule_of

if TYPE_CHECKING:
    from .workspace import Workspace

#: the lease standby schedulers wait behind on SQLite
LEASE = "scheduler"
#: a claim older than this whose scheduler recorded no outcome is settled by another one
SETTLE_AFTER = timedelta(minutes=2)
#: most seconds between retries of a pass that failed (the database unreachable)
MAX_BACKOFF = 30.0
#: how often a working scheduler settles stale claims and (``glasspane server``) sweeps runs
MAINTENANCE_EVERY = 30.0


@dataclass(frozen=True)
class Fired:
    """What became of one claimed fire time or upstream run.

    Attributes:
        schedule: the schedule's name.
        state: ``launched``, ``skipped`` or ``failed``.
        fire_at: the fire time (UTC), or None for an ``after`` trigger.
        upstream_run_id: the upstream run of an ``after`` trigger.
        run_id: the launched run.
        reason: why it was skipped or failed.
    """

    schedule: str
    state: str
    fire_at: datetime | None = None
    upstream_run_id: str | None = None
    run_id: str | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "state": self.state,
            "fire_at": self.fire_at.isoformat() if self.fire_at else None,
            "upstream_run_id": self.upstream_run_id,
            "run_id": self.run_id,
            "reason": self.reason,
        }

    def describe(self) -> str:
        """One line: the fire time (or upstream run), the schedule, what became of it."""
        what = self.fire_at.isoformat() if self.fire_at else f"after run {self.upstream_run_id}"
        line = f"{what}  {self.schedule}  {self.state}"
        if self.run_id:
            line += f"  run {self.run_id}"
        if self.reason:
            line += f"  ({self.reason})"
        return line


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Scheduler:
    """Launches the runs of a workspace's schedules.

    Args:
        workspace: whose store holds the schedules and where runs are launched.
        poll: most seconds between passes (new schedules, upstream runs, the lease).
        stale_after: seconds without a heartbeat after which a standby takes the lease.
        executor: the executor launched runs use (default: the configured one).
        on_fired: called with each :class:`Fired`, in the loop's thread.
        on_status: called with a line about the scheduler itself (standby, took over).
        maintenance: called every :data:`MAINTENANCE_EVERY` seconds while working
            (``glasspane server`` sweeps crashed runs here).
        clock: the current time (tests pass a fake one).
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        poll: float = 1.0,
        stale_after: float = 5.0,
        executor: str | None = None,
        on_fired: Callable[[Fired], None] | None = None,
        on_status: Callable[[str], None] | None = None,
        maintenance: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.workspace = workspace
        self.store = workspace.store
        self.poll = poll
        self.stale_after = stale_after
        self.executor = executor
        self.on_fired = on_fired or (lambda fired: None)
        self.on_status = on_status or (lambda line: None)
        self.maintenance = maintenance
        self.clock = clock
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.uses_lease = self.store.dialect == "sqlite"
        self._leading: bool | None = None if self.uses_lease else True  # None: not asked yet
        self._last_maintenance: float | None = None

    # ---- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; release the lease on the way out."""
        failures = 0
        try:
            while not stop.is_set():
                try:
                    now = self.clock()
                    if self._lead(now):
                        self._maintain(now)
                        self.step(now)
                    pause = self._sleep(self.clock())
                    failures = 0
                except Exception as exc:  # the database went away: say so, retry, go on
                    failures += 1
                    pause = min(MAX_BACKOFF, self.poll * 2**failures)
                    self.on_status(
                        f"error: a scheduler pass failed ({type(exc).__name__}: {exc}); "
                        f"retrying in {pause:g} s"
                    )
                stop.wait(pause)
        finally:
            if self.uses_lease and self._leading:
                try:
                    self.store.release_lease(LEASE, self.holder)
                except Exception:  # noqa: BLE001 - the standby takes over once it is stale
                    pass

    def _lead(self, now: datetime) -> bool:
        """Whether this scheduler works now (always on PostgreSQL; on SQLite, while it
        holds the lease), announcing each change."""
        if not self.uses_lease:
            return True
        leading = self.store.acquire_lease(LEASE, self.holder, now, self.stale_after)
        if leading != self._leading:
            self._leading = leading
            if leading:
                self.on_status(f"scheduler {self.holder} holds the lease and works")
            else:
                held = self.store.lease(LEASE) or {}
                self.on_status(
                    f"standby: scheduler {held.get('holder', '?')} holds the lease; this one "
                    f"takes over if it stops for {self.stale_after:g} s"
                )
        return leading

    def _maintain(self, now: datetime) -> None:
        mono = now.timestamp()
        if self._last_maintenance is not None and mono - self._last_maintenance < MAINTENANCE_EVERY:
            return
        self._last_maintenance = mono
        for settled in self.store.settle_claims(now - SETTLE_AFTER):
            self.on_status(
                f"settled a claim a stopped scheduler left: schedule {settled['schedule']} "
                f"-> {settled['state']}"
            )
        if self.maintenance is not None:
            self.maintenance()

    def _sleep(self, now: datetime) -> float:
        """Seconds until the next pass: the next fire time, at most ``poll``."""
        if not self._leading:
            return self.poll
        nxt = self.store.next_due_at()
        if nxt is None:
            return self.poll
        return max(0.0, min(self.poll, (nxt - now).total_seconds()))

    # ---- one pass ----------------------------------------------------------------------------

    def step(self, now: datetime) -> list[Fired]:
        """Claim and launch everything due at ``now``; return what became of each claim."""
        decisions: dict[str, Due] = {}  # by schedule, as planned in the claiming transaction

        def plan(row: dict[str, Any]) -> tuple[list[datetime], datetime | None]:
            decision = decisions[row["name"]] = due(
                schedule_of(row), row["last_fire_at"], row["active_since"], now
            )
            return sorted(decision.launch + decision.skip), decision.next_fire

        fired: list[Fired] = []
        for claimed in self.store.claim_due(now, plan):
            row = claimed.schedule
            decision = decisions[row["name"]]
            launch = set(decision.launch)
            for fire_at in claimed.fire_times:
                if fire_at in launch:
                    fired.append(self._launch_tick(row, fire_at))
                else:
                    fired.append(self._skip_tick(row, fire_at, _skip_reason(row, decision)))
        fired.extend(self._after_triggers())
        for item in fired:
            self.on_fired(item)
        return fired

    def _launch_tick(self, row: dict[str, Any], fire_at: datetime) -> Fired:
        finish = partial(self.store.finish_tick, row["name"], fire_at)
        return self._launch(row, "schedule", finish, fire_at=fire_at)

    def _skip_tick(self, row: dict[str, Any], fire_at: datetime, reason: str) -> Fired:
        self.store.finish_tick(row["name"], fire_at, "skipped", reason=reason)
        return Fired(row["name"], "skipped", fire_at=fire_at, reason=reason)

    def _after_triggers(self) -> list[Fired]:
        fired = []
        for row in self.store.after_schedules():
            name = row["name"]
            upstream = self.store.succeeded_runs_since(
                row["after"], row["active_since"], schedule_name=name
            )
            for item in upstream:
                if not self.store.claim_after_trigger(name, item["run_id"]):
                    continue  # another scheduler has it
                fired.append(self._launch_after(row, item["run_id"]))
        return fired

    def _launch_after(self, row: dict[str, Any], upstream: str) -> Fired:
        finish = partial(self.store.finish_after_trigger, row["name"], upstream)
        return self._launch(row, "after", finish, upstream_run_id=upstream)

    def _launch(
        self,
        row: dict[str, Any],
        trigger: str,
        finish: Callable[..., bool],
        *,
        fire_at: datetime | None = None,
        upstream_run_id: str | None = None,
    ) -> Fired:
        """Launch ``row``'s pipeline for a claimed fire time or upstream run and record the
        outcome with ``finish``: ``launched``, ``skipped`` (``max_active`` reached) or
        ``failed`` (the launch error; the loop goes on)."""
        run_id = reason = None
        try:
            run_id = self.workspace.launch(
                row["pipeline_ref"],
                dict(row["spec"].get("params") or {}),
                trigger=trigger,
                executor=self.executor,
                schedule_name=row["name"],
                scheduled_for=fire_at,
                upstream_run_id=upstream_run_id,
                max_active=_max_active(row),
            )
            state = "launched"
        except ScheduleBusy as busy:
            state, reason = "skipped", str(busy)
        except Exception as exc:
            state, reason = "failed", f"launching the run failed: {type(exc).__name__}: {exc}"
        finish(state, run_id=run_id, reason=reason)
        return Fired(
            row["name"], state, fire_at=fire_at, upstream_run_id=upstream_run_id,
            run_id=run_id, reason=reason,
        )  # fmt: skip


def _max_active(row: dict[str, Any]) -> int:
    return int(row["spec"].get("max_active") or 1)


def _skip_reason(row: dict[str, Any], decision: Due) -> str:
    policy = row["spec"].get("catchup", "latest")
    if policy == "none":
        return "missed while no scheduler ran; catchup `none` skips missed fire times"
    if policy == "all":
        return (
            f"missed while no scheduler ran; catchup `all` runs at most max_catchup "
            f"{row['spec'].get('max_catchup', 10)} missed fire times, the latest ones"
        )
    return "missed while no scheduler ran; catchup `latest` runs only the latest one"


__all__ = ["LEASE", "Fired", "Scheduler"]
