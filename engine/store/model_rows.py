"""The model registry's and the deployments' tables (glasspane's own registry; see
:mod:`glasspane.registry` and :mod:`glasspane.serving`).

Split from :mod:`.models` (same ``Base``, same conventions): a model is a name; each
registration adds a version numbered from 1 within its name, pointing at the stored model (an
artifact) and the task run that registered it; an alias (``champion``) names one version of a
model and moves when promoted. A deployment (one row per deployment name) says which version
it serves, on which target, where and by which process; ``deployment_events`` keeps what happened
to it; ``model_links`` the same version's number in another registry (MLflow's).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
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
    #: a few input rows (``dataframe_split`` JSON) a deployment is checked with
    input_example: Mapped[Any | None] = mapped_column(JSONValue)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ModelAliasRow(Base):
    """Alias ``alias`` of model ``name`` names its version ``version``."""

    __tablename__ = "model_aliases"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    alias: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ModelLinkRow(Base):
    """Version ``version`` of model ``name`` is also ``external_name`` version
    ``external_version`` in registry ``registry`` (``mlflow``)."""

    __tablename__ = "model_links"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    registry_name: Mapped[str] = mapped_column("registry", String(64), primary_key=True)
    external_name: Mapped[str] = mapped_column(String(500))
    external_version: Mapped[str] = mapped_column(String(64))
    uri: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeploymentRow(Base):
    """Deployment ``name``: the model version it serves, on ``target``, at ``url``."""

    __tablename__ = "deployments"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    target: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    model_version: Mapped[int] = mapped_column(Integer)
    #: what was asked for (``churn@champion``)
    ref: Mapped[str] = mapped_column(String(300))
    url: Mapped[str] = mapped_column(String(500))
    #: the serving process, when the target runs one on this machine
    pid: Mapped[int | None] = mapped_column(Integer)
    #: ``serving`` or ``stopped``
    state: Mapped[str] = mapped_column(String(16))
    #: what the target keeps to find, check and stop it (JSON)
    details: Mapped[Any | None] = mapped_column(JSONValue)
    #: the run whose task deployed it (``glasspane.deploy``), if any
    run_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeploymentEventRow(Base):
    """One thing that happened to deployment ``name``: ``deployed``, ``redeployed``,
    ``rejected`` (a new version failed its checks; the old one kept serving) or ``stopped``."""

    __tablename__ = "deployment_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    action: Mapped[str] = mapped_column(String(16))
    model_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    model_version: Mapped[int] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(32))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
