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
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol, TypeVar, runtime_checkable

from ..errors import ArtifactError, ConfigError, SerializationError
from .columnar import NpyMaterializer, ParquetMaterializer
from .loading import import_module, unpickle, unpickle_file
from .previews import preview

__all__ = [
    "Materializer",
    "dump",
    "dump_with",
    "get_materializer",
    "load_from",
    "materializer_for",
    "preview",
    "register_materializer",
    "type_name",
]


@runtime_checkable
class Materializer(Protocol):
    """Stores one family of values as bytes.

    Two more methods are optional, for values too large to hold twice: ``dump_to(value,
    file)`` writes the bytes into a binary file instead of returning them (the store passes
    a file that hashes while it writes), and ``load_from(source)`` rebuilds the value from a
    local path or a binary file. The built-ins have both.

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

    def dump_to(self, value: Any, file: BinaryIO) -> None:
        # protocol 5 writes large buffers (numpy arrays) straight to the file, uncopied
        import_module("cloudpickle").dump(value, file, protocol=5)

    def load(self, data: bytes) -> Any:
        return unpickle(data)

    def load_from(self, source: str | BinaryIO) -> Any:
        if isinstance(source, str):
            with open(source, "rb") as fh:
                return unpickle_file(fh)
        return unpickle_file(source)


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


T = TypeVar("T")


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

    def into_bytes(fill: Callable[[BinaryIO], None]) -> bytes:
        buffer = io.BytesIO()
        fill(buffer)
        return buffer.getvalue()

    return dump_with(value, into_bytes, where=where)


def dump_with(
    value: Any,
    write: Callable[[Callable[[BinaryIO], None]], T],
    *,
    where: str = "",
) -> tuple[Materializer, T]:
    """Serialize ``value`` straight into a file: ``write(fill)`` opens the
    file, calls ``fill(file)`` and returns what it made of it (a path, a digest...).

    The first materializer that claims the value and succeeds wins, as in :func:`dump`;
    one with ``dump_to(value, file)`` streams into the file, any other writes the bytes of
    its ``dump``. ``write`` must discard the file when ``fill`` raises; an
    :class:`~glasspane.errors.ArtifactError` from ``write`` (the file could not be written)
    is raised as it is, never passed on to another materializer.

    Raises:
        SerializationError: no materializer could serialize the value.
        ArtifactError: ``write`` failed.
    """
    fallible = {id(m) for m in _BUILTIN}  # built-ins that may pass a value on
    for materializer in _candidates():
        try:
            if not materializer.can_handle(value):
                continue
            return materializer, write(_filler(materializer, value))
        except ArtifactError:
            raise
        except Exception as exc:
            if id(materializer) in fallible:
                continue
            raise _unserializable(value, where, materializer.name, exc) from exc
    raise _unserializable(value, where, _PICKLE.name, None)  # pragma: no cover - pickle claims all


def _filler(materializer: Materializer, value: Any) -> Callable[[BinaryIO], None]:
    dump_to = getattr(materializer, "dump_to", None)
    if callable(dump_to):
        return lambda file: dump_to(value, file)

    def write_bytes(file: BinaryIO) -> None:
        file.write(materializer.dump(value))

    return write_bytes


def load_from(materializer: Materializer, source: str | BinaryIO) -> Any:
    """Load with ``materializer`` from a local path or a binary file: through its
    ``load_from(source)`` when it has one, else its ``load`` of the whole bytes."""
    reader = getattr(materializer, "load_from", None)
    if callable(reader):
        return reader(source)
    if isinstance(source, str):
        with open(source, "rb") as fh:
            return materializer.load(fh.read())
    return materializer.load(source.read())


def _unserializable(value: Any, where: str, name: str, exc: Exception | None) -> Exception:
    short = type(value).__qualname__
    subject = f"{where} returned `{short}`, which" if where else f"a value of type `{short}`"
    cause = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    return SerializationError(
        f"{subject} cannot be serialized by materializer `{name}`{cause}; return a picklable "
        f"value or register a materializer for `{short}` with glasspane.register_materializer"
    )
