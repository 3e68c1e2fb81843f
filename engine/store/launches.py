"""Queued runs: a run launched in a child process is recorded before the child starts.

``Workspace.launch`` records the run as ``queued`` (no pipeline version yet: the launching
process never imports the user's code); the child takes it over when it starts the run
(:func:`take_over`), and a child that exits first leaves it to :func:`launch_failed`, which
records it ``crashed`` with the reason. The crash sweep also ends queued runs whose launcher
is gone (no heartbeat: ``created_at`` is their last sign of life).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ..errors import InvalidArgument, ScheduleBusy
from ..types import CRASHED, PENDING, QUEUED
from .columns import tail
from .models import PipelineRow, RunRow, ScheduleRow


def queue_run(
    conn: Connection,
    *,
    run_id: str,
    pipeline_name: str,
    pipeline_ref: str,
    params: dict[str, Any],
    trigger: str,
    executor: str | None,
    schedule_name: str | None = None,
    scheduled_for: datetime | None = None,
    upstream_run_id: str | None = None,
    max_active: int | None = None,
) -> None:
    """Insert run ``run_id`` in state ``queued``; a run a schedule launches records the
    schedule, the fire time it is for and (``after`` schedules) the upstream run.

    With ``max_active``, the schedule's queued and running runs are counted in the same
    transaction, under a lock on the schedule's row on PostgreSQL (SQLite's writers are
    serialized already), so schedulers launching at once never exceed it.

    Raises:
        ScheduleBusy: ``schedule_name`` has ``max_active`` runs queued or running.
        InvalidArgument: ``run_id`` is taken.
    """
    if max_active is not None and schedule_name is not None:
        _check_active(conn, schedule_name, max_active)
    try:
        conn.execute(
            insert(RunRow).values(
                id=run_id,
                pipeline_name=pipeline_name,
                version_id=None,
                pipeline_ref=pipeline_ref,
                params=params,
                state=QUEUED,
                trigger=trigger,
                executor=executor or "",
                created_at=datetime.now(timezone.utc),
                schedule_name=schedule_name,
                scheduled_for=scheduled_for,
                upstream_run_id=upstream_run_id,
            )
        )
    except Exception as exc:  # an IntegrityError: the id is taken
        raise InvalidArgument(f"run id `{run_id}` is already used; launch with a new id") from exc


def _check_active(conn: Connection, schedule_name: str, max_active: int) -> None:
    from .schedules import count_active_runs

    if conn.dialect.name == "postgresql":
        conn.execute(
            select(ScheduleRow.id).where(ScheduleRow.name == schedule_name).with_for_update()
        )
    active = count_active_runs(conn, schedule_name)
    if active >= max_active:
        raise ScheduleBusy(
            f"max_active {max_active} reached: {active} run(s) of schedule `{schedule_name}` "
            "still queued or running"
        )


def take_over(conn: Connection, run_id: str) -> bool:
    """Claim the queued row of ``run_id`` for the starting run: it becomes ``pending`` (still
    without a pipeline version) until ``create_run`` fills it in, so the run stays readable
    throughout; False when there is none (the run was not launched, or already ended)."""
    claimed = conn.execute(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.state == QUEUED)
        .values(state=PENDING, heartbeat_at=datetime.now(timezone.utc))
    )
    return claimed.rowcount == 1


def is_claimed(conn: Connection, run_id: str) -> bool:
    """Whether ``run_id`` is a launched run its process claimed and has not created yet."""
    row = conn.execute(select(RunRow.state, RunRow.version_id).where(RunRow.id == run_id)).first()
    return row is not None and row.state == PENDING and row.version_id is None


def launch_failed(conn: Connection, run_id: str, error: str) -> bool:
    """Record a queued run whose process exited before starting it (before or after
    claiming it) as ``crashed``."""
    now = datetime.now(timezone.utc)
    changed = conn.execute(
        update(RunRow)
        .where(
            RunRow.id == run_id,
            RunRow.state.in_((QUEUED, PENDING)),
            RunRow.version_id.is_(None),
        )
        .values(state=CRASHED, error=tail(error), ended_at=now)
    )
    return changed.rowcount == 1


def pipeline_schema(conn: Connection, name: str) -> dict[str, Any] | None:
    """The parameter schema pipeline ``name`` stored at its latest run (``None``: unknown)."""
    return conn.execute(select(PipelineRow.params_schema).where(PipelineRow.name == name)).scalar()  # type: ignore[no-any-return]
