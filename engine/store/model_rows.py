"""The model registry's tables (glasspane's own registry; see :mod:`glasspane.registry`).

Split from :mod:`.models` (same ``Base``, same conventions): a model is a name; each
registration adds a version numbered from 1 within its name, pointing at the stored model (an
artifact) and the task run that registered it; an alias (``champion``) names one version of a
model and moves when promoted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, BigId, JSONValue, UTCDateTime

#: characters of a model or alias name
NAME_LENGTH = 128


class ModelVersionRow(Base):
    """One registered version of model ``name``: the stored model and who produced it."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    version: Mapped[int] = mapped_column(Integer)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"))
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    task_run_id: Mapped[int | None] = mapped_column(ForeignKey("task_runs.id", ondelete="SET NULL"))
    node_id: Mapped[str | None] = mapped_column(String(1000))
    #: what the registering code said of it (``metadata=``), JSON
    meta: Mapped[Any | None] = mapped_column(JSONValue)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ModelAliasRow(Base):
    """Alias ``alias`` of model ``name`` names its version ``version``."""

    __tablename__ = "model_aliases"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    alias: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
