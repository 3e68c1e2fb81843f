"""What the UI needs to explain a run without importing its code: each task run's cache key
parts (``task_runs.key_parts``: code fingerprint, constant digests, cache policy), so a
task can say why it hit or missed the cache; and each pipeline's latest reference and
parameter schema (``pipelines.reference``, ``pipelines.params_schema``), so a run can be
launched from a form generated from that schema.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

Rows recorded before this revision have NULL here: their tasks say the reason is unknown,
and a pipeline gets its schema with its next run.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task_runs") as batch:
        batch.add_column(sa.Column("key_parts", sa.JSON()))
    with op.batch_alter_table("pipelines") as batch:
        batch.add_column(sa.Column("reference", sa.String(length=1024)))
        batch.add_column(sa.Column("params_schema", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("pipelines") as batch:
        batch.drop_column("params_schema")
        batch.drop_column("reference")
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("key_parts")
