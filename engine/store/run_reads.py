"""The metadata store's reads of runs: summaries, one run in full, its outputs, metrics,
attempts and lineage, and how long its nodes ran (mixed into
:class:`~glasspane.store.metadata.MetadataStore`).

Every method is one read transaction, which on SQLite never takes the write lock; the SQL is
in :mod:`.queries`, :mod:`.durations` and :mod:`.lineage`. Results are plain dicts of JSON
types, timestamps as ISO 8601 strings in UTC: what the CLI and the run loop consume
(:mod:`glasspane.queries` reads typed records through :meth:`MetadataStore.read` instead).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from sqlalchemy import Connection

from ..errors import InvalidArgument
from ..types import STATES, ArtifactInfo
from . import durations, queries
from .lineage import LineageWalk

_MAX_LIMIT = 2**62


class RunReads:
    """Runs, their task runs, outputs, metrics, attempts and lineage, read."""

    _read: Callable[[], AbstractContextManager[Connection]]

    def list_runs(
        self,
        *,
        limit: int = 50,
        pipeline: str | None = None,
        state: str | None = None,
        trigger: str | Sequence[str] | None = None,
        schedule: str | None = None,
    ) -> list[dict]:
        """Summaries of the newest runs, newest first.

        Each has ``run_id``, ``pipeline``, ``state``, ``trigger``, ``resumed_from``,
        ``executor``, ``created_at``, ``started_at``, ``ended_at`` (ISO 8601, UTC),
        ``duration`` (seconds or None), ``params``, the task counts ``n_tasks``,
        ``n_succeeded``, ``n_failed`` (failed or timed out) and ``n_cached``, and what launched
        it: ``schedule`` (the schedule's name), ``scheduled_for`` (the fire time it is for,
        ISO 8601) and ``upstream_run_id`` (the run an ``after`` schedule reacted to), each None
        for a run no schedule launched.

        Args:
            limit: at most this many runs (any larger number than there are runs means all).
            pipeline: only runs of the pipeline with this name.
            state: only runs in this state.
            trigger: only runs started this way (``manual``, ``schedule``, ``backfill``,
                ``after``, ``retry``...), or any of several.
            schedule: only runs the schedule of this name launched.

        Raises:
            InvalidArgument: ``limit`` is less than 1, or ``state`` is not a known state.
        """
        if limit < 1:
            raise InvalidArgument(f"list_runs limit must be 1 or more, not {limit}")
        if state is not None and state not in STATES:
            raise InvalidArgument(f"unknown run state `{state}`; use one of {', '.join(STATES)}")
        triggers = (trigger,) if isinstance(trigger, str) else tuple(trigger or ())
        limit = min(limit, _MAX_LIMIT)  # SQL takes no larger number
        with self._read() as conn:
            return queries.list_runs(
                conn,
                limit=limit,
                pipeline=pipeline,
                state=state,
                triggers=triggers,
                schedule=schedule,
            )

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

    def task_durations(self, pipeline_name: str, runs: int = 3) -> dict[str, float]:
        """The longest each node of ``pipeline_name`` ran, in seconds, by node id, over its
        last ``runs`` runs that executed any task (cache hits and tasks that never ended on a
        worker do not count). The run loop plans batching on Dask from it, so every process
        planning a run of the pipeline plans it alike."""
        with self._read() as conn:
            return durations.task_durations(conn, pipeline_name, runs)

    def metrics(self, run_id: str) -> list[dict]:
        """Every metric and param a run's tasks logged, in logging order.

        Each is ``{"node", "kind" ("metric" | "param"), "key", "value", "step", "ts"}``.

        Raises:
            NotFound: no run matches ``run_id`` (or its unique prefix).
        """
        with self._read() as conn:
            return queries.metrics(conn, run_id)

    def attempts(self, run_id: str, node_id: str) -> list[dict]:
        """Every attempt of one task run, in order, with the text each captured.

        Each is ``{"attempt", "state", "started_at", "ended_at"`` (ISO 8601, UTC),
        ``"duration"`` (seconds or None), ``"error", "stdout", "stderr", "log_tail",
        "traceback"}``; the text is that attempt's own (None for attempts recorded before
        glasspane kept it). A task run served from the cache has no attempts.

        Args:
            run_id: the run's id or a unique prefix of it.
            node_id: the node whose task run it is.

        Raises:
            NotFound: the run does not exist, or has no such node (the message names its
                nodes).
        """
        with self._read() as conn:
            return queries.attempts(conn, run_id, node_id)

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
            direction: ``"upstream"`` (what it was computed from; each input leads to the
                task run of this run that produced it) or ``"downstream"`` (the task runs
                that consumed its outputs, here and in later runs that reused them from the
                cache, and so on).
            depth: follow at most this many task-run hops; None for all.

        Returns:
            ``{"root", "direction", "task_runs", "artifacts", "edges"}``; see
            :mod:`.lineage` for the shapes.

        Raises:
            NotFound: the run or the node does not exist.
            InvalidArgument: ``direction`` or ``depth`` is invalid.
        """
        with self._read() as conn:
            full_id = queries.resolve_run_id(conn, run_id)
            return LineageWalk(conn).run(full_id, node_id, direction, depth)
