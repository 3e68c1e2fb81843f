"""Per-attempt captured output: stdout, stderr, log tail and traceback on ``attempts``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

A task run keeps the text of all its attempts together (``task_runs.stdout`` and so on);
these columns keep each attempt's own text, so ``glasspane logs`` can show what a failed
attempt printed before the retry that succeeded. Rows written before this revision have
NULL there. Batch mode, so SQLite can drop the columns again on downgrade.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("stdout", "stderr", "log_tail", "traceback")


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
