"""Loading stored values on any thread without taking part in an import lock cycle.

Unpickling imports the module of every class it meets, and CPython imports ``a.b.c`` by
taking the module lock of ``a.b.c`` first and importing its parents while holding it. A
thread doing that while another thread runs ``a.b``'s ``__init__``, which imports
``a.b.c``, closes a lock cycle; importlib breaks it by raising ``_DeadlockError`` in one
thread, or by handing one a partially initialised module ("cannot import name ... from
partially initialized module"). Library module bodies do the same (``sklearn.kernel_ridge``
imports ``sklearn.linear_model._ridge``). The threads executor loads cached outputs on
several threads at once, in a process that may not have imported their libraries yet, so
reruns of ordinary scikit-learn pipelines failed this way.

Invariants:

- Every import glasspane makes to store or load a value goes through
  :func:`import_module`: one glasspane thread at a time (a process-wide re-entrant lock,
  so glasspane's own loaders never race one another, whatever the libraries import),
  parents before children (a child's import then never waits for its parent while holding
  the child's lock), and an import that still loses a race with a thread glasspane does
  not control is retried once that thread has had time to finish.
- :func:`unpickle` resolves each global a pickle names through :func:`import_module`, from
  the C unpickler's ``find_class`` hook: no pass over the bytes, so a large pickle costs
  what ``pickle.loads`` costs, plus one dictionary lookup per distinct global when its
  module is already imported (the common case, which never takes the lock).
- :func:`load` runs a materializer's ``load`` and, if the load as a whole lost an import
  race (an import inside ``__setstate__`` or a user materializer), runs it again, holding
  the lock so that no other glasspane loader imports meanwhile.
"""

from __future__ import annotations

import functools
import importlib
import io
import pickle
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, BinaryIO, TypeVar

__all__ = ["import_module", "is_import_race", "load", "unpickle", "unpickle_file"]

T = TypeVar("T")

_LOCK = threading.RLock()
# A loader holds the lock while it imports a library, which takes seconds for large ones
# on a busy machine. Past this wait a loader imports without it (retries still cover
# races), so that a thread holding a module lock while it loads a value (a module body
# calling glasspane) cannot wait forever on a loader that waits for that module.
_LOCK_WAIT = 60.0
# Pauses before each retry of an import that lost a race: ~2.6 s in all, longer than the
# other thread's import of a large library takes.
_RETRY_DELAYS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.5, 0.5, 0.5, 0.5)


def _race(exc: BaseException) -> str | None:
    """``"deadlock"`` or ``"partial"`` if ``exc`` (or its cause) is an import race, else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        message = str(current)
        if isinstance(current, RuntimeError) and "deadlock detected" in message:
            return "deadlock"
        if isinstance(current, ImportError) and "partially initialized module" in message:
            return "partial"
        current = current.__cause__ or current.__context__
    return None


def is_import_race(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is importlib breaking a lock cycle.

    That is a ``RuntimeError`` saying "deadlock detected" (importlib's ``_DeadlockError``)
    or an ``ImportError`` from a "partially initialized module" that another thread was
    still importing.
    """
    return _race(exc) is not None


def _imported(name: str) -> ModuleType | None:
    """The module ``name`` if it is fully imported; None if absent or still initialising."""
    module = sys.modules.get(name)
    if module is None or getattr(getattr(module, "__spec__", None), "_initializing", False):
        return None
    return module


def _importing() -> bool:
    """Whether some module is being imported (by another thread, when we hold no import)."""
    return any(
        getattr(getattr(module, "__spec__", None), "_initializing", False)
        for module in list(sys.modules.values())
    )


def _retrying(action: Callable[[], Any]) -> Any:
    """``action()``, run again after a pause while it loses import races.

    A deadlock error is always a race. A partially initialised module is one only while
    another thread is importing: once none is, one more try tells a lost race (it works
    now) from a circular import in the library itself (it fails again, and is raised).
    """
    delays = iter(_RETRY_DELAYS)
    settled = False
    while True:
        try:
            return action()
        except (Exception, SystemExit) as exc:
            race, delay = _race(exc), next(delays, None)
            if race is None or delay is None or settled:
                raise
            if race == "partial" and not _importing():
                settled, delay = True, 0.0
        time.sleep(delay)


def import_module(name: str) -> ModuleType:
    """Import the module ``name`` without taking part in an import lock cycle.

    Parents are imported first, each waiting until another thread importing it has
    finished; one glasspane thread imports at a time; an import that loses a race with
    another thread is retried after a pause. A module already imported returns at once.

    Args:
        name: An absolute module name such as ``sklearn.linear_model._ridge``.

    Raises:
        ImportError: the module (or a parent) cannot be imported.
        RuntimeError: the import still deadlocked after ~2.6 s of retries.
    """
    module = _imported(name)
    if module is not None:
        return module
    locked = _LOCK.acquire(timeout=_LOCK_WAIT)
    try:
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            if _imported(prefix) is None:
                _retrying(functools.partial(importlib.import_module, prefix))
        return importlib.import_module(name)
    finally:
        if locked:
            _LOCK.release()


class _Unpickler(pickle.Unpickler):
    """The C unpickler, importing each global's module through :func:`import_module`."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            import_module(module)
        except ImportError:
            pass  # pickle reports it (or maps a Python 2 name such as copy_reg first)
        return super().find_class(module, name)


def unpickle(data: bytes) -> Any:
    """``pickle.loads(data)``, importing the modules it needs as :func:`import_module` does.

    Args:
        data: A pickle (any protocol), e.g. written by cloudpickle.

    Raises:
        Exception: whatever ``pickle.loads`` raises for these bytes.
    """
    return _Unpickler(io.BytesIO(data)).load()


def unpickle_file(file: BinaryIO) -> Any:
    """:func:`unpickle` reading from a binary file, never holding its whole bytes."""
    return _Unpickler(file).load()


def load(loader: Callable[[T], Any], data: T) -> Any:
    """``loader(data)``, run again (holding the import lock) while it loses import races.

    Args:
        loader: A materializer's ``load``, or a reader of a stored file.
        data: The stored bytes, or the file's path (read again on a retry).

    Raises:
        Exception: whatever ``loader`` raises, once retrying cannot help.
    """
    try:
        return loader(data)
    except (Exception, SystemExit) as exc:
        if not is_import_race(exc):
            raise
    locked = _LOCK.acquire(timeout=_LOCK_WAIT)
    try:
        return _retrying(lambda: loader(data))
    finally:
        if locked:
            _LOCK.release()
