"""The experiment trackers the UI reads back (a :class:`~glasspane.tracking.TrackerReader`:
MLflow...), so a team's existing tracker history shows in the pane.

A reader is made from the Workspace's settings for each read and closed after it, so a
changed tracker configuration needs no restart and no connection outlives a request. What a
tracker raises while reading (unreachable, refused, a vendor's own exception) becomes one
:class:`~glasspane.tracking.TrackerError` naming the tracker and what to check: a page shows
it in place of the tracker's runs, the API answers it as a 502. A tracker the settings do not
turn on is a :class:`~glasspane.errors.NotFound` naming those they do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, TypeVar, overload

from glasspane.config import Settings
from glasspane.errors import GlasspaneError, NotFound
from glasspane.tracking import (
    TrackedRun,
    TrackedRunPage,
    TrackerError,
    configured,
    open_reader,
)

T = TypeVar("T")

#: tracker runs on a page when the request does not say, and the most it may ask for
PAGE_SIZE, MAX_PAGE_SIZE = 25, 200


def check_configured(settings: Settings, name: str) -> None:
    """Raise NotFound unless the settings turn on tracker ``name``."""
    names = configured(settings)
    if name not in names:
        have = ", ".join(f"`{n}`" for n in names) or "none"
        raise NotFound(
            f"no tracker `{name}` is configured here (configured: {have}); turn it on with "
            f'GLASSPANE_TRACKERS={name} or `trackers = ["{name}"]` in glasspane.toml'
        )


@contextmanager
def reader(settings: Settings, name: str) -> Iterator[Any]:
    """Tracker ``name`` made to read back, closed on leaving.

    Raises:
        NotFound: the settings do not turn ``name`` on.
        ConfigError: it is not installed or refused its options (NotReadable: it cannot be
            read back).
    """
    check_configured(settings, name)
    tracker = open_reader(settings, name)
    try:
        yield tracker
    finally:
        tracker.close()


def call(name: str, what: str, read: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``read(*args, **kwargs)`` of tracker ``name``; any error but glasspane's own becomes a
    TrackerError saying ``what`` could not be read."""
    try:
        return read(*args, **kwargs)
    except GlasspaneError:
        raise
    except Exception as exc:  # noqa: BLE001 - a vendor's error, said with the tracker's name
        detail = " ".join(str(exc).split())[:500] or type(exc).__name__
        raise TrackerError(
            f"tracker `{name}` could not be read ({what}): {type(exc).__name__}: {detail}; "
            "check that the tracker is reachable from this server (for mlflow, "
            "MLFLOW_TRACKING_URI) and try again"
        ) from exc


def experiment_for(settings: Settings, name: str, pipeline: str) -> str:
    """The experiment tracker ``name`` records runs of ``pipeline`` in."""
    with reader(settings, name) as found:
        return call(name, "its experiment", found.experiment_for, pipeline)


def search_runs(
    settings: Settings,
    name: str,
    *,
    experiment: str | None = None,
    pipeline: str | None = None,
    page_token: str | None = None,
    max_results: int = PAGE_SIZE,
) -> tuple[str, TrackedRunPage]:
    """One page of tracker ``name``'s runs of ``experiment`` (or of the experiment it records
    ``pipeline`` in), newest first, with the experiment's name."""
    with reader(settings, name) as found:
        if experiment is None:
            experiment = call(name, "its experiment", found.experiment_for, pipeline)
        page = call(
            name,
            f"the runs of experiment `{experiment}`",
            found.search_runs,
            experiment,
            page_token=page_token,
            max_results=max_results,
        )
        return experiment, page


@overload
def get_run(settings: Settings, name: str, external_id: str) -> TrackedRun: ...


@overload
def get_run(
    settings: Settings, name: str, external_id: str, *, children: Literal[True]
) -> tuple[TrackedRun, list[TrackedRun]]: ...


def get_run(
    settings: Settings, name: str, external_id: str, *, children: bool = False
) -> TrackedRun | tuple[TrackedRun, list[TrackedRun]]:
    """Tracker ``name``'s run ``external_id`` (with ``children``: and the runs nested
    under it).

    Raises:
        NotFound: the tracker has no such run (its own message).
    """
    with reader(settings, name) as found:
        run: TrackedRun = call(name, f"run {external_id}", found.get_run, external_id)
        if not children:
            return run
        nested = call(name, f"the runs under run {external_id}", found.child_runs, external_id)
        return run, list(nested)
