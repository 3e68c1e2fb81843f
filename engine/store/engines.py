"""SQLAlchemy engines for a metadata database URL, tuned per backend.

SQLite (the default, one file under ``GLASSPANE_HOME``) gets two engines on the same file:

- a *write* engine whose transactions start with ``BEGIN IMMEDIATE``, so a writer takes the
  database write lock up front and waits ``busy_timeout`` for it instead of failing with
  "database is locked" when it later upgrades a read lock;
- a *read* engine whose transactions start with a plain (deferred) ``BEGIN``: a consistent
  snapshot that never takes the write lock (WAL lets readers run beside the writer).

Both run in WAL mode with ``busy_timeout=30000``, ``foreign_keys=ON`` and
``synchronous=NORMAL``. An in-memory SQLite URL gets one shared connection for both roles.
Any other URL (PostgreSQL) gets one ordinary engine with ``pool_pre_ping`` for both roles.

Nothing here issues SQL beyond connection setup; the parent directory of a SQLite file is
created on demand.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.pool import NullPool, StaticPool

from ..errors import ConfigError

BUSY_TIMEOUT_MS = 30_000
BEGIN_OPTION = "glasspane_sqlite_begin"
"""Execution option overriding a SQLite engine's transaction-opening statement."""

_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)[^@/]*@")


@dataclass(frozen=True)
class Engines:
    """The engines one store uses: ``write`` for write transactions, ``read`` for reads.

    They are the same object for every backend except a SQLite file.
    """

    write: Engine
    read: Engine
    in_memory: bool = False

    def dispose(self) -> None:
        self.write.dispose()
        if self.read is not self.write:
            self.read.dispose()


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return _PASSWORD_IN_URL.sub(r"\1***@", url)


def open_error(url: str, cause: object) -> ConfigError:
    """The :class:`ConfigError` raised when the database at ``url`` cannot be opened."""
    return ConfigError(
        f"cannot open metadata database `{mask_url(url)}`: {cause}; set "
        "GLASSPANE_DATABASE_URL to a SQLAlchemy URL such as sqlite:////path/glasspane.db "
        "or postgresql://user@host/db"
    )


def describe(exc: BaseException) -> str:
    """A one-line cause for ``exc``: the DB-API message without SQLAlchemy's boilerplate."""
    orig = getattr(exc, "orig", None)
    inner = orig if isinstance(orig, BaseException) else exc
    message = str(inner).strip()
    return message.splitlines()[0] if message else type(inner).__name__


def parse_url(url: str) -> URL:
    """Parse ``url`` into a SQLAlchemy :class:`URL`.

    Raises:
        ConfigError: the string is not a SQLAlchemy URL.
    """
    try:
        return make_url(url)
    except Exception as exc:
        raise open_error(url, describe(exc)) from exc


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL, or ``None`` for an in-memory database."""
    database = url.database or ""
    if url.query.get("uri") in ("true", "1") or database.startswith("file:"):
        if url.query.get("mode") == "memory" or "mode=memory" in database:
            return None
        database = database.removeprefix("file:").split("?", 1)[0]
    if database in ("", ":memory:"):
        return None
    return Path(database).expanduser().absolute()


def dumps(value: Any) -> str:
    """Serialize a JSON column value; non-finite floats become ``null``, unknown types ``str``.

    Strict JSON keeps the stored documents readable by PostgreSQL's ``json`` type, which
    rejects ``NaN``.
    """
    try:
        return json.dumps(value, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), default=str, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def sqlite_engine(
    url: URL, *, begin: str, foreign_keys: bool = True, pooled: bool = True
) -> Engine:
    """An engine on a SQLite URL whose transactions start with ``begin`` (a SQL statement).

    Args:
        url: a parsed ``sqlite://`` URL.
        begin: the statement that opens each transaction: ``"BEGIN IMMEDIATE"`` for writers,
            ``"BEGIN"`` for readers. The execution option :data:`BEGIN_OPTION` overrides it
            per connection.
        foreign_keys: enforce foreign keys (migrations turn them off, see ``migrate``).
        pooled: keep connections in a pool; ``False`` opens one per checkout.
    """
    path = sqlite_path(url)
    options: dict[str, Any] = {"json_serializer": dumps}
    if path is not None and not (url.database or "").startswith("file:"):
        # Pin a relative path now: a later chdir must not move the database.
        url = url.set(database=str(path))
    if path is None:
        options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000}
        if not pooled:
            options["poolclass"] = NullPool
    engine = create_engine(url, **options)
    pragmas = [
        f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
        f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}",
        "PRAGMA synchronous=NORMAL",
    ]

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to the "begin" hook below instead of pysqlite's own.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(pragmas[0])
            if path is not None:
                set_wal(cursor)
            for pragma in pragmas[1:]:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get(BEGIN_OPTION, begin))

    return engine


def set_wal(cursor: Any, timeout: float = BUSY_TIMEOUT_MS / 1000) -> None:
    """Put the database of ``cursor`` in WAL mode, waiting up to ``timeout`` for the lock.

    On a new, empty file the switch writes the database header: SQLite takes a read lock,
    then upgrades it to a write lock, and for that upgrade it never calls the busy handler
    (two readers waiting for each other would deadlock). So while another connection holds
    the write lock (another process creating the same database), the pragma fails at once
    with "database is locked" instead of waiting ``busy_timeout``. The failed statement has
    released its locks, so trying again until ``timeout`` is the wait SQLite skipped.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.1)


def open_engines(url: str) -> Engines:
    """Create the read and write engines for ``url`` (no connection is made yet).

    Raises:
        ConfigError: the URL cannot be parsed, names an unknown backend or driver, or the
            SQLite file's directory cannot be created.
    """
    parsed = parse_url(url)
    try:
        if not is_sqlite(parsed):
            engine = create_engine(parsed, pool_pre_ping=True, **_json_options(parsed))
            return Engines(write=engine, read=engine)
        write = sqlite_engine(parsed, begin="BEGIN IMMEDIATE")
        if sqlite_path(parsed) is None:
            return Engines(write=write, read=write, in_memory=True)
        return Engines(write=write, read=sqlite_engine(parsed, begin="BEGIN"))
    except ConfigError:
        raise
    except Exception as exc:
        raise open_error(url, describe(exc)) from exc


def _json_options(url: URL) -> dict[str, Any]:
    # Only dialects known to accept a custom serializer get one; create_engine rejects
    # unknown keyword arguments.
    if url.get_backend_name() in ("postgresql", "sqlite", "mysql", "mariadb"):
        return {"json_serializer": dumps}
    return {}
