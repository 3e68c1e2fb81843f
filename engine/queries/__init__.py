"""Read-only queries of glasspane's runs, returning typed records (pydantic models).

Each function takes the :class:`~glasspane.store.MetadataStore` to read (and, to preview
artifacts, the :class:`~glasspane.artifacts.ArtifactStore`) and returns a record from
:mod:`glasspane.queries.records`; a web UI serves those as its JSON API, and its OpenAPI schema
comes from them.

Reads never write: no query sweeps crashed runs (``glasspane runs sweep`` and the start of
``glasspane run`` do), and on SQLite none takes the write lock, so a query answers while a
run is writing.
"""

from .artifacts import artifact, preview
from .cache_reasons import explain_cache
from .compare import MetricDiff, NodeDiff, RunComparison, ValueDiff, compare_runs
from .lineage import lineage
from .models import (
    DeploymentEvent,
    DeploymentRecord,
    ModelDetail,
    ModelLink,
    ModelMetric,
    ModelSummary,
    ModelVersionRecord,
    VersionDeployment,
    deployments,
    model,
    models,
)
from .pipelines import (
    metric_across_runs,
    pipeline,
    pipeline_version,
    pipeline_versions,
    pipelines,
    run_metrics,
)
from .records import (
    ArtifactDetail,
    ArtifactPreview,
    ArtifactRef,
    Attempt,
    CacheExplanation,
    GraphEdge,
    GraphNode,
    Lineage,
    LineageArtifact,
    LineageEdge,
    LineageTaskRun,
    MetricAcrossRuns,
    MetricPoint,
    ParamValue,
    PipelineSummary,
    PipelineVersion,
    Record,
    RunDetail,
    RunGraph,
    RunMetrics,
    RunMetricValue,
    RunPage,
    RunSummary,
    TaskDetail,
    TaskRunRef,
    TaskSummary,
)
from .runs import get_run, list_runs, run_graph, task_detail
from .schedule_records import ScheduleDetail, ScheduleSummary, ScheduleTick, ScheduleTrigger
from .schedules import schedule, schedules
from .trackers import TrackerRunLink, tracker_links

__all__ = [
    "ArtifactDetail",
    "ArtifactPreview",
    "ArtifactRef",
    "Attempt",
    "CacheExplanation",
    "DeploymentEvent",
    "DeploymentRecord",
    "GraphEdge",
    "GraphNode",
    "Lineage",
    "LineageArtifact",
    "LineageEdge",
    "LineageTaskRun",
    "MetricAcrossRuns",
    "MetricDiff",
    "MetricPoint",
    "ModelDetail",
    "ModelLink",
    "ModelMetric",
    "ModelSummary",
    "ModelVersionRecord",
    "NodeDiff",
    "ParamValue",
    "PipelineSummary",
    "PipelineVersion",
    "Record",
    "RunComparison",
    "RunDetail",
    "RunGraph",
    "RunMetricValue",
    "RunMetrics",
    "RunPage",
    "RunSummary",
    "ScheduleDetail",
    "ScheduleSummary",
    "ScheduleTick",
    "ScheduleTrigger",
    "TaskDetail",
    "TaskRunRef",
    "TaskSummary",
    "TrackerRunLink",
    "ValueDiff",
    "VersionDeployment",
    "artifact",
    "compare_runs",
    "deployments",
    "explain_cache",
    "get_run",
    "lineage",
    "list_runs",
    "metric_across_runs",
    "model",
    "models",
    "pipeline",
    "pipeline_version",
    "pipeline_versions",
    "pipelines",
    "preview",
    "run_graph",
    "run_metrics",
    "schedule",
    "schedules",
    "task_detail",
    "tracker_links",
]
