"""Run and task-run states as the SVGs show them: relevance, symbols, order and CSS class.

Colour alone never carries a state: each has a symbol (``✓``, ``✗``...) the renderers write
as text, and its name in a ``<title>``. States the engine may add later still render (class
``state-<name>``, symbol ``?``), ranked just above ``succeeded``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

from glasspane.types import (
    CANCELLED,
    CRASHED,
    FAILED,
    PENDING,
    QUEUED,
    RETRYING,
    RUNNING,
    SUCCEEDED,
    TIMED_OUT,
    UPSTREAM_FAILED,
)

from .svg import token

#: the state shown for nodes that have none (a pipeline version's graph)
NONE = "none"
#: not a state: a count a runs list may show beside the states (task runs reused from cache)
CACHED = "cached"

#: most relevant first: what a group of elements shows when they differ (failures, then
#: work in progress, then work that will not or did not yet happen, then done)
RELEVANCE = (
    FAILED,
    TIMED_OUT,
    CRASHED,
    RUNNING,
    RETRYING,
    UPSTREAM_FAILED,
    CANCELLED,
    QUEUED,
    PENDING,
    SUCCEEDED,
    NONE,
)
_RANK = {state: rank for rank, state in enumerate(RELEVANCE)}
_UNKNOWN_RANK = _RANK[SUCCEEDED] - 0.5

#: the order of segments in a bar and counts in a label: done, then trouble, then the rest
DISPLAY_ORDER = (
    SUCCEEDED,
    CACHED,
    FAILED,
    TIMED_OUT,
    CRASHED,
    UPSTREAM_FAILED,
    CANCELLED,
    RUNNING,
    RETRYING,
    QUEUED,
    PENDING,
)

_KNOWN = frozenset(DISPLAY_ORDER)

SYMBOLS = {
    SUCCEEDED: "✓",
    CACHED: "✓",
    FAILED: "✗",
    TIMED_OUT: "✗",
    CRASHED: "✗",
    UPSTREAM_FAILED: "⊘",
    CANCELLED: "⊘",
    RUNNING: "▶",
    RETRYING: "▶",
    QUEUED: "…",
    PENDING: "…",
    NONE: "",
}


@lru_cache(maxsize=256)
def state_class(state: str) -> str:
    """The CSS class of a state: ``state-failed``, ``state-upstream_failed``..."""
    return f"state-{token(state)}"


def symbol(state: str) -> str:
    return SYMBOLS.get(state, "?")


def most_relevant(states: Iterable[str]) -> str:
    """The state a group shows: the first of :data:`RELEVANCE` among ``states``."""
    return min(states, key=lambda s: _RANK.get(s, _UNKNOWN_RANK), default=NONE)


def ordered(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """The non-zero counts in :data:`DISPLAY_ORDER`, unknown states last in their order."""
    known = [(s, counts[s]) for s in DISPLAY_ORDER if counts.get(s)]
    return known + [(s, n) for s, n in counts.items() if n and s not in _KNOWN]


def symbol_counts(counts: Mapping[str, int]) -> str:
    """Counts by symbol, e.g. ``398 ✓ 2 ✗`` (states sharing a symbol are added up)."""
    by_symbol: dict[str, int] = {}
    for state, n in ordered(counts):
        by_symbol[symbol(state)] = by_symbol.get(symbol(state), 0) + n
    return " ".join(f"{n} {sym}" for sym, n in by_symbol.items())


def spelled_counts(counts: Mapping[str, int]) -> str:
    """Counts by state in words, e.g. ``398 succeeded, 2 failed``."""
    return ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in ordered(counts))
