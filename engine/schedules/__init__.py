"""Schedules: when pipelines run by themselves, as a pure core.

:class:`Schedule` declares a schedule (``cron``, ``every`` or ``after``);
:func:`next_fire_times`, :func:`fire_times_between` and :func:`due` compute its fire times
from instants passed in, with no I/O and no clock, so the scheduler loop around them only
claims, launches and sleeps. DST rules: :mod:`glasspane.schedules.dst`.
"""

from __future__ import annotations

from .cron import Cron, parse_cron
from .fire_times import (
    DEFAULT_GRACE,
    DEFAULT_LIMIT,
    MAX_SKIPPED,
    Due,
    due,
    fire_times_between,
    next_fire_times,
)
from .spec import CatchUp, Schedule, parse_every, schedule_of, spec_of, zone_of

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_LIMIT",
    "MAX_SKIPPED",
    "CatchUp",
    "Cron",
    "Due",
    "Schedule",
    "due",
    "fire_times_between",
    "next_fire_times",
    "parse_cron",
    "parse_every",
    "schedule_of",
    "spec_of",
    "zone_of",
]
