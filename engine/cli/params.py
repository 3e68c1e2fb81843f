"""Parsing ``-p name=value`` options into pipeline parameters.

A value is read as JSON where it parses (``-p grid=[0.1,1]``, ``-p n=300``) and kept as the
raw string otherwise; for a parameter annotated ``str`` the raw string is always kept
(``-p tag=123`` stays ``"123"``). The pipeline's parameter model validates the result.
"""

from __future__ import annotations

import json
import typing
from typing import Any

from ..errors import ParameterError


def parse_params(items: list[str], fields: dict[str, Any], pipeline: str) -> dict[str, Any]:
    """Turn ``["n=300", "grid=[1,2]"]`` into ``{"n": 300, "grid": [1, 2]}``."""
    params: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(f"-p `{item}` is not of the form NAME=VALUE; for example -p n=300")
        if name in params:
            raise ParameterError(f"parameter `{name}` of pipeline `{pipeline}` given twice")
        field = fields.get(name)
        if field is not None and _is_str(field.annotation):
            params[name] = raw
            continue
        try:
            params[name] = json.loads(raw)
        except ValueError:
            params[name] = raw
    return params


def _is_str(annotation: Any) -> bool:
    if annotation is str:
        return True
    args = typing.get_args(annotation)
    return bool(args) and str in args and all(a in (str, type(None)) for a in args)
