"""What happens in a run, as typed events.

Every event is a frozen dataclass carrying the run id, a per-run sequence number (``seq``,
from 1, in the order the driver recorded them) and a timestamp (``ts``, seconds since the
epoch). The driver persists them in that order in the metadata store, then delivers them to
listeners (see :mod:`glasspane.listeners`); another process reads them back with
``glasspane.follow``.

Inside a run, jobs report what they do as small dicts (the *wire* form, which crosses the
Dask boundary); the run loop turns each into its typed event as it records it
(:func:`from_wire`). :meth:`Event.to_dict` and :func:`from_dict` are the persisted form.

The kinds, in the order a run produces them:

- :class:`RunStarted`: the pipeline, its version, how to launch it again (``reference``),
  the parameters (secrets masked), trigger, executor, the run it resumes.
- :class:`TaskStarted`, then per attempt :class:`MetricLogged`, :class:`ParamLogged` and
  :class:`OutputLogged` while the task runs (and :class:`ArtifactLogged` for what it hands
  the trackers, :class:`ModelRegistered` for a model it registers, :class:`ModelLoaded` for
  one it loads); :class:`AttemptFinished` for each attempt that was retried;
  :class:`TaskFinished` (or :class:`TaskSkipped` for a task that never ran).
- :class:`RunFinished`, delivered only once the run's final state is committed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from .types import ArtifactInfo

#: bytes of ``print`` output and log lines streamed per task as :class:`OutputLogged`
#: events; the task run keeps the last 64 KiB of it all in any case (``glasspane logs``)
OUTPUT_LIMIT = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class Event:
    """One thing that happened in run ``run_id``, the ``seq``-th the run recorded."""

    kind: ClassVar[str] = "event"
    run_id: str
    seq: int
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form, with ``kind``; :func:`from_dict` reads it back."""
        data: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):  # inputs, artifacts
                value = [v.to_dict() for v in value]
            elif isinstance(value, ArtifactInfo):
                value = value.to_dict()
            data[f.name] = value
        return data


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    """The run was recorded and is about to plan and execute."""

    kind: ClassVar[str] = "run_started"
    pipeline: str
    version: str
    #: absolute ``FILE.py:NAME`` or ``module:NAME``; None when defined where it cannot be
    #: imported again (a notebook cell)
    reference: str | None = None
    #: secret parameters show as ``"**********"``
    params: dict[str, Any] = field(default_factory=dict)
    trigger: str = "manual"
    executor: str = ""
    resumed_from: str | None = None
    nodes: int = 0


@dataclass(frozen=True, kw_only=True)
class TaskStarted(Event):
    kind: ClassVar[str] = "task_started"
    node: str
    task: str
    attempt: int = 1
    parent: str | None = None
    map_index: int | None = None
    #: the node's constant arguments (JSON values; others by a short ``repr``), on the first
    #: attempt only: what a tracker shows as a task's parameters
    params: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class AttemptFinished(Event):
    """An attempt that was not the task's last ended (it is retried)."""

    kind: ClassVar[str] = "attempt_finished"
    node: str
    attempt: int
    state: str
    error: str | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class Input:
    """An artifact a task consumed: its parameter, the node that produced it, what it is."""

    name: str
    source: str | None
    artifact: ArtifactInfo

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "artifact": self.artifact.to_dict()}


@dataclass(frozen=True, kw_only=True)
class TaskFinished(Event):
    """A task ended: ran (in ``attempts`` attempts) or was a cache hit (``cached``)."""

    kind: ClassVar[str] = "task_finished"
    node: str
    task: str
    state: str
    cached: bool = False
    cache_key: str | None = None
    attempts: int = 0
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    traceback: str | None = None
    note: str | None = None
    parent: str | None = None
    map_index: int | None = None
    inputs: tuple[Input, ...] = ()
    #: the task's outputs, in order
    artifacts: tuple[ArtifactInfo, ...] = ()

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return max(0.0, self.ended - self.started)


@dataclass(frozen=True, kw_only=True)
class TaskSkipped(Event):
    """A task that never ran: an upstream failed, or the run was cancelled first."""

    kind: ClassVar[str] = "task_skipped"
    node: str
    task: str
    state: str
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class MetricLogged(Event):
    """``log_metric(key, value, step)`` in a running task; ``ts`` is when it was called."""

    kind: ClassVar[str] = "metric_logged"
    node: str
    key: str
    value: float
    step: int | None = None


@dataclass(frozen=True, kw_only=True)
class ParamLogged(Event):
    kind: ClassVar[str] = "param_logged"
    node: str
    key: str
    value: Any = None


@dataclass(frozen=True, kw_only=True)
class ArtifactLogged(Event):
    """A task handed a file or a value to the trackers (``glasspane.log_artifact``, or an
    output of a ``@task(track=True)``), stored in the artifact store as ``artifact``."""

    kind: ClassVar[str] = "artifact_logged"
    node: str
    name: str
    #: the file name trackers give it (``model.pkl``, ``report.html``)
    filename: str
    artifact: ArtifactInfo


@dataclass(frozen=True, kw_only=True)
class ModelRegistered(Event):
    """A task registered ``artifact`` (the stored model) as a new version of model ``name``
    (``glasspane.register_model``): version ``version``, recorded by the task itself (None
    when the task could not reach the metadata store: the driver numbers it as it records)."""

    kind: ClassVar[str] = "model_registered"
    node: str
    name: str
    artifact: ArtifactInfo
    alias: str | None = None
    metadata: dict[str, Any] | None = None
    #: its first rows of example input, ``{"columns": [...], "data": [[...], ...]}``
    input_example: dict[str, Any] | None = None
    version: int | None = None


@dataclass(frozen=True, kw_only=True)
class ModelLoaded(Event):
    """A task loaded version ``version`` of model ``name`` (``artifact``, the stored model)
    by reference ``ref`` (``glasspane.load_model("churn@champion")``); the task run records
    it as an input. A cache hit of such a task reports the loads of the run it reuses."""

    kind: ClassVar[str] = "model_loaded"
    node: str
    ref: str
    name: str
    version: int
    artifact: ArtifactInfo


@dataclass(frozen=True, kw_only=True)
class OutputLogged(Event):
    """Lines a running task wrote (``stream``: ``stdout``, ``stderr`` or ``log``), sent in
    batches while it runs. At most :data:`OUTPUT_LIMIT` bytes per task are streamed; the
    batch that reaches it has ``truncated`` set, and later output is only in the task's
    stored tail."""

    kind: ClassVar[str] = "output_logged"
    node: str
    attempt: int
    stream: str
    text: str
    truncated: bool = False


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    """The run's final state is committed."""

    kind: ClassVar[str] = "run_finished"
    state: str
    error: str | None = None
    duration: float | None = None


KINDS: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        RunStarted, TaskStarted, AttemptFinished, TaskFinished, TaskSkipped, MetricLogged,
        ParamLogged, ArtifactLogged, ModelRegistered, ModelLoaded, OutputLogged, RunFinished,
    )
}  # fmt: skip


#: what a job's report carries that the event log does not keep: captured text (the task
#: run keeps its tail; OutputLogged events stream it) and a task's inputs (its lineage, in
#: the store: ``glasspane.lineage``, ``queries.task_detail``)
_NOT_LOGGED = frozenset(
    {"stdout", "stderr", "log_tail", "attempt_stdout", "attempt_stderr", "attempt_log_tail",
     "inputs", "key_parts"}
)  # fmt: skip


#: what the event log keeps of an artifact; the rest is read by its hash
#: (``glasspane.queries.artifact``)
_LOGGED_ARTIFACT = ("content_hash", "type_name", "size")


def log_payload(run_id: str, seq: int, report: dict[str, Any]) -> dict[str, Any]:
    """A job's report as the run's event log stores it: numbered, without captured text,
    inputs, empty fields or output details beyond hash, type and size (a map's log stays
    small);
    :func:`from_dict` reads it back as its typed event (``run_id`` is added on reading)."""
    payload = {k: v for k, v in report.items() if v is not None and k not in _NOT_LOGGED}
    payload["seq"] = seq
    if "ts" not in payload:
        payload["ts"] = report.get("ended") or time.time()
    if payload.get("outputs"):
        payload["outputs"] = [
            {**item, "artifact": {k: item["artifact"].get(k) for k in _LOGGED_ARTIFACT}}
            for item in payload["outputs"]
        ]
    return payload


def from_dict(data: dict[str, Any]) -> Event:
    """The event of a payload of the run's event log (:func:`log_payload`) or of
    :meth:`Event.to_dict` (unknown keys are ignored)."""
    if "artifacts" not in data:  # a job's report, as logged
        return from_wire(data["run_id"], int(data["seq"]), data)
    cls = KINDS[data["kind"]]
    names = {f.name for f in fields(cls)}
    values = {k: v for k, v in data.items() if k in names}
    if cls is TaskFinished:
        values["inputs"] = tuple(_input(i) for i in values.get("inputs") or ())
        outputs = values.get("artifacts") or ()
        values["artifacts"] = tuple(ArtifactInfo.from_dict(a) for a in outputs)
    return cls(**values)


def _input(item: dict[str, Any]) -> Input:
    return Input(str(item["name"]), item.get("source"), ArtifactInfo.from_dict(item["artifact"]))


def from_wire(run_id: str, seq: int, report: dict[str, Any]) -> Event:
    """The typed event of a job's report (``report``, the dict a worker emitted)."""
    kind = report["kind"]
    if kind == "task_finished":
        ended = report.get("ended")
        outputs = report.get("outputs") or ()
        return TaskFinished(
            run_id=run_id,
            seq=seq,
            ts=ended if ended is not None else time.time(),
            node=report["node"],
            task=report.get("task") or report["node"],
            state=report["state"],
            cached=bool(report.get("cached")),
            cache_key=report.get("cache_key"),
            attempts=int(report.get("attempts") or 0),
            started=report.get("started"),
            ended=ended,
            error=report.get("error"),
            traceback=report.get("traceback"),
            note=report.get("note"),
            parent=report.get("parent"),
            map_index=report.get("map_index"),
            inputs=tuple(_input(i) for i in report.get("inputs") or ()),
            artifacts=tuple(ArtifactInfo.from_dict(o["artifact"]) for o in outputs),
        )
    cls = KINDS[kind]
    if cls in (ArtifactLogged, ModelRegistered, ModelLoaded):
        report = {**report, "artifact": ArtifactInfo.from_dict(report["artifact"])}
    names = {f.name for f in fields(cls)} - {"run_id", "seq"}
    values = {k: v for k, v in report.items() if k in names and v is not None}
    if cls in (TaskStarted, TaskSkipped) and "task" not in values:
        values["task"] = report["node"]
    return cls(run_id=run_id, seq=seq, **values)


def wire(kind: str, node: str, **values: Any) -> dict[str, Any]:
    """A job's report of ``kind`` about ``node`` (see :func:`from_wire`), stamped now."""
    return {"kind": kind, "node": node, "ts": time.time(), **values}
