"""Pipelines and their versions (with graph JSON), and metric series: per run, and one metric
across a pipeline's runs."""

from __future__ import annotations

from ..errors import InvalidArgument, NotFound
from ..store import MetadataStore, browse, queries
from ..store import pipelines as pipeline_rows
from .records import (
    MetricAcrossRuns,
    MetricPoint,
    ParamValue,
    PipelineSummary,
    PipelineVersion,
    RunMetrics,
    RunMetricValue,
)


def pipelines(metadata: MetadataStore) -> list[PipelineSummary]:
    """Every pipeline with recorded runs, by name, with its version and run counts and newest
    run."""
    return [PipelineSummary(**row) for row in metadata.read(pipeline_rows.pipelines)]


def pipeline(metadata: MetadataStore, name: str) -> PipelineSummary:
    """One pipeline by name: its counts, newest run, reference and parameter schema.

    Raises:
        NotFound: no pipeline of that name (the message names those there are).
    """
    found = pipelines(metadata)
    for summary in found:
        if summary.name == name:
            return summary
    names = ", ".join(f"`{p.name}`" for p in found) or "none yet"
    raise NotFound(f"no pipeline named `{name}` has run here (pipelines: {names})")


def pipeline_versions(
    metadata: MetadataStore, pipeline: str, *, graphs: bool = True
) -> list[PipelineVersion]:
    """The versions of ``pipeline``, newest first, each with its run count and graph JSON.

    Args:
        graphs: include each version's graph JSON (False leaves ``graph`` None: a list of
            versions of large graphs stays small).

    Raises:
        NotFound: no pipeline of that name (the message names those there are).
    """
    rows = metadata.read(pipeline_rows.pipeline_versions, pipeline)
    return [PipelineVersion(**{**row, "graph": row["graph"] if graphs else None}) for row in rows]


def pipeline_version(metadata: MetadataStore, pipeline: str, version_hash: str) -> PipelineVersion:
    """One version of ``pipeline`` by its hash (or a unique prefix), with its graph JSON.

    Raises:
        NotFound: no such pipeline, or no single version matches the hash.
    """
    [row] = metadata.read(pipeline_rows.pipeline_versions, pipeline, version_hash)
    return PipelineVersion(**row)


def run_metrics(metadata: MetadataStore, run_id: str) -> RunMetrics:
    """Every metric a run's tasks logged, in logging order (a series per key and node), and
    the params they logged.

    Raises:
        NotFound: no run matches ``run_id`` (or its unique prefix).
    """
    full_id = metadata.read(queries.resolve_run_id, run_id)
    rows = metadata.read(queries.metrics, full_id)
    return RunMetrics(
        run_id=full_id,
        metrics=[
            MetricPoint(node=r["node"], key=r["key"], value=r["value"], step=r["step"], ts=r["ts"])
            for r in rows
            if r["kind"] == "metric"
        ],
        params=[
            ParamValue(node=r["node"], key=r["key"], value=r["value"], ts=r["ts"])
            for r in rows
            if r["kind"] == "param"
        ],
    )


def metric_across_runs(
    metadata: MetadataStore, pipeline: str, key: str, *, limit: int = 100
) -> MetricAcrossRuns:
    """The last value of metric ``key`` in each of the newest ``limit`` runs of ``pipeline``
    that logged it, oldest run first: how a metric moved from run to run.

    Raises:
        InvalidArgument: ``limit`` is less than 1.
    """
    if limit < 1:
        raise InvalidArgument(f"limit must be 1 or more, not {limit}")
    rows = metadata.read(browse.pipeline_metric, pipeline, key, limit)
    return MetricAcrossRuns(
        pipeline=pipeline, key=key, runs=[RunMetricValue(**row) for row in rows]
    )
