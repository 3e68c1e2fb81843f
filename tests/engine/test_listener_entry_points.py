"""A listener installed by a package of its own (entry-point group ``glasspane.listeners``)
hears every run of ``glasspane run``, on each executor, in sequence order; one that raises
does not fail the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "glasspane-probe"
        version = "0.1"

        [project.entry-points."glasspane.listeners"]
        probe = "glasspane_probe:Probe"
        boom = "glasspane_probe:BOOM"

        [tool.setuptools]
        py-modules = ["glasspane_probe"]
    """,
    "glasspane_probe.py": """
        import json, os


        class Probe:
            def on_event(self, event):
                with open(os.environ["PROBE_FILE"], "a") as fh:
                    fh.write(json.dumps({"kind": event.kind, "seq": event.seq,
                                         "run_id": event.run_id}) + "\\n")


        class Boom:
            name = "boom-listener"

            def on_event(self, event):
                raise ValueError("no tracker here")


        BOOM = Boom()
    """,
}

PIPELINE = """
from glasspane import pipeline, task


@task
def double(x: int) -> int:
    print("doubling", x)
    return 2 * x


@task
def add(values: list[int]) -> int:
    return sum(values)


@pipeline
def numbers(n: int = 3):
    return add(double.map(x=list(range(n))))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The throwaway package, installed with pip into a directory of its own."""
    root = tmp_path_factory.mktemp("probe")
    source = root / "src"
    source.mkdir()
    for name, text in PACKAGE.items():
        (source / name).write_text(textwrap.dedent(text))
    target = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(target), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    assert (target / "glasspane_probe.py").exists()
    return target


@pytest.mark.parametrize(
    "executor", ["inline", "threads", pytest.param("dask", marks=pytest.mark.dask)]
)
def test_an_installed_listener_hears_every_event_and_a_raising_one_fails_nothing(
    executor: str,
    installed: Path,
    tmp_path: Path,
    cli_env: dict[str, str],
    glasspane_cmd: list[str],
) -> None:
    (tmp_path / "numbers.py").write_text(PIPELINE)
    probe = tmp_path / "events.jsonl"
    env = {**cli_env, "PROBE_FILE": str(probe)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(installed), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [*glasspane_cmd, "run", "numbers.py:numbers", "--executor", executor, "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["state"] == "succeeded" and result["output"] == 6
    heard = [json.loads(line) for line in probe.read_text().splitlines()]
    assert {h["run_id"] for h in heard} == {result["run_id"]}
    assert [h["seq"] for h in heard] == list(range(1, len(heard) + 1))
    kinds = [h["kind"] for h in heard]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("task_finished") == 4 and kinds.count("task_started") == 4
    assert kinds.count("output_logged") >= 1
    assert "listener `boom-listener` raised ValueError: no tracker here" in done.stderr
