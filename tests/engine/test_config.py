"""Settings: environment variables, glasspane.toml and [tool.glasspane], in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

import glasspane
from glasspane import ConfigError, pipeline, task
from glasspane.config import Settings, load_settings


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


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('executer = "inline"\n', "glasspane.toml"),
        ('[tool.glasspane]\nexecuter = "inline"\n', "pyproject.toml"),
    ],
)
def test_an_unknown_key_in_the_file_names_the_closest_setting(
    tmp_path: Path, text: str, where: str
) -> None:
    (tmp_path / where).write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        f"unknown glasspane setting `executer` in {tmp_path / where}; did you mean `executor`? "
        f"valid settings: {', '.join(Settings.model_fields)}"
    )
    assert "home, database_url, artifact_root, executor, dask_address, dask_workers, " in str(
        info.value
    )


def test_an_unknown_key_far_from_any_setting_lists_the_valid_ones(tmp_path: Path) -> None:
    (tmp_path / "glasspane.toml").write_text("colour = 3\n")
    with pytest.raises(ConfigError, match=r"^unknown glasspane setting `colour` in .*; valid "):
        load_settings()


def test_an_unknown_argument_to_load_settings_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^unknown glasspane setting `dask_worker` passed to "):
        load_settings(dask_worker=3)


def test_unknown_environment_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLASSPANE_EXECUTER", "inline")
    assert load_settings().executor is None


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("dask_workers = true", "`dask_workers`: Input should be a valid integer (got True)"),
        ("dask_workers = 2.5", "`dask_workers`: Input should be a valid integer (got 2.5)"),
        ('dask_workers = "2"', "`dask_workers`: Input should be a valid integer (got '2')"),
        ("crash_after = false", "`crash_after`: Input should be a valid number (got False)"),
        ("executor = 1", "`executor`: Input should be a valid string (got 1)"),
    ],
)
def test_file_values_must_have_the_settings_type(tmp_path: Path, line: str, problem: str) -> None:
    (tmp_path / "glasspane.toml").write_text(line + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    key = line.split()[0]
    assert str(info.value) == (
        f"invalid glasspane setting ({problem}); `{key}` is set in {tmp_path / 'glasspane.toml'}"
        ": fix the value there (see the Settings fields for the types)"
    )


def test_file_values_convert_only_where_toml_has_no_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GLASSPANE_HOME")
    (tmp_path / "glasspane.toml").write_text(
        f'crash_after = 60\ndask_workers = 4\nhome = "{tmp_path / "h"}"\n'
    )
    settings = load_settings()
    assert (settings.crash_after, settings.dask_workers, settings.home) == (60.0, 4, tmp_path / "h")


def test_settings_say_where_each_value_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "glasspane.toml").write_text('executor = "inline"\n')
    settings = load_settings(dask_workers=3)
    assert settings.source("executor") == f"`executor` in {tmp_path / 'glasspane.toml'}"
    assert settings.source("dask_workers") == "load_settings(dask_workers=...)"
    assert settings.source("home") == "GLASSPANE_HOME"  # conftest sets it
    assert settings.source("database_url") == "the default"
