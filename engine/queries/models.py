"""The model registry as the UI shows it: each model's versions with their aliases, the run and
task that produced them, that run's metrics, links to other registries (MLflow's), and the
deployments serving them.

Reads never write. A version's metrics are the final value of each metric its registering task
logged; when that task logged none, those of its whole run (each with the node that logged it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import NotFound
from ..store import MetadataStore, queries
from .records import Record

#: the events of a deployment's history kept in its record, newest first
MAX_HISTORY = 20


class ModelMetric(Record):
    """The final value of one metric of the run that produced a version."""

    key: str
    value: float | None
    step: int | None
    node: str | None
    """The node that logged it (None: logged outside any task)."""


class ModelLink(Record):
    """The same version in another registry."""

    registry: str
    """``mlflow``..."""
    external_name: str
    external_version: str
    uri: str | None


class VersionDeployment(Record):
    """A deployment of one version: where it answers and whether it still does."""

    name: str
    target: str
    url: str
    state: str
    """``serving`` or ``stopped``."""


class DeploymentEvent(Record):
    """One thing that happened to a deployment: ``deployed``, ``redeployed``, ``rejected`` (a
    new version failed its checks; the old one kept serving) or ``stopped``."""

    action: str
    model_version: int
    message: str | None
    run_id: str | None
    ts: datetime


class DeploymentRecord(Record):
    """One deployment: the model version it serves, on which target, where, and its history."""

    name: str
    target: str
    model_name: str
    model_version: int
    ref: str
    """What was asked for (``churn@champion``)."""
    url: str
    pid: int | None
    state: str
    """``serving`` or ``stopped``."""
    run_id: str | None
    """The run whose task deployed it, if a task did."""
    created_at: datetime
    updated_at: datetime
    history: list[DeploymentEvent]
    """Newest first, at most :data:`MAX_HISTORY` events."""


class ModelSummary(Record):
    """One registered model as a list shows it."""

    name: str
    latest_version: int
    aliases: dict[str, int]
    """Each alias and the version it names."""
    n_versions: int
    last_registered: datetime
    n_deployments: int
    n_serving: int


class ModelVersionRecord(Record):
    """One version of a model: where it came from, what its run measured, where it serves."""

    name: str
    version: int
    aliases: list[str]
    created_at: datetime
    run_id: str
    node_id: str | None
    """The task that registered it."""
    task_state: str | None
    metadata: dict[str, Any]
    """What the registering code said of it (``metadata=``)."""
    content_hash: str
    type_name: str | None
    size: int | None
    metrics: list[ModelMetric]
    links: list[ModelLink]
    deployments: list[VersionDeployment]


class ModelDetail(Record):
    """One model: its summary, its versions newest first, and its deployments by name."""

    summary: ModelSummary
    versions: list[ModelVersionRecord]
    deployments: list[DeploymentRecord]


def _summaries(
    rows: list[dict[str, Any]], deployed: list[dict[str, Any]]
) -> dict[str, ModelSummary]:
    by_name: dict[str, list[dict[str, Any]]] = {}
    for row in rows:  # newest version first within a name
        by_name.setdefault(row["name"], []).append(row)
    found = {}
    for name, versions in sorted(by_name.items()):
        mine = [d for d in deployed if d["model_name"] == name]
        found[name] = ModelSummary(
            name=name,
            latest_version=versions[0]["version"],
            aliases={a: v["version"] for v in versions for a in v["aliases"]},
            n_versions=len(versions),
            last_registered=max(v["created_at"] for v in versions),
            n_deployments=len(mine),
            n_serving=sum(d["state"] == "serving" for d in mine),
        )
    return found


def models(metadata: MetadataStore) -> list[ModelSummary]:
    """Every registered model, by name, with its latest version, aliases and deployments."""
    found = _summaries(metadata.model_versions(), metadata.deployments())
    return list(found.values())


def _metrics(metadata: MetadataStore, run_id: str, node: str | None) -> list[ModelMetric]:
    """The final value of each metric the task ``node`` logged in ``run_id``; when it logged
    none, of each metric of the run."""
    try:
        rows = [r for r in metadata.read(queries.metrics, run_id) if r["kind"] == "metric"]
    except NotFound:  # the run is gone
        return []
    own = [r for r in rows if r["node"] == node]
    last: dict[str, dict[str, Any]] = {}
    for row in own or rows:  # in logging order: the last value of each key wins
        last[row["key"]] = row
    return [
        ModelMetric(key=key, value=r["value"], step=r["step"], node=r["node"])
        for key, r in sorted(last.items())
    ]


def _deployment(metadata: MetadataStore, row: dict[str, Any]) -> DeploymentRecord:
    events = metadata.deployment_history(row["name"])[::-1][:MAX_HISTORY]
    fields = {k: row[k] for k in DeploymentRecord.model_fields if k != "history"}
    return DeploymentRecord(
        **fields,
        history=[
            DeploymentEvent(
                action=e["action"], model_version=e["model_version"], message=e["message"],
                run_id=e["run_id"], ts=e["ts"],
            )
            for e in events
        ],
    )  # fmt: skip


def deployments(metadata: MetadataStore, model: str | None = None) -> list[DeploymentRecord]:
    """Every deployment (of ``model``), by name, with its recent history."""
    return [_deployment(metadata, row) for row in metadata.deployments(model)]


def _version(
    metadata: MetadataStore,
    row: dict[str, Any],
    deployed: list[dict[str, Any]],
    metrics: list[ModelMetric],
) -> ModelVersionRecord:
    meta = row["meta"]
    return ModelVersionRecord(
        name=row["name"],
        version=row["version"],
        aliases=row["aliases"],
        created_at=row["created_at"],
        run_id=row["run_id"],
        node_id=row["node_id"],
        task_state=row["task_state"],
        metadata=meta if isinstance(meta, dict) else ({} if meta is None else {"value": meta}),
        content_hash=row["content_hash"],
        type_name=row["type_name"],
        size=row["size"],
        metrics=metrics,
        links=[
            ModelLink(
                registry=link["registry"],
                external_name=link["external_name"],
                external_version=link["external_version"],
                uri=link["uri"],
            )
            for link in metadata.model_links(row["name"], row["version"])
        ],  # fmt: skip
        deployments=[
            VersionDeployment(name=d["name"], target=d["target"], url=d["url"], state=d["state"])
            for d in deployed
            if d["model_version"] == row["version"]
        ],
    )


def model(metadata: MetadataStore, name: str) -> ModelDetail:
    """Model ``name``: its versions newest first (each with its run's metrics, links and
    deployments) and its deployments with their history.

    Raises:
        NotFound: no model of that name is registered (the message names those that are).
    """
    rows = metadata.model_versions(name)
    if not rows:
        names = sorted({str(row["name"]) for row in metadata.model_versions()})
        have = ", ".join(f"`{n}`" for n in names) or "none yet"
        raise NotFound(
            f"no model `{name}` is registered (registered: {have}); register one in a task "
            f"with glasspane.register_model({name!r}, model)"
        )
    deployed = metadata.deployments(name)
    by_run: dict[tuple[str, str | None], list[ModelMetric]] = {}
    versions = []
    for row in rows:
        key = (row["run_id"], row["node_id"])
        if key not in by_run:
            by_run[key] = _metrics(metadata, *key)
        versions.append(_version(metadata, row, deployed, by_run[key]))
    return ModelDetail(
        summary=_summaries(rows, deployed)[name],
        versions=versions,
        deployments=[_deployment(metadata, row) for row in deployed],
    )
