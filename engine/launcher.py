"""What a Workspace starts in other processes and steers from this one: runs launched and
retried in child processes (``glasspane run`` / ``glasspane retry``), a form's parameters
checked without importing the pipeline's code, and schedules paused and resumed.

:class:`~glasspane.workspace.Workspace` inherits these methods; the web UI and the scheduler
call them. Nothing here imports pipeline code or the run loop.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Settings
    from .store import MetadataStore


class Launcher:
    """The Workspace's launching methods (a mixin: the Workspace supplies the stores)."""

    settings: Settings

    if TYPE_CHECKING:

        @property
        def store(self) -> MetadataStore: ...

        def reader(self) -> MetadataStore: ...

        def _check_open(self) -> None: ...

    def launch(
        self,
        reference: str,
        params: dict[str, Any] | None = None,
        *,
        trigger: str = "manual",
        executor: str | None = None,
        schedule_name: str | None = None,
        scheduled_for: datetime | None = None,
        upstream_run_id: str | None = None,
        max_active: int | None = None,
    ) -> str:
        """Run the pipeline ``reference`` (``FILE.py:NAME`` or ``module:NAME``) in a child
        process (``glasspane run``); return its run id at once.

        ``schedule_name``, ``scheduled_for`` and ``upstream_run_id`` record what launched the
        run (a schedule, the fire time it is for, the upstream run of an ``after``
        schedule); a pipeline that declares a ``scheduled_for`` parameter receives the fire
        time. With ``max_active``, nothing is launched (``ScheduleBusy``) when the schedule
        already has that many runs queued or running, checked atomically with the queueing.

        The run is recorded as ``queued`` until the child takes it over, and ``crashed`` (with
        the child's last output lines as its error) if the child exits before that. This
        process never imports the pipeline's code. The child's output goes to
        ``HOME/launches/RUN_ID.log``.
        """
        from .launching import launch

        self._check_open()
        return launch(
            self.store, self.settings, reference, params, trigger, executor,
            schedule_name=schedule_name, scheduled_for=scheduled_for,
            upstream_run_id=upstream_run_id, max_active=max_active,
        )  # fmt: skip

    def launch_retry(
        self,
        run_id: str,
        secrets: dict[str, Any] | None = None,
        *,
        trigger: str = "retry",
        executor: str | None = None,
    ) -> str:
        """Retry ``run_id`` in a child process (``glasspane retry``), as :meth:`launch` does a
        run; return the new run's id at once. ``secrets`` gives the secret parameters again.

        Raises:
            NotFound: no such run, or it does not record its pipeline reference.
            RunStillActive: the run is not over.
            GlasspaneError: the run succeeded (nothing to resume).
        """
        from .launching import launch_retry

        self._check_open()
        return launch_retry(self.store, self.settings, run_id, secrets, trigger, executor)

    def check_params(self, pipeline: str, params: dict[str, str]) -> dict[str, Any]:
        """Validate text values for pipeline ``pipeline`` (a form's fields) against the
        parameter schema its latest run stored, as ``glasspane run -p NAME=VALUE`` does,
        without importing its code; return the values to :meth:`launch` it with.

        Raises:
            NotFound: no pipeline of that name has run here.
            ParameterError: with the message ``glasspane run`` gives.
        """
        from .param_schema import check_params
        from .queries import pipeline as find_pipeline

        summary = find_pipeline(self.reader(), pipeline)
        return check_params(pipeline, summary.params_schema, params)

    # ---- schedules (the web UI's Pause and Resume) ------------------------------------------

    def pause_schedule(self, name: str) -> bool:
        """Pause schedule ``name`` (False if paused already). Raises NotFound."""
        return self.store.pause_schedule(name)

    def resume_schedule(self, name: str) -> bool:
        """Resume schedule ``name`` from now, catching nothing up (False if it was not
        paused). Raises NotFound."""
        from .scheduling import resume

        return resume(self.store, name)
