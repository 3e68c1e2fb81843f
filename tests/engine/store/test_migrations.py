"""Alembic migrations of the metadata store: they match the models, and upgrade is safe to race."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, make_url, text

from glasspane.errors import ConfigError
from glasspane.store import MetadataStore, upgrade
from glasspane.store.migrate import HEAD, alembic_config, current_revision
from glasspane.store.models import Base

TABLES = {
    "alembic_version", "pipelines", "pipeline_versions", "runs", "task_runs", "attempts",
    "artifacts", "lineage_edges", "metrics", "run_events", "schedules", "schedule_ticks",
    "schedule_triggers", "scheduler_leases", "tracker_runs", "model_versions", "model_aliases",
    "model_links", "deployments", "deployment_events",
}  # fmt: skip


def test_head_constant_matches_the_newest_migration() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    upgrade(db_url)
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            assert set(inspect(conn).get_table_names()) == TABLES
    finally:
        engine.dispose()


def test_upgrade_is_idempotent(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)
    engine = create_engine(db_url)
    try:
        assert current_revision(engine) == HEAD
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        engine.dispose()


def test_opening_a_migrated_database_does_not_import_alembic(db_url: str) -> None:
    upgrade(db_url)
    script = (
        "import sys\n"
        "from glasspane.store import MetadataStore\n"
        f"MetadataStore({db_url!r}).close()\n"
        "print('alembic' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "False"


def test_downgrade_to_base_and_back(db_url: str) -> None:
    upgrade(db_url)
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()
    upgrade(db_url)
    with MetadataStore(db_url) as store:
        assert store.list_runs() == []


def test_database_newer_than_glasspane(db_url: str) -> None:
    upgrade(db_url)
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(ConfigError) as info:
        MetadataStore(db_url)
    assert (
        f"is at schema revision `9999`, newer than this glasspane knows (head `{HEAD}`); "
        in str(info.value)
    )
    assert str(info.value).endswith(
        "upgrade glasspane or point GLASSPANE_DATABASE_URL at another database"
    )


UPGRADERS = 4


def _upgrader(url: str, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(timeout=60)
        upgrade(url)
        results.put(None)
    except BaseException:
        results.put(traceback.format_exc())


def test_concurrent_first_upgrades_all_succeed(db_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(UPGRADERS), context.Queue()
    processes = [
        context.Process(target=_upgrader, args=(db_url, barrier, results)) for _ in range(UPGRADERS)
    ]
    for process in processes:
        process.start()
    errors = [results.get(timeout=240) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert errors == [None] * UPGRADERS
    assert [process.exitcode for process in processes] == [0] * UPGRADERS
    engine = create_engine(db_url)
    try:
        assert current_revision(engine) == HEAD
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == TABLES
    finally:
        engine.dispose()


def test_first_open_waits_while_another_connection_writes_the_new_file(tmp_path: Path) -> None:
    # Switching a new, empty SQLite file to WAL writes its header; SQLite fails that at once
    # with "database is locked" (no busy handler) while another connection holds the write
    # lock, which is what made concurrent first upgrades fail now and then.
    path = tmp_path / "fresh.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    releaser.start()
    began = time.monotonic()
    try:
        upgrade(f"sqlite:///{path}")
    finally:
        releaser.join()
        other.close()
    assert time.monotonic() - began >= 0.4
    engine = create_engine(f"sqlite:///{path}")
    try:
        assert current_revision(engine) == HEAD
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        engine.dispose()


def test_upgrade_from_0001_keeps_attempts_and_adds_their_text_columns(
    db_url: str, is_sqlite: bool
) -> None:
    if is_sqlite:
        Path(make_url(db_url).database or "").parent.mkdir(parents=True)
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0001")
            conn.execute(
                text("INSERT INTO pipelines (id, name, created_at) VALUES (1, 'p', '2024-01-01')")
            )
            conn.execute(
                text(
                    "INSERT INTO pipeline_versions (id, pipeline_id, hash, graph_json, created_at)"
                    " VALUES (1, 1, 'h', '{}', '2024-01-01')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO runs (id, pipeline_id, version_id, pipeline_name, params, state,"
                    " trigger, executor, created_at) VALUES ('run00001', 1, 1, 'p', '{}',"
                    " 'failed', 'manual', 'inline', '2024-01-01')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO task_runs (id, run_id, node_id, task_name, state, attempts,"
                    " cached) VALUES (1, 'run00001', 'load', 'load', 'failed', 1, false)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO attempts (task_run_id, attempt, state, error)"
                    " VALUES (1, 1, 'failed', 'boom')"
                )
            )
    finally:
        engine.dispose()
    with MetadataStore(db_url) as store:
        [attempt] = store.attempts("run00001", "load")
    assert (attempt["state"], attempt["error"], attempt["stdout"], attempt["traceback"]) == (
        "failed",
        "boom",
        None,
        None,
    )
