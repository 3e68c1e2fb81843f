"""The connection to an MLflow tracking server that :class:`~glasspane.integrations.mlflow.
MlflowTracker` writes through, and the reading half of that tracker (the
:class:`~glasspane.tracking.TrackerReader` protocol): any experiment's runs, page by page
through MLflow's own search, whether glasspane created them or not.

Options (``[tool.glasspane.mlflow]``, or ``tracker_options={"mlflow": {...}}``):

- ``tracking_uri``: the server (default: ``MLFLOW_TRACKING_URI``, else MLflow's default).
- ``experiment``: the experiment a pipeline's runs go to, a template with ``{pipeline}``
  (default ``"{pipeline}"``).
- ``request_timeout`` (seconds, default 10), ``max_retries`` (default 2) and
  ``backoff_factor`` (default 1): how long one request to the server may take. MLflow's HTTP
  client reads them from the process environment at every request
  (``MLFLOW_HTTP_REQUEST_TIMEOUT``, ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``,
  ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR``), and its own defaults retry for minutes, which would
  hold a run's events back that long when the server is down. So the tracker sets each of
  these variables that is not set yet (a value the user exported wins, unless the tracker's
  option names one), which also applies to other MLflow calls in this process. With the
  defaults, a request to a stopped server fails within about three seconds; glasspane keeps
  the event in its outbox and delivers it later.

MLflow's client also prints two links to stdout each time a run on a tracking server ends,
which would break into glasspane's own output once per task; the tracker sets
``MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT=true`` when it is not set (glasspane shows each run's
MLflow link itself).

Every MLflow call goes through :meth:`MlflowReader._guard`, which turns whatever MLflow
raises into a :class:`~glasspane.tracking.TrackerError` naming the tracker, the server and
what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from glasspane.errors import ConfigError, GlasspaneError, NotFound
from glasspane.tracking import (
    MetricPoint,
    TrackedRun,
    TrackedRunPage,
    TrackerContext,
    TrackerError,
)

#: MLflow's environment variable -> (the tracker's option, its default)
HTTP_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": ("request_timeout", 10),
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": ("max_retries", 2),
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": ("backoff_factor", 1),
}

#: MLflow's switch for the links it prints when a run ends
QUIET = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"

#: runs read per request when a search has to see them all (MLflow's own maximum is larger)
SEARCH_PAGE = 1000


def bound_http(name: str, options: dict[str, Any]) -> None:
    """Set MLflow's HTTP retry and timeout variables (see the module docstring)."""
    for variable, (option, default) in HTTP_BOUNDS.items():
        value = options.get(option)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(
                    f"tracker `{name}`: option `{option}` is {value!r}; give a whole number "
                    f"of at least 0 in [tool.glasspane.{name}]"
                )
            os.environ[variable] = str(value)
        else:
            os.environ.setdefault(variable, str(default))
    os.environ.setdefault(QUIET, "true")


def when(millis: int | None) -> datetime | None:
    return None if millis is None else datetime.fromtimestamp(millis / 1000, tz=timezone.utc)


def missing(exc: BaseException) -> bool:
    """Whether MLflow said the thing asked for does not exist."""
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


class MlflowReader:
    """An MLflow tracking server, read (see the module docstring).

    Args:
        context: The tracker's name and options.

    Raises:
        ModuleNotFoundError: mlflow is not installed.
        ConfigError: an option is unusable.
    """

    def __init__(self, context: TrackerContext) -> None:
        import mlflow  # noqa: F401 - a missing package escapes as ModuleNotFoundError('mlflow')
        from mlflow.tracking import MlflowClient

        self.context = context
        self.name = context.name
        self.template = str(context.option("experiment", "{pipeline}"))
        try:
            self.template.format(pipeline="pipeline")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"tracker `{self.name}`: option `experiment` = {self.template!r} is not a "
                f'template of {{pipeline}} ({exc!r}); use e.g. "glasspane/{{pipeline}}"'
            ) from exc
        bound_http(self.name, context.options)
        uri = context.option("tracking_uri")
        self._client = MlflowClient(tracking_uri=str(uri) if uri else None)
        self.uri = str(self._client.tracking_uri)
        self._experiment_names: dict[str, str] = {}  # experiment id -> name

    @contextmanager
    def _guard(self, doing: str, writing: bool = False) -> Iterator[None]:
        """Run MLflow calls, turning their failures into a TrackerError saying ``doing``
        (and, when ``writing`` a run's events, that they wait in the outbox)."""
        try:
            yield
        except GlasspaneError:
            raise
        except Exception as exc:  # noqa: BLE001 - every MLflow failure is the tracker's
            cause = " ".join(str(exc).split())[:500]
            raise TrackerError(
                f"tracker `{self.name}` could not {doing} on the MLflow server at {self.uri} "
                f"({type(exc).__name__}: {cause}); check that the server is up and reachable "
                f"(`tracking_uri` in [tool.glasspane.{self.name}], or MLFLOW_TRACKING_URI)"
                + (
                    "; glasspane keeps what it could not deliver and sends it again later"
                    if writing
                    else ""
                )
            ) from exc

    # ---- TrackerReader -----------------------------------------------------------------------

    def experiment_for(self, pipeline: str) -> str:
        """The experiment runs of ``pipeline`` go to (the ``experiment`` option, formatted)."""
        return self.template.format(pipeline=pipeline)

    def url_of(self, experiment_id: str, run_id: str) -> str | None:
        """The run's page in the MLflow UI; None when the tracking URI is not a web server."""
        if not self.uri.startswith(("http://", "https://")):
            return None
        return f"{self.uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"

    def search_runs(
        self, experiment: str, *, page_token: str | None = None, max_results: int = 50
    ) -> TrackedRunPage:
        """Runs of ``experiment``, newest first, one page of MLflow's own search at a time
        (runs glasspane did not create included); an unknown experiment is an empty page."""
        with self._guard(f"list the runs of experiment `{experiment}`"):
            found = self._client.get_experiment_by_name(experiment)
            if found is None:
                return TrackedRunPage(runs=[])
            self._experiment_names[found.experiment_id] = found.name
            page = self._client.search_runs(
                [found.experiment_id],
                max_results=max_results,
                order_by=["attributes.start_time DESC"],
                page_token=page_token,
            )
            runs = [self._tracked(run) for run in page]
        return TrackedRunPage(runs=runs, next_page_token=page.token or None)

    def get_run(self, external_id: str) -> TrackedRun:
        """The MLflow run ``external_id``.

        Raises:
            NotFound: the server has no such run.
            TrackerError: the server cannot be reached.
        """
        try:
            with self._guard(f"read run {external_id}"):
                return self._tracked(self._client.get_run(external_id))
        except TrackerError as exc:
            if missing(exc.__cause__ or exc):
                raise NotFound(
                    f"tracker `{self.name}` has no run {external_id} on the MLflow server at "
                    f"{self.uri}; list the experiment's runs to find its id"
                ) from exc
            raise

    def metric_history(self, external_id: str, key: str) -> list[MetricPoint]:
        """Every logged value of ``key`` in run ``external_id``, by step then time."""
        with self._guard(f"read metric `{key}` of run {external_id}"):
            points = self._client.get_metric_history(external_id, key)
        ordered = sorted(points, key=lambda m: (m.step, m.timestamp))
        return [
            MetricPoint(step=m.step, value=m.value, timestamp=when(m.timestamp)) for m in ordered
        ]

    def child_runs(self, external_id: str) -> list[TrackedRun]:
        """The runs nested under ``external_id`` (tag ``mlflow.parentRunId``), oldest first."""
        with self._guard(f"list the child runs of run {external_id}"):
            parent = self._client.get_run(external_id)
            found = self._all_runs(
                parent.info.experiment_id, f"tags.mlflow.parentRunId = '{external_id}'"
            )
            children = [self._tracked(run) for run in found]
        children.reverse()
        return children

    # ---- helpers -----------------------------------------------------------------------------

    def _all_runs(self, experiment_id: str, filter_string: str) -> list[Any]:
        """Every active run of an experiment that ``filter_string`` selects, newest first."""
        runs: list[Any] = []
        token = None
        while True:
            page = self._client.search_runs(
                [experiment_id],
                filter_string=filter_string,
                max_results=SEARCH_PAGE,
                order_by=["attributes.start_time DESC"],
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def _experiment_name(self, experiment_id: str) -> str | None:
        if experiment_id not in self._experiment_names:
            found = self._client.get_experiment(experiment_id)
            self._experiment_names[experiment_id] = found.name
        return self._experiment_names.get(experiment_id)

    def _tracked(self, run: Any) -> TrackedRun:
        info, data = run.info, run.data
        tags = dict(data.tags)
        return TrackedRun(
            tracker=self.name,
            external_id=info.run_id,
            name=info.run_name,
            experiment=self._experiment_name(info.experiment_id),
            status=info.status,
            start_time=when(info.start_time),
            end_time=when(info.end_time),
            params=dict(data.params),
            metrics=dict(data.metrics),
            tags=tags,
            url=self.url_of(info.experiment_id, info.run_id),
            glasspane_run_id=tags.get("glasspane.run_id"),
            parent_id=tags.get("mlflow.parentRunId"),
        )
