"""Write-side SQL for the life of a run: versions, creation, state changes, heartbeats, sweeps.

Each function runs inside the caller's write transaction (a ``Connection`` from
:class:`~glasspane.store.MetadataStore`); task-level events live in :mod:`.events`.

Invariants:

- A run in a terminal state is never changed: every state write is an ``UPDATE ... WHERE
  state NOT IN (terminal states)`` and reports whether it matched.
- Inserts look for the row first; a concurrent insert of the same unique key makes the
  transaction fail with ``IntegrityError`` and the store retries it, finding the row.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from ..errors import InvalidArgument, NotFound
from ..types import CRASHED, PENDING, QUEUED, RUNNING, TERMINAL_STATES
from . import launches
from .events import insert_id, require_run, tail
from .models import AttemptRow, PipelineRow, PipelineVersionRow, RunRow, TaskRunRow


def now() -> datetime:
    return datetime.now(timezone.utc)


def ensure_pipeline_version(
    conn: Connection,
    name: str,
    version_hash: str,
    graph_json: dict,
    reference: str | None = None,
    params_schema: dict | None = None,
) -> int:
    """The id of version ``version_hash`` of pipeline ``name``, inserting what is missing
    (and keeping ``reference`` and ``params_schema`` as the pipeline's latest)."""
    row = conn.execute(
        select(PipelineRow.id, PipelineRow.reference, PipelineRow.params_schema).where(
            PipelineRow.name == name
        )
    ).first()
    latest = {"reference": reference, "params_schema": params_schema}
    if row is None:
        pipeline_id = insert_id(
            conn, insert(PipelineRow).values(name=name, created_at=now(), **latest)
        )
    else:
        pipeline_id = row.id
        if reference is not None and (row.reference, row.params_schema) != (
            reference,
            params_schema,
        ):
            conn.execute(update(PipelineRow).where(PipelineRow.id == pipeline_id).values(**latest))
    version_id = conn.execute(
        select(PipelineVersionRow.id).where(
            PipelineVersionRow.pipeline_id == pipeline_id,
            PipelineVersionRow.hash == version_hash,
        )
    ).scalar()
    if version_id is None:
        # values passed at execution, not in the statement: SQLAlchemy's statement cache
        # would keep a compiled insert, and with it a large graph's JSON, for the process
        row_values = {"pipeline_id": pipeline_id, "hash": version_hash, "created_at": now()}
        version_id = insert_id(
            conn, insert(PipelineVersionRow), {**row_values, "graph_json": graph_json}
        )
    return int(version_id)


def create_run(
    conn: Connection,
    *,
    run_id: str,
    version_id: int,
    nodes: list[tuple[str, str]],
    **values: Any,
) -> None:
    """Insert a pending run (``values`` are its other columns) and its pending task runs."""
    pipeline_id = conn.execute(
        select(PipelineVersionRow.pipeline_id).where(PipelineVersionRow.id == version_id)
    ).scalar()
    if pipeline_id is None:
        raise NotFound(
            f"no pipeline version {version_id} for run `{run_id}`; "
            "get one from ensure_pipeline_version first"
        )
    claimed = launches.is_claimed(conn, run_id)
    if not claimed and conn.execute(select(RunRow.id).where(RunRow.id == run_id)).first():
        raise InvalidArgument(f"run id `{run_id}` is already used; generate a fresh one")
    if values.get("resumed_from") is not None:
        require_run(conn, values["resumed_from"])
    created = now()
    row = {"pipeline_id": pipeline_id, "version_id": version_id, "state": PENDING, **values}
    if claimed:  # a launched run: its row keeps the time it was launched
        conn.execute(update(RunRow).where(RunRow.id == run_id).values(heartbeat_at=created, **row))
    else:
        conn.execute(
            insert(RunRow).values(id=run_id, created_at=created, heartbeat_at=created, **row)
        )
    if nodes:
        conn.execute(
            insert(TaskRunRow),
            [
                {
                    "run_id": run_id,
                    "node_id": node,
                    "task_name": task,
                    "state": PENDING,
                    "attempts": 0,
                    "cached": False,
                }
                for node, task in nodes
            ],
        )


def set_run_state(
    conn: Connection, run_id: str, state: str, *, error: str | None, output: Any
) -> bool:
    """Compare-and-set the run's state; True if the run was not terminal and changed."""
    at = now()
    values: dict[str, Any] = {"state": state}
    if state == RUNNING:
        values["started_at"] = func.coalesce(RunRow.started_at, at)
    if state in TERMINAL_STATES:
        values["ended_at"] = at
    if error is not None:
        values["error"] = tail(error)
    if output is not None:
        values["output"] = output
    statement = (
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.state.not_in(TERMINAL_STATES))
        .values(values)
    )
    return conn.execute(statement).rowcount == 1


def heartbeat(conn: Connection, run_id: str) -> bool:
    """Set the run's ``heartbeat_at`` to now; False if it is terminal or unknown."""
    statement = (
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.state.not_in(TERMINAL_STATES))
        .values(heartbeat_at=now())
    )
    return conn.execute(statement).rowcount == 1


def mark_crashed(conn: Connection, stale_after: float) -> list[str]:
    """Mark stale pending/running runs, their open task runs and attempts ``crashed``."""
    at = now()
    stale = (
        conn.execute(
            select(RunRow.id)
            .where(
                RunRow.state.in_((QUEUED, PENDING, RUNNING)),
                func.coalesce(RunRow.heartbeat_at, RunRow.created_at)
                < at - timedelta(seconds=stale_after),
            )
            .order_by(RunRow.created_at)
        )
        .scalars()
        .all()
    )
    error = (
        f"no heartbeat for more than {stale_after:g}s: the process driving the run stopped "
        "(killed, crashed or lost its machine); start the run again, cached tasks will not "
        "recompute"
    )
    crashed = []
    for run_id in stale:
        # Compare-and-set again: on PostgreSQL the driver may have finished meanwhile.
        changed = conn.execute(
            update(RunRow)
            .where(RunRow.id == run_id, RunRow.state.in_((QUEUED, PENDING, RUNNING)))
            .values(state=CRASHED, ended_at=at, error=error)
        ).rowcount
        if not changed:
            continue
        crashed.append(run_id)
        task_runs = select(TaskRunRow.id).where(TaskRunRow.run_id == run_id)
        conn.execute(
            update(AttemptRow)
            .where(AttemptRow.task_run_id.in_(task_runs), AttemptRow.state == RUNNING)
            .values(state=CRASHED, ended_at=at)
        )
        conn.execute(
            update(TaskRunRow)
            .where(TaskRunRow.run_id == run_id, TaskRunRow.state.not_in(TERMINAL_STATES))
            .values(state=CRASHED, ended_at=at)
        )
    return crashed
