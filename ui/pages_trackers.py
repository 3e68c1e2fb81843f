"""What the pages show of the experiment trackers that can be read back (MLflow...): on a
pipeline's page, a section per configured tracker listing its runs of the pipeline's
experiment (including runs glasspane did not create) with their parameters and metrics,
paged with the tracker's own page token; and a tracker's run as a side of the compare view.

A tracker that cannot be reached leaves a message in its section; the rest of the page is
shown as usual.

``/pipelines/{name}?tracker=mlflow&page_token=T&page_size=N`` pages through one tracker's
runs (the others show their first page).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from glasspane.config import Settings
from glasspane.errors import GlasspaneError, InvalidArgument
from glasspane.queries.compare import CompareSide
from glasspane.tracking import NotReadable, TrackedRunPage, configured

from . import trackers
from .pages_format import pipeline_url

#: parameter and metric columns a tracker's runs table shows at most (each)
MAX_COLUMNS = 6
#: the longest page token a page link carries
MAX_TOKEN = 4000


def page_size(text: str | None) -> int:
    """``?page_size=N``: 1 to :data:`~.trackers.MAX_PAGE_SIZE` (default ``PAGE_SIZE``).

    Raises:
        InvalidArgument: not a whole number in that range.
    """
    if not text:
        return trackers.PAGE_SIZE
    try:
        size = int(text)
    except ValueError:
        size = 0
    if not 1 <= size <= trackers.MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"page_size must be a whole number from 1 to {trackers.MAX_PAGE_SIZE} "
            f"(got {text[:40]!r}); drop it for {trackers.PAGE_SIZE} runs a page"
        )
    return size


def columns(page: TrackedRunPage) -> tuple[list[str], list[str], int, int]:
    """The parameter and metric keys the page's runs have (at most :data:`MAX_COLUMNS` of
    each, by name), and how many of each were left out."""
    params = sorted({key for run in page.runs for key in run.params})
    metrics = sorted({key for run in page.runs for key in run.metrics})
    return (
        params[:MAX_COLUMNS],
        metrics[:MAX_COLUMNS],
        max(len(params) - MAX_COLUMNS, 0),
        max(len(metrics) - MAX_COLUMNS, 0),
    )


def tracker_sections(request: Request, settings: Settings, pipeline: str) -> list[dict[str, Any]]:
    """A section per configured tracker that can be read back: its runs of ``pipeline``'s
    experiment, or the message saying why they cannot be shown (blocking)."""
    query = request.query_params
    paged = query.get("tracker")
    size = page_size(query.get("page_size"))
    sections = []
    for name in configured(settings):
        token = (query.get("page_token") or None) if name == paged else None
        if token is not None and len(token) > MAX_TOKEN:
            raise InvalidArgument(
                f"page_token is over {MAX_TOKEN} characters; follow the page links"
            )
        section: dict[str, Any] = {"name": name, "experiment": None, "error": None, "page": None}
        section.update(token=token, first_url=None, next_url=None)
        try:
            experiment, page = trackers.search_runs(
                settings, name, pipeline=pipeline, page_token=token, max_results=size
            )
        except NotReadable:
            continue  # it keeps runs but cannot list them: nothing to show
        except GlasspaneError as exc:
            section["error"] = str(exc)
            sections.append(section)
            continue
        params, metrics, more_params, more_metrics = columns(page)
        section.update(
            experiment=experiment,
            page=page,
            params=params,
            metrics=metrics,
            more_params=more_params,
            more_metrics=more_metrics,
        )
        if page.next_page_token:
            section["next_url"] = _page_url(pipeline, name, page.next_page_token, size)
        if token is not None:
            section["first_url"] = _page_url(pipeline, name, None, size)
        sections.append(section)
    return sections


def _page_url(pipeline: str, tracker: str, token: str | None, size: int) -> str:
    values = {"tracker": tracker}
    if token is not None:
        values["page_token"] = token
    if size != trackers.PAGE_SIZE:
        values["page_size"] = str(size)
    return f"{pipeline_url(pipeline)}?{urlencode(values)}#tracker-{tracker}"


# ---- the compare view ----------------------------------------------------------------------


def tracker_side(part: str) -> tuple[str, str] | None:
    """``mlflow:ID`` -> (``mlflow``, ``ID``); None for a glasspane run id."""
    name, sep, external_id = part.partition(":")
    if not sep:
        return None
    if not name or not external_id:
        raise InvalidArgument(
            f"`{part[:80]}` is neither a run id nor TRACKER:RUN_ID (such as mlflow:0a1b2c...)"
        )
    return name, external_id


def compare_side(settings: Settings, part: str) -> str | CompareSide:
    """One side of the compare view: a glasspane run id as it is, or the tracker's run with
    the runs nested under it (where a glasspane run's task metrics are)."""
    side = tracker_side(part)
    if side is None:
        return part
    run, children = trackers.get_run(settings, *side, children=True)
    return CompareSide(tracked=run, children=children)


def side_label(side: Any) -> str:
    """How the compare view's URL writes a side (``run id`` or ``tracker:id``)."""
    if side.tracked is not None:
        return f"{side.tracked.tracker}:{side.tracked.external_id}"
    return str(side.run.run_id)
