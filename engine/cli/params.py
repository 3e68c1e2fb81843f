"""Parsing ``-p name=value`` options into pipeline parameters.

A value is read as JSON where it parses (``-p grid=[0.1,1]``, ``-p n=300``) and kept as the
raw string otherwise; for a parameter annotated ``str`` the raw string is always kept
(``-p tag=123`` stays ``"123"``). The pipeline's parameter model validates the result.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from ..errors import ParameterError


def split_param(item: str) -> tuple[str, str]:
    """``"n=300"`` -> ``("n", "300")``; anything without a name and ``=`` is a usage error."""
    name, sep, raw = item.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ParameterError(f"-p `{item}` is not of the form NAME=VALUE; for example -p n=300")
    return name, raw


def parse_params(items: list[str], fields: dict[str, Any], pipeline: str) -> dict[str, Any]:
    """Turn ``["n=300", "grid=[1,2]"]`` into ``{"n": 300, "grid": [1, 2]}``."""
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
        except ValueError as exc:
            if field is not None:
                _check_raw_string(item, name, raw, exc, field.annotation, pipeline)
            params[name] = raw
    return params


def _check_raw_string(
    item: str, name: str, raw: str, exc: ValueError, annotation: Any, pipeline: str
) -> None:
    """A VALUE that is not JSON is passed on as a string; say so when the parameter rejects one.

    Without this, ``-p grid=[0.1,1`` would only report "Input should be a valid list (got
    '[0.1,1')", hiding that the JSON was malformed.
    """
    from pydantic import ConfigDict, TypeAdapter, ValidationError

    try:
        adapter: TypeAdapter[Any] = TypeAdapter(
            annotation, config=ConfigDict(arbitrary_types_allowed=True)
        )
    except Exception:  # an annotation pydantic cannot adapt alone: the pipeline model decides
        return
    try:
        adapter.validate_python(raw)
    except ValidationError as invalid:
        reason = "; ".join(err["msg"] for err in invalid.errors())
        raise ParameterError(
            f"invalid parameter for pipeline `{pipeline}`: `{name}`: {reason} (got {raw!r}: "
            f"-p `{item}` is not valid JSON ({exc}), so it was read as a string, but `{name}` "
            f"expects {_type_name(annotation)}); write VALUE as JSON, e.g. -p n=300 or "
            "-p 'grid=[0.1, 1]' (quoted for the shell)"
        ) from None


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
