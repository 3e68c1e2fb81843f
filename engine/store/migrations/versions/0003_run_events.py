"""The run event log (every event of a run, in order, for processes that follow it), the
cancel request another process can make (``runs.cancel_requested_at``), and queued runs:
``runs.pipeline_id`` and ``runs.version_id`` are NULL for a run launched in a child process
that has not started yet.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

One row per batch of :mod:`glasspane.events` events (a recorder transaction), keyed by
(run, first sequence number), with the last one, so following a run reads the batches
``WHERE run_id = ? AND last_seq > ?``. Runs recorded before this revision have no events
here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_events",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_events_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_run_events")),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("cancel_requested_at", sa.DateTime(timezone=True)))
        batch.alter_column("pipeline_id", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("version_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM runs WHERE version_id IS NULL")
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("version_id", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("pipeline_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("cancel_requested_at")
    op.drop_table("run_events")
