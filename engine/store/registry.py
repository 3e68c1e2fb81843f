"""glasspane's own model registry in the metadata store: versions recorded from a run's
``model_registered`` events, aliases, and references (``churn``, ``churn/3``,
``churn@champion``) resolved to a version. A ``model_loaded`` event (a task loaded a version)
becomes an input edge of the task run: lineage from the version's registering task run.

Version numbers are given by the driver when it records the event, in the run's recording
transaction: the next number of that name. Two runs registering the same name at once race
on the unique (name, version) key; the loser's transaction is retried by the store and takes
the next number.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from ..errors import InvalidArgument, NotFound
from .artifact_rows import INSERT_ARTIFACT, artifact_row
from .model_rows import ModelAliasRow, ModelVersionRow
from .models import ArtifactRow, LineageEdgeRow, TaskRunRow

#: a model or alias name: letters, digits, ``_ . -``, starting with a letter or digit
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_versions = ModelVersionRow.__table__.c
_aliases = ModelAliasRow.__table__.c
_artifacts = ArtifactRow.__table__.c
_edges = LineageEdgeRow.__table__.c


def check_name(value: str, what: str) -> str:
    """``value`` as a model or alias name.

    Raises:
        InvalidArgument: it is not one (saying which characters are allowed).
    """
    if not isinstance(value, str) or not NAME.match(value):
        raise InvalidArgument(
            f"{what} {value!r} is not a valid name: use letters, digits, `_`, `.` and `-`, "
            "starting with a letter or digit, at most 128 characters"
        )
    if what == "alias" and value.isdigit():
        raise InvalidArgument(f"alias {value!r} is a number: an alias names a version, use a word")
    return value


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """``churn`` -> (churn, None, None): the latest version; ``churn/3`` -> version 3;
    ``churn@champion`` -> the version alias ``champion`` names.

    Raises:
        InvalidArgument: ``ref`` is none of these.
    """
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return check_name(name, "model"), None, check_name(alias, "alias")
    if "/" in ref:
        name, number = ref.split("/", 1)
        if not number.isdigit() or int(number) < 1:
            raise InvalidArgument(
                f"model reference {ref!r}: the version after `/` is a number from 1, as in "
                f"`{name}/3`; or name an alias: `{name}@champion`"
            )
        return check_name(name, "model"), int(number), None
    return check_name(ref, "model"), None, None


def _now() -> datetime:
    return datetime.now(timezone.utc)


class RegistryRows:
    """The ``model_registered`` and ``model_loaded`` part of
    :class:`~glasspane.store.events.EventWriter`."""

    conn: Connection
    run_id: str
    edges: list[dict[str, Any]]
    _live_task_run: Callable[[dict[str, Any]], int | None]
    _artifact_id: Callable[[dict[str, Any]], int]

    def _model_loaded(self, event: dict[str, Any]) -> None:
        """A task loaded a model version: an input edge of its task run named
        ``model:<name>/<version>``, whose source is the task run that registered the version.
        Loading it again (a retry, a loop) adds no second edge."""
        task_run_id = self._live_task_run(event)
        if task_run_id is None:
            return
        found = self.conn.execute(
            select(_versions.artifact_id, _versions.task_run_id).where(
                _versions.name == event["name"], _versions.version == int(event["version"])
            )
        ).first()
        artifact_id = self._artifact_id(event["artifact"]) if found is None else found.artifact_id
        edge = {
            "task_run_id": task_run_id, "artifact_id": artifact_id, "direction": "input",
            "name": f"model:{event['name']}/{int(event['version'])}",
            "source_task_run_id": None if found is None else found.task_run_id,
        }  # fmt: skip
        if edge in self.edges or self.conn.execute(
            select(_edges.id).where(
                _edges.task_run_id == task_run_id, _edges.direction == "input",
                _edges.name == edge["name"],
            )
        ).first() is not None:  # fmt: skip
            return
        self.edges.append(edge)

    def _model_registered(self, event: dict[str, Any]) -> None:
        task_run_id = self._live_task_run(event)
        name = event["name"]
        if event.get("version") is not None:  # recorded by the task itself: tie its task run
            self.conn.execute(
                update(ModelVersionRow)
                .where(
                    _versions.name == name, _versions.version == int(event["version"]),
                    _versions.run_id == self.run_id,
                )
                .values(task_run_id=task_run_id)
            )  # fmt: skip
            return
        latest = self.conn.execute(
            select(func.max(_versions.version)).where(_versions.name == name)
        ).scalar()
        version = int(latest or 0) + 1
        self.conn.execute(
            insert(ModelVersionRow),
            {
                "name": name, "version": version,
                "artifact_id": self._artifact_id(event["artifact"]), "run_id": self.run_id,
                "task_run_id": task_run_id, "node_id": event["node"],
                "meta": event.get("metadata"), "input_example": event.get("input_example"),
                "created_at": utc_of(event["ts"]),
            },
        )  # fmt: skip
        if event.get("alias"):
            set_alias(self.conn, name, event["alias"], version)


def utc_of(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def set_alias(conn: Connection, name: str, alias: str, version: int) -> int | None:
    """Point ``name@alias`` at ``version``; the version it named before (None if new)."""
    before = conn.execute(
        select(_aliases.version).where(_aliases.name == name, _aliases.alias == alias)
    ).scalar()
    if before is None:
        conn.execute(
            insert(ModelAliasRow),
            {"name": name, "alias": alias, "version": version, "updated_at": _now()},
        )
    else:
        conn.execute(
            update(ModelAliasRow)
            .where(_aliases.name == name, _aliases.alias == alias)
            .values(version=version, updated_at=_now())
        )
    return before


def versions(conn: Connection, name: str | None = None) -> list[dict[str, Any]]:
    """Registered versions (of ``name``, or of every model), newest first, each with its
    aliases, its stored model, its ``input_example`` (``{"columns": [...], "data": [...]}``
    or None) and the task run that registered it."""
    query = (
        select(
            _versions.name, _versions.version, _versions.run_id, _versions.node_id,
            _versions.meta, _versions.input_example, _versions.created_at,
            _artifacts.content_hash, _artifacts.uri,
            _artifacts.digest, _artifacts.type_name, _artifacts.materializer, _artifacts.size,
            TaskRunRow.__table__.c.state.label("task_state"),
        )
        .join(ArtifactRow, ArtifactRow.id == _versions.artifact_id)
        .outerjoin(TaskRunRow, TaskRunRow.id == _versions.task_run_id)
        .order_by(_versions.name, _versions.version.desc())
    )  # fmt: skip
    if name is not None:
        query = query.where(_versions.name == name)
    aliases: dict[tuple[str, int], list[str]] = {}
    alias_query = select(_aliases.name, _aliases.alias, _aliases.version).order_by(_aliases.alias)
    for alias_row in conn.execute(alias_query):
        key = (str(alias_row.name), int(alias_row.version))
        aliases.setdefault(key, []).append(str(alias_row.alias))
    found = []
    for row in conn.execute(query).mappings():
        item = dict(row)
        item["aliases"] = aliases.get((row["name"], row["version"]), [])
        found.append(item)
    return found


def resolve(conn: Connection, ref: str) -> dict[str, Any]:
    """The version ``ref`` names (see :func:`parse_ref`).

    Raises:
        InvalidArgument: ``ref`` is not a model reference.
        NotFound: no such model, version or alias (naming what there is).
    """
    name, number, alias = parse_ref(ref)
    known = versions(conn, name)
    if not known:
        names = sorted({str(item["name"]) for item in versions(conn)})
        have = ", ".join(f"`{n}`" for n in names) or "none yet"
        raise NotFound(
            f"no model `{name}` is registered (registered: {have}); register one in a task "
            f"with glasspane.register_model({name!r}, model)"
        )
    if alias is not None:
        version = conn.execute(
            select(_aliases.version).where(_aliases.name == name, _aliases.alias == alias)
        ).scalar()
        if version is None:
            named = sorted({a for item in known for a in item["aliases"]})
            raise NotFound(
                f"model `{name}` has no alias `{alias}` (its aliases: "
                f"{', '.join(named) or 'none'}); set it with `glasspane models promote {name} "
                f"VERSION --alias {alias}`"
            )
        number = int(version)
    if number is None:
        return known[0]
    for item in known:
        if item["version"] == number:
            return item
    raise NotFound(
        f"model `{name}` has no version {number} (its versions: 1 to {known[0]['version']})"
    )


class RegistryStore:
    """The registry's reads and alias writes (mixed into the MetadataStore)."""

    _write: Callable[..., Any]
    _read: Callable[[], AbstractContextManager[Connection]]

    def add_model_version(
        self, name: str, artifact: dict[str, Any], *, run_id: str, node_id: str,
        meta: Any = None, input_example: Any = None, alias: str | None = None,
    ) -> int:  # fmt: skip
        """Record a new version of ``name`` (the stored model ``artifact``, an
        :meth:`ArtifactInfo.to_dict` dict) registered by node ``node_id`` of run ``run_id``,
        pointing ``alias`` at it; its number. Its task run is tied to it when the run's driver
        records the task's ``model_registered`` event.

        A task calls this itself, so the version exists before the task returns: a task after
        it in the same run that loads ``name@alias`` loads this version.
        """

        def work(conn: Connection) -> int:
            found = conn.execute(
                select(_artifacts.id).where(_artifacts.content_hash == artifact["content_hash"])
            ).scalar()
            if found is None:
                conn.execute(INSERT_ARTIFACT, artifact_row(artifact, _now()))
                found = conn.execute(
                    select(_artifacts.id).where(_artifacts.content_hash == artifact["content_hash"])
                ).scalar()
            latest = conn.execute(
                select(func.max(_versions.version)).where(_versions.name == name)
            ).scalar()
            version = int(latest or 0) + 1
            conn.execute(
                insert(ModelVersionRow),
                {
                    "name": name, "version": version, "artifact_id": found, "run_id": run_id,
                    "task_run_id": None, "node_id": node_id, "meta": meta,
                    "input_example": input_example, "created_at": _now(),
                },
            )  # fmt: skip
            if alias:
                set_alias(conn, name, alias, version)
            return version

        return self._write(work)  # type: ignore[no-any-return]

    def model_versions(self, name: str | None = None) -> list[dict[str, Any]]:
        """See :func:`versions`."""
        with self._read() as conn:
            return versions(conn, name)

    def resolve_model(self, ref: str) -> dict[str, Any]:
        """See :func:`resolve`."""
        with self._read() as conn:
            return resolve(conn, ref)

    def set_model_alias(self, name: str, alias: str, version: int) -> int | None:
        """Point ``name@alias`` at ``version`` (which must exist); the version it named
        before, or None.

        Raises:
            InvalidArgument: a bad name; NotFound: no such model version.
        """
        check_name(alias, "alias")

        def work(conn: Connection) -> int | None:
            resolve(conn, f"{check_name(name, 'model')}/{int(version)}")
            return set_alias(conn, name, alias, int(version))

        return self._write(work)  # type: ignore[no-any-return]

    def remove_model_alias(self, name: str, alias: str) -> int:
        """Remove ``name@alias``; the version it named.

        Raises:
            NotFound: there is no such alias.
        """

        def work(conn: Connection) -> int:
            version = resolve(conn, f"{name}@{check_name(alias, 'alias')}")["version"]
            conn.execute(
                delete(ModelAliasRow).where(_aliases.name == name, _aliases.alias == alias)
            )
            return int(version)

        return self._write(work)  # type: ignore[no-any-return]
