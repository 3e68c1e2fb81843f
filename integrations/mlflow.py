"""The MLflow tracker: each glasspane run as an MLflow run, live, on a tracking server.

Turn it on with ``GLASSPANE_TRACKERS=mlflow`` (or ``trackers = ["mlflow"]``) and
``pip install "glasspane[mlflow]"``; its options are in :mod:`glasspane.integrations.mlflow_read`
and :mod:`glasspane.integrations.mlflow_registry`.
What an MLflow user sees:

- one MLflow run per glasspane run, in the experiment named by the ``experiment`` template
  (created when missing), named ``<pipeline>-<first 8 characters of the run id>``, tagged
  ``glasspane.run_id``, ``glasspane.pipeline``, ``glasspane.version``, ``glasspane.trigger``,
  ``glasspane.url`` (the run's page in glasspane's UI) and, for a resumed run,
  ``glasspane.resumed_from``; the pipeline's parameters as its params (secrets arrive masked;
  values longer than MLflow takes are cut, their keys listed in ``glasspane.truncated_params``);
- a nested child run per task node that logs a metric or a parameter, named by the node id
  (``train[2]``), tagged ``glasspane.node``, with the node's constant arguments as params:
  a ``.map`` grid search is one parent with a child per candidate, sortable by metric.
  Metrics keep their step (0 when none) and time, and are sent as they are logged; a parameter
  logged again with another value keeps the first (MLflow cannot change one) and the later
  value goes to the tag ``glasspane.param_conflict.<key>``;
- artifacts under the parent run, in a folder named after the node;
- a model a task registers (``glasspane.register_model``), logged in the node's child run and
  registered in MLflow's model registry too (:mod:`glasspane.integrations.mlflow_registry`);
- the child's status when its task ends, and the parent's (and any child still running) once,
  when the run ends: ``FINISHED`` for succeeded, ``KILLED`` for cancelled, else ``FAILED``.

Delivery is idempotent per event, across processes too: a new tracker hearing a run's events
again finds the MLflow runs it made by their tags, MLflow's SQL store keeps one point per
identical metric value, step and time, and parameters are logged again only with the value
they have. Events of one run are handled in order under that run's lock; different runs
proceed at once, each through the thread-safe ``MlflowClient`` (never MLflow's global active
run).
"""

from __future__ import annotations

import posixpath
import re
import shutil
import threading
from dataclasses import dataclass, field
from typing import Any

from glasspane.events import (
    ArtifactLogged,
    Event,
    MetricLogged,
    ModelRegistered,
    ParamLogged,
    RunFinished,
    RunStarted,
    TaskFinished,
    TaskStarted,
)
from glasspane.tracking import TrackerContext, TrackerError, TrackerLink

from .memory import status_of
from .mlflow_registry import MlflowRegistry

#: the longest param value MLflow keeps (``mlflow.utils.validation.MAX_PARAM_VAL_LENGTH``)
PARAM_CHARS = 6000
#: the longest tag value, and key, MLflow keeps
TAG_CHARS = 8000
KEY_CHARS = 250
#: params, and tags, MLflow takes in one batch
BATCH = 100
TRUNCATED = "glasspane.truncated_params"
CONFLICT = "glasspane.param_conflict."


@dataclass
class _Child:
    """A task node's nested MLflow run."""

    external_id: str
    params: dict[str, str] = field(default_factory=dict)
    truncated: set[str] = field(default_factory=set)
    #: the node's constants are logged (a failure after create_run logs them next time)
    ready: bool = False
    finished: bool = False


@dataclass
class _Run:
    """One glasspane run's MLflow runs, as far as this tracker knows them."""

    external_id: str
    experiment_id: str
    finished: bool = False
    children: dict[str, _Child] = field(default_factory=dict)
    constants: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)


def key_of(name: str) -> str:
    """``name`` as an MLflow param or metric key: characters MLflow refuses become ``_``, and
    it cannot read as another path."""
    key = re.sub(r"[^/\w.\- :]", "_", str(name))[:KEY_CHARS] or "_"
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith(("..", "/")):
        key = key.replace("/", "_").lstrip(".") or "_"
    return key


def folder_of(node: str) -> str:
    """A node id as an artifact folder (``train[2]`` -> ``train[2]``; no separators)."""
    return re.sub(r"[^\w.\-\[\]=]", "_", node).lstrip(".") or "_"


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def params_of(values: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """MLflow params of ``values`` (keys made valid, values cut to what MLflow keeps), and the
    keys that were cut."""
    params: dict[str, str] = {}
    cut: list[str] = []
    for name, value in values.items():
        key, text = key_of(name), text_of(value)
        if len(text) > PARAM_CHARS:
            text = text[:PARAM_CHARS]
            cut.append(key)
        params[key] = text
    return params, cut


class MlflowTracker(MlflowRegistry):
    """Keeps glasspane runs, and the models they register, in MLflow and reads MLflow's runs
    back (see the module docstring).

    Args:
        context: The tracker's name and options, the artifact store and the run URL maker.

    Raises:
        ModuleNotFoundError: mlflow is not installed (glasspane names the extra to install).
        ConfigError: an option is unusable.
    """

    def __init__(self, context: TrackerContext) -> None:
        super().__init__(context)
        self._runs: dict[str, _Run] = {}  # glasspane run id -> its MLflow runs, while it goes
        self._links: dict[str, tuple[str, str]] = {}  # run id -> (experiment id, MLflow run id)
        self._experiments: dict[str, str] = {}  # experiment name -> id
        self._run_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()  # guards the dicts above

    # ---- Tracker -----------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Deliver ``event`` to MLflow (idempotent per ``run_id`` and ``seq``).

        Raises:
            TrackerError: the server could not be reached or refused (the event was not taken).
        """
        with self._lock:
            run_lock = self._run_locks.setdefault(event.run_id, threading.Lock())
        with run_lock:
            with self._lock:
                run = self._runs.get(event.run_id)
            if run is not None and event.seq in run.seen:
                return
            if run is None:
                if not isinstance(event, RunStarted):
                    return  # never saw the run start (a tracker added mid-run)
                with self._guard(f"start MLflow run of glasspane run {event.run_id}", True):
                    run = self._open(event)
                with self._lock:
                    self._runs[event.run_id] = run
                    self._links[event.run_id] = (run.experiment_id, run.external_id)
            else:
                with self._guard(f"take {event.kind} #{event.seq} of run {event.run_id}", True):
                    self._apply(run, event)
            run.seen.add(event.seq)
            if isinstance(event, RunFinished):
                with self._lock:  # only the link is kept once the run is over
                    self._runs.pop(event.run_id, None)
                    self._run_locks.pop(event.run_id, None)

    def link(self, run_id: str) -> TrackerLink | None:
        """The MLflow run of glasspane run ``run_id`` (None before this tracker made or found
        it)."""
        with self._lock:
            found = self._links.get(run_id)
        if found is None:
            return None
        experiment_id, external_id = found
        return TrackerLink(
            tracker=self.name, external_id=external_id, url=self.url_of(experiment_id, external_id)
        )

    def close(self) -> None:
        """Forget the runs in progress (MlflowClient holds nothing to release)."""
        with self._lock:
            self._runs.clear()

    # ---- events ------------------------------------------------------------------------------

    def _apply(self, run: _Run, event: Event) -> None:
        if isinstance(event, TaskStarted):
            if event.params:
                run.constants[event.node] = dict(event.params)
        elif isinstance(event, MetricLogged):
            from mlflow.entities import Metric

            child = self._child(run, event)
            step = event.step if event.step is not None else 0
            metric = Metric(key_of(event.key), float(event.value), int(event.ts * 1000), step)
            self._client.log_batch(child.external_id, metrics=[metric], synchronous=True)
        elif isinstance(event, ParamLogged):
            self._param(self._child(run, event), event.key, event.value)
        elif isinstance(event, TaskFinished):
            task = run.children.get(event.node)
            if task is not None and not task.finished:
                end = event.ended if event.ended is not None else event.ts
                self._client.set_terminated(
                    task.external_id, status_of(event.state), int(end * 1000)
                )
                task.finished = True
        elif isinstance(event, ArtifactLogged):
            path = self.context.artifact_file(event.artifact, event.filename)
            try:
                self._client.log_artifact(run.external_id, str(path), folder_of(event.node))
            finally:
                shutil.rmtree(path.parent, ignore_errors=True)
        elif isinstance(event, ModelRegistered):
            self._register(event, self._child(run, event).external_id, run.experiment_id)
        elif isinstance(event, RunFinished) and not run.finished:
            status, end = status_of(event.state), int(event.ts * 1000)
            for child in run.children.values():
                if not child.finished:
                    self._client.set_terminated(child.external_id, status, end)
                    child.finished = True
            self._client.set_terminated(run.external_id, status, end)  # last: marks it done
            run.finished = True

    def _open(self, event: RunStarted) -> _Run:
        """The MLflow run of ``event``'s run: found by its tags, or created."""
        experiment_id = self._experiment_id(self.experiment_for(event.pipeline))
        found = self._all_runs(experiment_id, f"tags.`glasspane.run_id` = '{event.run_id}'")
        parent = next((r for r in found if "glasspane.node" not in r.data.tags), None)
        params, cut = params_of(event.params)
        if parent is None:
            tags = {
                "glasspane.run_id": event.run_id,
                "glasspane.pipeline": event.pipeline,
                "glasspane.version": event.version,
                "glasspane.trigger": event.trigger,
            }
            url = self.context.run_url(event.run_id)
            if url:
                tags["glasspane.url"] = url
            if event.resumed_from:
                tags["glasspane.resumed_from"] = event.resumed_from
            if cut:
                tags[TRUNCATED] = ",".join(cut)[:TAG_CHARS]
            parent = self._client.create_run(
                experiment_id,
                start_time=int(event.ts * 1000),
                tags=tags,
                run_name=f"{event.pipeline}-{event.run_id[:8]}",
            )
        run = _Run(parent.info.run_id, experiment_id, finished=parent.info.status != "RUNNING")
        self._log_params(run.external_id, params, dict(parent.data.params))
        for found_run in found:
            node = found_run.data.tags.get("glasspane.node")
            if node is None or found_run.data.tags.get("mlflow.parentRunId") != run.external_id:
                continue
            truncated = found_run.data.tags.get(TRUNCATED, "")
            run.children[node] = _Child(
                found_run.info.run_id,
                params=dict(found_run.data.params),
                truncated={k for k in truncated.split(",") if k},
                finished=found_run.info.status != "RUNNING",
            )
        return run

    def _experiment_id(self, name: str) -> str:
        with self._lock:
            known = self._experiments.get(name)
        if known is not None:
            return known
        found = self._client.get_experiment_by_name(name)
        if found is None:
            try:
                experiment_id = str(self._client.create_experiment(name))
            except Exception as exc:  # another process created it first
                if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                    raise
                found = self._client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                raise TrackerError(
                    f"tracker `{self.name}`: experiment `{name}` is deleted on the MLflow server "
                    f"at {self.uri}; restore it (`mlflow experiments restore`), or choose "
                    f"another name with `experiment` in [tool.glasspane.{self.name}]"
                )
            experiment_id = str(found.experiment_id)
        with self._lock:
            self._experiments[name] = experiment_id
        return experiment_id

    def _child(self, run: _Run, event: MetricLogged | ParamLogged | ModelRegistered) -> _Child:
        """The nested run of ``event``'s node, created at its first metric, parameter or
        registered model."""
        child = run.children.get(event.node)
        if child is None:
            tags = {
                "mlflow.parentRunId": run.external_id,
                "glasspane.run_id": event.run_id,
                "glasspane.node": event.node,
            }
            params, cut = params_of(run.constants.get(event.node, {}))
            if cut:
                tags[TRUNCATED] = ",".join(cut)[:TAG_CHARS]
            created = self._client.create_run(
                run.experiment_id, start_time=int(event.ts * 1000), tags=tags, run_name=event.node
            )
            child = run.children[event.node] = _Child(created.info.run_id, truncated=set(cut))
        if not child.ready:
            params, _ = params_of(run.constants.get(event.node, {}))
            self._log_params(child.external_id, params, child.params)
            child.ready = True
        return child

    def _log_params(self, external_id: str, params: dict[str, str], known: dict[str, str]) -> None:
        """Log the ``params`` not yet ``known`` with their value (``known`` is updated)."""
        from mlflow.entities import Param

        todo = [Param(k, v) for k, v in params.items() if known.get(k) != v]
        for start in range(0, len(todo), BATCH):
            self._client.log_batch(
                external_id, params=todo[start : start + BATCH], synchronous=True
            )
        known.update({p.key: p.value for p in todo})

    def _param(self, child: _Child, name: str, value: Any) -> None:
        """Log one parameter of a task; a second, different value is kept in a tag."""
        key, text = key_of(name), text_of(value)
        if len(text) > PARAM_CHARS:
            text = text[:PARAM_CHARS]
            if key not in child.truncated:
                child.truncated.add(key)
                joined = ",".join(sorted(child.truncated))[:TAG_CHARS]
                self._client.set_tag(child.external_id, TRUNCATED, joined)
        first = child.params.get(key)
        if first is None:
            try:
                self._log_params(child.external_id, {key: text}, child.params)
                return
            except Exception as exc:
                if "Changing param values is not allowed" not in str(exc):
                    raise
            first = self._client.get_run(child.external_id).data.params.get(key)
            child.params[key] = first if first is not None else text
        if first != text:
            self._client.set_tag(child.external_id, f"{CONFLICT}{key}", text[:TAG_CHARS])
