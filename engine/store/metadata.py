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
- A write transaction that loses a race with another process (a duplicate insert; on
  PostgreSQL a deadlock or serialization failure) is rolled back and run again from scratch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..errors import GlasspaneError, InvalidArgument
from ..types import STATES
from . import event_log, lifecycle
from .deployments import DeploymentStore
from .engines import describe, mask_url, open_engines, open_error
from .migrate import current_revision, missing_database, require_file, upgrade
from .models import RUN_ID_LENGTH
from .registry import RegistryStore
from .run_control import RunControl
from .run_reads import RunReads
from .schedule_control import ScheduleControl
from .tracker_runs import TrackerRuns

T = TypeVar("T")

# A write that loses a race is retried from scratch: an insert race (another process inserted
# the same unique key first; the next attempt finds its row), or on PostgreSQL a transaction
# the server aborted to break a deadlock or a serialization conflict (SQLSTATE 40P01, 40001),
# for which running it again is the documented remedy. SQLite cannot deadlock here: BEGIN
# IMMEDIATE serialises whole write transactions.
_WRITE_RETRIES = 3
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def _lost_a_race(exc: DBAPIError) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    # psycopg 3 names it `sqlstate`, psycopg2 `pgcode`.
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in _RETRYABLE_SQLSTATES


class MetadataStore(
    RunControl, RunReads, ScheduleControl, TrackerRuns, RegistryStore, DeploymentStore
):
    """Runs, task runs, artifacts, lineage and metrics in a SQL database.

    Args:
        url: a SQLAlchemy URL: ``sqlite:////abs/path/glasspane.db`` (the default under
            ``GLASSPANE_HOME``; its directory is created on demand) or
            ``postgresql://user@host/db`` for a team.
        create: create the database (a SQLite file and its directory) and its tables when
            they do not exist yet. Readers pass False, so a mistyped URL creates nothing.

    Raises:
        ConfigError: the URL cannot be parsed or the database cannot be opened or migrated.
        NotFound: ``create`` is False and there is no glasspane database at ``url`` (no
            SQLite file, or a database without glasspane's tables).
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        if not create:
            require_file(url)
        self._engines = open_engines(url)
        try:
            if not create and current_revision(self._engines.read) is None:
                raise missing_database(url)
            # An in-memory database exists only on the store's own connection.
            upgrade(url, engine=self._engines.write if self._engines.in_memory else None)
        except GlasspaneError:
            self._engines.dispose()
            raise
        except Exception as exc:
            self._engines.dispose()
            raise open_error(url, describe(exc)) from exc

    def __repr__(self) -> str:
        return f"MetadataStore({mask_url(self.url)!r})"

    @property
    def dialect(self) -> str:
        """The database's SQLAlchemy dialect: ``sqlite`` or ``postgresql``."""
        return str(self._engines.write.dialect.name)

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

    def read(self, query: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``query(conn, *args, **kwargs)`` in one read transaction and return its result.

        ``query`` is a read function of this package (:mod:`.browse`, :mod:`.queries`), which
        issues only ``SELECT`` statements: :mod:`glasspane.queries` reads through here, on a
        consistent snapshot that never takes SQLite's write lock.
        """
        with self._read() as conn:
            return query(conn, *args, **kwargs)

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction, retrying when it loses a race (see above)."""
        attempt = 1
        while True:
            try:
                with self._engines.write.begin() as conn:
                    return work(conn)
            except DBAPIError as exc:
                if attempt == _WRITE_RETRIES or not _lost_a_race(exc):
                    raise
                attempt += 1

    # ---- writes (the run driver only) --------------------------------------------------------

    def ensure_pipeline_version(
        self,
        name: str,
        version_hash: str,
        graph_json: dict,
        *,
        reference: str | None = None,
        params_schema: dict | None = None,
    ) -> int:
        """Return the id of the version ``version_hash`` of pipeline ``name``, creating both.

        Idempotent and safe when several processes register the same version at once.

        Args:
            name: the pipeline's name.
            version_hash: the structural hash of its compiled graph.
            graph_json: the graph as JSON, stored with a new version only.
            reference: where the pipeline is imported from, kept as the pipeline's latest
                (``None`` keeps the one stored).
            params_schema: the JSON schema of its parameters, kept as the latest with
                ``reference``.
        """
        return self._write(
            lambda conn: lifecycle.ensure_pipeline_version(
                conn, name, version_hash, graph_json, reference, params_schema
            )
        )

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
            InvalidArgument: ``run_id`` is empty, too long or already used.
            NotFound: ``version_id`` or the ``resumed_from`` run does not exist.
        """
        if not run_id or len(run_id) > RUN_ID_LENGTH:
            raise InvalidArgument(
                f"run id `{run_id}` must have 1 to {RUN_ID_LENGTH} characters; "
                "generate ids with uuid4().hex"
            )
        self._write(
            lambda conn: lifecycle.create_run(
                conn,
                run_id=run_id,
                version_id=version_id,
                nodes=nodes,
                pipeline_name=pipeline_name,
                pipeline_ref=pipeline_ref,
                params=params,
                executor=executor,
                trigger=trigger,
                resumed_from=resumed_from,
            )
        )

    def set_run_state(
        self,
        run_id: str,
        state: str,
        *,
        error: str | None = None,
        output: Any = None,
        log: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Move a run to ``state`` unless it is already terminal (compare-and-set).

        Sets ``started_at`` on the first move to ``running`` and ``ended_at`` on a terminal
        state; ``error`` and ``output`` (JSON-serializable) are stored when given; ``log``
        (event payloads, the run's ``RunFinished``) is appended to its event log in the same
        transaction.

        Args:
            run_id: the run's full id (writes take no prefixes).
            state: one of :data:`glasspane.types.STATES`.

        Returns:
            True if the run changed; False if it is terminal already or does not exist.

        Raises:
            InvalidArgument: ``state`` is not a known state.
        """
        if state not in STATES:
            raise InvalidArgument(f"unknown run state `{state}`; use one of {', '.join(STATES)}")

        def work(conn: Connection) -> bool:
            changed = lifecycle.set_run_state(conn, run_id, state, error=error, output=output)
            if log:
                event_log.append(conn, run_id, log)
            return changed

        return self._write(work)

    def heartbeat(self, run_id: str) -> bool:
        """Record that the driver of ``run_id`` is alive.

        Returns:
            False when the run is terminal (for instance swept as crashed by
            :meth:`mark_crashed`) or unknown: the driver should stop.
        """
        return self._write(lambda conn: lifecycle.heartbeat(conn, run_id))

    def mark_crashed(self, *, stale_after: float) -> list[str]:
        """Sweep runs whose driver stopped heartbeating to ``crashed``.

        A ``pending`` or ``running`` run whose last heartbeat (or creation, without one) is
        older than ``stale_after`` seconds becomes ``crashed``, and so do its non-terminal task
        runs and their running attempts.

        Returns:
            The ids of the runs this call marked crashed.
        """
        return self._write(lambda conn: lifecycle.mark_crashed(conn, stale_after))
