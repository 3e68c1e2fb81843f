"""Stable content hashes of values.

:func:`content_hash` identifies a *value*: equal values of the same type hash equal in every
process (whatever ``PYTHONHASHSEED``), distinct values hash distinct. Cache keys are built
from it and from the code's hash (:func:`glasspane.fingerprint.code_hash`).

Invariants:

- A hash is 64 lowercase hex characters: the sha256 of a *preimage* that starts with a tag
  and the value's qualified type name, followed by length-prefixed parts. Containers hash
  their children first and combine the 32-byte child digests, so no two encodings overlap.
- The type is always part of the preimage: ``1``, ``1.0``, ``True`` and ``"1"`` differ.
- Unordered containers (dict, set, frozenset) are canonicalised by sorting child digests.
- The last resort is the cloudpickle bytes of the value under the tag ``pickle:``, which no
  typed preimage starts with, so a pickled hash never collides with a typed one.
- Handlers for numpy, pandas, pydantic and scikit-learn types are registered the first time a
  hash is asked for after that library has been imported, never by importing it here:
  ``import glasspane.hashing`` stays fast.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import sys
import threading
from collections.abc import Callable
from typing import Any

from .errors import SerializationError

__all__ = ["content_hash", "register_hasher"]

_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: the class was defined in Python, not in C.


class _Cycle(Exception):
    """A value contains itself; the whole value is hashed by its pickle instead."""


_state = threading.local()


def _type_name(type_: type) -> str:
    return f"{type_.__module__}.{type_.__qualname__}"


def _mix(tag: str, type_: type, *parts: bytes | memoryview) -> bytes:
    """Digest of ``tag:type\\0`` followed by each part, length-prefixed (a part may be a
    byte view of an array: hashed where it lies, never copied)."""
    h = hashlib.sha256(f"{tag}:{_type_name(type_)}\0".encode())
    for part in parts:
        size = part.nbytes if isinstance(part, memoryview) else len(part)
        h.update(size.to_bytes(8, "big"))
        h.update(part)
    return h.digest()


def _bytes_of(array: Any) -> memoryview:
    """The bytes of a numpy array in C order, as a view (copied only if not contiguous)."""
    import numpy as np

    flat = np.ascontiguousarray(array).reshape(-1)
    try:
        return memoryview(flat.view(np.uint8))  # type: ignore[arg-type]
    except (TypeError, ValueError):  # a zero-size item dtype: no view; the bytes are tiny
        return memoryview(flat.tobytes())


def _text(value: str) -> bytes:
    return str.encode(value, "utf-8", "surrogatepass")


def _enter(value: Any) -> int:
    active: set[int] = _state.__dict__.setdefault("active", set())
    key = id(value)
    if key in active:
        raise _Cycle
    active.add(key)
    return key


def _leave(key: int) -> None:
    _state.active.discard(key)


# -- the extensible part -------------------------------------------------------------------


@functools.singledispatch
def _hash(value: Any) -> bytes:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = [f.name for f in dataclasses.fields(value)]
        return _container("dataclass", value, names, lambda: [getattr(value, n) for n in names])
    if _has_plain_state(value):
        state = vars(value)
        return _container("object", value, sorted(state), lambda: [state[k] for k in sorted(state)])
    return _pickled(value)


def _container(tag: str, value: Any, names: list[str], children: Callable[[], list]) -> bytes:
    key = _enter(value)
    try:
        parts = [_text(n) for n in names] + [_hash(child) for child in children()]
    finally:
        _leave(key)
    return _mix(tag, type(value), *parts)


def _has_plain_state(value: Any) -> bool:
    """True for instances of Python classes that pickle exactly their ``__dict__``."""
    cls = type(value)
    plain = (
        cls.__reduce_ex__ is object.__reduce_ex__
        and cls.__reduce__ is object.__reduce__
        and getattr(cls, "__getstate__", None) is getattr(object, "__getstate__", None)
    )
    return (
        plain
        and isinstance(getattr(value, "__dict__", None), dict)
        and all(c is object or c.__flags__ & _HEAPTYPE for c in cls.__mro__)
        and not any("__slots__" in vars(c) for c in cls.__mro__)
    )


def _pickled(value: Any) -> bytes:
    import cloudpickle

    try:
        data = cloudpickle.dumps(value, protocol=5)
    except Exception as exc:
        name = type(value).__qualname__
        raise SerializationError(
            f"cannot hash a value of type `{name}`: it cannot be pickled ({exc}); pass a "
            f"picklable value or register a hasher for `{name}` with glasspane.register_hasher"
        ) from exc
    return _mix("pickle", type(value), data)


@_hash.register(type(None))
def _(value: None) -> bytes:
    return _mix("none", type(value))


@_hash.register(bool)
def _(value: bool) -> bytes:
    return _mix("bool", type(value), b"1" if value else b"0")


@_hash.register(int)
def _(value: int) -> bytes:
    return _mix("int", type(value), int.__repr__(value).encode())


@_hash.register(float)
def _(value: float) -> bytes:
    # repr is exact for floats; every nan reads "nan", and -0.0 stays distinct from 0.0.
    return _mix("float", type(value), float.__repr__(value).encode())


@_hash.register(str)
def _(value: str) -> bytes:
    return _mix("str", type(value), _text(value))


@_hash.register(bytes)
@_hash.register(bytearray)
@_hash.register(memoryview)
def _(value: bytes | bytearray | memoryview) -> bytes:
    data = value.tobytes() if isinstance(value, memoryview) else bytes(value)
    return _mix("bytes", type(value), data)


@_hash.register(list)
@_hash.register(tuple)
def _(value: list | tuple) -> bytes:
    return _container("sequence", value, [], lambda: list(value))


@_hash.register(dict)
def _(value: dict) -> bytes:
    key = _enter(value)
    try:
        pairs = sorted((_hash(k), _hash(v)) for k, v in value.items())
    finally:
        _leave(key)
    return _mix("dict", type(value), *(part for pair in pairs for part in pair))


@_hash.register(set)
@_hash.register(frozenset)
def _(value: set | frozenset) -> bytes:
    key = _enter(value)
    try:
        digests = sorted(_hash(item) for item in value)
    finally:
        _leave(key)
    return _mix("set", type(value), *digests)


@_hash.register(enum.Enum)
def _(value: enum.Enum) -> bytes:
    return _mix("enum", type(value), _text(value.name))


# -- third-party types, registered lazily --------------------------------------------------


def _register_numpy() -> None:
    import numpy as np

    @_hash.register(np.ndarray)
    def _(value: np.ndarray) -> bytes:
        header = [repr(value.dtype.descr).encode(), repr(value.shape).encode()]
        if value.dtype.hasobject:  # the bytes would be pointers: hash the elements instead
            return _mix("ndarray-object", type(value), *header, _hash(value.tolist()))
        return _mix("ndarray", type(value), *header, _bytes_of(value))

    @_hash.register(np.generic)
    def _(value: np.generic) -> bytes:
        return _mix("npscalar", type(value), repr(value.dtype.descr).encode(), value.tobytes())


def _register_pandas() -> None:
    import numpy as np
    import pandas as pd
    from pandas.util import hash_pandas_object

    def values(obj: pd.Series | pd.Index) -> bytes | memoryview:
        # numbers, bools, dates and durations in numpy dtypes: their bytes, where they lie (as
        # an ndarray's; the dtype is hashed beside them). Four times faster than
        # hash_pandas_object, which costs 0.3 s per 100 MB of floats.
        if isinstance(obj.dtype, np.dtype) and obj.dtype.kind in "biufcmM":
            return _bytes_of(obj.to_numpy())
        # hash_pandas_object stringifies mixed object values ([1, "1"] would equal ["1", "1"]),
        # so only plain string columns go through it; other object columns hash per element.
        if obj.dtype == object and pd.api.types.infer_dtype(obj, skipna=True) not in (
            "string",
            "empty",
        ):
            return _hash(obj.tolist())
        return _bytes_of(hash_pandas_object(obj, index=False).to_numpy())

    @_hash.register(pd.Index)
    def _(value: pd.Index) -> bytes:
        # RangeIndex(2) and Index([0, 1]) hold the same labels: hash them alike.
        kind = pd.MultiIndex if isinstance(value, pd.MultiIndex) else pd.Index
        names = _hash(list(value.names))
        return _mix("pandas-index", kind, names, repr(value.dtype).encode(), values(value))

    @_hash.register(pd.Series)
    def _(value: pd.Series) -> bytes:
        parts = [_hash(value.name), repr(value.dtype).encode(), _hash(value.index), values(value)]
        return _mix("pandas-series", type(value), *parts)

    @_hash.register(pd.DataFrame)
    def _(value: pd.DataFrame) -> bytes:
        columns = [values(value.iloc[:, i]) for i in range(value.shape[1])]
        dtypes = [repr(dtype).encode() for dtype in value.dtypes]
        parts = [_hash(value.columns), _hash(value.index), *dtypes, *columns]
        return _mix("pandas-frame", type(value), *parts)


def _register_pydantic() -> None:
    from pydantic import BaseModel

    @_hash.register(BaseModel)
    def _(value: BaseModel) -> bytes:
        private = getattr(value, "__pydantic_private__", None) or {}  # part of its equality
        return _mix("pydantic", type(value), _hash(value.model_dump()), _hash(dict(private)))


def _register_sklearn() -> None:
    from sklearn.base import BaseEstimator

    @_hash.register(BaseEstimator)
    def _(value: BaseEstimator) -> bytes:
        # every attribute: estimators keep what they learned in private ones too (KNN's
        # _fit_X), and two models differing only there must not hash alike
        return _mix("sklearn", type(value), _hash(dict(vars(value))))


_LAZY: dict[str, Callable[[], None]] = {
    "numpy": _register_numpy,
    "pandas": _register_pandas,
    "pydantic": _register_pydantic,
    "sklearn": _register_sklearn,
}
_lazy_lock = threading.Lock()


def _load_lazy() -> None:
    """Register the handlers of every library imported so far (each once)."""
    if not _LAZY:
        return
    with _lazy_lock:
        for name in [n for n in _LAZY if n in sys.modules]:
            try:
                _LAZY[name]()
            except ImportError:  # the library is still half-imported; try again next time
                continue
            del _LAZY[name]


# -- public API -------------------------------------------------------------------------


def register_hasher(type_: type, fn: Callable[[Any], Any]) -> None:
    """Teach :func:`content_hash` how to identify values of ``type_`` (and its subclasses).

    Args:
        type_: The class to register.
        fn: Maps a value to a stand-in that identifies it, e.g. its bytes, a string, or a
            tuple of hashable fields. The stand-in is hashed in turn, together with the
            value's type name.

    Example:
        ``register_hasher(Booster, lambda b: bytes(b.save_raw()))``
    """
    _load_lazy()  # so a built-in registered later can never replace the user's handler

    def handler(value: Any) -> bytes:
        return _mix("custom", type(value), _hash(fn(value)))

    _hash.register(type_, handler)


def content_hash(value: Any) -> str:
    """Return the stable content hash of ``value`` as 64 hex characters.

    Equal values of the same type hash equal in every process. Supported: None, bool, int,
    float, str, bytes, list, tuple, dict, set, frozenset, enums, dataclasses, plain objects
    (by their ``__dict__``), numpy arrays and scalars, pandas DataFrame/Series/Index,
    pydantic models, scikit-learn estimators (parameters and fitted ``*_`` attributes), any
    type given to :func:`register_hasher`; anything else by its cloudpickle bytes.

    Args:
        value: The value to identify.

    Returns:
        The sha256-based hash, 64 lowercase hex characters.

    Raises:
        SerializationError: the value (or a part of it) has no hasher and cannot be pickled.
    """
    _load_lazy()
    outer = getattr(_state, "active", None)  # a user hasher may call content_hash itself
    _state.active = set()
    try:
        return _hash(value).hex()
    except _Cycle:
        return _pickled(value).hex()
    except SerializationError:
        raise
    except Exception as exc:
        name = type(value).__qualname__
        raise SerializationError(
            f"cannot hash a value of type `{name}`: {type(exc).__name__}: {exc}; register a "
            f"hasher for `{name}` with glasspane.register_hasher"
        ) from exc
    finally:
        _state.active = outer if outer is not None else set()
