"""``Schedule``: when a pipeline runs by itself, declared once and validated when declared.

A schedule is one of three kinds, chosen by the one field it sets:

- ``cron="0 3 * * 1-5"``: wall-clock times in ``timezone`` (see :mod:`.dst` for DST);
- ``every="15m"``: fixed intervals (``30s``, ``15m``, ``2h``, ``1d``) aligned to the UTC
  epoch: the fire times are the exact multiples of the interval since 1970-01-01 00:00 UTC,
  so they never depend on when the schedule was created or the scheduler restarted
  (``every="1d"`` fires at 00:00 UTC, ``every="7m"`` at multiples of 420 s);
- ``after="features"``: once after each successful run of another pipeline.

A ``Schedule`` is immutable. Its errors are :class:`~glasspane.errors.DefinitionError`
whose message quotes the faulty value and says what to write instead.
"""

from __future__ import annotations

import difflib
import json
import re
from datetime import timedelta
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import DefinitionError, InvalidArgument
from .cron import FIELDS, Cron, parse_cron

#: What to do with fire times missed while the scheduler was not running.
CatchUp = Literal["none", "latest", "all"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_UNIT_NAMES = {"s": "second", "m": "minute", "h": "hour", "d": "day"}
_EVERY = re.compile(r"(\d+)\s*([smhd])")
_EVERY_HELP = "write a whole number and a unit: `30s`, `15m`, `2h` or `1d`"


class Schedule(BaseModel):
    """When a pipeline runs by itself: ``@pipeline(schedule=Schedule(...))``.

    Exactly one of ``cron``, ``every`` and ``after`` is set.

    Attributes:
        name: stable name of the schedule, unique in a workspace; ``@pipeline`` sets it to the
            pipeline's name when it is not given.
        cron: five-field cron expression, read in ``timezone``.
        every: fixed interval, ``<n>s``, ``<n>m``, ``<n>h`` or ``<n>d``, aligned to the UTC
            epoch (multiples of the interval since 1970-01-01 00:00 UTC).
        after: name of the pipeline whose successful runs start this one.
        timezone: IANA zone the cron expression is read in (``"Europe/Berlin"``); fire times
            are still computed and stored in UTC. Only cron schedules take one.
        params: parameters of the runs it starts (JSON values).
        catchup: fire times missed while the scheduler was not running: ``"none"`` skips
            them, ``"latest"`` runs the latest one, ``"all"`` runs each (at most
            ``max_catchup``, the latest ones).
        max_catchup: most missed fire times ``"all"`` runs at once.
        max_active: most runs of this schedule queued or running at the same time.
        paused: a paused schedule fires nothing; when resumed it fires nothing from before.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    cron: str | None = None
    every: str | None = None
    after: str | None = None
    timezone: str = "UTC"
    params: dict[str, Any] = Field(default_factory=dict)
    catchup: CatchUp = "latest"
    max_catchup: int = Field(default=10, ge=1)
    max_active: int = Field(default=1, ge=1)
    paused: bool = False

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            name = data.get("name")
            where = f"schedule `{name}`" if isinstance(name, str) and name.strip() else "schedule"
            raise DefinitionError(f"invalid {where}: {_problems(exc)}") from None

    # -- validation ----------------------------------------------------------------------------
    @field_validator("name", "after")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty; give a name")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            parse_cron(value)
        return value

    @field_validator("every")
    @classmethod
    def _every(cls, value: str | None) -> str | None:
        if value is not None:
            parse_every(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        zone_of(value)
        return value

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"params must be JSON values (strings, numbers, booleans, None, and lists and "
                f"dicts of them) so that they can be stored with the schedule: {exc}"
            ) from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        given = [f"`{k}`" for k in ("cron", "every", "after") if getattr(self, k) is not None]
        if len(given) != 1:
            got = f"got {' and '.join(given)}" if given else "got none"
            raise ValueError(
                f"a schedule takes exactly one of `cron`, `every` or `after` ({got}), e.g. "
                '`Schedule(cron="0 3 * * *")`, `Schedule(every="15m")` or '
                '`Schedule(after="features")`'
            )
        if self.cron is None and self.timezone != "UTC":
            raise ValueError(
                f"`timezone` applies to cron schedules only (got `{self.timezone}` with "
                f"`{'every' if self.every is not None else 'after'}`); `every` intervals are "
                "aligned to the UTC epoch: for a run at a local time write a cron expression, "
                'e.g. `Schedule(cron="0 0 * * *", timezone=...)`'
            )
        return self

    # -- derived values ------------------------------------------------------------------------
    @property
    def kind(self) -> Literal["cron", "every", "after"]:
        """Which of ``cron``, ``every`` and ``after`` this schedule uses."""
        if self.cron is not None:
            return "cron"
        return "every" if self.every is not None else "after"

    @property
    def parsed_cron(self) -> Cron:
        """The parsed cron expression. Raises InvalidArgument for other kinds."""
        if self.cron is None:
            raise InvalidArgument(f"{self._label()} is not a cron schedule")
        return parse_cron(self.cron)

    @property
    def interval(self) -> timedelta:
        """The ``every`` interval. Raises InvalidArgument for other kinds."""
        if self.every is None:
            raise InvalidArgument(f"{self._label()} is not an `every` schedule")
        return parse_every(self.every)

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return zone_of(self.timezone)

    def describe(self) -> str:
        """One line for people: ``retrain: cron `0 3 * * 1-5` in Europe/Berlin (minute 0,
        hour 3, day-of-week 1-5); catch-up latest; at most 1 active run``."""
        if self.cron is not None:
            fields = parse_cron(self.cron).fields
            shown = ", ".join(f"{n} {f}" for n, f in zip(FIELDS, fields) if f != "*")
            when = f"cron `{self.cron}` in {self.timezone} ({shown or 'every minute'})"
        elif self.every is not None:
            when = f"every {_spell(self.interval)} (multiples of it since 1970-01-01 00:00 UTC)"
        else:
            when = f"after each successful run of pipeline `{self.after}`"
        parts = [when]
        if self.kind != "after":
            policy = self.catchup + (
                f" (at most {self.max_catchup})" if self.catchup == "all" else ""
            )
            parts.append(f"catch-up {policy}")
        parts.append(f"at most {self.max_active} active run{'s' if self.max_active > 1 else ''}")
        if self.params:
            parts.append("params " + ", ".join(f"{k}={v!r}" for k, v in self.params.items()))
        if self.paused:
            parts.append("paused")
        return f"{self.name or 'schedule'}: " + "; ".join(parts)

    def _label(self) -> str:
        return f"schedule `{self.name}`" if self.name else "this schedule"


#: the fields of a Schedule stored as columns of its own, not in its stored definition
_ROW_FIELDS = {"name", "paused"}


def spec_of(schedule: Schedule) -> dict[str, Any]:
    """The stored definition of ``schedule`` (JSON values; its name and paused flag are
    columns of their own)."""
    return schedule.model_dump(mode="json", exclude=_ROW_FIELDS)


def schedule_of(row: dict[str, Any]) -> Schedule:
    """The :class:`Schedule` a stored row (``name``, ``paused``, ``spec``) describes, its
    defaults filled in."""
    return Schedule(name=row["name"], paused=bool(row["paused"]), **row["spec"])


def parse_every(text: str) -> timedelta:
    """``"15m"`` -> ``timedelta(minutes=15)``; units ``s``, ``m``, ``h``, ``d``.

    Raises:
        InvalidArgument: not a whole number with one unit, or zero.
    """
    match = _EVERY.fullmatch(text.strip().lower())
    if match is None:
        raise InvalidArgument(f"every `{text}` is not an interval; {_EVERY_HELP}")
    count = int(match.group(1))
    if count == 0:
        raise InvalidArgument(f"every `{text}` must be longer than zero; {_EVERY_HELP}")
    return timedelta(seconds=count * _UNITS[match.group(2)])


@lru_cache(maxsize=256)
def zone_of(name: str) -> ZoneInfo:
    """The IANA time zone ``name``.

    Raises:
        InvalidArgument: unknown zone; the message suggests the closest names.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=3)
        hint = f"did you mean {', '.join(f'`{c}`' for c in close)}? " if close else ""
        raise InvalidArgument(
            f"timezone `{name}` is not a known IANA time zone; {hint}write a name such as "
            "`UTC`, `Europe/Berlin` or `America/New_York`"
        ) from None


def _spell(interval: timedelta) -> str:
    seconds = int(interval.total_seconds())
    for unit in ("d", "h", "m", "s"):
        if seconds % _UNITS[unit] == 0:
            count = seconds // _UNITS[unit]
            return f"{count} {_UNIT_NAMES[unit]}{'s' if count != 1 else ''}"
    raise AssertionError("unreachable: every interval is a whole number of seconds")


def _problems(exc: ValidationError) -> str:
    """Each problem of a ValidationError as one clause, our own messages verbatim."""
    known = list(Schedule.model_fields)
    problems = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        if err["type"] == "value_error":
            message = str(err.get("ctx", {}).get("error", err["msg"]))
            starts_with_field = message.startswith((f"{field} ", f"`{field}`", "params"))
            problems.append(message if not field or starts_with_field else f"`{field}`: {message}")
        elif err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(field, known, n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            problems.append(
                f"`{field}` is not an option{hint}; a Schedule takes {', '.join(known)}"
            )
        else:
            problems.append(f"`{field}`: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(problems)
