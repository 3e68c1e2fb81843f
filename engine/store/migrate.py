"""Bring a metadata database to the newest schema with Alembic.

:func:`upgrade` is called on every :class:`~glasspane.store.MetadataStore` construction, so
its common case (the database is already at head) must be cheap: it reads
``alembic_version`` directly and returns without importing Alembic.

Invariants:

- Migrations run under an inter-process file lock (next to a SQLite file; in the temp
  directory, keyed by a hash of the URL, otherwise), so several processes opening a fresh
  database at once migrate it exactly once. PostgreSQL additionally takes a transaction-level
  advisory lock in ``migrations/env.py``, which covers processes on other machines.
- All of one upgrade runs in a single transaction (SQLite and PostgreSQL have transactional
  DDL): a failed migration leaves the previous schema intact.
- On SQLite, migrations run with foreign keys off (batch mode recreates tables, and dropping a
  referenced table with foreign keys on would cascade) and check them before committing.
- :data:`HEAD` names the newest revision in ``migrations/versions``; a test keeps them equal.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, inspect, text

from ..errors import ConfigError, NotFound
from .engines import (
    BEGIN_OPTION,
    describe,
    is_sqlite,
    mask_url,
    open_error,
    parse_url,
    sqlite_engine,
    sqlite_path,
)

if TYPE_CHECKING:
    from alembic.config import Config

HEAD = "0008"
"""The newest migration revision; bump it with every new file in ``migrations/versions``."""

LOCK_TIMEOUT = 600.0
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def upgrade(url: str, *, engine: Engine | None = None) -> None:
    """Migrate the database at ``url`` to the newest schema; a no-op when already there.

    Args:
        url: a SQLAlchemy database URL.
        engine: run on this engine instead of opening one (needed for in-memory SQLite,
            where every engine sees a different database). No file lock is taken then.

    Raises:
        ConfigError: the database cannot be opened, or its schema is newer than this
            version of glasspane knows.
    """
    if engine is not None:
        if not _at_head(engine, url):
            _run_alembic(engine, url)
        return
    parsed = parse_url(url)
    try:
        if is_sqlite(parsed):
            # Reads (the head check) do not take the write lock; the migration itself opens
            # its transaction with BEGIN IMMEDIATE (see _run_alembic).
            engine = sqlite_engine(parsed, begin="BEGIN", foreign_keys=False, pooled=False)
        else:
            engine = create_engine(parsed, pool_pre_ping=True)
    except Exception as exc:
        raise open_error(url, describe(exc)) from exc
    try:
        if _at_head(engine, url):
            return
        from filelock import FileLock, Timeout

        lock_path = _lock_path(url)
        try:
            with FileLock(str(lock_path), timeout=LOCK_TIMEOUT):
                # Another process may have migrated while this one waited for the lock.
                if not _at_head(engine, url):
                    _run_alembic(engine, url)
        except Timeout as exc:
            raise ConfigError(
                f"timed out after {LOCK_TIMEOUT:.0f}s waiting for the migration lock "
                f"{lock_path} of metadata database `{mask_url(url)}`; "
                "another glasspane process is migrating it or died holding the lock: "
                "wait for it or delete the lock file"
            ) from exc
    finally:
        engine.dispose()


def database_location(url: str) -> str:
    """Where ``url`` points, for messages: a SQLite file's path, else the URL (masked)."""
    parsed = parse_url(url)
    path = sqlite_path(parsed) if is_sqlite(parsed) else None
    return str(path) if path is not None else f"`{mask_url(url)}`"


def missing_database(url: str) -> NotFound:
    """The error for a reader that finds no glasspane database at ``url``."""
    return NotFound(
        f"no glasspane database exists at {database_location(url)}; run a pipeline first "
        "(that creates it), or point GLASSPANE_DATABASE_URL or GLASSPANE_HOME at the database "
        "you mean"
    )


def require_file(url: str) -> None:
    """Raise :func:`missing_database` when ``url`` is a SQLite file that does not exist.

    Checked before any engine is made: opening one would create the file and its directory.
    """
    parsed = parse_url(url)
    path = sqlite_path(parsed) if is_sqlite(parsed) else None
    if path is not None and not path.is_file():
        raise missing_database(url)


def current_revision(engine: Engine) -> str | None:
    """The revision recorded in ``alembic_version``, or ``None`` for an unmigrated database."""
    with engine.connect() as conn:
        return _revision(conn)


def _revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def _at_head(engine: Engine, url: str) -> bool:
    try:
        return current_revision(engine) == HEAD
    except Exception as exc:
        raise open_error(url, describe(exc)) from exc


def _lock_path(url: str) -> Path:
    parsed = parse_url(url)
    path = sqlite_path(parsed) if is_sqlite(parsed) else None
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(path.name + ".migrate.lock")
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"glasspane-migrate-{digest}.lock"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for glasspane's migrations, built without an ini file.

    Args:
        connection: the connection ``migrations/env.py`` runs on (inside its transaction).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _run_alembic(engine: Engine, url: str) -> None:
    """Upgrade to head in one transaction; errors become :class:`ConfigError`."""
    try:
        _upgrade_in_transaction(engine, url)
    except ConfigError:
        raise
    except Exception as exc:
        raise open_error(url, f"migrating the schema failed: {describe(exc)}") from exc


def _upgrade_in_transaction(engine: Engine, url: str) -> None:
    from alembic import command
    from alembic.util import CommandError

    with engine.execution_options(**{BEGIN_OPTION: "BEGIN IMMEDIATE"}).begin() as conn:
        found = _revision(conn)
        try:
            command.upgrade(alembic_config(conn), "head")
        except CommandError as exc:
            if found is not None and "Can't locate revision" in str(exc):
                raise _too_new(url, found) from exc
            raise
        if is_sqlite(engine.url):
            problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise ConfigError(
                    f"migrating metadata database `{mask_url(url)}` left "
                    f"{len(problems)} foreign key violation(s), first {tuple(problems[0])}; "
                    "the migration was rolled back, report this as a glasspane bug"
                )


def _too_new(url: str, found: str) -> ConfigError:
    return ConfigError(
        f"metadata database `{mask_url(url)}` is at schema revision "
        f"`{found}`, newer than this glasspane knows (head `{HEAD}`); upgrade glasspane "
        "or point GLASSPANE_DATABASE_URL at another database"
    )
