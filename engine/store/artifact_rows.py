"""The ``artifacts`` rows of a batch of task events: looked up, inserted, completed.

Artifacts are shared across runs by ``content_hash``: inserted when absent, and a stored row
without a ``uri`` (a value first kept in memory only) gets one when a later event knows it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy import insert as sa_insert

from ..types import TERMINAL_STATES
from .models import ArtifactRow

# Comfortably below SQLite's bound-parameter limit for IN (...) lists.
CHUNK = 500
_artifacts = ArtifactRow.__table__.c
INSERT_ARTIFACT = sa_insert(ArtifactRow)
# expanding IN lists: built once, so a batch skips statement construction and cache keys
SELECT_ARTIFACTS = select(_artifacts.id, _artifacts.content_hash, _artifacts.uri).where(
    _artifacts.content_hash.in_(bindparam("hashes", expanding=True))
)
COMPLETE_ARTIFACT = update(ArtifactRow).where(
    _artifacts.id == bindparam("_id"), _artifacts.uri.is_(None)
)


def chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


class ArtifactRows:
    """The artifact part of :class:`~glasspane.store.events.EventWriter`."""

    conn: Connection
    #: node_id -> (task_run id, state)
    task_runs: dict[str, tuple[int, str]]
    #: content_hash -> (artifact id, has a uri)
    artifacts: dict[str, tuple[int, bool]]

    def _prefetch_artifacts(self, events: list[dict[str, Any]]) -> None:
        """Look up the batch's artifacts and insert the missing ones, in a few statements."""
        infos: dict[str, dict[str, Any]] = {}
        for event in events:
            if event["kind"] != "task_finished":
                continue
            known = self.task_runs.get(event["node"])
            if known is not None and known[1] in TERMINAL_STATES:
                continue  # dropped whole by the compare-and-set
            for item in [*(event.get("inputs") or ()), *(event.get("outputs") or ())]:
                infos.setdefault(item["artifact"]["content_hash"], item["artifact"])
        self._select_artifacts(list(infos))
        # Sorted, so concurrent writers lock new keys in one order (PostgreSQL takes a lock on
        # each inserted unique key until commit; crossing orders would deadlock).
        missing = [
            infos[content_hash]
            for content_hash in sorted(infos)
            if content_hash not in self.artifacts
        ]
        if missing:
            created = datetime.now(timezone.utc)
            self.conn.execute(INSERT_ARTIFACT, [artifact_row(info, created) for info in missing])
            self._select_artifacts([info["content_hash"] for info in missing])

    def _select_artifacts(self, hashes: list[str]) -> None:
        for part in chunks(hashes):
            rows = self.conn.execute(SELECT_ARTIFACTS, {"hashes": part})
            for row in rows:
                self.artifacts[row.content_hash] = (row.id, row.uri is not None)

    def _artifact_id(self, info: dict[str, Any]) -> int:
        """The id of the artifact ``info`` describes, completing its row with a new ``uri``."""
        content_hash = info["content_hash"]
        if content_hash not in self.artifacts:  # not prefetched: its task run looked terminal
            self._select_artifacts([content_hash])
        if content_hash not in self.artifacts:
            self.conn.execute(INSERT_ARTIFACT, artifact_row(info, datetime.now(timezone.utc)))
            self._select_artifacts([content_hash])
        artifact_id, has_uri = self.artifacts[content_hash]
        if not has_uri and info.get("uri"):
            # The value was first kept in memory only; now it has been written somewhere.
            row = artifact_row(info, None)
            completion = {key: row[key] for key in ("uri", "digest", "materializer", "size")}
            self.conn.execute(COMPLETE_ARTIFACT, {"_id": artifact_id, **completion})
            self.artifacts[content_hash] = (artifact_id, True)
        return artifact_id


def artifact_row(info: dict[str, Any], created_at: datetime | None) -> dict[str, Any]:
    """The ``artifacts`` row of an :meth:`ArtifactInfo.to_dict` dict."""
    return {
        "content_hash": info["content_hash"],
        "uri": info.get("uri"),
        "digest": info.get("digest"),
        "type_name": info.get("type_name") or "object",
        "materializer": info.get("materializer"),
        "size": int(info.get("size") or 0),
        "preview": info.get("preview"),
        "created_at": created_at,
    }
