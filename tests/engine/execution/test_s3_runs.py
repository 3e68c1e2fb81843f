"""Runs with GLASSPANE_ARTIFACT_ROOT on S3 (a moto server): store, cache, resume, Dask.

Task functions record their calls in files, because on Dask they run in worker processes.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import glasspane
from glasspane import pipeline, task
from glasspane.types import FAILED, SUCCEEDED


def note_call(calls: str, name: str) -> None:
    with open(os.path.join(calls, name), "a") as fh:
        fh.write("x\n")


def count(calls: Path, name: str) -> int:
    path = calls / name
    return len(path.read_text().splitlines()) if path.exists() else 0


@task
def load(n: int, calls: str) -> list[int]:
    note_call(calls, "load")
    return list(range(n))


@task(cache=False)  # reused by a retry all the same
def double(rows: list[int], calls: str) -> list[int]:
    note_call(calls, "double")
    return [2 * r for r in rows]


@task
def total(rows: list[int], flag_file: str, calls: str) -> dict[str, int]:
    note_call(calls, "total")
    if os.path.exists(flag_file):
        raise RuntimeError(f"simulated failure: remove {flag_file} and retry")
    return {"total": sum(rows)}


@pipeline
def s3_flow(calls: str, flag_file: str, n: int = 5):
    return total(double(load(n, calls), calls), flag_file, calls)


@pytest.fixture
def root(s3_root: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GLASSPANE_ARTIFACT_ROOT", s3_root)
    return s3_root


def _objects(client: Any, root: str) -> set[str]:
    bucket, _, prefix = root.removeprefix("s3://").partition("/")
    listing = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")
    return {f"s3://{bucket}/{o['Key']}" for o in listing.get("Contents", [])}


def _output_uris(run_id: str) -> list[str]:
    tasks = glasspane.get_run(run_id)["tasks"]
    return [out["uri"] for t in tasks for out in t["outputs"]]


def _assert_stored_in_bucket(run_id: str, client: Any, root: str) -> None:
    uris = _output_uris(run_id)
    assert uris and all(uri.startswith(f"{root}/objects/") for uri in uris)
    assert set(uris) <= _objects(client, root)


def test_run_stores_in_the_bucket_and_rerun_is_cached(root: str, s3_client, tmp_path: Path):
    flag = str(tmp_path / "flag")
    result = s3_flow.run(calls=str(tmp_path), flag_file=flag, executor="threads")
    assert result.state == SUCCEEDED and result.output == {"total": 20}
    _assert_stored_in_bucket(result.run_id, s3_client, root)
    stored = _objects(s3_client, root)
    keys = {uri for uri in stored if uri.startswith(f"{root}/keys/")}
    assert len(keys) == 2  # load and total; double is cache=False
    assert not os.path.exists(glasspane.config.load_settings().home / "artifacts")

    again = s3_flow.run(calls=str(tmp_path), flag_file=flag, executor="threads")
    assert again.output == {"total": 20}
    assert [t.cached for t in again.tasks] == [True, False, True]
    assert (count(tmp_path, "load"), count(tmp_path, "double"), count(tmp_path, "total")) == (
        1,
        2,
        1,
    )
    assert _objects(s3_client, root) == stored  # nothing new written: equal values


def test_retry_reuses_outputs_stored_in_the_bucket(root: str, s3_client, tmp_path: Path):
    flag = tmp_path / "flag"
    flag.write_text("fail")
    failed = s3_flow.run(
        calls=str(tmp_path), flag_file=str(flag), executor="threads", raise_on_failure=False
    )
    assert failed.state == FAILED
    assert [t.state for t in failed.tasks] == [SUCCEEDED, SUCCEEDED, FAILED]
    _assert_stored_in_bucket(failed.run_id, s3_client, root)

    flag.unlink()
    resumed = glasspane.retry(failed.run_id, executor="threads")
    assert resumed.state == SUCCEEDED and resumed.output == {"total": 20}
    assert [t.cached for t in resumed.tasks] == [True, True, False]
    # The succeeded tasks did not run again: their outputs came from the bucket.
    assert (count(tmp_path, "load"), count(tmp_path, "double"), count(tmp_path, "total")) == (
        1,
        1,
        2,
    )
    _assert_stored_in_bucket(resumed.run_id, s3_client, root)


def test_clear_cache_on_s3(root: str, tmp_path: Path):
    s3_flow.run(calls=str(tmp_path), flag_file=str(tmp_path / "flag"), executor="threads")
    assert glasspane.clear_cache(task="total") == 1
    again = s3_flow.run(calls=str(tmp_path), flag_file=str(tmp_path / "flag"), executor="threads")
    assert [t.cached for t in again.tasks] == [True, False, False]


@pytest.mark.dask
def test_embedded_dask_workers_store_in_the_bucket(
    root: str, s3_client, tmp_path: Path, cli_env: dict[str, str], glasspane_cmd: list[str]
):
    # A process of its own: its embedded LocalCluster spawns workers now, with the AWS
    # variables set, whereas this process's cluster may predate them (workers inherit the
    # environment only when they start).
    command = [
        *glasspane_cmd,
        *("run", f"{__file__}:s3_flow", "--executor", "dask", "--json"),
        *("-p", f"calls={tmp_path}", "-p", f"flag_file={tmp_path / 'flag'}"),
    ]
    done = subprocess.run(command, env=cli_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads(done.stdout)
    assert run["state"] == SUCCEEDED and run["output"] == {"total": 20}
    _assert_stored_in_bucket(run["run_id"], s3_client, root)
    # What the workers wrote, this process reads: the rerun is served from the bucket.
    again = s3_flow.run(calls=str(tmp_path), flag_file=str(tmp_path / "flag"), executor="threads")
    assert again.output == {"total": 20}
    assert [t.cached for t in again.tasks] == [True, False, True]
    assert count(tmp_path, "load") == 1
