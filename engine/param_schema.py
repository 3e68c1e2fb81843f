"""A pipeline's parameters without its code: the JSON schema each run stores, and checking
values against it.

A run stores its pipeline's parameter schema (pydantic's ``model_json_schema()``) with the
pipeline (``pipelines.params_schema``). A process that must not import the pipeline's code —
the web UI, the scheduler — rebuilds a parameter model from that schema and validates text
values (a form's fields) the way ``glasspane run -p NAME=VALUE`` does, with the same
messages. The child process that runs the pipeline validates again against the real model.

Secret parameters (``SecretStr``) are ``{"type": "string", "format": "password",
"writeOnly": true}`` in the schema.
"""

from __future__ import annotations

import functools
import operator
import typing
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, SecretBytes, SecretStr, create_model

from .dsl.pipeline import validate_params
from .errors import ParameterError
from .params import parse_params

_TYPES: dict[str, Any] = {
    "integer": int,
    "number": float,
    "boolean": bool,
    "null": type(None),
    "object": dict[str, Any],
}


def params_schema(model: type[BaseModel]) -> dict[str, Any] | None:
    """The JSON schema of a parameter model; ``None`` when a parameter's type has none (a
    class of the user's that pydantic cannot describe): such a pipeline is launched from code
    or the command line only."""
    try:
        return model.model_json_schema()
    except Exception:  # noqa: BLE001 - pydantic raises several kinds for undescribable types
        return None


def secret_names(schema: Mapping[str, Any] | None) -> set[str]:
    """The secret parameters of a schema (their values are never stored)."""
    props = (schema or {}).get("properties", {})
    return {name for name, prop in props.items() if _is_secret(prop)}


def _is_secret(prop: Mapping[str, Any]) -> bool:
    options = prop.get("anyOf", [prop])
    return any(o.get("format") == "password" for o in options)


def model_from_schema(pipeline: str, schema: Mapping[str, Any]) -> type[BaseModel]:
    """A pydantic model with the fields, types, defaults and required parameters ``schema``
    describes (types JSON Schema cannot say map to ``Any``)."""
    defs = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    fields: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        annotation = _annotation(prop, defs)
        default = ... if name in required else prop.get("default")
        fields[name] = (annotation, default)
    return create_model(f"{pipeline}_params", **fields)  # type: ignore[call-overload, no-any-return]


def _annotation(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> Any:
    ref = prop.get("$ref")
    if ref is not None:
        return _annotation(defs.get(ref.rpartition("/")[2], {}), defs)
    if len(prop.get("allOf", ())) == 1:
        return _annotation(prop["allOf"][0], defs)
    if "anyOf" in prop:
        options = [_annotation(o, defs) for o in prop["anyOf"]]
        return functools.reduce(operator.or_, options)  # `int | None`, as it was written
    if "enum" in prop:
        return Literal[tuple(prop["enum"])]
    kind = prop.get("type")
    if kind == "string":
        return SecretStr if prop.get("format") == "password" else str
    if kind == "array":
        items = prop.get("items")
        return list[_annotation(items, defs)] if items else list[Any]  # type: ignore[misc]
    return _TYPES.get(kind, Any) if isinstance(kind, str) else Any


def check_params(
    pipeline: str, schema: Mapping[str, Any] | None, raw: Mapping[str, str]
) -> dict[str, Any]:
    """Validate text values (``NAME=VALUE`` as on the command line) against a stored schema.

    An empty value of a parameter that is not a string counts as not given (a form's blank
    field: the default applies). Returns the values to launch the run with, JSON-able, secret
    ones included in clear (pass them on, never store them).

    Raises:
        ParameterError: a value does not parse or validate, a required one is missing, or a
            name is unknown — with the message ``glasspane run -p`` gives.
    """
    if schema is None:
        raise ParameterError(
            f"pipeline `{pipeline}` has no stored parameter schema (it has not run since "
            "glasspane started storing one, or a parameter's type has no JSON schema); launch "
            f"it from the command line: glasspane run REFERENCE -p NAME=VALUE"
        )
    model = model_from_schema(pipeline, schema)
    fields = model.model_fields
    items = [
        f"{name}={value}"
        for name, value in raw.items()
        if value != "" or (name in fields and _is_text(fields[name].annotation))
    ]
    values = validate_params(model, pipeline, parse_params(items, dict(fields), pipeline))
    return {name: _plain(value) for name, value in values.items()}


def _is_text(annotation: Any) -> bool:
    return annotation is str or str in typing.get_args(annotation)


def _plain(value: Any) -> Any:
    if isinstance(value, (SecretStr, SecretBytes)):
        secret = value.get_secret_value()
        return secret.decode() if isinstance(secret, bytes) else secret
    return value
