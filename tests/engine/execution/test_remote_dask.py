"""A real remote Dask cluster: `dask scheduler` and two `dask worker` processes.

The workers are separate OS processes started from another directory, without
GLASSPANE_HOME and unable to import the pipeline file: the job carries the artifact root,
and glasspane ships the user's module by value. Only the driver writes the metadata store.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

pytestmark = pytest.mark.dask

DASK = str(Path(sys.executable).with_name("dask"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RemoteCluster:
    """A scheduler and its workers, each an OS process this test started."""

    address: str
    cwd: Path
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [DASK, "worker", self.address, "--nthreads", "1", "--host", "127.0.0.1"]
            + ["--no-dashboard", "--death-timeout", "30"],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        return proc

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        from distributed import Client

        with Client(self.address, timeout=timeout, set_as_default=False) as client:
            client.wait_for_workers(n, timeout=timeout)

    def worker_pids(self) -> set[int]:
        """PIDs of every process of the cluster (nannies and the worker processes they run)."""
        pids = set()
        for proc in self.procs:
            try:
                parent = psutil.Process(proc.pid)
                pids.add(parent.pid)
                pids.update(p.pid for p in parent.children(recursive=True))
            except psutil.NoSuchProcess:
                continue
        return pids

    def stop(self) -> None:
        """Reap every process started, by PID: workers first, then the scheduler."""
        tree: list[psutil.Process] = []
        for proc in self.procs:
            try:
                tree.extend(psutil.Process(proc.pid).children(recursive=True))
            except psutil.NoSuchProcess:
                pass
        scheduler, workers = self.procs[0], self.procs[1:]
        for group in (workers, [scheduler]):  # workers close cleanly while it still listens
            for proc in group:
                if proc.poll() is None:
                    proc.terminate()
            for proc in group:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        _, alive = psutil.wait_procs(tree, timeout=5)
        for child in alive:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)


def start_remote_cluster(tmp_path: Path, n_workers: int = 2) -> RemoteCluster:
    """Start `dask scheduler` + ``n_workers`` `dask worker` processes on 127.0.0.1."""
    cwd = tmp_path / "cluster-cwd"  # not where the pipeline file is
    cwd.mkdir()
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("GLASSPANE_") or name == "PYTHONPATH":
            env.pop(name)
    port = free_port()
    cluster = RemoteCluster(f"tcp://127.0.0.1:{port}", cwd, env)
    cluster.procs.append(
        subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    try:
        for _ in range(n_workers):
            cluster.start_worker()
        cluster.wait_for_workers(n_workers)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture
def remote_cluster(tmp_path: Path) -> Iterator[RemoteCluster]:
    cluster = start_remote_cluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()


PIPELINE = textwrap.dedent(
    """
    import importlib.util
    import os

    from glasspane import pipeline, task


    @task
    def numbers(n: int) -> list[int]:
        return list(range(n))


    @task
    def total(xs: list[int]) -> dict:
        return {
            "sum": sum(xs),
            "pid": os.getpid(),
            "importable": importlib.util.find_spec("remote_flow") is not None,
            "home": os.environ.get("GLASSPANE_HOME"),
        }


    @pipeline
    def remote(n: int = 5):
        return total(numbers(n))
    """
)


def cli(cmd: list[str], *args: str, cwd: Path, env: dict[str, str]) -> dict | list:
    proc = subprocess.run(
        [*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_cli_runs_a_file_pipeline_on_a_remote_cluster(
    remote_cluster: RemoteCluster,
    tmp_path: Path,
    cli_env: dict[str, str],
    glasspane_cmd: list[str],
    glasspane_home: Path,
) -> None:
    (tmp_path / "remote_flow.py").write_text(PIPELINE)
    result = cli(
        glasspane_cmd,
        "run",
        "remote_flow.py:remote",
        "--executor",
        remote_cluster.address,
        "--json",
        cwd=tmp_path,
        env=cli_env,
    )
    assert isinstance(result, dict)
    assert result["state"] == "succeeded"
    assert [(t["node"], t["state"], t["cached"]) for t in result["tasks"]] == [
        ("numbers", "succeeded", False),
        ("total", "succeeded", False),
    ]
    output = result["output"]
    assert output["sum"] == 10
    # it ran in a worker process, which could not import the pipeline file and had no
    # GLASSPANE_HOME: the code travelled by value, the artifact root inside the job
    assert output["pid"] in remote_cluster.worker_pids()
    assert output["importable"] is False
    assert output["home"] is None

    run = cli(glasspane_cmd, "runs", "show", result["run_id"], "--json", cwd=tmp_path, env=cli_env)
    assert isinstance(run, dict) and run["executor"] == "dask"

    lineage = cli(
        glasspane_cmd, "lineage", result["run_id"], "total", "--json", cwd=tmp_path, env=cli_env
    )
    assert isinstance(lineage, dict)
    upstream = {(t["run_id"], t["node"]) for t in lineage["task_runs"]}
    assert upstream == {(result["run_id"], "numbers"), (result["run_id"], "total")}
    blobs = [p for p in (glasspane_home / "artifacts").rglob("*") if p.is_file()]
    uris = {a["uri"] for a in lineage["artifacts"] if a.get("uri")}
    assert uris, lineage
    for uri in uris:
        assert Path(uri).is_file() and Path(uri).resolve() in {b.resolve() for b in blobs}


def test_team_setup_postgres_s3_and_a_remote_cluster(
    s3_root: str,
    s3_client: Any,
    postgres_db_url: str,
    tmp_path: Path,
    cli_env: dict[str, str],
    glasspane_cmd: list[str],
) -> None:
    """What docs/deployment.md describes: every piece a config value, workers on S3 only."""
    # the workers get the AWS variables (s3_root set them) but neither database nor home
    cluster = start_remote_cluster(tmp_path)
    try:
        env = {
            **cli_env,
            "GLASSPANE_DATABASE_URL": postgres_db_url,
            "GLASSPANE_ARTIFACT_ROOT": s3_root,
            "GLASSPANE_DASK_ADDRESS": cluster.address,
        }
        (tmp_path / "remote_flow.py").write_text(PIPELINE)
        result = cli(glasspane_cmd, "run", "remote_flow.py:remote", "--json", cwd=tmp_path, env=env)
        assert isinstance(result, dict) and result["state"] == "succeeded", result
        assert result["output"]["pid"] in cluster.worker_pids()
    finally:
        cluster.stop()
    run = cli(glasspane_cmd, "runs", "show", result["run_id"], "--json", cwd=tmp_path, env=env)
    assert isinstance(run, dict) and run["executor"] == "dask"
    bucket, prefix = s3_root[len("s3://") :].split("/", 1)
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    keys = {f"s3://{bucket}/{o['Key']}" for o in listed.get("Contents", [])}
    lineage = cli(
        glasspane_cmd, "lineage", result["run_id"], "total", "--json", cwd=tmp_path, env=env
    )
    assert isinstance(lineage, dict)
    uris = {a["uri"] for a in lineage["artifacts"] if a.get("uri")}
    assert uris and uris <= keys
    assert not (Path(cli_env["GLASSPANE_HOME"]) / "glasspane.db").exists()  # PostgreSQL only
