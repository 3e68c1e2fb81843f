"""The pages' forms as pure functions: a pipeline's Run form from its parameter schema, the
values a posted form gives back, and the runs list's filters.

Invariants:

- Field values are text, as a browser posts them; the engine checks them
  (``Workspace.check_params``) exactly as ``glasspane run -p NAME=VALUE`` does, so the form
  never converts or validates types itself and the messages are the CLI's.
- A secret parameter (``format: password`` in the schema) is a password input that is never
  prefilled, not even with the value a user just posted.
- Nothing here does I/O or reads a clock: ``now`` is passed in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from glasspane.errors import InvalidArgument
from glasspane.types import STATES

#: kinds of input a parameter becomes (the template picks the element by kind)
NUMBER, CHECKBOX, TEXT, SELECT, PASSWORD, JSON = (
    "number",
    "checkbox",
    "text",
    "select",
    "password",
    "json",
)


@dataclass(frozen=True)
class Field:
    """One input of a Run form.

    ``value`` is the text to prefill (``checked`` for a checkbox); ``options`` the choices of
    a select (``""`` is "not given" on a nullable one); ``hint`` says what to type.
    """

    name: str
    label: str
    kind: str
    required: bool
    value: str = ""
    checked: bool = False
    step: str | None = None
    options: tuple[str, ...] = ()
    hint: str = ""
    description: str = ""


def fields_from_schema(
    schema: Mapping[str, Any] | None, values: Mapping[str, str] | None = None
) -> list[Field]:
    """The Run form's fields for a pipeline's parameter ``schema`` (pydantic's JSON schema).

    Args:
        schema: ``PipelineSummary.params_schema``; None gives no fields.
        values: text to prefill instead of the defaults (a form posted back with an error,
            or a run's parameters for "run again"); never used for secret fields.
    """
    if not schema:
        return []
    values = values or {}
    defs = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    return [
        _field(name, prop, defs, name in required, values)
        for name, prop in schema.get("properties", {}).items()
    ]


def _resolve(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The one non-null type a property describes (``$ref`` and ``allOf`` followed) and
    whether null is also allowed."""
    ref = prop.get("$ref")
    if ref is not None:
        target, nullable = _resolve(defs.get(ref.rpartition("/")[2], {}), defs)
        return {**target, **{k: v for k, v in prop.items() if k != "$ref"}}, nullable
    if len(prop.get("allOf", ())) == 1:
        target, nullable = _resolve(prop["allOf"][0], defs)
        return {**target, **{k: v for k, v in prop.items() if k != "allOf"}}, nullable
    options = prop.get("anyOf")
    if options:
        kinds = [o for o in options if o.get("type") != "null"]
        nullable = len(kinds) < len(options)
        if len(kinds) == 1:
            inner, inner_null = _resolve(kinds[0], defs)
            rest = {k: v for k, v in prop.items() if k != "anyOf"}
            return {**inner, **rest}, nullable or inner_null
        return {k: v for k, v in prop.items() if k != "anyOf"}, nullable
    return dict(prop), False


def _text(value: Any) -> str:
    """A default or a run's value as the text a user would type (JSON except for strings)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _field(
    name: str,
    prop: Mapping[str, Any],
    defs: Mapping[str, Any],
    required: bool,
    values: Mapping[str, str],
) -> Field:
    spec, nullable = _resolve(prop, defs)
    label = str(spec.get("title") or name)
    description = str(spec.get("description") or "")
    kind = spec.get("type")
    given = name in values
    value = values[name] if given else _text(spec.get("default"))
    base = Field(name=name, label=label, kind=TEXT, required=required, description=description)
    if spec.get("format") == "password":
        return replace(base, kind=PASSWORD, hint="secret: never stored")
    if "enum" in spec:
        choices = tuple(_text(choice) for choice in spec["enum"])
        blank = nullable or (not required and "default" not in spec)
        options = ("", *choices) if blank else choices
        return replace(base, kind=SELECT, value=value, options=options)
    if kind == "boolean":
        if nullable:
            return replace(base, kind=SELECT, value=value, options=("", "true", "false"))
        checked = value.strip().lower() == "true"
        return replace(base, kind=CHECKBOX, checked=checked)
    if kind in ("integer", "number"):
        step = "1" if kind == "integer" else "any"
        hint = "an integer" if kind == "integer" else "a number"
        return replace(base, kind=NUMBER, value=value, step=step, hint=hint)
    if kind == "string":
        return replace(base, kind=TEXT, value=value)
    example = {"array": "[1, 2]", "object": '{"a": 1}'}.get(str(kind))
    hint = f"JSON, e.g. {example}" if example else "JSON, or text"
    return replace(base, kind=JSON, value=value, hint=hint)


def form_params(fields: Sequence[Field], form: Mapping[str, Any]) -> dict[str, str]:
    """The text values of a posted Run form, by parameter name, for ``Workspace.check_params``.

    A checkbox is ``"true"`` or ``"false"``; every other field's text is passed as posted
    (the engine treats a blank non-string value as not given, so its default applies); names
    that are not fields are ignored.
    """
    params: dict[str, str] = {}
    for item in fields:
        if item.kind == CHECKBOX:
            params[item.name] = "true" if form.get(item.name) not in (None, "") else "false"
        elif item.name in form:
            params[item.name] = str(form[item.name])
    return params


def secret_fields(schema: Mapping[str, Any] | None) -> list[Field]:
    """The password fields of a schema: what a retry must be given again."""
    return [item for item in fields_from_schema(schema) if item.kind == PASSWORD]


def run_values(params: Mapping[str, Any]) -> dict[str, str]:
    """A run's stored parameters as form text, to launch it again (secrets are masked in
    storage and never prefilled anyway)."""
    return {name: _text(value) for name, value in params.items()}


# ---- the runs list's filters -----------------------------------------------------------------

#: the quick time ranges of the runs list: value -> (label, length)
WINDOWS: dict[str, tuple[str, timedelta]] = {
    "1h": ("last hour", timedelta(hours=1)),
    "24h": ("last 24 hours", timedelta(days=1)),
    "7d": ("last 7 days", timedelta(days=7)),
    "30d": ("last 30 days", timedelta(days=30)),
}


@dataclass(frozen=True)
class RunFilters:
    """What the runs list shows, as read from its GET form (text as typed, for echoing)."""

    pipeline: str = ""
    states: tuple[str, ...] = ()
    trigger: str = ""
    schedule: str = ""
    window: str = ""
    since: str = ""
    until: str = ""

    def query(self, now: datetime) -> dict[str, Any]:
        """Keyword arguments of ``queries.list_runs`` (without ``cursor`` and ``limit``).

        Raises:
            InvalidArgument: a state is unknown, a time does not parse, or the window is not
                one of :data:`WINDOWS`.
        """
        unknown = [state for state in self.states if state not in STATES]
        if unknown:
            raise InvalidArgument(
                f"unknown run state `{unknown[0]}`; use one of {', '.join(STATES)}"
            )
        since = parse_time(self.since, "since")
        if self.window:
            if self.window not in WINDOWS:
                raise InvalidArgument(
                    f"unknown time range `{self.window}`; use one of {', '.join(WINDOWS)}"
                )
            start = now - WINDOWS[self.window][1]
            since = start if since is None else max(since, start)
        return {
            "pipeline": self.pipeline or None,
            "state": list(self.states) or None,
            "trigger": self.trigger or None,
            "schedule": self.schedule or None,
            "since": since,
            "until": parse_time(self.until, "until"),
        }

    def params(self) -> list[tuple[str, str]]:
        """The non-empty filters as query parameters (for the "Older" link)."""
        pairs = [("pipeline", self.pipeline)]
        pairs += [("state", state) for state in self.states]
        pairs += [("trigger", self.trigger), ("schedule", self.schedule)]
        pairs += [("window", self.window)]
        pairs += [("since", self.since), ("until", self.until)]
        return [(key, value) for key, value in pairs if value]

    def url(self, cursor: str | None = None) -> str:
        """The runs list's URL with these filters (and a page cursor)."""
        pairs = self.params() + ([("cursor", cursor)] if cursor else [])
        return "/" + ("?" + urlencode(pairs) if pairs else "")

    @property
    def active(self) -> bool:
        return bool(self.params())


def run_filters(query: Mapping[str, str], states: Sequence[str]) -> RunFilters:
    """The runs list's filters from its query string (``states``: every ``state`` given)."""
    return RunFilters(
        pipeline=query.get("pipeline", "").strip(),
        states=tuple(state for state in states if state),
        trigger=query.get("trigger", "").strip(),
        schedule=query.get("schedule", "").strip(),
        window=query.get("window", "").strip(),
        since=query.get("since", "").strip(),
        until=query.get("until", "").strip(),
    )


def parse_time(text: str, name: str) -> datetime | None:
    """A time typed in the filter form: ISO 8601 (a ``datetime-local`` input's
    ``2025-03-01T14:30``, or a date), read as UTC unless it carries an offset.

    Raises:
        InvalidArgument: the text is not such a time.
    """
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(
            f"`{name}` must be a date and time such as 2025-03-01T14:30 (UTC), not `{text}`"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
