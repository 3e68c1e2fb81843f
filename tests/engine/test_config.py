"""Settings: environment variables, glasspane.toml and [tool.glasspane], in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

import glasspane
from glasspane import ConfigError, pipeline, task
from glasspane.config import load_settings


def test_defaults_live_under_glasspane_home(glasspane_home: Path) -> None:
    settings = load_settings()
    assert settings.resolved_database_url == f"sqlite:///{glasspane_home / 'glasspane.db'}"
    assert settings.resolved_artifact_root == str(glasspane_home / "artifacts")
    assert settings.resolved_executor == "threads"


def test_a_scheduler_address_makes_dask_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLASSPANE_DASK_ADDRESS", "tcp://127.0.0.1:8786")
    assert load_settings().resolved_executor == "dask"
    monkeypatch.setenv("GLASSPANE_EXECUTOR", "threads")
    assert load_settings().resolved_executor == "threads"  # an explicit choice still wins


def test_glasspane_toml_is_read(tmp_path: Path) -> None:
    (tmp_path / "glasspane.toml").write_text(
        f'executor = "inline"\nartifact_root = "{tmp_path / "blobs"}"\n'
    )
    settings = load_settings()
    assert settings.executor == "inline"
    assert settings.resolved_artifact_root == str(tmp_path / "blobs")


def test_pyproject_tool_section_is_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.glasspane]\nexecutor = "inline"\n')
    assert load_settings().executor == "inline"


def test_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "glasspane.toml").write_text('executor = "inline"\n')
    monkeypatch.setenv("GLASSPANE_EXECUTOR", "threads")
    assert load_settings().executor == "threads"
    assert load_settings(executor="dask").executor == "dask"  # explicit arguments win over both


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "glasspane.toml").write_text("executor = \n")
    with pytest.raises(ConfigError, match=r"cannot read .*glasspane.toml: .*fix the TOML syntax"):
        load_settings()


@task
def where() -> str:
    import threading

    return threading.current_thread().name


@pipeline
def which_thread():
    return where()


def test_a_run_uses_the_configured_artifact_root(tmp_path: Path) -> None:
    (tmp_path / "glasspane.toml").write_text(
        f'executor = "inline"\nartifact_root = "{tmp_path / "blobs"}"\n'
    )
    result = which_thread()
    assert result.output == "MainThread"  # inline: the task ran in the calling thread
    [task_run] = glasspane.get_run(result.run_id)["tasks"]
    assert task_run["outputs"][0]["uri"].startswith(str(tmp_path / "blobs"))
