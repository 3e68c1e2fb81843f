"""Trackers: each run's run in each tracker (its id and URL) and the tracker outbox (the
last event each tracker took, and why it stopped).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

One row per (run, tracker). What a tracker could not take stays in the run's event log
(``run_events``); the row says from where to deliver it again.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tracker_runs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("tracker", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("delivered_seq", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('live', 'pending', 'delivered')", name=op.f("ck_tracker_runs_state")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_tracker_runs_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "tracker", name=op.f("pk_tracker_runs")),
    )
    op.create_index(op.f("ix_tracker_runs_state"), "tracker_runs", ["state"])


def downgrade() -> None:
    op.drop_index(op.f("ix_tracker_runs_state"), table_name="tracker_runs")
    op.drop_table("tracker_runs")
