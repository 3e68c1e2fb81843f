"""Two runs side by side: parameters, metrics, each node's outputs (equal content or not) and
durations."""

from __future__ import annotations

from typing import Any

from ..store import MetadataStore, browse, queries
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
