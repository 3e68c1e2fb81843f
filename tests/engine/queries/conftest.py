"""Fixtures of the query tests: real pipelines run through the public API, on each database.

``stores`` runs every test against a SQLite file under the test's GLASSPANE_HOME and against a
fresh database on the session's throwaway PostgreSQL server (skipped without its binaries).
"""

from __future__ import annotations

import pytest
from query_flows import Stores

from glasspane.api import artifact_store, metadata_store
from glasspane.config import load_settings


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Stores:
    """The stores the module-level API runs pipelines into (opened before any run)."""
    if request.param == "postgresql":
        monkeypatch.setenv("GLASSPANE_DATABASE_URL", request.getfixturevalue("postgres_db_url"))
    settings = load_settings()
    return Stores(metadata_store(settings), artifact_store(settings))
