"""The metadata store: the only object in glasspane that reads or writes the SQL database.

Only the run driver writes (workers never hold database credentials); the CLI, the UI and the
scheduler read. Writes are batched: :meth:`MetadataStore.record_events` applies a whole list of
task events in one transaction.

Invariants:

- A run or task run in a terminal state (:data:`glasspane.types.TERMINAL_STATES`) is never
  changed again; every state write is a compare-and-set in SQL, safe against a concurrent
  crash sweep.
- On SQLite, write transactions start with ``BEGIN IMMEDIATE`` on a dedicated write engine and
  reads use a separate engine that never takes the write lock (see :mod:`.engines`), so
  concurrent processes wait for the lock instead of failing with "database is locked".
- The schema is brought to the newest migration when the store opens (:func:`.migrate.upgrade`).
- SQL stays portable across SQLite and PostgreSQL apart from SQLite connection setup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import ConfigError, NotFound
from ..types import CRASHED, PENDING, RUNNING, STATES, TERMINAL_STATES, ArtifactInfo
from . import queries
from .engines import describe, mask_url, open_engines, open_error
from .events import EventWriter, check_events, require_run, tail
from .lineage import LineageWalk
from .migrate import upgrade
from .models import (
    RUN_ID_LENGTH,
    AttemptRow,
    PipelineRow,
    PipelineVersionRow,
    RunRow,
    TaskRunRow,
)

T = TypeVar("T")

# A write that loses an insert race (another process inserted the same unique key first) is
# retried from scratch; the next attempt finds the other process's row.
_WRITE_RETRIES = 3


def _now() -> datetime:
    return datetime.now(timezone.utc)


class MetadataStore:
    """Runs, task runs, artifacts, lineage and metrics in a SQL database.

    Args:
        url: a SQLAlchemy URL: ``sqlite:////abs/path/glasspane.db`` (the default under
            ``GLASSPANE_HOME``; its directory is created on demand) or
            ``postgresql://user@host/db`` for a team.

    Raises:
        ConfigError: the URL cannot be parsed or the database cannot be opened or migrated.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engines = open_engines(url)
        try:
            memory = self._engines.read is self._engines.write and url.startswith("sqlite")
            upgrade(url, engine=self._engines.write if memory else None)
        except ConfigError:
            self._engines.dispose()
            raise
        except Exception as exc:
            self._engines.dispose()
            raise open_error(url, describe(exc)) from exc

    def __repr__(self) -> str:
        return f"MetadataStore({mask_url(self.url)!r})"

    def __enter__(self) -> MetadataStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection. The store reconnects if used again."""
        self._engines.dispose()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engines.read.connect() as conn:
            yield conn

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction, retrying when it loses an insert race."""
        for attempt in range(_WRITE_RETRIES):
            try:
                with self._engines.write.begin() as conn:
                    return work(conn)
            except IntegrityError:
                if attempt == _WRITE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    # ---- writes (the run driver only) --------------------------------------------------------

    def ensure_pipeline_version(self, name: str, version_hash: str, graph_json: dict) -> int:
        """Return the id of the version ``version_hash`` of pipeline ``name``, creating both.

        Idempotent and safe when several processes register the same version at once.

        Args:
            name: the pipeline's name.
            version_hash: the structural hash of its compiled graph.
            graph_json: the graph as JSON, stored with a new version only.
        """

        def work(conn: Connection) -> int:
            pipeline_id = conn.execute(
                select(PipelineRow.id).where(PipelineRow.name == name)
            ).scalar()
            if pipeline_id is None:
                pipeline_id = conn.execute(
                    insert(PipelineRow).values(name=name, created_at=_now())
                ).inserted_primary_key[0]
            version_id = conn.execute(
                select(PipelineVersionRow.id).where(
                    PipelineVersionRow.pipeline_id == pipeline_id,
                    PipelineVersionRow.hash == version_hash,
                )
            ).scalar()
            if version_id is None:
                version_id = conn.execute(
                    insert(PipelineVersionRow).values(
                        pipeline_id=pipeline_id,
                        hash=version_hash,
                        graph_json=graph_json,
                        created_at=_now(),
                    )
                ).inserted_primary_key[0]
            return int(version_id)

        return self._write(work)

    def create_run(
        self,
        *,
        run_id: str,
        pipeline_name: str,
        version_id: int,
        pipeline_ref: str | None,
        params: dict,
        executor: str,
        trigger: str = "manual",
        resumed_from: str | None = None,
        nodes: list[tuple[str, str]],
    ) -> None:
        """Insert a run in state ``pending`` and one pending task run per node, atomically.

        Args:
            run_id: the new run's id (at most 32 characters), generated by the caller.
            pipeline_name: the pipeline's name.
            version_id: from :meth:`ensure_pipeline_version`.
            pipeline_ref: how to re-import the pipeline, e.g. ``"examples/retrain.py:retrain"``.
            params: the validated parameter values (JSON-serializable).
            executor: the executor spec the run uses.
            trigger: what started the run: ``"manual"``, ``"retry"``, ``"schedule"``...
            resumed_from: the full id of the run this one resumes, if any.
            nodes: ``(node_id, task_name)`` of every node in the compiled graph.

        Raises:
            ValueError: ``run_id`` is empty, too long or already used.
            NotFound: ``version_id`` does not exist.
        """
        if not run_id or len(run_id) > RUN_ID_LENGTH:
            raise ValueError(
                f"run id `{run_id}` must have 1 to {RUN_ID_LENGTH} characters; "
                "generate ids with uuid4().hex"
            )

        def work(conn: Connection) -> None:
            pipeline_id = conn.execute(
                select(PipelineVersionRow.pipeline_id).where(PipelineVersionRow.id == version_id)
            ).scalar()
            if pipeline_id is None:
                raise NotFound(
                    f"no pipeline version {version_id} for run `{run_id}`; "
                    "get one from ensure_pipeline_version first"
                )
            if conn.execute(select(RunRow.id).where(RunRow.id == run_id)).first() is not None:
                raise ValueError(f"run id `{run_id}` is already used; generate a fresh one")
            now = _now()
            conn.execute(
                insert(RunRow).values(
                    id=run_id,
                    pipeline_id=pipeline_id,
                    version_id=version_id,
                    pipeline_name=pipeline_name,
                    pipeline_ref=pipeline_ref,
                    params=params,
                    state=PENDING,
                    trigger=trigger,
                    resumed_from=resumed_from,
                    executor=executor,
                    created_at=now,
                    heartbeat_at=now,
                )
            )
            if nodes:
                conn.execute(
                    insert(TaskRunRow),
                    [
                        {"run_id": run_id, "node_id": node, "task_name": task,
                         "state": PENDING, "attempts": 0, "cached": False}
                        for node, task in nodes
                    ],
                )

        self._write(work)

    def set_run_state(
        self, run_id: str, state: str, *, error: str | None = None, output: Any = None
    ) -> bool:
        """Move a run to ``state`` unless it is already terminal (compare-and-set).

        Sets ``started_at`` on the first move to ``running`` and ``ended_at`` on a terminal
        state; ``error`` and ``output`` are stored when given.

        Returns:
            True if the run changed; False if it is terminal already or does not exist.

        Raises:
            ValueError: ``state`` is not a known state.
        """
        if state not in STATES:
            raise ValueError(f"unknown run state `{state}`; use one of {', '.join(STATES)}")
        now = _now()
        values: dict[str, Any] = {"state": state}
        if state == RUNNING:
            values["started_at"] = func.coalesce(RunRow.started_at, now)
        if state in TERMINAL_STATES:
            values["ended_at"] = now
        if error is not None:
            values["error"] = tail(error)
        if output is not None:
            values["output"] = output
        statement = (
            update(RunRow)
            .where(RunRow.id == run_id, RunRow.state.not_in(TERMINAL_STATES))
            .values(values)
        )
        return self._write(lambda conn: conn.execute(statement).rowcount == 1)

    def heartbeat(self, run_id: str) -> bool:
        """Record that the driver of ``run_id`` is alive.

        Returns:
            False when the run is terminal (for instance swept as crashed by
            :meth:`mark_crashed`) or unknown: the driver should stop.
        """
        statement = (
            update(RunRow)
            .where(RunRow.id == run_id, RunRow.state.not_in(TERMINAL_STATES))
            .values(heartbeat_at=_now())
        )
        return self._write(lambda conn: conn.execute(statement).rowcount == 1)

    def record_events(self, run_id: str, events: list[dict]) -> None:
        """Apply a batch of task events of one run in ONE transaction.

        Event kinds: ``task_started``, ``attempt_finished``, ``task_finished`` and
        ``task_skipped`` (fields in :mod:`.events`). Task runs in a terminal state are left as
        they are, and their events dropped.

        Raises:
            ValueError: an event has an unknown kind (nothing is written).
            NotFound: the run does not exist.
        """
        if not events:
            return
        check_events(events)

        def work(conn: Connection) -> None:
            require_run(conn, run_id)
            EventWriter(conn, run_id).apply(events)

        self._write(work)

    def mark_crashed(self, *, stale_after: float) -> list[str]:
        """Sweep runs whose driver stopped heartbeating to ``crashed``.

        A ``pending`` or ``running`` run whose last heartbeat (or creation, without one) is
        older than ``stale_after`` seconds becomes ``crashed``, and so do its non-terminal task
        runs and their running attempts.

        Returns:
            The ids of the runs this call marked crashed.
        """
        cutoff = _now() - timedelta(seconds=stale_after)

        def work(conn: Connection) -> list[str]:
            stale = conn.execute(
                select(RunRow.id).where(
                    RunRow.state.in_((PENDING, RUNNING)),
                    func.coalesce(RunRow.heartbeat_at, RunRow.created_at) < cutoff,
                ).order_by(RunRow.created_at)
            ).scalars().all()
            now = _now()
            error = (
                f"no heartbeat for more than {stale_after:g}s: the process driving the run "
                "stopped (killed, crashed or lost its machine); resume it with "
                "`glasspane runs resume <run id>` or start a new run"
            )
            crashed = []
            for run_id in stale:
                changed = conn.execute(
                    update(RunRow)
                    .where(RunRow.id == run_id, RunRow.state.in_((PENDING, RUNNING)))
                    .values(state=CRASHED, ended_at=now, error=error)
                ).rowcount
                if not changed:
                    continue
                crashed.append(run_id)
                task_runs = select(TaskRunRow.id).where(TaskRunRow.run_id == run_id)
                conn.execute(
                    update(AttemptRow)
                    .where(
                        AttemptRow.task_run_id.in_(task_runs),
                        AttemptRow.state == RUNNING,
                    )
                    .values(state=CRASHED, ended_at=now)
                )
                conn.execute(
                    update(TaskRunRow)
                    .where(
                        TaskRunRow.run_id == run_id,
                        TaskRunRow.state.not_in(TERMINAL_STATES),
                    )
                    .values(state=CRASHED, ended_at=now)
                )
            return crashed

        return self._write(work)

    # ---- reads -------------------------------------------------------------------------------

    def list_runs(
        self, *, limit: int = 50, pipeline: str | None = None, state: str | None = None
    ) -> list[dict]:
        """Summaries of the newest runs, newest first.

        Each has ``run_id``, ``pipeline``, ``state``, ``trigger``, ``resumed_from``,
        ``executor``, ``created_at``, ``started_at``, ``ended_at`` (ISO 8601, UTC),
        ``duration`` (seconds or None), ``params`` and the task counts ``n_tasks``,
        ``n_succeeded``, ``n_failed`` (failed or timed out) and ``n_cached``.

        Args:
            limit: at most this many runs.
            pipeline: only runs of the pipeline with this name.
            state: only runs in this state.
        """
        with self._read() as conn:
            return queries.list_runs(conn, limit=limit, pipeline=pipeline, state=state)

    def get_run(self, run_id: str) -> dict:
        """Everything about one run: its summary, graph, output and every task run.

        Args:
            run_id: the run's id or a unique prefix of it (at least 4 characters).

        Returns:
            The :meth:`list_runs` summary plus ``pipeline_ref``, ``version_hash``, ``graph``,
            ``error``, ``output``, ``heartbeat_at`` and ``tasks`` (in creation order), each
            with its state, timings, captured output, ``inputs``/``outputs`` (artifact dicts
            with the parameter name or output index as ``name``), ``metrics`` (last value per
            key) and ``params``.

        Raises:
            NotFound: no run matches, or the prefix matches several (they are named).
        """
        with self._read() as conn:
            return queries.get_run(conn, run_id)

    def task_outputs(self, run_id: str) -> dict[str, list[ArtifactInfo]]:
        """The outputs of a run's succeeded task runs, by node id in output order.

        Used to resume a run without recomputing what already succeeded.

        Raises:
            NotFound: no run matches ``run_id`` (or its unique prefix).
        """
        with self._read() as conn:
            return queries.task_outputs(conn, run_id)

    def metrics(self, run_id: str) -> list[dict]:
        """Every metric and param a run's tasks logged, in logging order.

        Each is ``{"node", "kind" ("metric" | "param"), "key", "value", "step", "ts"}``.

        Raises:
            NotFound: no run matches ``run_id`` (or its unique prefix).
        """
        with self._read() as conn:
            return queries.metrics(conn, run_id)

    def lineage(
        self,
        run_id: str,
        node_id: str,
        *,
        direction: str = "upstream",
        depth: int | None = None,
    ) -> dict:
        """The task runs and artifacts upstream or downstream of one task run, across runs.

        Args:
            run_id: the run's id or a unique prefix of it.
            node_id: the node whose task run is the root.
            direction: ``"upstream"`` (what it was computed from; each artifact leads to the
                task run that computed it) or ``"downstream"`` (every task run, in any run,
                that consumed its outputs, and so on).
            depth: follow at most this many task-run hops; None for all.

        Returns:
            ``{"root", "direction", "task_runs", "artifacts", "edges"}``; see
            :mod:`.lineage` for the shapes.

        Raises:
            NotFound: the run or the node does not exist.
            ValueError: ``direction`` or ``depth`` is invalid.
        """
        with self._read() as conn:
            full_id = queries.resolve_run_id(conn, run_id)
            return LineageWalk(conn).run(full_id, node_id, direction, depth)


__all__ = ["MetadataStore", "NotFound"]
