"""Schedules: the schedules themselves, one tick per evaluated fire time, the upstream runs
``after`` schedules reacted to, the scheduler lease, and on ``runs`` what launched a run
(``schedule_name``, ``scheduled_for``, ``upstream_run_id``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

The unique keys do the scheduling's bookkeeping: (schedule, fire time) on ``schedule_ticks``
and (schedule, upstream run) on ``schedule_triggers``, so inserting the row is the claim and
a restarted or second scheduler never launches the same thing twice. Runs recorded before
this revision have NULL in the new columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
OUTCOMES = "state IN ('claimed', 'launched', 'skipped', 'failed')"


def _outcome_columns() -> list[sa.Column]:
    return [
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    ]


def _schedule_key(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["schedule_name"],
        ["schedules.name"],
        name=op.f(f"fk_{table}_schedule_name_schedules"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("pipeline_ref", sa.String(length=1024), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("after", sa.String(length=255), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("active_since", TIMESTAMP, nullable=False),
        sa.Column("next_fire_at", TIMESTAMP, nullable=True),
        sa.Column("last_fire_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("name", name=op.f("uq_schedules_name")),
    )
    op.create_index(op.f("ix_schedules_after"), "schedules", ["after"])
    op.create_index(
        op.f("ix_schedules_paused_next_fire_at"), "schedules", ["paused", "next_fire_at"]
    )
    op.create_table(
        "schedule_ticks",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("schedule_name", sa.String(length=255), nullable=False),
        sa.Column("fire_at", TIMESTAMP, nullable=False),
        *_outcome_columns(),
        sa.CheckConstraint(OUTCOMES, name=op.f("ck_schedule_ticks_state")),
        _schedule_key("schedule_ticks"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_ticks")),
        sa.UniqueConstraint(
            "schedule_name", "fire_at", name=op.f("uq_schedule_ticks_schedule_name_fire_at")
        ),
    )
    op.create_index(op.f("ix_schedule_ticks_state_fire_at"), "schedule_ticks", ["state", "fire_at"])
    op.create_table(
        "schedule_triggers",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("schedule_name", sa.String(length=255), nullable=False),
        sa.Column("upstream_run_id", sa.String(length=32), nullable=False),
        *_outcome_columns(),
        sa.CheckConstraint(OUTCOMES, name=op.f("ck_schedule_triggers_state")),
        _schedule_key("schedule_triggers"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_triggers")),
        sa.UniqueConstraint(
            "schedule_name",
            "upstream_run_id",
            name=op.f("uq_schedule_triggers_schedule_name_upstream_run_id"),
        ),
    )
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("heartbeat_at", TIMESTAMP, nullable=False),
        sa.Column("acquired_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_leases")),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("schedule_name", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("scheduled_for", TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("upstream_run_id", sa.String(length=32), nullable=True))
    op.create_index(op.f("ix_runs_schedule_name_state"), "runs", ["schedule_name", "state"])
    op.create_index(
        op.f("ix_runs_pipeline_name_state_ended_at"), "runs", ["pipeline_name", "state", "ended_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_pipeline_name_state_ended_at"), table_name="runs")
    op.drop_index(op.f("ix_runs_schedule_name_state"), table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("upstream_run_id")
        batch.drop_column("scheduled_for")
        batch.drop_column("schedule_name")
    # Dropping a table drops its indexes with it.
    for table in ("scheduler_leases", "schedule_triggers", "schedule_ticks", "schedules"):
        op.drop_table(table)
