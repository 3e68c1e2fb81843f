"""Materializers: how a value becomes bytes in the artifact store, and back.

A :class:`Materializer` claims values it can store (``can_handle``), turns them into bytes
(``dump``) and back (``load``). :func:`materializer_for` picks one by type, in this order:

1. materializers registered with ``register_materializer(m)`` (newest first);
2. built-ins: pandas DataFrame → ``parquet``, numpy array → ``npy``, JSON-able → ``json``;
3. materializers registered with ``register_materializer(m, first=False)``;
4. ``pickle`` (cloudpickle), which takes anything picklable.

Invariants: a built-in stores a value only if loading gives back an equal value of the same
type; anything else goes on to the next candidate (a tuple is not JSON, it would come back
as a list; an object array is not npy; a frame that parquet would alter is pickled).
Materializer names are unique. Nothing here imports pandas, numpy or pyarrow until a value
of theirs is seen, and then only through :func:`~glasspane.artifacts.loading.import_module`,
since values are stored and loaded on many threads at once. :func:`preview` builds
the small JSON summary shown in the UI and never raises.
"""

from __future__ import annotations

import io
import json
import math
import sys
from typing import Any, Protocol, runtime_checkable

from ..errors import ArtifactError, ConfigError, SerializationError
from .loading import import_module, unpickle

__all__ = [
    "Materializer",
    "dump",
    "get_materializer",
    "materializer_for",
    "preview",
    "register_materializer",
    "type_name",
]

_PREVIEW_CHARS = 200
_PREVIEW_COLUMNS = 20
_PREVIEW_ROWS = 5


@runtime_checkable
class Materializer(Protocol):
    """Stores one family of values as bytes.

    Attributes:
        name: Unique name recorded with each artifact, used to pick the loader.
        extension: File extension of the stored blob, without the dot.
    """

    name: str
    extension: str

    def can_handle(self, value: Any) -> bool:
        """Return True if this materializer can store ``value`` faithfully."""
        ...

    def dump(self, value: Any) -> bytes:
        """Serialize ``value``; raise any exception if it cannot."""
        ...

    def load(self, data: bytes) -> Any:
        """Rebuild the value from bytes written by :meth:`dump`."""
        ...


def type_name(value: Any) -> str:
    """Return the qualified type name of ``value`` (``int``, ``pandas.DataFrame`` style).

    Builtins are bare (``dict``); others are ``<top-level package>.<qualname>``, which is the
    name users import them by for the common libraries.
    """
    cls = type(value)
    module = cls.__module__.split(".")[0]
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _loaded(module: str, attr: str) -> Any:
    """The class ``module.attr`` if ``module`` is imported already; never imports it."""
    mod = sys.modules.get(module)
    return getattr(mod, attr, None) if mod is not None else None


class ParquetMaterializer:
    """pandas DataFrames as parquet through pyarrow, index and column names included."""

    name = "parquet"
    extension = "parquet"

    def can_handle(self, value: Any) -> bool:
        frame = _loaded("pandas", "DataFrame")
        return frame is not None and type(value) is frame

    def dump(self, value: Any) -> bytes:
        pa, pq = import_module("pyarrow"), import_module("pyarrow.parquet")
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(value, preserve_index=None), buffer)
        data = buffer.getvalue()
        # Mixed column labels, object columns of lists, pandas-2 object strings...: parquet
        # reads these back changed; such a frame is left to the next materializer.
        if not _same_frame(value, self.load(data)):
            raise ValueError("parquet does not round-trip this frame exactly")
        return data

    def load(self, data: bytes) -> Any:
        pq = import_module("pyarrow.parquet")
        import_module("pandas")  # to_pandas imports it
        return pq.read_table(io.BytesIO(data)).to_pandas()


def _same_frame(a: Any, b: Any) -> bool:
    return (
        a.equals(b)
        and list(a.dtypes) == list(b.dtypes)
        and _same_index(a.columns, b.columns)
        and _same_index(a.index, b.index)
    )


def _same_index(a: Any, b: Any) -> bool:
    import pandas as pd

    def kind(index: Any) -> type:  # columns 0..n-1 come back as Index, not RangeIndex: alike
        return pd.Index if isinstance(index, pd.RangeIndex) else type(index)

    return (
        kind(a) is kind(b)
        and a.dtype == b.dtype
        and list(a.names) == list(b.names)
        and a.equals(b)
        # object labels compare equal across types (1 == 1.0 == True): compare the types too
        and (a.dtype != object or [type(x) for x in a] == [type(x) for x in b])
    )


class NpyMaterializer:
    """numpy arrays as ``.npy`` (``allow_pickle=False``); object arrays are left to pickle."""

    name = "npy"
    extension = "npy"

    def can_handle(self, value: Any) -> bool:
        ndarray = _loaded("numpy", "ndarray")
        return ndarray is not None and type(value) is ndarray and not value.dtype.hasobject

    def dump(self, value: Any) -> bytes:
        buffer = io.BytesIO()
        import_module("numpy").save(buffer, value, allow_pickle=False)
        return buffer.getvalue()

    def load(self, data: bytes) -> Any:
        return import_module("numpy").load(io.BytesIO(data), allow_pickle=False)


def _json_able(value: Any) -> bool:
    """None, bool, int, finite float, str, and lists / str-keyed dicts of these (exact types)."""
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(_json_able(item) for item in value)
    if kind is dict:
        return all(type(k) is str and _json_able(v) for k, v in value.items())
    return False


class JsonMaterializer:
    """Plain data (None, bool, int, float, str, lists, str-keyed dicts) as JSON text."""

    name = "json"
    extension = "json"

    def can_handle(self, value: Any) -> bool:
        try:
            return _json_able(value)
        except RecursionError:
            return False

    def dump(self, value: Any) -> bytes:
        return json.dumps(value, allow_nan=False).encode("ascii")

    def load(self, data: bytes) -> Any:
        return json.loads(data)


class PickleMaterializer:
    """Anything picklable, through cloudpickle (so lambdas and local classes work too)."""

    name = "pickle"
    extension = "pkl"

    def can_handle(self, value: Any) -> bool:
        return True

    def dump(self, value: Any) -> bytes:
        return import_module("cloudpickle").dumps(value, protocol=5)

    def load(self, data: bytes) -> Any:
        return unpickle(data)


_FIRST: list[Materializer] = []
_BUILTIN: tuple[Materializer, ...] = (ParquetMaterializer(), NpyMaterializer(), JsonMaterializer())
_LAST: list[Materializer] = []
_PICKLE = PickleMaterializer()


def _candidates() -> list[Materializer]:
    return [*_FIRST, *_BUILTIN, *_LAST, _PICKLE]


def register_materializer(materializer: Materializer, *, first: bool = True) -> None:
    """Add a materializer for your own types.

    Args:
        materializer: An object with ``name``, ``extension``, ``can_handle``, ``dump`` and
            ``load`` (see :class:`Materializer`). A materializer registered earlier under the
            same name is replaced.
        first: True (default) to check it before every other materializer; False to check
            it after the built-ins, just before the pickle fallback.

    Raises:
        ConfigError: ``materializer`` lacks a member or reuses a built-in name.
    """
    if not isinstance(materializer, Materializer):
        raise ConfigError(
            f"register_materializer() got `{type(materializer).__qualname__}`, which lacks "
            "name, extension, can_handle, dump or load; implement all five"
        )
    if materializer.name in {m.name for m in (*_BUILTIN, _PICKLE)}:
        raise ConfigError(
            f"materializer name `{materializer.name}` is taken by a built-in; pick another name"
        )
    for registry in (_FIRST, _LAST):
        registry[:] = [m for m in registry if m.name != materializer.name]
    if first:
        _FIRST.insert(0, materializer)
    else:
        _LAST.append(materializer)


def get_materializer(name: str) -> Materializer:
    """Return the materializer registered under ``name``.

    Raises:
        ArtifactError: no materializer has that name in this process.
    """
    for materializer in _candidates():
        if materializer.name == name:
            return materializer
    raise ArtifactError(
        f"no materializer named `{name}` is registered in this process; call "
        f"glasspane.register_materializer with it before loading the artifact"
    )


def materializer_for(value: Any) -> Materializer:
    """Return the first materializer that claims ``value`` (pickle if no other does).

    :func:`dump` may still pass the value on, when a built-in cannot store it faithfully.
    """
    for materializer in _candidates():
        if materializer.can_handle(value):
            return materializer
    return _PICKLE


def dump(value: Any, *, where: str = "") -> tuple[Materializer, bytes]:
    """Serialize ``value`` with the first materializer that claims it and succeeds.

    A built-in that cannot store the value faithfully passes it on to the next candidate;
    a failing user materializer is reported, since it claimed the value.

    Args:
        value: The value to store.
        where: Who produced the value, for error messages, e.g. ``"task `train`"``.

    Returns:
        The materializer used and the bytes it produced.

    Raises:
        SerializationError: no materializer could serialize the value.
    """
    fallible = {id(m) for m in _BUILTIN}  # built-ins that may pass a value on
    for materializer in _candidates():
        try:
            if not materializer.can_handle(value):
                continue
            return materializer, materializer.dump(value)
        except Exception as exc:
            if id(materializer) in fallible:
                continue
            raise _unserializable(value, where, materializer.name, exc) from exc
    raise _unserializable(value, where, _PICKLE.name, None)  # pragma: no cover - pickle claims all


def _unserializable(value: Any, where: str, name: str, exc: Exception | None) -> Exception:
    short = type(value).__qualname__
    subject = f"{where} returned `{short}`, which" if where else f"a value of type `{short}`"
    cause = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    return SerializationError(
        f"{subject} cannot be serialized by materializer `{name}`{cause}; return a picklable "
        f"value or register a materializer for `{short}` with glasspane.register_materializer"
    )


# -- previews -------------------------------------------------------------------------------


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
