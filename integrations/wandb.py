"""The Weights & Biases tracker: each glasspane run as one W&B run.

What a run becomes in W&B:

- **One W&B run per glasspane run**, opened on :class:`~glasspane.events.RunStarted` with an
  id derived from the glasspane run id (:func:`wandb_run_id`) and ``resume="allow"``, so a
  driver that starts again (or the outbox replaying the run in another process) continues
  that run instead of making a second one. It is named ``<pipeline>-<run id[:8]>``, grouped by
  pipeline (W&B's ``group``), tagged ``glasspane`` and ``trigger:<trigger>``, in the project of
  option ``project`` (else ``WANDB_PROJECT``, else ``glasspane``).
- **Config**: the run's parameters as glasspane recorded them (secrets arrive masked and stay
  so), ``glasspane.run_id`` / ``glasspane.version`` / ``glasspane.url`` (its page in the UI),
  and per task node a table ``config[<node>]`` of the node's constant arguments
  (:class:`~glasspane.events.TaskStarted`) and the parameters it logged
  (:class:`~glasspane.events.ParamLogged`).
- **Metrics** as ``<node>/<key>``, each plotted against its node's own step metric
  ``<node>/step`` (``define_metric``): the tasks of a ``.map`` log their own steps into one
  W&B run, and each keeps its history, stamped with the time the task logged it. The summary
  holds each metric's last value.
- **Artifacts** (:class:`~glasspane.events.ArtifactLogged`) as a ``wandb.Artifact`` of type
  ``glasspane-output`` holding the stored file, logged to the run.
- **The end** (:class:`~glasspane.events.RunFinished`) finishes the run once: exit code 0 when
  it succeeded, 1 otherwise, with ``summary["glasspane.state"]`` (and ``glasspane.error``).

Options (``[tool.glasspane.wandb]``): ``project``, ``entity``, ``dir`` (else ``WANDB_DIR``),
``mode`` (``online``/``offline``/``disabled``, else ``WANDB_MODE``); the rest of W&B's setup
(``WANDB_API_KEY``, ``WANDB_BASE_URL``) is W&B's own environment.

Several runs may be tracked at once (threads of one driver): each is its own W&B run
(``reinit="create_new"``), never the global ``wandb.run``; W&B's console capture is off,
since the process's output belongs to no single run.

Idempotency: the tracker remembers which events (``seq``) of each run it delivered, so an
event heard twice in one process is logged once. Across processes it relies on W&B: after
each event it applies, it records ``summary["glasspane.seq"]``; a resumed online run reads it
back and skips what it already holds. In offline mode nothing can be read back, so a run
replayed in a new process writes a second offline run directory with the same id, which
repeats the history already written when both are synced. Config, summary and artifacts
(deduplicated by content) are the same however often they are written.

Reading W&B runs back into the pane (:class:`~glasspane.tracking.TrackerReader`) needs W&B's
online API and is not implemented here.

``wandb`` is imported only inside the tracker; without it, making the tracker raises
``ModuleNotFoundError``, which glasspane turns into ``pip install "glasspane[wandb]"``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glasspane.errors import ConfigError
from glasspane.events import (
    ArtifactLogged,
    Event,
    MetricLogged,
    ParamLogged,
    RunFinished,
    RunStarted,
    TaskStarted,
)
from glasspane.tracking import TrackerContext, TrackerError, TrackerLink

log = logging.getLogger("glasspane.trackers")

#: the options this tracker reads (``strict`` is the outbox's, see glasspane.outbox)
OPTIONS = ("project", "entity", "dir", "mode", "strict")
DEFAULT_PROJECT = "glasspane"
ARTIFACT_TYPE = "glasspane-output"
#: summary key of the last event applied to the W&B run (see the module docstring)
SEQ_KEY = "glasspane.seq"
STATE_KEY = "glasspane.state"

# wandb.init and finish change wandb's process-wide state (its service, the run registry):
# one tracker at a time, whichever Workspace it belongs to
_WANDB_LOCK = threading.Lock()
_SAFE_ID = re.compile(r"[0-9a-z][0-9a-z_-]{0,63}")


def wandb_run_id(run_id: str) -> str:
    """The W&B run id of glasspane run ``run_id``: the run id itself when W&B takes it as it
    is (lower-case letters, digits, ``-`` and ``_``, at most 64), else a hash of it."""
    if _SAFE_ID.fullmatch(run_id):
        return run_id
    return "gp-" + hashlib.sha256(run_id.encode()).hexdigest()[:24]


def artifact_name(pipeline: str, node: str, name: str) -> str:
    """A W&B artifact name (letters, digits, ``-``, ``_``, ``.``) for ``name`` of a node."""
    raw = f"{pipeline}-{node}-{name}"
    return re.sub(r"[^A-Za-z0-9_.]+", "-", raw).strip("-")[:128] or "artifact"


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)[:200]
    return value


@dataclass
class _Run:
    """One glasspane run's W&B run, while it is open in this process."""

    wb: Any  # wandb.Run
    pipeline: str
    #: events of this run delivered here
    seen: set[int] = field(default_factory=set)
    #: the last event the W&B run held when it was resumed (online only; else 0)
    resumed_seq: int = 0
    #: metrics (and step metrics) defined in this process
    defined: set[str] = field(default_factory=set)


class WandbTracker:
    """Glasspane runs as Weights & Biases runs (see the module docstring).

    Args:
        context: The tracker's name and options (``project``, ``entity``, ``dir``, ``mode``)
            and the artifact store to read logged files from.

    Raises:
        ModuleNotFoundError: the ``wandb`` package is not installed.
        ConfigError: an option is unknown.
    """

    def __init__(self, context: TrackerContext) -> None:
        import wandb  # noqa: F401 - missing: glasspane names the extra to install

        unknown = sorted(set(context.options) - set(OPTIONS))
        if unknown:
            raise ConfigError(
                f"tracker `{context.name}` does not know option(s) {', '.join(unknown)} in "
                f"[tool.glasspane.{context.name}]; it reads {', '.join(OPTIONS)}"
            )
        self.context = context
        self.name = context.name
        self._runs: dict[str, _Run] = {}  # glasspane run id -> its open W&B run
        self._links: dict[str, TrackerLink] = {}
        self._finished: set[str] = set()  # runs whose W&B run this tracker finished
        self._lock = threading.Lock()

    # ---- Tracker -----------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Deliver one event to its W&B run (once per ``run_id`` and ``seq``).

        Raises:
            TrackerError: W&B refused it or cannot be reached; the event was not taken.
        """
        with self._lock:
            if event.run_id in self._finished:
                return  # everything of a finished run came before its RunFinished
            run = self._runs.get(event.run_id)
            if run is None:
                if isinstance(event, RunStarted):  # else: a tracker added mid-run
                    with self._delivering(event):
                        self._runs[event.run_id] = self._start(event)
                return
            if event.seq in run.seen:
                return
            if event.seq > run.resumed_seq or isinstance(event, RunFinished):
                with self._delivering(event):
                    self._apply(run, event)
            run.seen.add(event.seq)
            if isinstance(event, RunFinished):
                del self._runs[event.run_id]
                self._finished.add(event.run_id)

    @contextmanager
    def _delivering(self, event: Event) -> Iterator[None]:
        """W&B's failures as TrackerError, naming the event and what to check."""
        try:
            yield
        except TrackerError:
            raise  # already says what and where (an artifact without stored bytes)
        except Exception as exc:
            raise TrackerError(
                f"tracker `{self.name}` could not take {event.kind} #{event.seq} of run "
                f"{event.run_id} ({type(exc).__name__}: {exc}); check W&B's login and "
                f'network (WANDB_API_KEY, WANDB_BASE_URL), or set mode = "offline" in '
                f"[tool.glasspane.{self.name}]"
            ) from exc

    def link(self, run_id: str) -> TrackerLink | None:
        """The W&B run of glasspane run ``run_id``: its URL online, its run directory
        offline; None until this tracker opened it."""
        return self._links.get(run_id)

    def close(self) -> None:
        """Finish the W&B runs still open here (exit code 1, ``glasspane.state``
        ``interrupted``): their glasspane runs did not end while this tracker heard them."""
        with self._lock:
            runs, self._runs = self._runs, {}
        for run_id, run in runs.items():
            try:
                run.wb.summary[STATE_KEY] = "interrupted"
                with _WANDB_LOCK:
                    run.wb.finish(exit_code=1)
            except Exception as exc:  # noqa: BLE001 - closing never raises
                log.warning(
                    "tracker `%s` could not finish W&B run of %s: %s", self.name, run_id, exc
                )

    # ---- events ------------------------------------------------------------------------------

    def _start(self, event: RunStarted) -> _Run:
        import wandb

        option = self.context.option
        project = option("project") or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT
        config: dict[str, Any] = {k: _jsonable(v) for k, v in event.params.items()}
        config["glasspane.run_id"] = event.run_id
        config["glasspane.version"] = event.version
        url = self.context.run_url(event.run_id)
        if url:
            config["glasspane.url"] = url
        if event.resumed_from:
            config["glasspane.resumed_from"] = event.resumed_from
        external = wandb_run_id(event.run_id)
        with _WANDB_LOCK:
            wb = wandb.init(
                project=project,
                entity=option("entity"),
                dir=option("dir"),
                mode=option("mode"),
                id=external,
                name=f"{event.pipeline}-{event.run_id[:8]}",
                group=event.pipeline,
                tags=["glasspane", f"trigger:{event.trigger}"],
                config=config,
                resume="allow",
                reinit="create_new",
                settings=wandb.Settings(console="off"),
            )
        run = _Run(wb=wb, pipeline=event.pipeline, seen={event.seq})
        try:
            if not wb.offline and not wb.disabled:
                # a resumed online run holds what an earlier process delivered
                held = wb.summary.get(SEQ_KEY)
                run.resumed_seq = int(held) if isinstance(held, (int, float)) else 0
            wb.summary[SEQ_KEY] = max(event.seq, run.resumed_seq)
            link = TrackerLink(tracker=self.name, external_id=external, url=self._url(wb))
        except Exception:
            with _WANDB_LOCK, suppress(Exception):  # RunStarted again resumes it
                wb.finish(exit_code=1)
            raise
        self._links[event.run_id] = link
        return run

    @staticmethod
    def _url(wb: Any) -> str | None:
        if wb.disabled:
            return None
        if wb.offline:
            return str(wb.sync_dir) if wb.sync_dir else None
        return str(wb.url) if wb.url else None

    def _apply(self, run: _Run, event: Event) -> None:
        wb = run.wb
        if isinstance(event, TaskStarted):
            if not event.params:
                return
            self._node_config(run, event.node, event.params)
        elif isinstance(event, ParamLogged):
            self._node_config(run, event.node, {event.key: event.value})
        elif isinstance(event, MetricLogged):
            self._metric(run, event)
        elif isinstance(event, ArtifactLogged):
            self._artifact(run, event)
        elif isinstance(event, RunFinished):
            wb.summary[STATE_KEY] = event.state
            if event.error:
                wb.summary["glasspane.error"] = event.error[:1000]
            wb.summary[SEQ_KEY] = event.seq
            with _WANDB_LOCK:
                wb.finish(exit_code=0 if event.state == "succeeded" else 1)
            return
        else:
            return  # task states and output stay in glasspane
        wb.summary[SEQ_KEY] = event.seq

    @staticmethod
    def _node_config(run: _Run, node: str, values: dict[str, Any]) -> None:
        # config.update replaces a nested table: merge with what the run holds (also what a
        # resumed run brought back)
        held = run.wb.config.get(node)
        table = dict(held) if isinstance(held, dict) else {}
        table.update({k: _jsonable(v) for k, v in values.items()})
        run.wb.config.update({node: table}, allow_val_change=True)

    @staticmethod
    def _metric(run: _Run, event: MetricLogged) -> None:
        key = f"{event.node}/{event.key}"
        step_key = f"{event.node}/step"
        if step_key not in run.defined:
            run.wb.define_metric(step_key, hidden=True)
            run.defined.add(step_key)
        if key not in run.defined:
            run.wb.define_metric(key, step_metric=step_key)
            run.defined.add(key)
        step = event.step if event.step is not None else 0
        # the time it was logged, not delivered (the outbox may deliver it much later)
        run.wb.log({key: event.value, step_key: step, "_timestamp": event.ts})

    def _artifact(self, run: _Run, event: ArtifactLogged) -> None:
        import wandb

        path = self.context.artifact_file(event.artifact, event.filename)
        try:
            artifact = wandb.Artifact(
                artifact_name(run.pipeline, event.node, event.name),
                type=ARTIFACT_TYPE,
                metadata={
                    "glasspane.run_id": event.run_id,
                    "glasspane.node": event.node,
                    "glasspane.content_hash": event.artifact.content_hash,
                    "glasspane.type": event.artifact.type_name,
                },
            )
            artifact.add_file(str(path), name=Path(event.filename).name)
            run.wb.log_artifact(artifact)
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)
