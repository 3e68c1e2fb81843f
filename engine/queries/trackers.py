"""A run's runs in the trackers (MLflow, W&B): their ids and links, and what waits in the
tracker outbox (see :mod:`glasspane.outbox`)."""

from __future__ import annotations

from datetime import datetime

from ..store import MetadataStore, tracker_runs
from .records import Record


class TrackerRunLink(Record):
    """One tracker's run of a glasspane run, and how far the tracker has taken it."""

    tracker: str
    #: the tracker's run id and page, once the tracker created the run
    external_id: str | None
    url: str | None
    #: ``live`` (delivered as the run goes), ``pending`` (waiting: the tracker failed,
    #: ``error`` says how) or ``delivered``
    state: str
    delivered_seq: int
    error: str | None
    attempts: int
    updated_at: datetime


def tracker_links(metadata: MetadataStore, run_id: str) -> list[TrackerRunLink]:
    """The trackers' runs of ``run_id`` (or a unique prefix of it), by tracker name.

    Raises:
        NotFound: no run matches ``run_id``.
    """
    exact = metadata.get_run(run_id)["run_id"]
    rows = metadata.read(tracker_runs.links, exact)
    return [
        TrackerRunLink.model_validate({k: v for k, v in row.items() if k != "run_id"})
        for row in rows
    ]
