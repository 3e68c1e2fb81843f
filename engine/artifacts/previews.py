"""Previews: the small JSON summary of a stored value shown in the UI; never raises."""

from __future__ import annotations

import math
import sys
from typing import Any

__all__ = ["preview"]

_PREVIEW_CHARS = 200
_PREVIEW_COLUMNS = 20
_PREVIEW_ROWS = 5


def _loaded(module: str, attr: str) -> Any:
    """The class ``module.attr`` if ``module`` is imported already; never imports it."""
    mod = sys.modules.get(module)
    return getattr(mod, attr, None) if mod is not None else None


def _truncate(text: str) -> str:
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "…"


def _safe_repr(value: Any) -> str:
    try:
        return _truncate(repr(value))
    except Exception:
        return f"<{type(value).__name__} object>"


def _json_safe(value: Any) -> Any:
    """A JSON-safe stand-in for one cell: scalars as themselves, anything else as str()."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        value = item()
    if value is None or type(value) in (bool, int):
        return value
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is str:
        return _truncate(value)
    return _truncate(str(value))


def _frame_preview(df: Any) -> dict[str, Any]:
    columns = list(df.columns[:_PREVIEW_COLUMNS])
    head = df.iloc[:_PREVIEW_ROWS, :_PREVIEW_COLUMNS]
    rows = [
        {str(col): _json_safe(cell) for col, cell in zip(columns, row, strict=True)}
        for row in head.itertuples(index=False, name=None)
    ]
    return {
        "shape": [int(df.shape[0]), int(df.shape[1])],
        "columns": [str(c) for c in columns],
        "dtypes": {str(c): str(t) for c, t in zip(columns, head.dtypes, strict=True)},
        "head": rows,
    }


def preview(value: Any) -> Any:
    """Return a small JSON-able summary of ``value`` for the UI; never raises.

    DataFrame → shape, first 20 columns, their dtypes and the first 5 rows; ndarray → shape
    and dtype; scalars → the value (strings cut at 200 characters); list, tuple, set and
    dict → length and a short repr; anything else → a short repr.
    """
    try:
        frame, ndarray = _loaded("pandas", "DataFrame"), _loaded("numpy", "ndarray")
        if frame is not None and isinstance(value, frame):
            return _frame_preview(value)
        if ndarray is not None and isinstance(value, ndarray):
            return {"shape": list(value.shape), "dtype": str(value.dtype)}
        scalars = (bool, int, float, str, _loaded("numpy", "generic") or bool)
        if value is None or isinstance(value, scalars):
            return {"value": _json_safe(value)}
        if isinstance(value, (list, tuple, dict, set, frozenset)):
            return {"len": len(value), "repr": _safe_repr(value)}
        return {"repr": _safe_repr(value)}
    except Exception:
        return {"repr": f"<{type(value).__name__} object>"}
