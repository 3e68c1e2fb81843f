"""Trackers: listeners that keep a run's parameters, metrics, artifacts and status in an
experiment tracker (MLflow, Weights & Biases, ...), and read the tracker's runs back.

A tracker is a :class:`~glasspane.listeners.Listener` with a ``name``, a :meth:`Tracker.link`
to the tracker's run of a glasspane run, and ``close``. It is made by a *factory* (a class or
function taking a :class:`TrackerContext`) that an installed package declares in the
entry-point group ``glasspane.integrations``::

    [project.entry-points."glasspane.integrations"]
    mlflow = "glasspane.integrations.mlflow:MlflowTracker"

and is turned on by configuration alone: ``GLASSPANE_TRACKERS=mlflow,wandb`` or
``trackers = ["mlflow"]`` in ``glasspane.toml`` / ``[tool.glasspane]``, with a table of its
own options (``[tool.glasspane.mlflow]``) handed to it as ``context.options``.

The contract every tracker keeps (``tests/integrations/conformance.py`` checks it against
each one):

- ``on_event`` receives the run's events in sequence order, from the driver only (task
  processes and Dask workers never talk to a tracker). It raises when it could not deliver
  the event; glasspane then keeps the event in the outbox and delivers it again later.
- Delivery is idempotent per event (``run_id``, ``seq``): an event delivered twice, or a whole
  run's events replayed from the start in a new process, leaves the tracker as if each was
  delivered once (no second run, no repeated metric point).
- One tracker run per glasspane run; its status is set once, from :class:`RunFinished`.
- Trackers that can be read back (:class:`TrackerReader`) list the tracker's runs of an
  experiment, including runs glasspane did not create, page by page.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from .errors import ConfigError, GlasspaneError
from .events import Event

if TYPE_CHECKING:
    from .config import Settings
    from .events import ModelRegistered
    from .types import ArtifactInfo

GROUP = "glasspane.integrations"

#: the package extra that brings each built-in tracker's package
EXTRAS = {"mlflow": "mlflow", "wandb": "wandb"}


class TrackerError(GlasspaneError):
    """A tracker could not take an event (unreachable, refused, misconfigured)."""


class NotReadable(ConfigError):
    """The tracker keeps runs but cannot read them back (it is no :class:`TrackerReader`)."""


class TrackerLink(BaseModel):
    """The tracker's run of one glasspane run."""

    model_config = ConfigDict(frozen=True)

    tracker: str
    external_id: str
    url: str | None = None


class MetricPoint(BaseModel):
    """One logged value of a metric in a tracker."""

    step: int
    value: float
    timestamp: datetime | None = None


class TrackedRun(BaseModel):
    """A tracker's run, as the pane shows it (created by glasspane or not)."""

    tracker: str
    external_id: str
    name: str | None = None
    experiment: str | None = None
    status: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    url: str | None = None
    #: the glasspane run it records, when glasspane created it (tag ``glasspane.run_id``)
    glasspane_run_id: str | None = None
    #: the tracker run it is nested under (a task's child run)
    parent_id: str | None = None


class TrackedRunPage(BaseModel):
    """One page of a tracker's runs; ``next_page_token`` is None on the last page."""

    runs: list[TrackedRun]
    next_page_token: str | None = None


@runtime_checkable
class Tracker(Protocol):
    """Keeps runs in an experiment tracker: a listener with a name and a link per run."""

    name: str

    def on_event(self, event: Event) -> None:
        """Deliver one event (idempotent per ``run_id`` and ``seq``); raise when it could
        not be delivered."""
        ...

    def link(self, run_id: str) -> TrackerLink | None:
        """The tracker's run of glasspane run ``run_id``, once it exists (else None)."""
        ...

    def close(self) -> None:
        """Release connections and files; the tracker is not used again."""
        ...


@runtime_checkable
class TrackerReader(Protocol):
    """A tracker whose runs glasspane can read back (the pane's day-one history)."""

    def search_runs(
        self, experiment: str, *, page_token: str | None = None, max_results: int = 50
    ) -> TrackedRunPage:
        """The runs of ``experiment``, newest first, one page at a time (the tracker's own
        search API); an unknown experiment is an empty page."""
        ...

    def get_run(self, external_id: str) -> TrackedRun:
        """One run by the tracker's id. Raises NotFound when there is none."""
        ...

    def metric_history(self, external_id: str, key: str) -> list[MetricPoint]:
        """Every logged value of ``key`` in run ``external_id``, by step."""
        ...

    def child_runs(self, external_id: str) -> list[TrackedRun]:
        """The runs nested under run ``external_id`` (a task's child runs)."""
        ...

    def experiment_for(self, pipeline: str) -> str:
        """The experiment this tracker records runs of ``pipeline`` in."""
        ...


@dataclass
class TrackerContext:
    """What glasspane hands a tracker's factory."""

    #: the tracker's configured name (``mlflow``)
    name: str
    #: its table in the config file (``[tool.glasspane.mlflow]``); the tool's own environment
    #: variables (``MLFLOW_TRACKING_URI``, ``WANDB_PROJECT``) are the tracker's to read
    options: dict[str, Any] = field(default_factory=dict)
    settings: Settings | None = None
    #: the run's artifact store (a ``glasspane.artifacts.ArtifactStore``), for artifacts
    artifacts: Any = None
    #: glasspane run id -> the run's page in glasspane's web UI
    run_url: Callable[[str], str | None] = lambda run_id: None
    #: record that glasspane model ``name`` version ``version`` is ``external_name`` version
    #: ``external_version`` (with ``uri``) in ``registry`` (the tracker's name):
    #: ``link_model(name, version, registry, external_name, external_version, uri)``; None
    #: when the tracker was made without the metadata store
    link_model: Callable[[str, int, str, str, str, str | None], None] | None = None
    #: the version number glasspane gave the registration a ``ModelRegistered`` event
    #: reports (None when it is not recorded); None without the metadata store
    model_version: Callable[[ModelRegistered], int | None] | None = None

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def artifact_file(self, info: ArtifactInfo, filename: str) -> Path:
        """A local file holding the stored bytes of ``info``, named ``filename`` (in a fresh
        temporary directory the caller may delete).

        Raises:
            TrackerError: there is no artifact store, or the blob cannot be read.
        """
        if self.artifacts is None or info.uri is None:
            raise TrackerError(
                f"tracker `{self.name}`: artifact {info.content_hash[:12]} has no stored bytes"
            )
        folder = Path(tempfile.mkdtemp(prefix="glasspane-track-"))
        path = folder / Path(filename).name
        with self.artifacts.open_blob(info) as src, open(path, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        return path


def configured(settings: Settings) -> list[str]:
    """The tracker names the settings turn on, in order, without repeats."""
    seen: list[str] = []
    for name in settings.trackers:
        if name not in seen:
            seen.append(name)
    return seen


def factories() -> dict[str, Any]:
    """Entry point name -> entry point, for the ``glasspane.integrations`` group."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=GROUP)}


def make(name: str, context: TrackerContext) -> Tracker:
    """The tracker ``name``, made through its entry point.

    Raises:
        ConfigError: no installed package declares ``name``; its package (mlflow, wandb) is
            missing (naming the extra to install); or its factory refused the options.
    """
    found = factories()
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise ConfigError(
            f"tracker `{name}` (in the `trackers` setting) is not installed: no entry point "
            f"`{name}` in group {GROUP} (installed: {known}); fix the name, or install the "
            "package that provides it"
        )
    ep = found[name]
    try:
        factory = ep.load()
        tracker = factory(context)
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get(name)
        hint = f'pip install "glasspane[{extra}]"' if extra else f"install the `{exc.name}` package"
        raise ConfigError(
            f"tracker `{name}` needs the `{exc.name}` package, which is not installed: {hint}"
        ) from exc
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - named with the entry point to fix
        raise ConfigError(
            f"tracker `{name}` (entry point `{ep.value}`) could not be set up "
            f"({type(exc).__name__}: {exc}); fix its options in [tool.glasspane.{name}]"
        ) from exc
    if not callable(getattr(tracker, "on_event", None)) or not callable(
        getattr(tracker, "link", None)
    ):
        raise ConfigError(
            f"tracker `{name}` (entry point `{ep.value}`) gave {tracker!r}, which is not a "
            "Tracker: it needs `name`, `on_event(event)`, `link(run_id)` and `close()`"
        )
    return tracker


def context_for(name: str, settings: Settings, artifacts: Any = None) -> TrackerContext:
    """The context a tracker ``name`` is made with under ``settings``."""
    base = settings.ui_url.rstrip("/")
    return TrackerContext(
        name=name,
        options=dict(settings.tracker_options.get(name, {})),
        settings=settings,
        artifacts=artifacts,
        run_url=lambda run_id: f"{base}/runs/{run_id}",
    )


def open_reader(settings: Settings, name: str) -> Any:
    """Tracker ``name`` made to read its runs back (a :class:`TrackerReader`).

    Raises:
        ConfigError: as :func:`make`; NotReadable: the tracker cannot be read back.
    """
    tracker = make(name, context_for(name, settings))
    if not isinstance(tracker, TrackerReader):
        tracker.close()
        raise NotReadable(
            f"tracker `{name}` cannot be read back (it has no search_runs); "
            "choose a tracker that can, such as mlflow"
        )
    return tracker
