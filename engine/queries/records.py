"""The records :mod:`glasspane.queries` returns: frozen pydantic models, one per shape.

A web UI serves these as its JSON API as they are (``record.model_dump(mode="json")``), and
its OpenAPI schema comes from them (``Record.model_json_schema()``), so page, API and schema
cannot disagree. Timestamps are timezone-aware UTC datetimes; durations are seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    """Base of every query record: immutable, and no field outside the declared ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# ---- runs ------------------------------------------------------------------------------------


class RunSummary(Record):
    """One run as a list shows it, with counts of its task runs by outcome."""

    run_id: str
    pipeline: str
    version_hash: str | None
    """``None`` while the run is ``queued`` (its process has not compiled the pipeline yet)."""
    state: str
    trigger: str
    """What started it: ``manual``, ``ui``, ``retry``, ``schedule``, ``backfill``, ``after``..."""
    resumed_from: str | None
    executor: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    duration: float | None
    params: dict[str, Any]
    n_tasks: int
    n_succeeded: int
    n_failed: int
    """Failed or timed out."""
    n_cached: int
    schedule: str | None = None
    """The name of the schedule that launched it (``None``: no schedule did)."""
    scheduled_for: datetime | None = None
    """The fire time a scheduled or backfilled run is for, which may be long before it was
    created (a backfill, a scheduler catching up)."""
    upstream_run_id: str | None = None
    """The run whose end an ``after`` schedule reacted to by launching this one."""


class RunPage(Record):
    """One page of run summaries, newest first; ``next_cursor`` fetches the next (None: last)."""

    runs: list[RunSummary]
    next_cursor: str | None


class TaskSummary(Record):
    """One task run inside a run's detail: outcome and timings, without its captured text."""

    node: str
    task: str
    state: str
    cached: bool
    attempts: int
    started_at: datetime | None
    ended_at: datetime | None
    duration: float | None
    error: str | None
    note: str | None
    parent_node: str | None
    """The expander node this task run was created by at run time, if any."""
    map_index: int | None


class RunDetail(RunSummary):
    """One run in full: its summary, error, output and every task run in creation order."""

    pipeline_ref: str | None
    error: str | None
    output: Any
    heartbeat_at: datetime | None
    tasks: list[TaskSummary]
    last_seq: int = 0
    """The sequence number of its last stored event: what the page shows is as of that event,
    and ``follow(run_id, after=last_seq)`` goes on from there (0: none yet)."""


class GraphNode(Record):
    """One node of a run's graph, with the state of its task run in that run."""

    id: str
    task: str
    state: str
    """The task run's state; ``pending`` for a node the run never reached."""
    cached: bool
    duration: float | None
    map_index: int | None
    parent_node: str | None
    tags: list[str]


class GraphEdge(Record):
    """Data flows from ``source`` to ``target``, into the parameters named in ``args``."""

    source: str
    target: str
    args: list[str]
    outputs: list[int | None] = []
    """For each of ``args``, which output of a task returning a tuple feeds it (``None``: its
    only output); empty for versions recorded before glasspane kept it."""


class RunGraph(Record):
    """A run's graph: its pipeline version's nodes and edges, each node with its state.

    Nodes an expander created at run time are included (with their ``parent_node``), and
    edges from the expander to them.
    """

    run_id: str
    pipeline: str
    version_hash: str | None
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    output: list[str]
    """The nodes (and outputs, ``node[i]``) the pipeline returns."""


# ---- one task run ----------------------------------------------------------------------------


class ArtifactRef(Record):
    """An artifact as a task run's input (``name``: the parameter) or output (its index)."""

    name: str
    content_hash: str
    type_name: str
    materializer: str | None
    size: int
    uri: str | None
    summary: Any
    """What was recorded when it was stored (shape, dtype, a short repr...)."""


class Attempt(Record):
    """One attempt of a task run, with what that attempt printed, logged and raised."""

    attempt: int
    state: str
    started_at: datetime | None
    ended_at: datetime | None
    duration: float | None
    error: str | None
    traceback: str | None
    stdout: str | None
    stderr: str | None
    log_tail: str | None


class TaskRunRef(Record):
    """A task run, by run id and node."""

    run_id: str
    node: str
    cached: bool


class CacheExplanation(Record):
    """Why a task run hit or missed the cache, against ``compared_with``: for a hit, the task
    run that computed the output; for a miss, the last earlier run of the same node of the
    pipeline (``None``: none ran before)."""

    hit: bool
    compared_with: TaskRunRef | None
    reasons: list[str]


class TaskDetail(Record):
    """One task run in full: attempts, errors with tracebacks, captured output, cache key and
    whether it hit, input and output artifacts, and what it logged."""

    run_id: str
    node: str
    task: str
    state: str
    cache_key: str | None
    cache_hit: bool
    """Its output was reused (from the cache, or from the run a retry resumed)."""
    started_at: datetime | None
    ended_at: datetime | None
    duration: float | None
    error: str | None
    traceback: str | None
    stdout: str | None
    """All attempts' output together; each attempt's own is in ``attempts``."""
    stderr: str | None
    log_tail: str | None
    note: str | None
    parent_node: str | None
    map_index: int | None
    attempts: list[Attempt]
    inputs: list[ArtifactRef]
    outputs: list[ArtifactRef]
    metrics: dict[str, float | None]
    """The last value of each metric the task logged."""
    params: dict[str, Any]
    cache: CacheExplanation | None = None


# ---- pipelines -------------------------------------------------------------------------------


class PipelineSummary(Record):
    """A pipeline with recorded runs: how many versions and runs, and its newest run."""

    name: str
    created_at: datetime
    n_versions: int
    n_runs: int
    last_run_id: str | None
    last_run_at: datetime | None
    last_state: str | None
    reference: str | None = None
    """Where its latest run imported it from (``FILE.py:NAME`` or ``module:NAME``)."""
    params_schema: dict[str, Any] | None = None
    """The JSON schema of its parameters at its latest run (secret ones have ``"format":
    "password"``); ``None`` when a parameter's type has no JSON schema."""


class PipelineVersion(Record):
    """One structural version of a pipeline (a graph hash) and its graph JSON."""

    pipeline: str
    hash: str
    created_at: datetime
    n_runs: int
    graph: dict[str, Any] | None


# ---- metrics ---------------------------------------------------------------------------------


class MetricPoint(Record):
    """One logged metric value (``node`` is None when logged outside a task)."""

    node: str | None
    key: str
    value: float | None
    step: int | None
    ts: datetime


class ParamValue(Record):
    """One logged param value."""

    node: str | None
    key: str
    value: Any
    ts: datetime


class RunMetrics(Record):
    """Every metric a run logged, in logging order (a series per key), and its params."""

    run_id: str
    metrics: list[MetricPoint]
    params: list[ParamValue]


class RunMetricValue(Record):
    """The last value one run logged for a metric."""

    run_id: str
    created_at: datetime
    state: str
    node: str | None
    value: float | None
    step: int | None
    ts: datetime


class MetricAcrossRuns(Record):
    """One metric across a pipeline's runs that logged it, oldest run first."""

    pipeline: str
    key: str
    runs: list[RunMetricValue]


# ---- artifacts -------------------------------------------------------------------------------


class ArtifactPreview(Record):
    """A look inside a stored artifact, read without unpickling anything.

    ``kind`` is how it was read: ``json`` (``value``, cut to a few items per level),
    ``parquet`` (``shape``, ``columns``, ``dtypes`` and the first rows as ``head``), ``npy``
    (``shape``, ``dtype`` and the first rows as ``head``), or ``none`` (pickled, kept in
    memory only, missing or unreadable; ``note`` says which).
    """

    kind: Literal["json", "parquet", "npy", "none"]
    shape: list[int] | None = None
    dtype: str | None = None
    columns: list[str] | None = None
    dtypes: dict[str, str] | None = None
    head: Any = None
    value: Any = None
    truncated: bool = False
    note: str | None = None


class ArtifactDetail(Record):
    """One artifact by content hash: where it is stored, who output and who consumed it."""

    content_hash: str
    type_name: str
    materializer: str | None
    size: int
    uri: str | None
    digest: str | None
    created_at: datetime
    summary: Any
    produced_by: list[TaskRunRef]
    consumed_by: list[TaskRunRef]
    preview: ArtifactPreview


# ---- lineage ---------------------------------------------------------------------------------


class LineageTaskRun(Record):
    """A task run reached by a lineage walk, ``depth`` task-run hops from the root."""

    run_id: str
    node: str
    task: str
    state: str
    cached: bool
    depth: int


class LineageArtifact(Record):
    """An artifact on a lineage walk; ``produced_by`` is the first producer the walk found."""

    content_hash: str
    uri: str | None
    type_name: str
    size: int
    summary: Any
    produced_by: TaskRunRef | None


class LineageEdge(Record):
    """Data flows from ``source`` to ``target``: a task run (``run_id/node``) to an artifact
    (its content hash) it output, or an artifact to a task run that consumed it."""

    source: str
    target: str


class Lineage(Record):
    """What fed one task run (upstream) or what consumed its outputs (downstream), across
    runs."""

    root: TaskRunRef
    direction: Literal["upstream", "downstream"]
    task_runs: list[LineageTaskRun]
    artifacts: list[LineageArtifact]
    edges: list[LineageEdge]
