"""Cron expressions: validated field by field, then iterated as wall-clock times.

A :class:`Cron` knows nothing about time zones: it yields *naive* wall-clock times in
increasing order, and :mod:`.dst` turns them into instants. That split keeps croniter away
from DST transitions entirely (it never sees an aware datetime), and every answer croniter
gives is checked against the parsed fields before it is used.

croniter is imported only when an expression is parsed, so ``import glasspane`` stays fast.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from ..errors import GlasspaneError, InvalidArgument

#: The five fields of a cron expression, in order, with the values each takes.
FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
FIELD_HELP = (
    "write five fields: minute (0-59) hour (0-23) day-of-month (1-31 or L) "
    "month (1-12 or jan-dec) day-of-week (0-7 or sun-sat; 0 and 7 are Sunday), "
    "e.g. `0 3 * * 1-5` for 03:00 on weekdays"
)
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_STEP = re.compile(r"/(\d*)")
_NUMBER = re.compile(r"\d+")
_HASHED = re.compile(r"(?<![a-z])h(?![a-z])")  # `H`, `H/5`, `H(0-29)`; not the h of `thu`


@dataclass(frozen=True)
class Cron:
    """A validated five-field cron expression.

    Attributes:
        expression: the expression as written (``"0 3 * * *"``, ``"@daily"``).
        fields: its five fields, aliases expanded (``("0", "3", "*", "*", "*")``).
        values: each field's allowed values as croniter expands them (``("*",)`` = any).
        plain_days: day-of-month and day-of-week use no ``L``, ``W`` or ``#`` syntax, so a
            wall time's day can be checked against ``values`` directly.
    """

    expression: str
    fields: tuple[str, ...]
    values: tuple[tuple[int | str, ...], ...]
    plain_days: bool

    @property
    def every_hour(self) -> bool:
        """True when the hour field allows every hour: the schedule then follows real time
        across DST transitions instead of the wall clock (see :mod:`.dst`)."""
        return self.values[1] == ("*",) or len(self.values[1]) == 24

    def matches(self, wall: datetime) -> bool:
        """Whether the naive wall-clock time ``wall`` satisfies the expression (day fields
        with ``L``/``W``/``#`` are not checked here; croniter alone computes them)."""
        minutes, hours, days, months, weekdays = self.values
        if wall.second or wall.microsecond:
            return False
        if not (_allows(minutes, wall.minute) and _allows(hours, wall.hour)):
            return False
        if not _allows(months, wall.month):
            return False
        if not self.plain_days:
            return True
        day_ok = _allows(days, wall.day)
        weekday_ok = _allows(weekdays, wall.isoweekday() % 7)
        if days != ("*",) and weekdays != ("*",):
            return day_ok or weekday_ok  # cron's rule: both restricted means either one
        return day_ok and weekday_ok

    def walls_after(self, start: datetime) -> Iterator[datetime]:
        """The naive wall-clock times matching the expression, strictly after ``start``
        (naive), in increasing order.

        Raises:
            GlasspaneError: croniter gave a time that does not match the expression or does
                not increase (a bug to report, never silently used).
        """
        from croniter import CroniterBadDateError, croniter

        times = croniter(" ".join(self.fields), start, ret_type=datetime)
        previous = start
        while True:
            try:
                wall = times.get_next(datetime)
            except CroniterBadDateError:  # no match within croniter's 50-year horizon
                return
            if wall <= previous or not self.matches(wall):
                raise GlasspaneError(
                    f"cron `{self.expression}`: croniter gave {wall.isoformat()} after "
                    f"{previous.isoformat()}, which does not follow the expression; please "
                    "report this with the expression and the time"
                )
            previous = wall
            yield wall


def _allows(values: tuple[int | str, ...], value: int) -> bool:
    return values == ("*",) or value in values


@functools.lru_cache(maxsize=512)
def parse_cron(expression: str) -> Cron:
    """Validate ``expression`` and return it parsed.

    Five fields only (no seconds or years), or one of ``@yearly``, ``@annually``,
    ``@monthly``, ``@weekly``, ``@daily``, ``@midnight``, ``@hourly``. Beyond numbers,
    ranges, lists and steps, croniter's ``L`` (last day of month), ``W`` (nearest weekday)
    and ``#`` (nth weekday of month) are accepted; ``H`` (hashed) is not.

    Raises:
        InvalidArgument: the message quotes the expression and names the faulty field, e.g.
            "cron `0 25 * * *`: hour 25 is out of range 0-23".
    """
    text = expression.strip()
    fields = tuple(ALIASES.get(text.lower(), text).split())
    if len(fields) != 5:
        raise InvalidArgument(
            f"cron `{expression}` has {len(fields)} field{'s' if len(fields) != 1 else ''}; "
            f"{FIELD_HELP}"
        )
    for index, field in enumerate(fields):
        _check_field(expression, index, field)
    from croniter import CroniterError, croniter

    try:
        values, nth = croniter.expand(" ".join(fields), strict=True)
    except CroniterError as exc:  # each field is valid alone: the days cannot occur together
        reason = _croniter_reason(exc) or "its days never occur in its months"
        raise InvalidArgument(f"cron `{expression}` never fires: {reason}; {FIELD_HELP}") from None
    day_syntax = fields[2].lower() + " " + fields[4].lower()
    cron = Cron(
        expression=expression,
        fields=fields,
        values=tuple(tuple(v) for v in values),
        plain_days=not nth and not any(mark in day_syntax for mark in ("l", "w", "#")),
    )
    if next(cron.walls_after(datetime(2000, 1, 1)), None) is None:
        raise InvalidArgument(
            f"cron `{expression}` never fires: no date matches all of its fields; {FIELD_HELP}"
        )
    return cron


def _check_field(expression: str, index: int, field: str) -> None:
    """Raise naming the field when ``field`` is invalid on its own."""
    name, (low, high) = FIELDS[index], RANGES[index]
    lowered = field.lower()
    if _HASHED.search(lowered):
        raise InvalidArgument(
            f"cron `{expression}`: {name} field `{field}` uses `H` (hashed values), which "
            f"glasspane does not support (write the values themselves); {FIELD_HELP}"
        )
    for part in lowered.split(","):
        step = _STEP.search(part)
        if step is not None and (not step.group(1) or int(step.group(1)) < 1):
            raise InvalidArgument(
                f"cron `{expression}`: {name} step `/{step.group(1)}` must be a whole number "
                f"of at least 1; {FIELD_HELP}"
            )
        base = _STEP.sub("", part).split("#")[0]
        for number in _NUMBER.findall(base):
            if not low <= int(number) <= high:
                raise InvalidArgument(
                    f"cron `{expression}`: {name} {int(number)} is out of range {low}-{high}; "
                    f"{FIELD_HELP}"
                )
    from croniter import CroniterError, croniter

    alone = ["*"] * 5
    alone[index] = field
    try:
        croniter.expand(" ".join(alone))
    except CroniterError as exc:
        reason = _croniter_reason(exc)
        raise InvalidArgument(
            f"cron `{expression}`: {name} field `{field}` is not valid"
            f"{f' ({reason})' if reason else ''}; {FIELD_HELP}"
        ) from None


def _croniter_reason(exc: Exception) -> str:
    """croniter's message without the expression it repeats and its "is not acceptable"
    (the caller says that), or ``""`` when nothing else is left."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    reason = re.sub(r"^\[[^\]]*\]\s*", "", lines[-1] if lines else "")
    reason = re.sub(r"^is not acceptable\.?\s*", "", reason).strip().rstrip(".")
    return reason[:1].lower() + reason[1:]
