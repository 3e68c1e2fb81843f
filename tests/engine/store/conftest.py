"""Fixtures of the metadata store tests: every test runs against each database in ``db_url``.

``sqlite`` is a file under ``tmp_path``; ``postgresql`` is a fresh database on the session's
throwaway server (``tests/fixtures_postgres.py``; skipped without PostgreSQL's binaries). Tests
keep to the public API and portable SQL (anything SQLite-only checks ``is_sqlite``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from glasspane.store import MetadataStore


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of a fresh, empty database (its directory does not exist yet for SQLite)."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_db_url"))
    return f"sqlite:///{tmp_path / 'home' / 'glasspane.db'}"


@pytest.fixture
def is_sqlite(db_url: str) -> bool:
    return db_url.startswith("sqlite")


@pytest.fixture
def store(db_url: str) -> Iterator[MetadataStore]:
    metadata_store = MetadataStore(db_url)
    yield metadata_store
    metadata_store.close()


@pytest.fixture
def raw_engine(db_url: str, store: MetadataStore) -> Iterator[Engine]:
    """A plain engine on the store's database, to inspect or age rows behind the store."""
    engine = create_engine(db_url)
    yield engine
    engine.dispose()
