"""Read-side SQL for pipelines: each with its counts, newest run, reference and parameter
schema; and its versions with their graph JSON. Only ``SELECT`` statements (see
:mod:`.browse`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from ..errors import NotFound
from .models import PipelineRow, PipelineVersionRow, RunRow


def pipelines(conn: Connection) -> list[dict[str, Any]]:
    """Every pipeline by name: version and run counts, and its newest run's id, time, state."""
    versions = dict(
        conn.execute(
            select(PipelineVersionRow.pipeline_id, func.count()).group_by(
                PipelineVersionRow.pipeline_id
            )
        ).all()
    )
    runs = dict(
        conn.execute(select(RunRow.pipeline_id, func.count()).group_by(RunRow.pipeline_id)).all()
    )
    found = []
    for row in conn.execute(select(PipelineRow).order_by(PipelineRow.name)):
        last = conn.execute(
            select(RunRow.id, RunRow.created_at, RunRow.state)
            .where(RunRow.pipeline_id == row.id)
            .order_by(RunRow.created_at.desc(), RunRow.id.desc())
            .limit(1)
        ).first()
        found.append(
            {
                "name": row.name,
                "created_at": row.created_at,
                "n_versions": int(versions.get(row.id, 0)),
                "n_runs": int(runs.get(row.id, 0)),
                "last_run_id": last.id if last else None,
                "last_run_at": last.created_at if last else None,
                "last_state": last.state if last else None,
                "reference": row.reference,
                "params_schema": row.params_schema,
            }
        )
    return found


def pipeline_versions(
    conn: Connection, name: str, version_hash: str | None = None
) -> list[dict[str, Any]]:
    """The versions of pipeline ``name``, newest first, each with its graph JSON and run count.

    Args:
        version_hash: only the version with this hash, or a unique prefix of it.

    Raises:
        NotFound: no pipeline ``name`` (the message names those there are), or no version
            matching ``version_hash``.
    """
    pipeline_id = conn.execute(select(PipelineRow.id).where(PipelineRow.name == name)).scalar()
    if pipeline_id is None:
        names = conn.execute(select(PipelineRow.name).order_by(PipelineRow.name)).scalars().all()
        raise NotFound(
            f"no pipeline `{name}`; the pipelines with runs are: {', '.join(names) or 'none'}"
        )
    counts = dict(
        conn.execute(
            select(RunRow.version_id, func.count())
            .where(RunRow.pipeline_id == pipeline_id)
            .group_by(RunRow.version_id)
        ).all()
    )
    query = select(PipelineVersionRow).where(PipelineVersionRow.pipeline_id == pipeline_id)
    if version_hash is not None:
        query = query.where(PipelineVersionRow.hash.startswith(version_hash, autoescape=True))
    rows = conn.execute(
        query.order_by(PipelineVersionRow.created_at.desc(), PipelineVersionRow.id.desc())
    ).all()
    if version_hash is not None and len(rows) != 1:
        what = "matches no version" if not rows else "matches several versions"
        raise NotFound(
            f"version `{version_hash}` of pipeline `{name}` {what}; list its versions with "
            "glasspane.queries.pipeline_versions"
        )
    return [
        {
            "pipeline": name,
            "hash": row.hash,
            "created_at": row.created_at,
            "n_runs": int(counts.get(row.id, 0)),
            "graph": row.graph_json,
        }
        for row in rows
    ]
