"""Every way a Dask run can go wrong ends it, with a message that says why: never a run left
`running`, never a silent hang.

Real clusters throughout: the embedded LocalCluster, or `dask scheduler` and `dask worker`
processes this test starts and stops by PID.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_remote_dask import DASK, free_port  # the same directory: on sys.path under pytest

import glasspane
from glasspane import ExecutorError, GlasspaneWarning, pipeline, task

pytestmark = pytest.mark.dask


class Cluster:
    """`dask scheduler` plus workers without nannies (a killed worker stays dead)."""

    def __init__(self, root: Path) -> None:
        self.cwd = root / "cluster"
        self.cwd.mkdir()
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("GLASSPANE_") and k != "PYTHONPATH"
        }
        self.address = f"tcp://127.0.0.1:{free_port()}"
        port = self.address.rsplit(":", 1)[1]
        self.scheduler = self._start(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"]
        )
        self.workers: list[subprocess.Popen[bytes]] = []

    def _start(self, command: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command,
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def add_worker(self, resources: str | None = None) -> subprocess.Popen[bytes]:
        command = [DASK, "worker", self.address, "--nthreads", "1", "--host", "127.0.0.1"]
        command += ["--no-dashboard", "--no-nanny", "--death-timeout", "30"]
        if resources:
            command += ["--resources", resources]
        worker = self._start(command)
        self.workers.append(worker)
        return worker

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(n, timeout=60)

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    started = Cluster(tmp_path)
    try:
        yield started
    finally:
        started.stop()


SLOW = """
import time
from pathlib import Path

from glasspane import pipeline, task

HERE = Path(__file__).parent


@task(resources={resources})
def slow(seconds: int) -> int:
    (HERE / "started").touch()
    time.sleep(seconds)
    return seconds


@pipeline
def flow(seconds: int = 120):
    return slow(seconds)
"""


class Driver:
    """`glasspane run` on a pipeline file, in the background, with a short grace period."""

    def __init__(self, root: Path, command: list[str], env: dict[str, str]) -> None:
        self.root = root
        self.command = command
        self.env = {**env, "GLASSPANE_DASK_LOST_AFTER": "3"}

    def start(self, address: str, resources: str = "{}") -> subprocess.Popen[str]:
        (self.root / "flow.py").write_text(SLOW.format(resources=resources))
        return subprocess.Popen(
            [*self.command, "run", "flow.py:flow", "--executor", address, "--json"],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_started(self, proc: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 60
        while not (self.root / "started").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.1)

    def finish(self, proc: subprocess.Popen[str]) -> dict[str, Any]:
        out, err = proc.communicate(timeout=90)  # returns: never a hang
        assert proc.returncode == 1, err
        return json.loads(out)  # type: ignore[no-any-return]

    def states(self) -> list[str]:
        proc = subprocess.run(
            [*self.command, "runs", "list", "--json"],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return [run["state"] for run in json.loads(proc.stdout)]


@pytest.fixture
def driver(tmp_path: Path, glasspane_cmd: list[str], cli_env: dict[str, str]) -> Driver:
    return Driver(tmp_path, glasspane_cmd, cli_env)


def test_all_workers_lost_ends_the_run(cluster: Cluster, driver: Driver) -> None:
    worker = cluster.add_worker()
    cluster.wait_for_workers(1)
    proc = driver.start(cluster.address)
    driver.wait_started(proc)
    worker.kill()
    result = driver.finish(proc)
    assert result["state"] == "failed"
    assert result["tasks"][0]["error"] == (
        f"ExecutorError: the Dask cluster at {cluster.address} has had no worker for 3s; start "
        "workers (`dask worker SCHEDULER`), then resume the run with `glasspane retry`"
    )
    assert driver.states() == ["failed"]


def test_scheduler_lost_ends_the_run(cluster: Cluster, driver: Driver) -> None:
    cluster.add_worker()
    cluster.wait_for_workers(1)
    proc = driver.start(cluster.address)
    driver.wait_started(proc)
    cluster.scheduler.kill()
    result = driver.finish(proc)
    assert result["state"] == "failed"
    assert "Dask scheduler at " + cluster.address in result["tasks"][0]["error"]
    assert "resume the run with `glasspane retry`" in result["tasks"][0]["error"]
    assert driver.states() == ["failed"]


def test_the_only_worker_with_a_resource_lost_ends_the_run(
    cluster: Cluster, driver: Driver
) -> None:
    gpu = cluster.add_worker(resources="GPU=1")
    cluster.add_worker()
    cluster.wait_for_workers(2)
    proc = driver.start(cluster.address, resources='{"GPU": 1}')
    driver.wait_started(proc)
    gpu.kill()
    result = driver.finish(proc)
    error = result["tasks"][0]["error"]
    assert error.startswith(
        "ExecutorError: task `slow` asks for resources {'GPU': 1}, which no worker of the "
        "Dask cluster offers ("
    )
    assert error.endswith(
        "for 3s; start workers that offer them, then resume the run with `glasspane retry`"
    )
    assert driver.states() == ["failed"]


def test_resources_no_worker_offers_are_refused_before_the_run(
    cluster: Cluster, driver: Driver
) -> None:
    worker = cluster.add_worker()
    cluster.wait_for_workers(1)
    proc = driver.start(cluster.address, resources='{"GPU": 1}')
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and out == ""
    assert err.strip().splitlines()[-1] == (
        "glasspane: error: task `slow` asks for resources {'GPU': 1}, which no worker of "
        f"the Dask cluster offers (tcp://127.0.0.1:{_port_of(cluster, worker)} offers none); "
        f'start workers that offer them (`dask worker {cluster.address} --resources "GPU=1"`), '
        "or remove resources= from the task"
    )
    assert driver.states() == []  # nothing was started


def _port_of(cluster: Cluster, worker: subprocess.Popen[bytes]) -> str:
    from distributed import Client

    with Client(cluster.address, timeout=30, set_as_default=False) as client:
        (address,) = client.scheduler_info()["workers"]
    return address.rsplit(":", 1)[1]


@task(resources={"GPU": 1})
def needs_gpu() -> int:
    return 1


@pipeline
def gpu_flow():
    return needs_gpu()


def test_resources_on_the_embedded_cluster_and_on_threads() -> None:
    with pytest.raises(ExecutorError) as info:
        gpu_flow.run(executor="dask")
    assert str(info.value).startswith(
        "task `needs_gpu` asks for resources {'GPU': 1}, which no worker of the Dask cluster "
        "offers (tcp://127.0.0.1:"
    )
    assert str(info.value).endswith(
        "the embedded cluster's workers offer no resources: start a cluster whose workers "
        'declare them (`dask worker SCHEDULER --resources "GPU=1"`) and run with --executor '
        "tcp://SCHEDULER, or remove resources= from the task"
    )
    assert glasspane.runs() == []
    with pytest.warns(GlasspaneWarning) as caught:
        assert gpu_flow.run(executor="threads").output == 1
    assert [str(w.message) for w in caught] == [
        "task `needs_gpu` asks for resources {'GPU': 1}, which the threads executor ignores: "
        "it runs every task in this process; run on a Dask cluster whose workers offer them "
        "(--executor tcp://HOST:PORT) to honour them"
    ]


HELPERS_FLOW = """
from glasspane import expand, pipeline, task
from helpers import double, Scale


@task
def f(x: int) -> int:
    return double(x) * Scale(3).factor


@task
def numbers(n: int) -> list:
    return list(range(n))


@pipeline
def p(x: int = 3):
    return f(x)


@pipeline
def mapped(n: int = 3):
    return f.map(expand(numbers(n)))
"""

HELPERS = """
class Scale:
    def __init__(self, factor):
        self.factor = factor


def double(x):
    return 2 * x
"""


def _project(root: Path) -> Path:
    pipelines = root / "pipelines"
    pipelines.mkdir()
    (pipelines / "train.py").write_text(HELPERS_FLOW)
    (pipelines / "helpers.py").write_text(HELPERS)
    return pipelines


def test_a_module_beside_the_pipeline_file_reaches_the_workers(
    tmp_path: Path, glasspane_cmd: list[str], cli_env: dict[str, str], cluster: Cluster
) -> None:
    _project(tmp_path)
    cluster.add_worker()
    cluster.wait_for_workers(1)
    for executor in ("dask", cluster.address):  # embedded, and workers started elsewhere
        for ref, output in (("p", 18), ("mapped", [0, 6, 12])):
            proc = subprocess.run(
                [*glasspane_cmd, "run", f"pipelines/train.py:{ref}", "--executor", executor]
                + ["--json"],
                cwd=tmp_path,  # the parent directory, where `helpers` is not importable
                env=cli_env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert proc.returncode == 0, proc.stderr
            assert json.loads(proc.stdout)["output"] == output


def test_a_task_the_workers_cannot_load_fails_naming_the_module(
    tmp_path: Path, glasspane_cmd: list[str], cli_env: dict[str, str], cluster: Cluster
) -> None:
    """A package installed where the driver runs but not where the workers do."""
    cluster.add_worker()
    cluster.wait_for_workers(1)
    site = Path(tempfile.mkdtemp(dir=sys.prefix, prefix="glasspane-test-site-"))
    try:
        name = f"only_here_{site.name[-8:].replace('-', '_')}"
        (site / f"{name}.py").write_text("def triple(x):\n    return 3 * x\n")
        (tmp_path / "flow.py").write_text(
            textwrap.dedent(
                f"""
                from glasspane import pipeline, task
                from {name} import triple

                @task
                def f(x: int) -> int:
                    return triple(x)

                @pipeline
                def flow(x: int = 2):
                    return f(x)
                """
            )
        )
        env = {**cli_env, "PYTHONPATH": str(site)}
        proc = subprocess.run(
            [*glasspane_cmd, "run", "flow.py:flow", "--executor", cluster.address, "--json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        for path in site.iterdir():
            path.unlink()
        site.rmdir()
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)["tasks"][0]["error"]
    assert error.startswith("TaskError: task `f` could not be loaded on Dask worker tcp://")
    assert error.endswith(
        f"ModuleNotFoundError: No module named '{name}'; the worker cannot import module "
        f"`{name}`: install it where the Dask workers run (the same version as here), or keep "
        "your own modules beside the pipeline file or in a package of your project so "
        "glasspane can ship them to the workers"
    )


UNGUARDED = """
from glasspane import pipeline, task


@task
def one() -> int:
    return 1


@pipeline
def flow():
    return one()


print(flow.run(executor="dask").output)
"""


def test_a_script_without_a_main_guard_is_told_to_add_one(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(UNGUARDED)
    env = {k: v for k, v in os.environ.items() if k != "GLASSPANE_EXECUTOR"}
    env["GLASSPANE_HOME"] = str(tmp_path / "home")
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert "multiprocessing" not in proc.stderr and len(proc.stderr.splitlines()) < 40
    assert proc.stderr.strip().splitlines()[-1] == (
        f"glasspane.errors.DefinitionError: {script}, line 15, runs a pipeline with executor "
        "`dask` when the script is imported: the embedded Dask cluster starts its workers with "
        "`spawn`, and each imports the script again, which would start another cluster in "
        'every worker; put the code that runs pipelines under `if __name__ == "__main__":`'
    )
    guarded = UNGUARDED.replace(
        'print(flow.run(executor="dask").output)',
        'if __name__ == "__main__":\n    print(flow.run(executor="dask").output)',
    )
    script.write_text(guarded)
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"
