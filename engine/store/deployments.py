"""Deployments and model links in the metadata store (mixed into
:class:`~glasspane.store.metadata.MetadataStore`).

A deployment row is written once its model version serves (after the target's checks), so the
row never names a version that did not pass them; each change is also kept as a
``deployment_events`` row (``deployed``, ``redeployed``, ``rejected``, ``stopped``), which is how
"which version answered on port 5001 on 3 March?" is answered.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, insert, select, update

from .model_rows import DeploymentEventRow, DeploymentRow, ModelLinkRow

_deployments = DeploymentRow.__table__
_events = DeploymentEventRow.__table__
_links = ModelLinkRow.__table__


def _now() -> datetime:
    return datetime.now(timezone.utc)


class DeploymentStore:
    """Deployment rows, their history, and links to other registries."""

    _write: Callable[..., Any]
    _read: Callable[[], AbstractContextManager[Connection]]

    def deployments(self, model: str | None = None) -> list[dict[str, Any]]:
        """Every deployment (of ``model``), by name."""
        query = select(*_deployments.c).order_by(_deployments.c.name)
        if model is not None:
            query = query.where(_deployments.c.model_name == model)
        with self._read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def deployment(self, name: str) -> dict[str, Any] | None:
        """Deployment ``name``, or None."""
        with self._read() as conn:
            row = (
                conn.execute(select(*_deployments.c).where(_deployments.c.name == name))
                .mappings()
                .first()
            )
        return None if row is None else dict(row)

    def save_deployment(self, row: dict[str, Any], action: str, message: str | None = None) -> None:
        """Insert or replace deployment ``row["name"]`` (columns of ``deployments``) and keep
        ``action`` in its history."""

        def work(conn: Connection) -> None:
            now = _now()
            values = {**row, "updated_at": now}
            exists = conn.execute(
                select(_deployments.c.name).where(_deployments.c.name == row["name"])
            ).first()
            if exists is None:
                conn.execute(insert(DeploymentRow), {**values, "created_at": now})
            else:
                conn.execute(
                    update(DeploymentRow).where(_deployments.c.name == row["name"]).values(values)
                )
            self._deployment_event(conn, row, action, message)

        self._write(work)

    def note_deployment(self, row: dict[str, Any], action: str, message: str | None) -> None:
        """Keep ``action`` (``rejected``...) in deployment ``row["name"]``'s history only."""
        self._write(lambda conn: self._deployment_event(conn, row, action, message))

    def set_deployment_state(self, name: str, state: str, message: str | None = None) -> None:
        """Set deployment ``name``'s state (``stopped``) and keep it in its history."""

        def work(conn: Connection) -> None:
            row = (
                conn.execute(select(*_deployments.c).where(_deployments.c.name == name))
                .mappings()
                .first()
            )
            if row is None:
                return
            conn.execute(
                update(DeploymentRow)
                .where(_deployments.c.name == name)
                .values(state=state, pid=None, updated_at=_now())
            )
            self._deployment_event(conn, dict(row), state, message)

        self._write(work)

    def deployment_history(self, name: str) -> list[dict[str, Any]]:
        """What happened to deployment ``name``, oldest first."""
        query = select(*_events.c).where(_events.c.name == name).order_by(_events.c.id)
        with self._read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    @staticmethod
    def _deployment_event(
        conn: Connection, row: dict[str, Any], action: str, message: str | None
    ) -> None:
        conn.execute(
            insert(DeploymentEventRow),
            {
                "name": row["name"], "action": action, "model_name": row["model_name"],
                "model_version": row["model_version"], "message": message,
                "run_id": row.get("run_id"), "ts": _now(),
            },
        )  # fmt: skip

    def link_model(
        self, name: str, version: int, registry: str, external_name: str,
        external_version: str, uri: str | None = None,
    ) -> None:  # fmt: skip
        """Record that ``name/version`` is ``external_name`` version ``external_version`` in
        ``registry`` (``mlflow``); recording it again replaces it."""

        def work(conn: Connection) -> None:
            key = (
                (_links.c.name == name) & (_links.c.version == version)
                & (_links.c.registry == registry)
            )  # fmt: skip
            values = {
                "external_name": external_name, "external_version": str(external_version),
                "uri": uri, "created_at": _now(),
            }  # fmt: skip
            if conn.execute(select(_links.c.name).where(key)).first() is None:
                conn.execute(
                    insert(ModelLinkRow),
                    {"name": name, "version": version, "registry": registry, **values},
                )
            else:
                conn.execute(update(ModelLinkRow).where(key).values(values))

        self._write(work)

    def model_links(self, name: str, version: int | None = None) -> list[dict[str, Any]]:
        """The links of model ``name`` (of one ``version``) to other registries."""
        query = (
            select(*_links.c)
            .where(_links.c.name == name)
            .order_by(_links.c.version, _links.c.registry)
        )
        if version is not None:
            query = query.where(_links.c.version == version)
        with self._read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]
