"""Alembic environment for glasspane's metadata store.

Runs on the connection :func:`glasspane.store.migrate.upgrade` passes in
``config.attributes["connection"]`` (already inside its transaction). Run by the ``alembic``
command line instead (``alembic -c engine/store/alembic.ini revision --autogenerate``), it
connects to ``sqlalchemy.url`` from the ini file. Batch mode is on, so ``ALTER`` operations
work on SQLite too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, text

from glasspane.store.models import Base

# Any constant will do; it only has to be the same in every glasspane process.
_PG_MIGRATION_LOCK = 0x676C617373  # "glass"


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Serialises migrations across machines, which the file lock cannot.
            connection.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
        context.run_migrations()


def _run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url in the alembic.ini passed with -c")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _migrate(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("glasspane migrations run online only; use `alembic upgrade head`")
_run()
