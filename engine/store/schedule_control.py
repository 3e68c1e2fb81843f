"""The metadata store's side of schedules: their rows, tick and trigger claims, and the
scheduler lease (mixed into :class:`~glasspane.store.metadata.MetadataStore`).

Every method is one transaction; the SQL and its invariants are in :mod:`.schedules`,
:mod:`.claims` and :mod:`.leases`. :meth:`ScheduleControl.claim_due` is the one that does
more than one thing in its transaction: picking due schedules, claiming their fire times
and moving them on belong together, so schedulers sharing a PostgreSQL database split the
due schedules between them instead of racing for the same ones.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection

from ..errors import InvalidArgument
from . import claims, leases, schedules
from .claims import DueTicks

#: ``plan(schedule) -> (fire times to claim, next fire time)``: a pure function of the row
Plan = Callable[[dict[str, Any]], tuple[list[datetime], datetime | None]]

_NAME_LENGTH = 255
_REF_LENGTH = 1024


def _check_limit(limit: int, what: str) -> None:
    if limit < 1:
        raise InvalidArgument(f"{what} limit must be 1 or more, not {limit}")


class ScheduleControl:
    """Schedules, their ticks and ``after`` triggers, and the scheduler lease."""

    _write: Callable[..., Any]
    _read: Callable[[], AbstractContextManager[Connection]]

    # ---- schedules ---------------------------------------------------------------------------

    def upsert_schedule(
        self,
        name: str,
        pipeline_ref: str,
        spec: dict[str, Any],
        next_fire_at: datetime | None,
        at: datetime | None = None,
    ) -> str:
        """Register schedule ``name`` or update it in place (same identity, same
        ``created_at``); ``next_fire_at`` is stored only when it is new or changed.

        Args:
            name: the schedule's stable name.
            pipeline_ref: how to import the pipeline it launches (``file.py:name``).
            spec: its definition (cron/every/after, timezone, params, catchup, max_catchup,
                max_active), JSON-serializable; ``spec["after"]`` names the upstream pipeline
                of an ``after`` schedule.
            next_fire_at: its first fire time from now (None for an ``after``-only schedule).
            at: the current time, from which a new schedule is active (default: the clock's).

        Returns:
            ``"created"``, ``"updated"`` or ``"unchanged"``.

        Raises:
            InvalidArgument: ``name`` or ``pipeline_ref`` is empty or too long.
        """
        if not name or len(name) > _NAME_LENGTH:
            raise InvalidArgument(
                f"schedule name `{name}` must have 1 to {_NAME_LENGTH} characters; "
                "name the schedule explicitly"
            )
        if not pipeline_ref or len(pipeline_ref) > _REF_LENGTH:
            raise InvalidArgument(
                f"schedule `{name}`: pipeline reference must have 1 to {_REF_LENGTH} "
                f"characters, not {len(pipeline_ref)}; use the form path/to/file.py:pipeline"
            )
        return self._write(
            lambda conn: schedules.upsert_schedule(conn, name, pipeline_ref, spec, next_fire_at, at)
        )

    def get_schedule(self, name: str) -> dict[str, Any]:
        """Schedule ``name``'s columns. Raises NotFound (naming the schedules there are)."""
        with self._read() as conn:
            return schedules.get_schedule(conn, name)

    def list_schedules(self) -> list[dict[str, Any]]:
        """Every schedule's columns, by name."""
        with self._read() as conn:
            return schedules.list_schedules(conn)

    def pause_schedule(self, name: str) -> bool:
        """Pause schedule ``name``; False if paused already. Raises NotFound."""
        return self._write(lambda conn: schedules.pause_schedule(conn, name))

    def resume_schedule(
        self, name: str, next_fire_at: datetime | None, at: datetime | None = None
    ) -> bool:
        """Resume schedule ``name`` from ``at`` (default: now) at ``next_fire_at`` (the
        caller computes it); False if it was not paused. Raises NotFound."""
        return self._write(lambda conn: schedules.resume_schedule(conn, name, next_fire_at, at))

    def remove_schedule(self, name: str) -> None:
        """Delete schedule ``name`` with its ticks and triggers. Raises NotFound."""
        self._write(lambda conn: schedules.remove_schedule(conn, name))

    def due_schedules(self, at: datetime, limit: int = 100) -> list[dict[str, Any]]:
        """The unpaused schedules due at ``at`` (``next_fire_at <= at``), earliest first."""
        _check_limit(limit, "due_schedules")
        with self._read() as conn:
            return schedules.due_schedules(conn, at, limit)

    def next_due_at(self) -> datetime | None:
        """The earliest ``next_fire_at`` of the unpaused schedules (an index seek), or None."""
        with self._read() as conn:
            return schedules.next_due_at(conn)

    def after_schedules(self) -> list[dict[str, Any]]:
        """The unpaused ``after`` schedules, by name."""
        with self._read() as conn:
            return schedules.after_schedules(conn)

    def set_next_fire(
        self, name: str, next_fire_at: datetime | None, last_fire_at: datetime | None = None
    ) -> bool:
        """Move schedule ``name`` on to ``next_fire_at``; False if it no longer exists."""
        return self._write(
            lambda conn: schedules.set_next_fire(conn, name, next_fire_at, last_fire_at)
        )

    def count_active_runs(self, name: str) -> int:
        """How many runs schedule ``name`` launched are queued, pending or running."""
        with self._read() as conn:
            return schedules.count_active_runs(conn, name)

    # ---- ticks -------------------------------------------------------------------------------

    def claim_due(self, at: datetime, plan: Plan, limit: int = 100) -> list[DueTicks]:
        """In one transaction: pick the schedules due at ``at``, claim the fire times
        ``plan`` gives for each, and move each on to the next fire time ``plan`` gives.

        ``plan`` may run again if the transaction is retried: keep it pure. Only the fire
        times this call claimed come back; the caller launches or skips each and records the
        outcome with :meth:`finish_tick`.

        Raises:
            InvalidArgument: ``plan`` did not move a schedule past its ``next_fire_at``
                (it would be due again at once).
        """
        _check_limit(limit, "claim_due")

        def work(conn: Connection) -> list[DueTicks]:
            due = []
            for schedule in schedules.due_schedules(conn, at, limit):
                name = schedule["name"]
                fire_times, next_fire_at = plan(schedule)
                if next_fire_at is not None and next_fire_at <= schedule["next_fire_at"]:
                    raise InvalidArgument(
                        f"schedule `{name}`: the next fire time {next_fire_at.isoformat()} "
                        f"is not after the one due, {schedule['next_fire_at'].isoformat()}; "
                        "the fire-time computation must move the schedule forward"
                    )
                claimed = [t for t in fire_times if claims.claim_tick(conn, name, t)]
                schedules.set_next_fire(conn, name, next_fire_at, max(fire_times, default=None))
                utc = [t.astimezone(timezone.utc) for t in claimed]
                due.append(DueTicks(schedule=schedule, fire_times=utc))
            return due

        return self._write(work)  # type: ignore[no-any-return]

    def claim_tick(self, name: str, fire_at: datetime) -> bool:
        """Claim fire time ``fire_at`` of schedule ``name``: True for exactly one caller
        ever, whatever the number of schedulers. Raises NotFound."""
        return self._write(lambda conn: claims.claim_tick(conn, name, fire_at))

    def finish_tick(
        self,
        name: str,
        fire_at: datetime,
        state: str,
        run_id: str | None = None,
        reason: str | None = None,
    ) -> bool:
        """Record what became of a claimed tick: ``launched`` (with ``run_id``),
        ``skipped`` or ``failed`` (with ``reason``); False if it was finished already.

        Raises:
            InvalidArgument: ``state`` is not one of those.
        """
        return self._write(
            lambda conn: claims.finish_tick(conn, name, fire_at, state, run_id, reason)
        )

    def schedule_ticks(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` ticks of schedule ``name``, latest fire time first: each
        ``{"fire_at", "state", "reason", "run_id", "created_at", "updated_at"}``."""
        _check_limit(limit, "schedule_ticks")
        with self._read() as conn:
            return claims.ticks(conn, name, limit)

    def schedule_triggers(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` upstream runs ``after`` schedule ``name`` reacted to, latest
        first: each ``{"upstream_run_id", "state", "reason", "run_id", "created_at",
        "updated_at"}``."""
        _check_limit(limit, "schedule_triggers")
        with self._read() as conn:
            return claims.triggers(conn, name, limit)

    def settle_claims(self, claimed_before: datetime) -> list[dict[str, Any]]:
        """Settle the ticks and triggers a stopped scheduler left claimed before
        ``claimed_before`` (see :func:`.claims.settle_claims`)."""
        return self._write(lambda conn: claims.settle_claims(conn, claimed_before))

    def prune_ticks(self, fired_before: datetime) -> int:
        """Delete finished ticks of fire times before ``fired_before``; return how many."""
        return self._write(lambda conn: claims.prune_ticks(conn, fired_before))

    # ---- after triggers ----------------------------------------------------------------------

    def claim_after_trigger(self, name: str, upstream_run_id: str) -> bool:
        """Claim upstream run ``upstream_run_id`` for ``after`` schedule ``name``: True
        once per pair, ever. Raises NotFound."""
        return self._write(lambda conn: claims.claim_after_trigger(conn, name, upstream_run_id))

    def finish_after_trigger(
        self,
        name: str,
        upstream_run_id: str,
        state: str,
        run_id: str | None = None,
        reason: str | None = None,
    ) -> bool:
        """Record what became of a claimed ``after`` trigger, like :meth:`finish_tick`."""
        return self._write(
            lambda conn: claims.finish_after_trigger(
                conn, name, upstream_run_id, state, run_id, reason
            )
        )

    def succeeded_runs_since(
        self,
        pipeline: str,
        since: datetime,
        *,
        schedule_name: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Runs of ``pipeline`` that succeeded at ``since`` or later, oldest first, as
        ``{"run_id", "ended_at"}``; with ``schedule_name``, without those it claimed."""
        _check_limit(limit, "succeeded_runs_since")
        with self._read() as conn:
            return claims.succeeded_runs_since(
                conn, pipeline, since, schedule_name=schedule_name, limit=limit
            )

    # ---- the scheduler lease -----------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, at: datetime, stale_after: float) -> bool:
        """Take lease ``name`` for ``holder`` if free, held by it, or stale (no heartbeat
        for ``stale_after`` seconds before ``at``)."""
        return self._write(lambda conn: leases.acquire_lease(conn, name, holder, at, stale_after))

    def renew_lease(self, name: str, holder: str, at: datetime) -> bool:
        """Heartbeat lease ``name``; False if ``holder`` lost it (and must stop)."""
        return self._write(lambda conn: leases.renew_lease(conn, name, holder, at))

    def release_lease(self, name: str, holder: str) -> bool:
        """Give lease ``name`` up; False if ``holder`` did not hold it."""
        return self._write(lambda conn: leases.release_lease(conn, name, holder))

    def lease(self, name: str) -> dict[str, Any] | None:
        """Lease ``name`` (``holder``, ``heartbeat_at``, ``acquired_at``), or None."""
        with self._read() as conn:
            return leases.lease(conn, name)
