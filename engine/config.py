"""Settings: where the metadata database, the artifact store and the cluster are.

Read from environment variables (``GLASSPANE_*``), then from ``glasspane.toml`` or
``[tool.glasspane]`` in ``pyproject.toml`` in the working directory. Explicit arguments
to :func:`load_settings` win over both. Nothing here touches the database or the disk
beyond reading the config file.

A config file is checked strictly: an unknown key is an error (naming the closest valid
one), and a value must already have the field's type (``dask_workers = true`` is not a
number; an integer is fine for a float). Unknown ``GLASSPANE_*`` variables are ignored.
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ConfigError, describe_validation

EXECUTORS = ("inline", "threads", "dask")
DEFAULT_EXECUTOR = "threads"


class Settings(BaseSettings):
    """Where glasspane keeps its state. Every field has an env var ``GLASSPANE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="GLASSPANE_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".glasspane")
    database_url: str | None = None
    artifact_root: str | None = None
    #: None: ``threads``, or ``dask`` when a scheduler address is configured
    executor: str | None = None
    dask_address: str | None = None
    dask_workers: int = 2
    #: seconds a dask run waits, once its cluster cannot finish it (scheduler lost, no
    #: worker left, none offering a task's resources), before it fails saying why
    dask_lost_after: float = 60.0
    heartbeat_interval: float = 5.0
    #: a running run whose heartbeat is older than this is swept as crashed; well above
    #: cluster start-up plus several heartbeat intervals, so a live run is never swept
    crash_after: float = 120.0
    #: a listener that raises fails the run (instead of being logged and dropped)
    strict_listeners: bool = False
    #: the web UI's access token (``glasspane ui``): with it set, every page, API call and
    #: static file needs it; required to bind an address other than loopback
    ui_token: SecretStr | None = None
    #: Host names the web UI answers to besides loopback and the address it binds (a
    #: request with any other ``Host`` header is refused: DNS rebinding); in the
    #: environment, comma-separated: ``GLASSPANE_UI_HOSTS=ml.example.com,ml``
    ui_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    #: the web UI's address as trackers link back to it (a run's page is
    #: ``<ui_url>/runs/<run id>``)
    ui_url: str = "http://127.0.0.1:8420"
    #: experiment trackers every run feeds (``GLASSPANE_TRACKERS=mlflow,wandb``); each one's
    #: options are its own table in the config file (``[tool.glasspane.mlflow]``)
    trackers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: tracker name -> its table in the config file (see :mod:`glasspane.tracking`)
    tracker_options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("ui_hosts", "trackers", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):  # GLASSPANE_UI_HOSTS=a.example.com,b
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    #: field -> where its value came from, for messages (see :meth:`source`)
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    def source(self, field: str) -> str:
        """Where ``field``'s value came from: ``GLASSPANE_HOME``, ```home` in PATH``,
        ``load_settings(home=...)`` or ``the default``."""
        if field in self._sources:
            return self._sources[field]
        if f"GLASSPANE_{field.upper()}" in os.environ:
            return f"GLASSPANE_{field.upper()}"
        return "the default"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home.expanduser() / 'glasspane.db'}"

    @property
    def resolved_executor(self) -> str:
        """The executor to use when a run names none."""
        if self.executor:
            return self.executor
        return "dask" if self.dask_address else DEFAULT_EXECUTOR

    @property
    def resolved_artifact_root(self) -> str:
        if self.artifact_root:
            return self.artifact_root
        return str(self.home.expanduser() / "artifacts")


def _file_settings(cwd: Path) -> tuple[dict[str, Any], Path | None]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    for name, section in (("glasspane.toml", None), ("pyproject.toml", ("tool", "glasspane"))):
        path = cwd / name
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}; fix the TOML syntax") from exc
        if section:
            for key in section:
                data = data.get(key, {})
        if data:
            return dict(data), path
    return {}, None


def _check_keys(keys: list[str], where: str) -> None:
    valid = list(Settings.model_fields)
    for key in keys:
        if key in valid:
            continue
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        raise ConfigError(
            f"unknown glasspane setting `{key}` {where}; {hint}valid settings: {', '.join(valid)}"
        )


def _tables_of_trackers(values: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Move the config file's tracker tables (``[tool.glasspane.mlflow]``) into
    ``tracker_options``: a table named after a tracker the settings turn on, or one an
    installed package provides (entry-point group ``glasspane.integrations``)."""
    tables = {
        k: v for k, v in values.items() if isinstance(v, dict) and k not in Settings.model_fields
    }
    if not tables:
        return
    named = (
        overrides.get("trackers")
        or os.environ.get("GLASSPANE_TRACKERS")
        or values.get("trackers")
        or []
    )
    if isinstance(named, str):
        named = [n.strip() for n in named.split(",")]
    from importlib.metadata import entry_points

    known = set(named) | {ep.name for ep in entry_points(group="glasspane.integrations")}
    options = dict(values.get("tracker_options") or {})
    for key, table in tables.items():
        if key in known:
            options[key] = {**table, **options.get(key, {})}
            del values[key]
    if options:
        values["tracker_options"] = options


def _check_file_values(values: dict[str, Any], path: Path | None) -> None:
    """Reject TOML values of the wrong type, which pydantic's lax mode would convert."""
    problems, sources = [], []
    for key, value in values.items():
        annotation: Any = Settings.model_fields[key].annotation
        if annotation is Path:
            annotation = str  # a path is a string in TOML
        adapter: TypeAdapter[Any] = TypeAdapter(annotation, config=ConfigDict(strict=True))
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            reason = "; ".join(err["msg"] for err in exc.errors())
            problems.append(f"`{key}`: {reason} (got {value!r})")
            sources.append(f"`{key}` is set in {path}")
    if problems:
        raise ConfigError(
            f"invalid glasspane setting ({'; '.join(problems)}); {'; '.join(sources)}: "
            "fix the value there (see the Settings fields for the types)"
        )


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings` from overrides, env vars and the config file, in that order.

    Raises:
        ConfigError: the config file cannot be read, has an unknown key or a value of the
            wrong type, or a setting is invalid (the message says where it was set).
    """
    file_values, file_path = _file_settings(Path.cwd())
    _tables_of_trackers(file_values, overrides)
    _check_keys(list(file_values), f"in {file_path}")
    _check_keys(list(overrides), "passed to load_settings")
    _check_file_values(file_values, file_path)
    values = {k: v for k, v in file_values.items() if f"GLASSPANE_{k.upper()}" not in os.environ}
    given = {k: v for k, v in overrides.items() if v is not None}
    values.update(given)
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        sources = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            if field in given:
                sources.append(f"`{field}` was passed to load_settings")
            elif field in values:
                sources.append(f"`{field}` is set in {file_path}")
            else:
                sources.append(f"`{field}` comes from GLASSPANE_{field.upper()}")
        raise ConfigError(
            f"invalid glasspane setting ({describe_validation(exc)}); {'; '.join(sources)}: "
            "fix the value there (see the Settings fields for the types)"
        ) from exc
    for key in values:
        settings._sources[key] = (
            f"load_settings({key}=...)" if key in given else f"`{key}` in {file_path}"
        )
    return settings
