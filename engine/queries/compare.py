"""Two runs side by side: parameters, metrics, each node's outputs (equal content or not) and
durations; or a glasspane run beside a tracker's run (:func:`compare_tracked`), by parameters
and metrics."""

from __future__ import annotations

import json
from typing import Any

from ..errors import InvalidArgument
from ..store import MetadataStore, browse, queries
from ..tracking import TrackedRun
from .records import Record, RunDetail, RunSummary
from .runs import get_run

# ---- records ----------------------------------------------------------------------


class ValueDiff(Record):
    """A parameter in two runs (None where a run has none)."""

    key: str
    left: Any
    right: Any
    equal: bool


class MetricDiff(Record):
    """The last value of a metric, per node, in two runs; ``delta`` is right minus left."""

    node: str | None
    key: str
    left: float | None
    right: float | None
    delta: float | None


class NodeDiff(Record):
    """One node in two runs: states, durations, and whether its outputs are equal.

    ``outputs_equal`` compares content hashes; None when either run has no outputs for it.
    """

    node: str
    left_state: str | None
    right_state: str | None
    left_duration: float | None
    right_duration: float | None
    left_outputs: list[str]
    right_outputs: list[str]
    outputs_equal: bool | None


class RunComparison(Record):
    """Two runs side by side: parameters, metrics, per-node outputs and durations."""

    left: RunSummary
    right: RunSummary
    same_version: bool
    params: list[ValueDiff]
    metrics: list[MetricDiff]
    nodes: list[NodeDiff]


# ---- the query -----------------------------------------------------------------------------


def compare_runs(metadata: MetadataStore, left: str, right: str) -> RunComparison:
    """Compare run ``left`` with run ``right`` (ids or unique prefixes).

    Parameters are compared by value; metrics by the last value each node logged (``delta``
    is right minus left); nodes by state, duration and the content hashes of their outputs,
    so equal outputs are found even when one run computed them and the other reused them.

    Raises:
        NotFound: either run does not exist.
    """
    a, b = get_run(metadata, left), get_run(metadata, right)
    params = [
        ValueDiff(key=key, left=a.params.get(key), right=b.params.get(key), equal=_same(a, b, key))
        for key in sorted(set(a.params) | set(b.params))
    ]
    metrics_a, metrics_b = _last_metrics(metadata, a.run_id), _last_metrics(metadata, b.run_id)
    metrics = []
    for node, key in sorted(set(metrics_a) | set(metrics_b), key=lambda k: (k[1], k[0] or "")):
        x, y = metrics_a.get((node, key)), metrics_b.get((node, key))
        delta = y - x if x is not None and y is not None else None
        metrics.append(MetricDiff(node=node, key=key, left=x, right=y, delta=delta))
    outputs_a = metadata.read(browse.output_hashes, a.run_id)
    outputs_b = metadata.read(browse.output_hashes, b.run_id)
    tasks_a, tasks_b = {t.node: t for t in a.tasks}, {t.node: t for t in b.tasks}
    nodes = []
    for node in [*tasks_a, *(n for n in tasks_b if n not in tasks_a)]:
        ta, tb = tasks_a.get(node), tasks_b.get(node)
        oa, ob = outputs_a.get(node, []), outputs_b.get(node, [])
        nodes.append(
            NodeDiff(
                node=node,
                left_state=ta.state if ta else None,
                right_state=tb.state if tb else None,
                left_duration=ta.duration if ta else None,
                right_duration=tb.duration if tb else None,
                left_outputs=oa,
                right_outputs=ob,
                outputs_equal=oa == ob if oa and ob else None,
            )
        )
    return RunComparison(
        left=_summary(a),
        right=_summary(b),
        same_version=a.version_hash == b.version_hash,
        params=params,
        metrics=metrics,
        nodes=nodes,
    )


def _same(a: RunDetail, b: RunDetail, key: str) -> bool:
    return key in a.params and key in b.params and a.params[key] == b.params[key]


def _summary(run: RunDetail) -> RunSummary:
    return RunSummary(**{name: getattr(run, name) for name in RunSummary.model_fields})


def _last_metrics(metadata: MetadataStore, run_id: str) -> dict[tuple[Any, str], float | None]:
    last: dict[tuple[Any, str], float | None] = {}
    for row in metadata.read(queries.metrics, run_id):
        if row["kind"] == "metric":
            last[(row["node"], row["key"])] = row["value"]
    return last


# ---- a side that is a tracker's run ------------------------------------------------------------


class CompareSide(Record):
    """One side of a comparison with a tracker's run: a glasspane run (``run``) or a tracker's
    run (``tracked``); exactly one is set."""

    run: RunSummary | None = None
    tracked: TrackedRun | None = None
    #: the tracker's runs nested under ``tracked`` (a glasspane run's task runs in MLflow),
    #: whose metrics count as the run's where it has none of that name
    children: list[TrackedRun] = []


class TrackedComparison(Record):
    """Two runs side by side where at least one is a tracker's run (MLflow...): parameters, and
    the last value of each metric by key (a tracker's run has no task graph to compare).

    A glasspane side's parameters are the pipeline's and those its tasks logged; its metrics
    the last value each key was logged with (``MetricDiff.node`` names the node). A tracker
    keeps parameters as text, so a glasspane value equals a tracker's when its text (or its
    JSON) is the same.
    """

    left: CompareSide
    right: CompareSide
    params: list[ValueDiff]
    metrics: list[MetricDiff]


def compare_tracked(
    metadata: MetadataStore,
    left: str | TrackedRun | CompareSide,
    right: str | TrackedRun | CompareSide,
) -> TrackedComparison:
    """Compare two runs, each a glasspane run id (or unique prefix) or a tracker's run (read
    from the tracker by the caller, ``TrackerReader.get_run``; as a :class:`CompareSide` with
    its ``children`` when their metrics should count, ``TrackerReader.child_runs``).

    Raises:
        NotFound: a glasspane side does not exist.
    """
    sides = [_side(metadata, value) for value in (left, right)]
    (side_a, params_a, metrics_a), (side_b, params_b, metrics_b) = sides
    params = [
        ValueDiff(
            key=key,
            left=params_a.get(key),
            right=params_b.get(key),
            equal=key in params_a and key in params_b and _equal(params_a[key], params_b[key]),
        )
        for key in sorted(set(params_a) | set(params_b))
    ]
    metrics = []
    for key in sorted(set(metrics_a) | set(metrics_b)):
        node_a, x = metrics_a.get(key, (None, None))
        node_b, y = metrics_b.get(key, (None, None))
        delta = y - x if x is not None and y is not None else None
        metrics.append(MetricDiff(node=node_a or node_b, key=key, left=x, right=y, delta=delta))
    return TrackedComparison(left=side_a, right=side_b, params=params, metrics=metrics)


Values = dict[str, Any]
LastMetrics = dict[str, tuple[str | None, float | None]]


def _side(
    metadata: MetadataStore, value: str | TrackedRun | CompareSide
) -> tuple[CompareSide, Values, LastMetrics]:
    if isinstance(value, TrackedRun):
        value = CompareSide(tracked=value)
    if isinstance(value, CompareSide) and value.tracked is not None:
        last: LastMetrics = {
            key: (child.name, v) for child in value.children for key, v in child.metrics.items()
        }
        last.update({key: (None, v) for key, v in value.tracked.metrics.items()})
        return value, dict(value.tracked.params), last
    if isinstance(value, CompareSide):
        if value.run is None:
            raise InvalidArgument("a side of a comparison needs a glasspane run or a tracker's")
        value = value.run.run_id
    run = get_run(metadata, value)
    params: Values = {}
    metrics: LastMetrics = {}
    for row in metadata.read(queries.metrics, run.run_id):  # in logging order: the last wins
        if row["kind"] == "metric":
            metrics[row["key"]] = (row["node"], row["value"])
        else:
            params[row["key"]] = row["value"]
    params.update(run.params)  # the pipeline's own parameters win over logged ones
    return CompareSide(run=_summary(run)), params, metrics


def _equal(a: Any, b: Any) -> bool:
    """Equal values, or equal as a tracker keeps them (text): ``1.0`` and ``"1.0"``."""
    return a == b or bool(_texts(a) & _texts(b))


def _texts(value: Any) -> set[str]:
    """How a tracker may have written ``value`` as text: ``str()`` or JSON."""
    if isinstance(value, str):
        return {value}
    try:
        return {str(value), json.dumps(value)}
    except (TypeError, ValueError):
        return {str(value)}
