"""Parsing ``-p name=value`` options into pipeline parameters.

A value is read as JSON where it parses (``-p grid=[0.1,1]``, ``-p n=300``) and kept as the
raw string otherwise; for a parameter annotated ``str`` the raw string is always kept
(``-p tag=123`` stays ``"123"``).

Values are checked strictly against each parameter's annotation, as JSON: ``true`` is not an
``int``, nor is ``1.5`` or ``"3"``, and ``1`` is not a ``bool``; an integer is fine for a
``float``, and a string for a type JSON has no literal for (a path, a date, an enum). The
Python API validates laxly (``demo(n="3")`` works); on the command line a value of the wrong
type is far more often a mistake than an intent. The pipeline's parameter model then
validates the result as for any run.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Annotated, Any

from .errors import ParameterError

_EXAMPLES: dict[Any, str] = {int: "3", float: "0.5", bool: "true", list: "[1,2]", dict: '{"a":1}'}


def split_param(item: str) -> tuple[str, str]:
    """``"n=300"`` -> ``("n", "300")``; anything without a name and ``=`` is a usage error."""
    name, sep, raw = item.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ParameterError(f"-p `{item}` is not of the form NAME=VALUE; for example -p n=300")
    return name, raw


def parse_params(items: list[str], fields: dict[str, Any], pipeline: str) -> dict[str, Any]:
    """Turn ``["n=300", "grid=[1,2]"]`` into ``{"n": 300, "grid": [1, 2]}``.

    Args:
        items: the ``-p`` values, ``NAME=VALUE`` each.
        fields: the pipeline parameter model's ``model_fields``.
        pipeline: the pipeline's name, for messages.

    Raises:
        ParameterError: an item is malformed or given twice, or its value does not have the
            parameter's type (unknown names are left to the pipeline, which lists its own).
    """
    params: dict[str, Any] = {}
    for item in items:
        name, raw = split_param(item)
        if name in params:
            raise ParameterError(f"parameter `{name}` of pipeline `{pipeline}` given twice")
        field = fields.get(name)
        if field is not None and _is_str(field.annotation):
            params[name] = raw
            continue
        try:
            params[name] = json.loads(raw)
            parsed: ValueError | None = None
        except ValueError as exc:
            params[name] = raw
            parsed = exc
        if field is not None:
            _check(item, name, params[name], parsed, field, pipeline)
    return params


def _check(
    item: str, name: str, value: Any, not_json: ValueError | None, field: Any, pipeline: str
) -> None:
    """Validate ``value`` strictly, as JSON, against the parameter's annotation.

    It is first validated laxly, as the pipeline will: a JSON value the pipeline rejects anyway
    is left to it (its message lists every parameter); a VALUE that is not JSON gets its own
    message, since "Input should be a valid list" would hide that the JSON was malformed.
    """
    from pydantic import ConfigDict, PydanticUserError, TypeAdapter, ValidationError

    annotation = field.annotation
    if field.metadata:  # validators and constraints from Annotated[...] apply too
        annotation = Annotated.__class_getitem__((annotation, *field.metadata))  # type: ignore[attr-defined]
    try:
        try:  # a model or dataclass brings its own config and takes none here
            lax: TypeAdapter[Any] = TypeAdapter(
                annotation, config=ConfigDict(arbitrary_types_allowed=True)
            )
        except PydanticUserError:
            lax = TypeAdapter(annotation)
        try:
            lax.validate_python(value)
        except ValidationError:
            if not_json is None:
                return
            raise
        strict: TypeAdapter[Any] = TypeAdapter(annotation)
        strict.validate_json(json.dumps(value), strict=True)
    except ValidationError as invalid:
        reason = "; ".join(
            (f"at {'.'.join(str(p) for p in err['loc'])}: " if err["loc"] else "") + err["msg"]
            for err in invalid.errors()
        )
        expects = _type_name(field.annotation)
        if not_json is not None:
            # Without this, -p grid=[0.1,1 would only report "Input should be a valid list",
            # hiding that the JSON was malformed.
            raise ParameterError(
                f"invalid parameter for pipeline `{pipeline}`: `{name}`: {reason} (got {value!r}"
                f": -p `{item}` is not valid JSON ({not_json}), so it was read as a string, but "
                f"`{name}` expects {expects}); write VALUE as JSON, e.g. -p n=300 or "
                "-p 'grid=[0.1, 1]' (quoted for the shell)"
            ) from None
        example = _EXAMPLES.get(field.annotation)
        hint = f", e.g. -p {name}={example}" if example else ""
        raise ParameterError(
            f"invalid parameter for pipeline `{pipeline}`: `{name}`: {reason} (got the JSON "
            f"{_json_kind(value)} {json.dumps(value)} from -p `{item}`, which the command line "
            f"does not convert to {expects}); write a value of that type{hint}"
        ) from None
    except Exception:  # an annotation pydantic cannot check alone: the pipeline model decides
        return


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _type_name(annotation: Any) -> str:
    name = getattr(annotation, "__name__", None)
    if name and not typing.get_args(annotation):
        return str(name)
    return str(annotation).replace("typing.", "")


def _is_str(annotation: Any) -> bool:
    if annotation is str:
        return True
    # only `str | None` and the like: `list[str]` has `str` among its args too, but its
    # value is JSON (`-p tags=["a","b"]`)
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return False
    args = typing.get_args(annotation)
    return str in args and all(a in (str, type(None)) for a in args)
