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
- An input edge names the task run that produced its value (``source_task_run_id``) when the
  event gives the producing node (``inputs[i]["source"]``) and that node has a task run in
  this run by then; otherwise it stays NULL and lineage falls back to content hashes.
- Captured text (stdout, stderr, log tail, traceback, error) keeps at most its last
  :data:`TEXT_LIMIT` bytes. A task run holds the text of all its attempts together; each
  ``attempts`` row holds its own attempt's (see :func:`attempt_text`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, insert, literal, select, update

from ..errors import InvalidArgument, NotFound
from ..types import RETRYING, RUNNING, TERMINAL_STATES
from .artifact_rows import ArtifactRows, chunks
from .columns import attempt_text, insert_id, tail, utc
from .models import AttemptRow, LineageEdgeRow, MetricRow, RunRow, TaskRunRow
from .registry import RegistryRows

EVENT_KINDS = (
    "task_started", "attempt_finished", "task_finished", "task_skipped",
    "metric_logged", "param_logged", "artifact_logged", "model_registered", "model_loaded",
    "output_logged",
)  # fmt: skip


def check_events(events: list[dict[str, Any]]) -> None:
    """Reject a batch with an unknown event kind before anything is written.

    Raises:
        InvalidArgument: an event has no ``kind``, one this store does not know, or no ``node``.
    """
    for position, event in enumerate(events):
        if event.get("kind") not in EVENT_KINDS:
            raise InvalidArgument(
                f"event #{position} has kind `{event.get('kind')}`, which the metadata store "
                f"does not know; use one of {', '.join(EVENT_KINDS)}"
            )
        if not isinstance(event.get("node"), str):
            raise InvalidArgument(
                f"event #{position} ({event['kind']}) has no `node`; every event names the "
                "node id of its task run"
            )


# Statements built once: executing a prebuilt statement skips SQLAlchemy's per-statement
# construction and cache-key work, which dominates a large batch. The columns set by an UPDATE
# or INSERT are the keys of the parameter dict it runs with.
_task_runs = TaskRunRow.__table__.c
_attempts = AttemptRow.__table__.c
INSERT_TASK_RUN = insert(TaskRunRow)
UPDATE_TASK_RUN = update(TaskRunRow).where(
    _task_runs.id == bindparam("_id"), _task_runs.state.not_in(TERMINAL_STATES)
)
# the same compare-and-set without an expanding IN list, which executemany cannot take
FINAL_TASK_RUN = update(TaskRunRow).where(
    _task_runs.id == bindparam("_id"),
    *(_task_runs.state != literal(state) for state in sorted(TERMINAL_STATES)),
)
INSERT_ATTEMPT = insert(AttemptRow)
SELECT_TASK_RUNS = select(_task_runs.id, _task_runs.node_id, _task_runs.state).where(
    _task_runs.run_id == bindparam("run_id"),
    _task_runs.node_id.in_(bindparam("nodes", expanding=True)),
)
SELECT_ATTEMPTS = select(_attempts.id, _attempts.task_run_id, _attempts.attempt).where(
    _attempts.task_run_id.in_(bindparam("ids", expanding=True))
)
UPDATE_ATTEMPT = update(AttemptRow).where(_attempts.id == bindparam("_id"))
INSERT_EDGES = insert(LineageEdgeRow)
INSERT_METRICS = insert(MetricRow)


class EventWriter(ArtifactRows, RegistryRows):
    """Writes one batch of events for one run on a connection inside a write transaction.

    The task runs (of the events' nodes and of their inputs' source nodes), attempts and
    artifacts the batch refers to are read up front in a few queries; lineage edges and metrics
    are inserted together at the end.
    """

    def __init__(self, conn: Connection, run_id: str) -> None:
        self.conn = conn
        self.run_id = run_id
        # node_id -> (task_run id, state) for the nodes this batch touches or takes inputs from.
        self.task_runs: dict[str, tuple[int, str]] = {}
        self.attempt_ids: dict[tuple[int, int], int] = {}
        # content_hash -> (artifact id, has a uri)
        self.artifacts: dict[str, tuple[int, bool]] = {}
        self.edges: list[dict[str, Any]] = []
        self.metrics: list[dict[str, Any]] = []
        # Fast tasks start and finish within one batch: their task_started is folded into
        # task_finished (one UPDATE and one attempt INSERT instead of four statements), and the
        # final updates and attempt inserts run as executemany at the end.
        self.folded_starts: dict[str, Any] = {}
        self.final_updates: dict[frozenset[str], list[dict[str, Any]]] = {}
        self.attempt_rows: list[dict[str, Any]] = []

    def apply(self, events: list[dict[str, Any]]) -> None:
        """Apply ``events`` in order, then insert the collected edges and metrics in bulk."""
        self._prefetch(events)
        for event in self._fold_starts(events):
            getattr(self, f"_{event['kind']}")(event)
        for params in self.final_updates.values():
            self.conn.execute(FINAL_TASK_RUN, params)
        if self.attempt_rows:
            self.conn.execute(INSERT_ATTEMPT, self.attempt_rows)
        if self.edges:
            self.conn.execute(INSERT_EDGES, self.edges)
        if self.metrics:
            self.conn.execute(INSERT_METRICS, self.metrics)

    def _fold_starts(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Drop each task_started whose final task_finished follows in the same batch."""
        finished_at: dict[str, int] = {}
        for position, event in enumerate(events):
            if event["kind"] == "task_finished" and not event.get("cached"):
                finished_at.setdefault(event["node"], position)
        kept = []
        for position, event in enumerate(events):
            node = event["node"]
            if (
                event["kind"] == "task_started"
                and finished_at.get(node, -1) > position
                and int(events[finished_at[node]].get("attempts") or 0)
                == int(event.get("attempt") or 1)
                and node in self.task_runs
            ):
                self.folded_starts[node] = event["ts"]
                continue
            kept.append(event)
        return kept

    def _prefetch(self, events: list[dict[str, Any]]) -> None:
        nodes = {event["node"] for event in events}
        sources = {
            item["source"]
            for event in events
            if event["kind"] == "task_finished"
            for item in event.get("inputs") or ()
            if item.get("source") is not None
        }
        for part in chunks(sorted(nodes | sources)):
            rows = self.conn.execute(SELECT_TASK_RUNS, {"run_id": self.run_id, "nodes": part})
            for row in rows:
                self.task_runs[row.node_id] = (row.id, row.state)
        touched = [self.task_runs[node][0] for node in nodes if node in self.task_runs]
        for part in chunks(touched):
            rows = self.conn.execute(SELECT_ATTEMPTS, {"ids": part})
            for row in rows:
                self.attempt_ids[(row.task_run_id, row.attempt)] = row.id
        self._prefetch_artifacts(events)

    # ---- task runs ---------------------------------------------------------------------------

    def _insert_task_run(self, event: dict[str, Any], state: str, **values: Any) -> int:
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
        task_run_id = insert_id(self.conn, INSERT_TASK_RUN, row)
        self.task_runs[node] = (task_run_id, state)
        return task_run_id

    def _update_task_run(self, node: str, state: str, **values: Any) -> bool:
        """Compare-and-set the task run of ``node``; False when it is already terminal."""
        task_run_id, current = self.task_runs[node]
        if current in TERMINAL_STATES:
            return False
        changed = self.conn.execute(
            UPDATE_TASK_RUN, {"_id": task_run_id, "state": state, **values}
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
            task_run_id = self._insert_task_run(event, state, attempts=attempt, started_at=started)
        else:
            values: dict[str, Any] = {"attempts": attempt, **self._optional(event)}
            if attempt == 1:
                values["started_at"] = started
            if not self._update_task_run(node, state, **values):
                return
            task_run_id = self.task_runs[node][0]
        if (task_run_id, attempt) not in self.attempt_ids:
            self.attempt_ids[(task_run_id, attempt)] = insert_id(
                self.conn,
                INSERT_ATTEMPT,
                {
                    "task_run_id": task_run_id,
                    "attempt": attempt,
                    "state": RUNNING,
                    "started_at": started,
                },
            )

    def _attempt_finished(self, event: dict[str, Any]) -> None:
        node = event["node"]
        if node not in self.task_runs:
            self._insert_task_run(event, RUNNING)
        task_run_id, state = self.task_runs[node]
        if state in TERMINAL_STATES:
            return
        attempt = int(event["attempt"])
        values = {
            "state": event["state"],
            "ended_at": utc(event["ts"]),
            "error": tail(event.get("error")),
            **attempt_text(event, ""),
        }
        attempt_id = self.attempt_ids.get((task_run_id, attempt))
        if attempt_id is None:
            self.attempt_ids[(task_run_id, attempt)] = insert_id(
                self.conn,
                INSERT_ATTEMPT,
                {"task_run_id": task_run_id, "attempt": attempt, "started_at": None, **values},
            )
        else:
            self.conn.execute(UPDATE_ATTEMPT, {"_id": attempt_id, **values})

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
            "key_parts": event.get("key_parts"),
            **self._optional(event),
        }
        if started is not None:
            values["started_at"] = utc(started)
        node = event["node"]
        if node not in self.task_runs:
            task_run_id = self._insert_task_run(event, event["state"], **values)
        else:
            task_run_id, current = self.task_runs[node]
            if current in TERMINAL_STATES:
                return  # compare-and-set: a terminal task run is never changed again
            if node in self.folded_starts and "started_at" not in values:
                values["started_at"] = utc(self.folded_starts[node])
            params = {"_id": task_run_id, "state": event["state"], **values}
            self.final_updates.setdefault(frozenset(params), []).append(params)
            self.task_runs[node] = (task_run_id, event["state"])
        self._close_last_attempt(task_run_id, event)
        for direction, key in (("input", "inputs"), ("output", "outputs")):
            for item in event.get(key) or ():
                source = self.task_runs.get(item.get("source"))
                self.edges.append(
                    {
                        "task_run_id": task_run_id,
                        "artifact_id": self._artifact_id(item["artifact"]),
                        "direction": direction,
                        "name": str(item["name"]),
                        "source_task_run_id": None if source is None else source[0],
                    }
                )
        # metrics and params arrive as their own events; a task_finished of an older worker
        # may still carry them
        for metric in event.get("metrics") or ():
            self._metric(task_run_id, "metric", metric, metric.get("ts", ended))
        for param in event.get("params") or ():
            self._metric(task_run_id, "param", param, ended)

    def _metric(self, task_run_id: int, kind: str, item: dict[str, Any], ts: float) -> None:
        metric = kind == "metric"
        self.metrics.append(
            {
                "run_id": self.run_id,
                "task_run_id": task_run_id,
                "kind": kind,
                "key": item["key"],
                "value": item["value"] if metric else None,
                "value_json": None if metric else item["value"],
                "step": item.get("step") if metric else None,
                "ts": utc(ts),
            }
        )

    def _live_task_run(self, event: dict[str, Any]) -> int | None:
        """The task run an event of a running task belongs to; None once it is terminal."""
        if event["node"] not in self.task_runs:
            self._insert_task_run(event, RUNNING)
        task_run_id, state = self.task_runs[event["node"]]
        return None if state in TERMINAL_STATES else task_run_id

    def _metric_logged(self, event: dict[str, Any]) -> None:
        task_run_id = self._live_task_run(event)
        if task_run_id is not None:
            self._metric(task_run_id, "metric", event, event["ts"])

    def _param_logged(self, event: dict[str, Any]) -> None:
        task_run_id = self._live_task_run(event)
        if task_run_id is not None:
            self._metric(task_run_id, "param", event, event["ts"])

    def _artifact_logged(self, event: dict[str, Any]) -> None:
        """What a task handed the trackers lives in the run's event log (its bytes in the
        artifact store); the trackers read it there, live or from the outbox."""

    def _output_logged(self, event: dict[str, Any]) -> None:
        """Streamed output lives in the run's event log; the task run keeps the tail of all
        of it when it finishes."""

    def _close_last_attempt(self, task_run_id: int, event: dict[str, Any]) -> None:
        """The final attempt ends with its task run: workers send no separate event for it."""
        attempt = int(event.get("attempts") or 0)
        if attempt < 1 or event.get("cached"):
            return
        values = {
            "state": event["state"],
            "ended_at": utc(event["ended"]),
            "error": tail(event.get("error")),
            **attempt_text(event, "attempt_"),
        }
        attempt_id = self.attempt_ids.get((task_run_id, attempt))
        if attempt_id is not None:
            self.conn.execute(UPDATE_ATTEMPT, {"_id": attempt_id, **values})
            return
        started = self.folded_starts.get(event["node"])
        self.attempt_ids[(task_run_id, attempt)] = -1  # inserted in bulk at the end
        self.attempt_rows.append(
            {"task_run_id": task_run_id, "attempt": attempt, "started_at": utc(started),
             **values}
        )  # fmt: skip

    def _task_skipped(self, event: dict[str, Any]) -> None:
        values = {"ended_at": utc(event["ts"]), "error": tail(event.get("error"))}
        if event["node"] not in self.task_runs:
            self._insert_task_run(event, event["state"], **values)
        else:
            self._update_task_run(event["node"], event["state"], **values)


def require_run(conn: Connection, run_id: str) -> None:
    """Raise :class:`NotFound` when no run has exactly the id ``run_id``."""
    if conn.execute(select(RunRow.id).where(RunRow.id == run_id)).first() is None:
        raise NotFound(f"no run `{run_id}`; create it with create_run first")
