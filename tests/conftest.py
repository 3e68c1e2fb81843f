"""Shared fixtures: every test gets its own GLASSPANE_HOME, and per-process caches are reset."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

pytest_plugins = ["fixtures_postgres", "fixtures_s3", "fixtures_mlflow"]


@pytest.fixture(autouse=True)
def glasspane_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh GLASSPANE_HOME (SQLite database + artifact store) for each test."""
    home = tmp_path / "glasspane-home"
    monkeypatch.setenv("GLASSPANE_HOME", str(home))
    for name in (
        "GLASSPANE_DATABASE_URL",
        "GLASSPANE_ARTIFACT_ROOT",
        "GLASSPANE_EXECUTOR",
        "GLASSPANE_DASK_ADDRESS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no glasspane.toml from the repo leaks in
    yield home
    api = sys.modules.get("glasspane.api")
    if api is not None:
        api.close_default_workspaces()  # stores; the process's Dask executors stay
    worker = sys.modules.get("glasspane.execution.worker")
    if worker is not None:
        worker._stores.clear()


@pytest.fixture
def cli_env(glasspane_home: Path) -> dict[str, str]:
    """Environment for running the `glasspane` command in a subprocess."""
    env = dict(os.environ)
    env["GLASSPANE_HOME"] = str(glasspane_home)
    env.pop("GLASSPANE_EXECUTOR", None)
    return env


@pytest.fixture
def glasspane_cmd() -> list[str]:
    """The installed ``glasspane`` console script, run through its entry point."""
    script = Path(sys.executable).with_name("glasspane")
    if script.exists():
        return [str(script)]
    found = shutil.which("glasspane")
    if found:
        return [found]
    return [sys.executable, "-m", "glasspane.cli.main"]
