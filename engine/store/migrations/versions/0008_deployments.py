"""Deployments and model links: each deployment of a model version to a deploy target (what it
serves, where, its process), what happened to it (``deployment_events``), a version's sample
input, and the same version's number in another registry (MLflow's).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("input_example", sa.JSON(), nullable=True))
    op.create_table(
        "model_links",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("registry", sa.String(length=64), nullable=False),
        sa.Column("external_name", sa.String(length=500), nullable=False),
        sa.Column("external_version", sa.String(length=64), nullable=False),
        sa.Column("uri", sa.String(length=2000), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", "version", "registry", name=op.f("pk_model_links")),
    )  # fmt: skip
    op.create_table(
        "deployments",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=300), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_deployments")),
    )  # fmt: skip
    op.create_table(
        "deployment_events",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("ts", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_events")),
    )  # fmt: skip
    op.create_index(op.f("ix_deployment_events_name"), "deployment_events", ["name"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_deployment_events_name"), table_name="deployment_events")
    op.drop_table("deployment_events")
    op.drop_table("deployments")
    op.drop_table("model_links")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("input_example")
