"""Reads never write: no query (nor ``glasspane.runs`` / ``runs list``) sweeps crashed runs or
takes SQLite's write lock; ``glasspane runs sweep`` and the start of ``glasspane run`` sweep."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from query_flows import Stores, retrain
from sqlalchemy import create_engine, update
from sqlalchemy.engine import make_url

import glasspane
from glasspane import queries
from glasspane.api import artifact_store, metadata_store
from glasspane.config import load_settings
from glasspane.store.models import RunRow


def stale_run(stores: Stores, run_id: str) -> str:
    """A running run whose driver died an hour ago (its last heartbeat is that old)."""
    metadata = stores.metadata
    version = metadata.ensure_pipeline_version("lost", "ab" * 32, {"nodes": [], "edges": []})
    metadata.create_run(
        run_id=run_id,
        pipeline_name="lost",
        version_id=version,
        pipeline_ref=None,
        params={},
        executor="threads",
        nodes=[("step", "step")],
    )
    metadata.set_run_state(run_id, "running")
    engine = create_engine(metadata.url)
    with engine.begin() as conn:
        an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
        conn.execute(update(RunRow).where(RunRow.id == run_id).values(heartbeat_at=an_hour_ago))
    engine.dispose()
    return run_id


def read_everything(stores: Stores, run_id: str) -> set[tuple[str, str]]:
    """Every read there is of ``run_id``: the states it saw of the run and of its task."""
    seen = {("run", r.state) for r in queries.list_runs(stores.metadata).runs}
    seen.add(("run", queries.get_run(stores.metadata, run_id).state))
    seen.add(("task", queries.run_graph(stores.metadata, run_id).nodes[0].state))
    seen.add(("task", queries.task_detail(stores.metadata, run_id, "step").state))
    seen |= {("run", r["state"]) for r in glasspane.runs()}
    seen.add(("run", glasspane.get_run(run_id)["state"]))
    return seen


def test_reads_leave_a_dead_drivers_run_running_until_a_sweep(stores: Stores) -> None:
    run_id = stale_run(stores, "deadbeef0001")
    assert read_everything(stores, run_id) == {("run", "running"), ("task", "pending")}
    assert read_everything(stores, run_id) == {("run", "running"), ("task", "pending")}
    assert glasspane.api.sweep() == [run_id]
    assert read_everything(stores, run_id) == {("run", "crashed"), ("task", "crashed")}
    assert glasspane.api.sweep() == []


def test_reads_answer_while_another_process_holds_the_write_lock(stores: Stores) -> None:
    if not stores.metadata.url.startswith("sqlite"):
        return  # PostgreSQL has no database-wide write lock
    result = retrain.run(executor="inline")
    writer = sqlite3.connect(str(make_url(stores.metadata.url).database), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # what a run's driver holds while it records
    try:
        start = time.monotonic()
        assert queries.list_runs(stores.metadata).runs[0].run_id == result.run_id
        assert queries.get_run(stores.metadata, result.run_id).state == "succeeded"
        assert queries.task_detail(stores.metadata, result.run_id, "train").cache_hit is False
        evaluate = queries.task_detail(stores.metadata, result.run_id, "evaluate")
        artifact = queries.artifact(
            stores.metadata, stores.artifacts, evaluate.outputs[0].content_hash
        )
        assert artifact.preview.kind == "json"
        assert glasspane.runs()[0]["run_id"] == result.run_id
        # a read that wanted the lock would wait the 30 s busy timeout, then fail
        assert time.monotonic() - start < 5
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def cli(cmd: list[str], *args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*cmd, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_runs_sweep_and_the_start_of_a_run_sweep_but_runs_list_does_not(
    tmp_path: Path, cli_env: dict[str, str], glasspane_cmd: list[str]
) -> None:
    settings = load_settings()
    stores = Stores(metadata_store(settings), artifact_store(settings))
    first = stale_run(stores, "deadbeef0002")

    listed = cli(glasspane_cmd, "runs", "list", "--json", env=cli_env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [r["state"] for r in json.loads(listed.stdout)] == ["running"]

    swept = cli(glasspane_cmd, "runs", "sweep", env=cli_env, cwd=tmp_path)
    assert swept.returncode == 0, swept.stderr
    assert swept.stdout == (
        f"marked run {first} crashed: its driver stopped heart-beating; resume it with "
        f"`glasspane retry {first}`\n"
    )
    assert queries.get_run(stores.metadata, first).state == "crashed"
    again = cli(glasspane_cmd, "runs", "sweep", "--json", env=cli_env, cwd=tmp_path)
    assert (again.returncode, again.stdout) == (0, "[]\n")
    nothing = cli(glasspane_cmd, "runs", "sweep", env=cli_env, cwd=tmp_path)
    assert nothing.stdout == "no stale runs: nothing marked crashed\n"

    second = stale_run(stores, "deadbeef0003")
    (tmp_path / "tiny.py").write_text(
        "from glasspane import pipeline, task\n\n"
        "@task\ndef one() -> int:\n    return 1\n\n"
        "@pipeline\ndef tiny():\n    return one()\n"
    )
    ran = cli(glasspane_cmd, "run", "tiny.py:tiny", "--json", env=cli_env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["state"] == "succeeded"
    assert f"marked run {second} crashed" in ran.stderr
    assert queries.get_run(stores.metadata, second).state == "crashed"


def test_sweep_help_documents_exit_codes(
    tmp_path: Path, cli_env: dict[str, str], glasspane_cmd: list[str]
) -> None:
    shown = cli(glasspane_cmd, "runs", "sweep", "--help", env=cli_env, cwd=tmp_path)
    assert shown.returncode == 0
    assert "exit codes:\n  0    done (also when no run was stale" in shown.stdout
    assert "glasspane runs sweep --json" in shown.stdout
    # with nothing ever run here, a sweep creates no database and finds nothing
    fresh = cli(glasspane_cmd, "runs", "sweep", "--json", env=cli_env, cwd=tmp_path)
    assert (fresh.returncode, fresh.stdout) == (0, "[]\n")
    assert not (Path(cli_env["GLASSPANE_HOME"]) / "glasspane.db").exists()
