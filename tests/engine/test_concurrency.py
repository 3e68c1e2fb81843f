"""Several ``glasspane run`` processes share one metadata store while a reader polls it.

Each writer is the real console script running a 10-task pipeline with its own ``seed``: the
last two tasks' outputs are equal in every run (one shared artifact row each, inserted by all
writers at once), the other eight differ, so every row count afterwards is exact. A reader polls
``glasspane runs list --json`` the whole time. Runs on SQLite (one ``GLASSPANE_HOME``), on
PostgreSQL (a fresh database on the session's server) and, with three writers, on the Dask
executor (each process starts its own one-worker LocalCluster).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

import glasspane
from glasspane.store import MetadataStore

PIPELINE = """
from glasspane import log_metric, pipeline, task


@task
def source(seed: int) -> list:
    return [seed * 100 + i for i in range(20)]


@task
def shift(rows: list, by: int) -> list:
    return [row + by for row in rows]


@task
def add(left: list, right: list) -> list:
    return [a + b for a, b in zip(left, right)]


@task
def summarise(rows: list, raw: list) -> dict:
    log_metric("total", float(sum(rows)))
    return {"n": len(raw)}


@task(cache=False)  # its input is equal in every run: a cache hit would make counts racy
def report(summary: dict) -> str:
    return f"n={summary['n']}"


@pipeline
def work(seed: int = 0):
    rows = source(seed)
    s1, s2, s3, s4 = (shift(rows, by) for by in (1, 2, 3, 4))
    total = add(add(s1, s2), add(s3, s4))
    return report(summarise(total, rows))
"""
TASKS = 10
# Input edges: 4 shifts x 1 + 3 adds x 2 + summarise 2 + report 1 (literal arguments make
# no edge); plus one output edge per task.
EDGES_PER_RUN = 13 + TASKS
SHARED_OUTPUTS = 2  # summarise and report return the same value for every seed
RUN_TIMEOUT = 120
LOCKED = "database is locked"


@dataclass
class Reader:
    """Polls ``glasspane runs list --json`` in a loop until stopped."""

    command: list[str]
    env: dict[str, str]
    polls: int = 0
    failures: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=RUN_TIMEOUT)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                result = subprocess.run(
                    self.command, env=self.env, capture_output=True, text=True, timeout=RUN_TIMEOUT
                )
            except subprocess.TimeoutExpired:  # run() has killed and reaped it
                self.failures.append(f"`runs list` took over {RUN_TIMEOUT}s")
                continue
            self.polls += 1
            if result.returncode != 0 or LOCKED in result.stderr:
                self.failures.append(f"rc={result.returncode}: {result.stderr[-2000:]}")
                continue
            try:
                self.seen.update(run["run_id"] for run in json.loads(result.stdout))
            except (ValueError, KeyError, TypeError) as exc:
                self.failures.append(f"bad JSON ({exc}): {result.stdout[:500]}")


@dataclass
class Figures:
    """What one concurrent test measured, kept as the test's ``user_properties``.

    ``pytest --junitxml=FILE -o junit_family=xunit1`` writes them into the report.
    """

    wall: float
    polls: int
    runs_seen_by_reader: int

    def record(self, request: pytest.FixtureRequest) -> None:
        # Not the record_property fixture: it warns (an error here) under junit_family xunit2.
        request.node.user_properties.extend(
            [
                ("wall_seconds", round(self.wall, 2)),
                ("reader_polls", self.polls),
                ("runs_seen_by_reader", self.runs_seen_by_reader),
            ]
        )


def run_concurrently(
    cmd: list[str], env: dict[str, str], tmp_path: Path, writers: int, executor: str
) -> Figures:
    """Start ``writers`` runs at once beside a polling reader; check every process's output."""
    pipeline_file = tmp_path / "concurrent_pipeline.py"
    pipeline_file.write_text(PIPELINE)
    reader = Reader([*cmd, "runs", "list", "--json", "--limit", "100"], env)
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[tuple[Path, Path]] = []
    started = time.monotonic()
    reader.start()
    try:
        for seed in range(writers):
            out, err = tmp_path / f"run-{seed}.out", tmp_path / f"run-{seed}.err"
            logs.append((out, err))
            with out.open("wb") as stdout, err.open("wb") as stderr:
                processes.append(
                    subprocess.Popen(
                        [*cmd, "run", f"{pipeline_file}:work", "-p", f"seed={seed}"]
                        + ["--executor", executor, "--json"],
                        env=env,
                        cwd=tmp_path,
                        stdout=stdout,
                        stderr=stderr,
                    )
                )
        codes = [process.wait(timeout=RUN_TIMEOUT) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        reader.stop()
    wall = time.monotonic() - started
    errors = [err.read_text() for _, err in logs]
    assert codes == [0] * writers, errors
    assert [stderr for stderr in errors if LOCKED in stderr] == []
    for out, _ in logs:
        result = json.loads(out.read_text())
        assert result["state"] == "succeeded"
        assert len(result["tasks"]) == TASKS
    assert reader.failures == []
    assert reader.polls >= 1
    return Figures(wall, reader.polls, len(reader.seen))


def check_rows(url: str, writers: int) -> None:
    """Exact row counts in the metadata database after ``writers`` runs of ``work``."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:

            def count(sql: str) -> int:
                return int(conn.execute(text(sql)).scalar_one())

            assert count("SELECT count(*) FROM pipelines") == 1
            assert count("SELECT count(*) FROM pipeline_versions") == 1
            assert count("SELECT count(*) FROM runs WHERE state = 'succeeded'") == writers
            assert count("SELECT count(*) FROM runs") == writers
            assert count("SELECT count(*) FROM task_runs WHERE state = 'succeeded'") == (
                writers * TASKS
            )
            assert count("SELECT count(*) FROM task_runs") == writers * TASKS
            assert count("SELECT count(*) FROM attempts WHERE state = 'succeeded'") == (
                writers * TASKS
            )
            assert count("SELECT count(*) FROM attempts") == writers * TASKS
            distinct = writers * (TASKS - SHARED_OUTPUTS) + SHARED_OUTPUTS
            assert count("SELECT count(*) FROM artifacts") == distinct
            assert count("SELECT count(*) FROM lineage_edges") == writers * EDGES_PER_RUN
            assert count("SELECT count(*) FROM metrics") == writers
    finally:
        engine.dispose()


def check_api(writers: int) -> None:
    """The public API sees the same runs: all succeeded, each with every task."""
    runs = glasspane.runs(limit=100)
    assert [run["state"] for run in runs] == ["succeeded"] * writers
    params = sorted(glasspane.get_run(run["run_id"])["params"]["seed"] for run in runs)
    assert params == list(range(writers))
    for run in runs:
        tasks = glasspane.get_run(run["run_id"])["tasks"]
        assert [task["state"] for task in tasks] == ["succeeded"] * TASKS


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, glasspane_home: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The store the writers share: SQLite under GLASSPANE_HOME, or a fresh PostgreSQL database."""
    if request.param == "postgresql":
        url = str(request.getfixturevalue("postgres_db_url"))
        monkeypatch.setenv("GLASSPANE_DATABASE_URL", url)
        return url
    return f"sqlite:///{glasspane_home / 'glasspane.db'}"


def test_eight_concurrent_runs_beside_a_reader(
    database_url: str,
    glasspane_cmd: list[str],
    cli_env: dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    env = dict(cli_env)
    if not database_url.startswith("sqlite"):
        env["GLASSPANE_DATABASE_URL"] = database_url
    figures = run_concurrently(glasspane_cmd, env, tmp_path, writers=8, executor="threads")
    check_rows(database_url, writers=8)
    check_api(writers=8)
    figures.record(request)


@pytest.mark.dask
def test_three_concurrent_runs_on_dask(
    glasspane_home: Path,
    glasspane_cmd: list[str],
    cli_env: dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    env = {**cli_env, "GLASSPANE_DASK_WORKERS": "1"}
    figures = run_concurrently(glasspane_cmd, env, tmp_path, writers=3, executor="dask")
    check_rows(f"sqlite:///{glasspane_home / 'glasspane.db'}", writers=3)
    check_api(writers=3)
    figures.record(request)


def _artifact(content_hash: str) -> dict[str, Any]:
    return {"content_hash": content_hash, "uri": f"file:///artifacts/{content_hash}",
            "digest": f"sha256-{content_hash}", "type_name": "builtins.int",
            "materializer": "pickle", "size": 8, "preview": None}  # fmt: skip


def test_a_postgresql_deadlock_is_retried(postgres_db_url: str) -> None:
    """Another transaction holding one new artifact and then inserting another is a deadlock.

    PostgreSQL aborts the store's transaction (its ``deadlock_timeout`` expires first); the
    store runs it again, after the other transaction committed, and finds both rows.
    """
    store = MetadataStore(postgres_db_url)
    other = create_engine(postgres_db_url)
    try:
        version = store.ensure_pipeline_version("p", "hash", {"nodes": ["a"]})
        store.create_run(
            run_id="run1", pipeline_name="p", version_id=version, pipeline_ref=None,
            params={}, executor="threads", nodes=[("a", "a")],
        )  # fmt: skip
        finished = {
            "kind": "task_finished", "node": "a", "task": "a", "state": "succeeded",
            "cached": False, "cache_key": "k", "attempts": 1, "started": 1.7e9,
            "ended": 1.7e9 + 1, "error": None, "traceback": None, "stdout": "", "stderr": "",
            "log_tail": "", "note": None, "parent": None, "map_index": None, "inputs": [],
            "outputs": [{"name": "0", "artifact": _artifact("x")},
                        {"name": "1", "artifact": _artifact("y")}],
            "metrics": [], "params": [],
        }  # fmt: skip
        insert_artifact = text(
            "INSERT INTO artifacts (content_hash, type_name, size, created_at) "
            "VALUES (:hash, 'builtins.int', 8, now())"
        )
        errors: list[BaseException] = []

        def record() -> None:
            try:
                store.record_events("run1", [finished])
            except BaseException as exc:
                errors.append(exc)

        with other.connect() as conn:
            # The store's own server process must be the one to detect the deadlock.
            conn.execute(text("SET deadlock_timeout = '30s'"))
            conn.execute(insert_artifact, {"hash": "y"})
            writer = threading.Thread(target=record)
            writer.start()
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            deadline = time.monotonic() + 30
            while conn.execute(waiting).scalar_one() == 0:  # the store waits for `y`
                assert time.monotonic() < deadline, "the store never waited for the lock on `y`"
                time.sleep(0.05)
            conn.execute(insert_artifact, {"hash": "x"})  # blocks until the store gives up
            conn.commit()
            writer.join(timeout=RUN_TIMEOUT)
        assert errors == []
        run = store.get_run("run1")
        assert [task["state"] for task in run["tasks"]] == ["succeeded"]
        assert [output["uri"] for output in run["tasks"][0]["outputs"]] == [
            "file:///artifacts/x",
            "file:///artifacts/y",
        ]
    finally:
        other.dispose()
        store.close()
