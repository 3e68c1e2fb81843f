"""The in-memory tracker: the :class:`~glasspane.tracking.Tracker` protocol's reference.

It keeps what it hears in this process, with the semantics every tracker follows (and the
conformance suite checks): one tracker run per glasspane run, named
``<pipeline>-<short run id>``, in an experiment named after the pipeline; the pipeline's
parameters (secrets arrive masked) as the run's parameters; a nested child run per task node
that logs a metric or a parameter, named by its node id and carrying the node's constant
arguments; metrics with their step and time, each event delivered at most once whatever is
replayed; artifacts by name; the status set once from the run's end.

Turn it on with ``GLASSPANE_TRACKERS=memory`` (useful in tests of a listener stack).
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from glasspane.errors import NotFound
from glasspane.events import (
    ArtifactLogged,
    Event,
    MetricLogged,
    ParamLogged,
    RunFinished,
    RunStarted,
    TaskStarted,
)
from glasspane.tracking import (
    MetricPoint,
    TrackedRun,
    TrackedRunPage,
    TrackerContext,
    TrackerLink,
)

#: the tracker's status for each terminal glasspane state (as MLflow names them)
STATUS = {"succeeded": "FINISHED", "cancelled": "KILLED"}


def status_of(state: str) -> str:
    return STATUS.get(state, "FAILED")


class MemoryBackend:
    """The tracker's store: runs by id, and the events it already took (its idempotency)."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}  # external id -> run
        self.by_run: dict[str, str] = {}  # glasspane run id -> external id
        self.children: dict[tuple[str, str], str] = {}  # (run id, node) -> external id
        self.constants: dict[tuple[str, str], dict[str, Any]] = {}
        self.seen: set[tuple[str, int]] = set()
        self.lock = threading.Lock()


class MemoryTracker:
    """Tracker runs as dicts in this process (see the module docstring)."""

    name = "memory"

    def __init__(
        self, context: TrackerContext | None = None, backend: MemoryBackend | None = None
    ) -> None:
        self.context = context or TrackerContext("memory")
        self.name = self.context.name
        #: where the runs are: share one between tracker objects to stand for one server
        self.backend = backend or MemoryBackend()
        b = self.backend
        self.runs, self._by_run, self._children = b.runs, b.by_run, b.children
        self._constants, self._seen, self._lock = b.constants, b.seen, b.lock

    # ---- Tracker -----------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        with self._lock:
            if (event.run_id, event.seq) in self._seen:
                return  # idempotent per event
            self._apply(event)
            self._seen.add((event.run_id, event.seq))

    def _apply(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            if event.run_id not in self._by_run:
                tags = {"glasspane.run_id": event.run_id, "glasspane.pipeline": event.pipeline}
                tags["glasspane.version"] = event.version
                tags["glasspane.trigger"] = event.trigger
                if event.resumed_from:
                    tags["glasspane.resumed_from"] = event.resumed_from
                params = {k: str(v) for k, v in event.params.items()}
                name = f"{event.pipeline}-{event.run_id[:8]}"
                self._by_run[event.run_id] = self._new(name, event.pipeline, params, tags, None)
            return
        parent = self._by_run.get(event.run_id)
        if parent is None:
            return  # never saw the run start (a listener added mid-run)
        if isinstance(event, TaskStarted):
            if event.params:
                self._constants[(event.run_id, event.node)] = dict(event.params)
        elif isinstance(event, (MetricLogged, ParamLogged)):
            child = self._child(event.run_id, event.node, parent)
            if isinstance(event, MetricLogged):
                step = event.step if event.step is not None else 0
                point = {"step": step, "value": event.value, "ts": event.ts}
                self.runs[child]["history"].setdefault(event.key, []).append(point)
            else:
                self.runs[child]["params"][event.key] = str(event.value)
        elif isinstance(event, ArtifactLogged):
            self.runs[parent]["artifacts"][f"{event.node}/{event.filename}"] = event.artifact
        elif isinstance(event, RunFinished):
            for external in [parent, *self._children_of(event.run_id)]:
                run = self.runs[external]
                if run["status"] == "RUNNING":
                    run["status"] = status_of(event.state)
                    run["end"] = event.ts

    def _new(
        self,
        name: str,
        experiment: str,
        params: dict[str, str],
        tags: dict[str, str],
        parent: str | None,
    ) -> str:
        external = f"mem-{len(self.runs) + 1}"
        self.runs[external] = {
            "name": name, "experiment": experiment, "params": params, "tags": tags,
            "parent": parent, "status": "RUNNING", "start": datetime.now(timezone.utc).timestamp(),
            "end": None, "history": {}, "artifacts": {},
        }  # fmt: skip
        return external

    def _child(self, run_id: str, node: str, parent: str) -> str:
        key = (run_id, node)
        if key not in self._children:
            constants = {k: str(v) for k, v in self._constants.get(key, {}).items()}
            tags = {"glasspane.run_id": run_id, "glasspane.node": node}
            experiment = self.runs[parent]["experiment"]
            self._children[key] = self._new(node, experiment, constants, tags, parent)
        return self._children[key]

    def _children_of(self, run_id: str) -> list[str]:
        return [ext for (rid, _), ext in self._children.items() if rid == run_id]

    def link(self, run_id: str) -> TrackerLink | None:
        external = self._by_run.get(run_id)
        if external is None:
            return None
        return TrackerLink(tracker=self.name, external_id=external, url=f"memory://{external}")

    def close(self) -> None:
        """Nothing to release."""

    # ---- TrackerReader -----------------------------------------------------------------------

    def search_runs(
        self, experiment: str, *, page_token: str | None = None, max_results: int = 50
    ) -> TrackedRunPage:
        ids = [ext for ext, run in self.runs.items() if run["experiment"] == experiment]
        ids.reverse()  # newest first
        start = int(page_token or 0)
        page = ids[start : start + max_results]
        more = start + max_results < len(ids)
        return TrackedRunPage(
            runs=[self.get_run(ext) for ext in page],
            next_page_token=str(start + max_results) if more else None,
        )

    def get_run(self, external_id: str) -> TrackedRun:
        run = self.runs.get(external_id)
        if run is None:
            raise NotFound(f"tracker `{self.name}` has no run {external_id}")

        def when(ts: float | None) -> datetime | None:
            return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)

        return TrackedRun(
            tracker=self.name,
            external_id=external_id,
            name=run["name"],
            experiment=run["experiment"],
            status=run["status"],
            start_time=when(run["start"]),
            end_time=when(run["end"]),
            params=dict(run["params"]),
            metrics={k: points[-1]["value"] for k, points in run["history"].items()},
            tags=dict(run["tags"]),
            url=f"memory://{external_id}",
            glasspane_run_id=run["tags"].get("glasspane.run_id"),
            parent_id=run["parent"],
        )

    def metric_history(self, external_id: str, key: str) -> list[MetricPoint]:
        points = self.runs[external_id]["history"].get(key, [])
        return [
            MetricPoint(
                step=p["step"],
                value=p["value"],
                timestamp=datetime.fromtimestamp(p["ts"], tz=timezone.utc),
            )
            for p in points
        ]

    def experiment_for(self, pipeline: str) -> str:
        return pipeline

    def child_runs(self, external_id: str) -> list[TrackedRun]:
        return [self.get_run(ext) for ext, run in self.runs.items() if run["parent"] == external_id]
