"""Apply the driver's task events to the metadata tables inside one write transaction.

The driver batches events (``task_started``, ``attempt_finished``, ``task_finished``,
``task_skipped``) and :meth:`MetadataStore.record_events` hands the whole list to one
:class:`EventWriter`, so a batch costs one transaction however long it is.

Invariants:

- A task run in a terminal state is never changed again (compare-and-set in SQL), and events
  for it are dropped whole: a late or duplicated ``task_finished`` adds no lineage edges,
  metrics or attempts.
- Task runs absent from the table are created on their first event (dynamic map children are
  not created with the run).
- Artifacts are shared across runs by ``content_hash``: inserted when absent, and a stored row
  without a ``uri`` gets one when a later event knows it.
- Captured text (stdout, stderr, log tail, traceback, error) keeps at most its last
  :data:`TEXT_LIMIT` bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ..errors import NotFound
from ..types import RETRYING, RUNNING, TERMINAL_STATES
from .models import ArtifactRow, AttemptRow, LineageEdgeRow, MetricRow, RunRow, TaskRunRow

EVENT_KINDS = ("task_started", "attempt_finished", "task_finished", "task_skipped")
TEXT_LIMIT = 64 * 1024
# Comfortably below SQLite's bound-parameter limit for IN (...) lists.
CHUNK = 500


def utc(ts: float | None) -> datetime | None:
    """An epoch timestamp from ``time.time()`` as an aware UTC datetime."""
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


def tail(text: str | None, limit: int = TEXT_LIMIT) -> str | None:
    """The last ``limit`` bytes (UTF-8) of ``text``, marked when something was cut."""
    if text is None or len(text) * 4 <= limit:
        return text
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    marker = f"[... {len(data) - limit} bytes truncated ...]\n"
    kept = data[len(data) - limit + len(marker.encode()) :]
    return marker + kept.decode("utf-8", errors="ignore")


def chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def check_events(events: list[dict[str, Any]]) -> None:
    """Reject a batch with an unknown event kind before anything is written.

    Raises:
        ValueError: an event has no ``kind`` or one this store does not know.
    """
    for position, event in enumerate(events):
        if event.get("kind") not in EVENT_KINDS:
            raise ValueError(
                f"event #{position} has kind `{event.get('kind')}`, which the metadata store "
                f"does not know; use one of {', '.join(EVENT_KINDS)}"
            )


class EventWriter:
    """Writes one batch of events for one run on a connection inside a write transaction."""

    def __init__(self, conn: Connection, run_id: str) -> None:
        self.conn = conn
        self.run_id = run_id
        # node_id -> (task_run id, state) for the nodes this batch touches.
        self.task_runs: dict[str, tuple[int, str]] = {}
        self.artifact_ids: dict[str, int] = {}
        self.edges: list[dict[str, Any]] = []
        self.metrics: list[dict[str, Any]] = []

    def apply(self, events: list[dict[str, Any]]) -> None:
        """Apply ``events`` in order, then insert the collected edges and metrics in bulk."""
        self._load_task_runs({event["node"] for event in events})
        for event in events:
            getattr(self, f"_{event['kind']}")(event)
        if self.edges:
            self.conn.execute(insert(LineageEdgeRow), self.edges)
        if self.metrics:
            self.conn.execute(insert(MetricRow), self.metrics)

    # ---- task runs ---------------------------------------------------------------------------

    def _load_task_runs(self, nodes: set[str]) -> None:
        for part in chunks(sorted(nodes)):
            rows = self.conn.execute(
                select(TaskRunRow.id, TaskRunRow.node_id, TaskRunRow.state).where(
                    TaskRunRow.run_id == self.run_id, TaskRunRow.node_id.in_(part)
                )
            )
            for row in rows:
                self.task_runs[row.node_id] = (row.id, row.state)

    def _task_run(self, event: dict[str, Any], state: str, **values: Any) -> int:
        """Insert the task run of ``event`` in ``state`` with ``values``; return its id."""
        node = event["node"]
        row = {
            "run_id": self.run_id,
            "node_id": node,
            "task_name": event.get("task") or node,
            "state": state,
            "attempts": 0,
            "cached": False,
            "parent_node": event.get("parent"),
            "map_index": event.get("map_index"),
            **values,
        }
        task_run_id = self.conn.execute(insert(TaskRunRow).values(row)).inserted_primary_key[0]
        self.task_runs[node] = (task_run_id, state)
        return task_run_id

    def _update_task_run(self, node: str, state: str, **values: Any) -> bool:
        """Compare-and-set the task run of ``node``; False when it is already terminal."""
        task_run_id, current = self.task_runs[node]
        if current in TERMINAL_STATES:
            return False
        changed = self.conn.execute(
            update(TaskRunRow)
            .where(TaskRunRow.id == task_run_id, TaskRunRow.state.not_in(TERMINAL_STATES))
            .values(state=state, **values)
        ).rowcount
        self.task_runs[node] = (task_run_id, state if changed else current)
        return bool(changed)

    def _optional(self, event: dict[str, Any]) -> dict[str, Any]:
        # Map placement is only known to the event sometimes; never erase it with None.
        return {
            column: event[key]
            for key, column in (("parent", "parent_node"), ("map_index", "map_index"))
            if event.get(key) is not None
        }

    # ---- event kinds -------------------------------------------------------------------------

    def _task_started(self, event: dict[str, Any]) -> None:
        attempt = int(event.get("attempt") or 1)
        state = RETRYING if attempt > 1 else RUNNING
        started = utc(event["ts"])
        node = event["node"]
        if node not in self.task_runs:
            task_run_id = self._task_run(event, state, attempts=attempt, started_at=started)
        else:
            values: dict[str, Any] = {"attempts": attempt, **self._optional(event)}
            if attempt == 1:
                values["started_at"] = started
            if not self._update_task_run(node, state, **values):
                return
            task_run_id = self.task_runs[node][0]
        if self._attempt_id(task_run_id, attempt) is None:
            self.conn.execute(
                insert(AttemptRow).values(
                    task_run_id=task_run_id, attempt=attempt, state=RUNNING, started_at=started
                )
            )

    def _attempt_finished(self, event: dict[str, Any]) -> None:
        node = event["node"]
        if node not in self.task_runs:
            self._task_run(event, RUNNING)
        task_run_id, state = self.task_runs[node]
        if state in TERMINAL_STATES:
            return
        attempt = int(event["attempt"])
        values = {
            "state": event["state"],
            "ended_at": utc(event["ts"]),
            "error": tail(event.get("error")),
        }
        attempt_id = self._attempt_id(task_run_id, attempt)
        if attempt_id is None:
            self.conn.execute(
                insert(AttemptRow).values(task_run_id=task_run_id, attempt=attempt, **values)
            )
        else:
            self.conn.execute(update(AttemptRow).where(AttemptRow.id == attempt_id).values(values))

    def _task_finished(self, event: dict[str, Any]) -> None:
        started, ended = event.get("started"), event["ended"]
        values: dict[str, Any] = {
            "cached": bool(event.get("cached")),
            "cache_key": event.get("cache_key"),
            "attempts": int(event.get("attempts") or 0),
            "ended_at": utc(ended),
            "duration": None if started is None else max(0.0, ended - started),
            "error": tail(event.get("error")),
            "traceback": tail(event.get("traceback")),
            "stdout": tail(event.get("stdout")),
            "stderr": tail(event.get("stderr")),
            "log_tail": tail(event.get("log_tail")),
            "note": event.get("note"),
            **self._optional(event),
        }
        if started is not None:
            values["started_at"] = utc(started)
        node = event["node"]
        if node not in self.task_runs:
            task_run_id = self._task_run(event, event["state"], **values)
        elif self._update_task_run(node, event["state"], **values):
            task_run_id = self.task_runs[node][0]
        else:
            return
        for direction, key in (("input", "inputs"), ("output", "outputs")):
            for item in event.get(key) or ():
                self.edges.append(
                    {
                        "task_run_id": task_run_id,
                        "artifact_id": self._artifact_id(item["artifact"]),
                        "direction": direction,
                        "name": str(item["name"]),
                    }
                )
        for metric in event.get("metrics") or ():
            self.metrics.append(
                {
                    "run_id": self.run_id,
                    "task_run_id": task_run_id,
                    "kind": "metric",
                    "key": metric["key"],
                    "value": metric["value"],
                    "value_json": None,
                    "step": metric.get("step"),
                    "ts": utc(metric.get("ts", ended)),
                }
            )
        for param in event.get("params") or ():
            self.metrics.append(
                {
                    "run_id": self.run_id,
                    "task_run_id": task_run_id,
                    "kind": "param",
                    "key": param["key"],
                    "value": None,
                    "value_json": param["value"],
                    "step": None,
                    "ts": utc(ended),
                }
            )

    def _task_skipped(self, event: dict[str, Any]) -> None:
        values = {"ended_at": utc(event["ts"]), "error": tail(event.get("error"))}
        if event["node"] not in self.task_runs:
            self._task_run(event, event["state"], **values)
        else:
            self._update_task_run(event["node"], event["state"], **values)

    # ---- attempts and artifacts --------------------------------------------------------------

    def _attempt_id(self, task_run_id: int, attempt: int) -> int | None:
        return self.conn.execute(
            select(AttemptRow.id).where(
                AttemptRow.task_run_id == task_run_id, AttemptRow.attempt == attempt
            )
        ).scalar()

    def _artifact_id(self, info: dict[str, Any]) -> int:
        """The id of the artifact ``info`` describes, inserting or completing its row."""
        content_hash = info["content_hash"]
        if content_hash in self.artifact_ids:
            return self.artifact_ids[content_hash]
        row = self.conn.execute(
            select(ArtifactRow.id, ArtifactRow.uri).where(ArtifactRow.content_hash == content_hash)
        ).first()
        if row is None:
            artifact_id = self.conn.execute(
                insert(ArtifactRow).values(
                    content_hash=content_hash,
                    uri=info.get("uri"),
                    digest=info.get("digest"),
                    type_name=info.get("type_name") or "object",
                    materializer=info.get("materializer"),
                    size=int(info.get("size") or 0),
                    preview=info.get("preview"),
                    created_at=datetime.now(timezone.utc),
                )
            ).inserted_primary_key[0]
        else:
            artifact_id = row.id
            if row.uri is None and info.get("uri"):
                # The value was first kept in memory only; now it has been written somewhere.
                self.conn.execute(
                    update(ArtifactRow)
                    .where(ArtifactRow.id == artifact_id, ArtifactRow.uri.is_(None))
                    .values(
                        uri=info["uri"],
                        digest=info.get("digest"),
                        materializer=info.get("materializer"),
                        size=int(info.get("size") or 0),
                    )
                )
        self.artifact_ids[content_hash] = artifact_id
        return artifact_id


def require_run(conn: Connection, run_id: str) -> None:
    """Raise :class:`NotFound` when no run has exactly the id ``run_id``."""
    if conn.execute(select(RunRow.id).where(RunRow.id == run_id)).first() is None:
        raise NotFound(f"no run `{run_id}`; create it with create_run first")
