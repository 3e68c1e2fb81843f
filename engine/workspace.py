"""The Workspace: one configuration's metadata store, artifact store, executors and listeners.

Everything that runs or reads runs goes through a Workspace::

    ws = glasspane.Workspace(home="/tmp/experiments")   # or Workspace(settings)
    result = ws.run(retrain, n=300)                      # or retrain.run(n=300, workspace=ws)
    for event in ws.follow(result.run_id):              # its events, from the store
        print(event.seq, event.kind)
    ws.close()                                           # stores, clients, embedded clusters

Two Workspaces share nothing: not their databases, artifact stores, Dask clients or
embedded clusters, nor their listeners. The module-level API (``glasspane.run``,
``glasspane.runs``, the CLI) uses a default Workspace per configuration
(:func:`glasspane.api.default_workspace`); those share the process's Dask executors, so a
notebook or a test session starts one embedded cluster however many homes it uses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .artifacts import ArtifactStore
from .config import Settings, load_settings
from .errors import ConfigError, DefinitionError, GlasspaneError, NotFound, RunFailed
from .events import Event
from .execution.executors import Executor, ExecutorPool
from .execution.planner import plan_run
from .execution.result import RunResult
from .execution.resume import Reusable, reusable_from_run
from .execution.runner import execute_run, new_run_id
from .launcher import Launcher
from .listeners import Listener, check, from_entry_points
from .store import MetadataStore
from .types import SUCCEEDED

if TYPE_CHECKING:
    from .dsl.pipeline import PipelineDef
    from .outbox import Delivered, TrackerRelay


T = TypeVar("T")


class Workspace(Launcher):
    """One configuration's stores, executors and listeners (see the module docstring).

    Args:
        settings: the configuration; default: :func:`~glasspane.config.load_settings`
            (environment, ``glasspane.toml``).
        home: shorthand for ``Settings(home=home)``.
        listeners: hear every run of this Workspace, besides those installed packages
            declare (entry-point group ``glasspane.listeners``).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        home: str | Path | None = None,
        listeners: Sequence[Listener] = (),
        executors: ExecutorPool | None = None,
    ) -> None:
        if settings is not None and home is not None:
            raise ConfigError("Workspace takes settings or home, not both; put home in settings")
        if home is not None:
            settings = Settings(home=Path(home).expanduser())
        self.settings = settings or load_settings()
        self.listeners = check(listeners, "Workspace listeners")
        self._executors = executors or ExecutorPool()
        self._owns_executors = executors is None
        self._lock = threading.Lock()
        self._store: MetadataStore | None = None
        self._artifacts: ArtifactStore | None = None
        self._relays: list[TrackerRelay] | None = None
        self._closed = False

    # ---- what it owns -----------------------------------------------------------------------

    @property
    def store(self) -> MetadataStore:
        """The metadata store, created (and migrated) on first use."""
        return self._metadata(create=True)

    def reader(self) -> MetadataStore:
        """The metadata store for reading: never creates a database.

        Raises:
            NotFound: there is no database where the settings point (the message names the
                setting that points there).
        """
        return self._metadata(create=False)

    def _metadata(self, create: bool) -> MetadataStore:
        self._check_open()
        with self._lock:
            if self._store is None:
                try:
                    self._store = MetadataStore(self.settings.resolved_database_url, create=create)
                except NotFound:
                    raise no_database(self.settings) from None
            return self._store

    @property
    def artifacts(self) -> ArtifactStore:
        self._check_open()
        with self._lock:
            if self._artifacts is None:
                self._artifacts = ArtifactStore(self.settings.resolved_artifact_root)
            return self._artifacts

    def executor(self, spec: str | Executor | None = None) -> Executor:
        """The executor ``spec`` names (default: the configured one), owned by this Workspace."""
        self._check_open()
        s = self.settings
        return self._executors.get(
            spec,
            default=s.resolved_executor,
            dask_address=s.dask_address,
            dask_workers=s.dask_workers,
            dask_lost_after=s.dask_lost_after,
        )

    def trackers(self) -> list[TrackerRelay]:
        """The trackers the settings turn on (``trackers``), each as a listener of every run
        of this Workspace; made on first use.

        Raises:
            ConfigError: a tracker is unknown, its package is missing or its options are wrong.
        """
        if self._relays is None:
            from .outbox import relays

            made = relays(self.settings, lambda: self.store, self.artifacts)
            with self._lock:
                if self._relays is None:
                    self._relays, made = made, []
            for extra in made:  # another thread made them first
                extra.close()
        return list(self._relays)

    def sync_trackers(self, run_ids: Sequence[str] | None = None) -> list[Delivered]:
        """Deliver to the trackers what they have not taken of runs that are over (the
        outbox; see :mod:`glasspane.outbox`); one record per run and tracker tried."""
        from .outbox import deliver_pending

        relays = self.trackers()
        if not relays:
            return []
        try:
            store = self.reader()
        except NotFound:
            return []
        return deliver_pending(store, [relay.tracker for relay in relays], run_ids)

    def close(self) -> None:
        """Close the stores and the Dask clients and embedded clusters this Workspace started."""
        with self._lock:
            self._closed = True
            store, self._store = self._store, None
            relays, self._relays = self._relays or [], None
        for relay in relays:
            relay.close()
        if store is not None:
            store.close()
        if self._owns_executors:
            self._executors.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise GlasspaneError("this Workspace is closed; create a new one")

    def query(self, query: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run one of :mod:`glasspane.queries` on this Workspace's stores.

        ``ws.query(queries.list_runs, state="failed")`` is ``queries.list_runs(ws.reader(),
        state="failed")``; a query that previews artifacts (it takes ``artifacts``) gets this
        Workspace's artifact store too: ``ws.query(queries.artifact, "3f2a9c1e")``. Reads
        only; with no database yet, raises :class:`~glasspane.errors.NotFound` naming the
        setting that points there.
        """
        import inspect

        if "artifacts" in inspect.signature(query).parameters:
            return query(self.reader(), self.artifacts, *args, **kwargs)
        return query(self.reader(), *args, **kwargs)

    # ---- runs -------------------------------------------------------------------------------

    def run(
        self,
        pipeline: PipelineDef[Any, Any],
        params: dict[str, Any] | None = None,
        *,
        executor: str | Executor | None = None,
        raise_on_failure: bool = True,
        listeners: Sequence[Listener] = (),
        trigger: str = "manual",
        resumed_from: str | None = None,
        reuse: dict[str, Reusable] | None = None,
        run_id: str | None = None,
    ) -> RunResult:
        """Validate parameters, compile and run ``pipeline``; see ``PipelineDef.run``.

        ``run_id`` is that of a run :meth:`launch` queued, which this run takes over.
        """
        from .loader import ref_for
        from .param_schema import params_schema

        graph = pipeline.compile(**(params or {}))  # bad parameters: nothing written yet
        hearing = [
            *self.listeners,
            *check(listeners, f"listeners of pipeline `{pipeline.name}`"),
            *from_entry_points(),
            *self.trackers(),
        ]
        chosen = self.executor(executor)
        artifacts, store = self.artifacts, self.store
        if run_id is None:
            run_id = new_run_id()
        elif not store.take_over(run_id):
            raise GlasspaneError(
                f"run {run_id} is not queued (it started, or its launch already failed); "
                "start a new run without --run-id"
            )
        plan = plan_run(graph, run_id, artifacts, reuse)
        if plan.jobs:  # a fully cached run never touches the executor (nor starts a cluster)
            artifacts.check_writable()  # an unwritable root: exit 2 now, not every task failing
            prepare = getattr(chosen, "prepare", None)  # a user's executor may have none
            if prepare is not None:
                prepare(plan.jobs)  # an unreachable cluster, resources no worker offers
        result = execute_run(
            graph,
            store=store,
            artifacts=artifacts,
            executor=chosen,
            pipeline_ref=ref_for(pipeline),
            params=graph.params,
            params_schema=params_schema(pipeline.params_model),
            trigger=trigger,
            resumed_from=resumed_from,
            reuse=reuse,
            listeners=hearing,
            strict_listeners=self.settings.strict_listeners,
            heartbeat_interval=self.settings.heartbeat_interval,
            run_id=run_id,
            plan=plan,
            raise_interrupt=raise_on_failure,
        )
        if raise_on_failure and result.state != SUCCEEDED:
            raise RunFailed(
                f"run {result.run_id} of pipeline `{result.pipeline}` {result.state}: "
                f"{result.error}; inspect it with `glasspane runs show {result.run_id}` and "
                f"resume it with `glasspane retry {result.run_id}`",
                result,
            ) from result.failure
        return result

    def retry(
        self,
        run_id: str,
        *,
        pipeline: PipelineDef[Any, Any] | None = None,
        executor: str | Executor | None = None,
        raise_on_failure: bool = True,
        listeners: Sequence[Listener] = (),
        secrets: dict[str, Any] | None = None,
        new_run_id: str | None = None,
    ) -> RunResult:
        """Resume a failed, cancelled or crashed run as a new run; see ``glasspane.retry``.

        ``new_run_id`` is that of a retry :meth:`launch_retry` queued, which this run takes over.
        """
        from .loader import load_pipeline
        from .retry_params import check_retryable, with_secrets

        store = self.store
        self.sweep()  # a run whose driver died can be resumed right away
        old = store.get_run(run_id)
        check_retryable(old)
        if pipeline is None:
            ref = old.get("pipeline_ref")
            if not ref:
                raise DefinitionError(
                    f"run {old['run_id']} was started from code glasspane cannot import "
                    "again; pass the pipeline: glasspane.retry(run_id, pipeline=my_pipeline)"
                )
            pipeline = load_pipeline(ref)
        if pipeline.name != old["pipeline"]:
            raise DefinitionError(
                f"run {old['run_id']} is of pipeline `{old['pipeline']}`, not "
                f"`{pipeline.name}`; pass the pipeline it ran"
            )
        params = with_secrets(pipeline, old, dict(old.get("params") or {}), secrets or {})
        return self.run(
            pipeline,
            params,
            executor=executor,
            raise_on_failure=raise_on_failure,
            listeners=listeners,
            trigger="retry",
            resumed_from=old["run_id"],
            reuse=reusable_from_run(old),
            run_id=new_run_id,
        )

    def sweep(self) -> list[str]:
        """Mark runs whose driver stopped heart-beating as ``crashed``; their ids (``[]``
        when there is no database yet: none is created)."""
        try:
            store = self.reader()
        except NotFound:
            return []
        s = self.settings
        return store.mark_crashed(stale_after=max(s.crash_after, 4 * s.heartbeat_interval))

    def cancel(self, run_id: str) -> bool:
        """Ask the process running ``run_id`` to cancel it (from any process).

        The driver notices at its next heartbeat (``heartbeat_interval``), records the run
        as ``cancelled`` and stops its tasks, as on Ctrl-C.

        Returns:
            False when the run is already over.

        Raises:
            NotFound: no run ``run_id`` (a unique prefix is accepted).
        """
        store = self.reader()
        return store.request_cancel(store.get_run(run_id)["run_id"])

    # ---- following a run from any process ---------------------------------------------------

    def follow(
        self,
        run_id: str,
        *,
        after: int = 0,
        poll: float = 0.2,
        timeout: float | None = None,
    ) -> Iterator[Event]:
        """Yield the events of ``run_id`` after sequence number ``after`` as the process
        running it records them, until :class:`~glasspane.events.RunFinished`.

        Reads the store every ``poll`` seconds, so it follows a run of any process using
        the same database. A run that ended without a ``RunFinished`` (its driver died and
        the run was swept as crashed) ends the iteration once its state is final.

        Raises:
            NotFound: no run ``run_id`` (a unique prefix is accepted).
            TimeoutError: ``timeout`` seconds passed before the run finished.
        """
        from .following import follow

        return follow(self.reader(), run_id, after=after, poll=poll, timeout=timeout)


def no_database(settings: Settings) -> NotFound:
    """No database where the settings point: say which setting, and what to do."""
    from .store import database_location

    where = database_location(settings.resolved_database_url)
    source = settings.source("database_url" if settings.database_url else "home")
    if source == "the default":
        return NotFound(
            f"no glasspane database exists at {where} (the default, under ~/.glasspane): "
            "nothing has run here yet, or set GLASSPANE_HOME or GLASSPANE_DATABASE_URL to where "
            "your runs are recorded"
        )
    return NotFound(
        f"no glasspane database exists at {where} ({source} points there): nothing has run "
        f"with this setting yet, or fix {source}"
    )
