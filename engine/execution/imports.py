"""Imports made by task bodies on threads, without import lock cycles.

The README's tasks import inside their bodies (``from sklearn.linear_model import Ridge``).
On the threads executor, in a process that has not imported the library yet, several task
bodies import sibling submodules at once; CPython imports ``a.b.c`` by taking the lock of
``a.b.c`` and then importing ``a.b`` while holding it, so two such imports can close a
lock cycle, which importlib breaks by raising ``_DeadlockError`` in one task (or by handing
it a partially initialised module). A first run of eight scikit-learn estimators failed
about one time in four that way.

:func:`install` wraps ``builtins.__import__`` once per process. An import made by a
running task (a task context is set) whose module is not fully imported yet goes through
:func:`glasspane.artifacts.loading.import_module` first: parents before children, one
glasspane thread at a time (the same lock cached values are loaded under), retried if it
still loses a race with a thread glasspane does not control. Then the ordinary import runs
and finds everything in place. Imports of modules already imported, imports outside tasks
and the imports nested inside a module being imported take the ordinary path at once.
Only what the task actually imports is imported: nothing ahead of time.
"""

from __future__ import annotations

import builtins
import importlib.util
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from .context import current_context

_original = builtins.__import__
_inside = threading.local()
_install_lock = threading.Lock()


def install() -> None:
    """Route task imports through the lock-cycle-free importer (idempotent)."""
    if builtins.__import__ is _task_import:
        return
    with _install_lock:
        if builtins.__import__ is not _task_import:
            global _original
            _original = builtins.__import__
            builtins.__import__ = _task_import


def _ready(name: str) -> bool:
    module = sys.modules.get(name)
    return module is not None and not getattr(
        getattr(module, "__spec__", None), "_initializing", False
    )


def _task_import(
    name: str,
    globals: Mapping[str, Any] | None = None,  # noqa: A002 - __import__'s own signature
    locals: Mapping[str, Any] | None = None,  # noqa: A002
    fromlist: Sequence[str] | None = (),
    level: int = 0,
) -> Any:
    if getattr(_inside, "active", False) or current_context() is None:
        return _original(name, globals, locals, fromlist, level)
    try:
        absolute = name if level == 0 else _absolute(name, globals, level)
    except (ImportError, ValueError, KeyError, TypeError):
        return _original(name, globals, locals, fromlist, level)
    wanted = [absolute, *(f"{absolute}.{n}" for n in fromlist or () if n != "*")]
    if _ready(absolute) and all(_ready(w) or _attribute(absolute, w) for w in wanted[1:]):
        return _original(name, globals, locals, fromlist, level)
    _inside.active = True
    try:
        from ..artifacts.loading import import_module

        import_module(absolute)
        for submodule in wanted[1:]:
            if not _attribute(absolute, submodule):
                try:
                    import_module(submodule)
                except ImportError:  # a plain attribute after all: the import says so
                    pass
    except Exception:  # noqa: BLE001 - the ordinary import below raises the real error
        pass
    finally:
        _inside.active = False
    return _original(name, globals, locals, fromlist, level)


def _attribute(module: str, dotted: str) -> bool:
    """Whether ``module`` (imported) already has the attribute ``dotted`` names."""
    found = sys.modules.get(module)
    return found is not None and hasattr(found, dotted.rsplit(".", 1)[1])


def _absolute(name: str, globals: Mapping[str, Any] | None, level: int) -> str:  # noqa: A002
    package = (globals or {}).get("__package__")
    if package is None:
        module = (globals or {})["__name__"]
        package = module if "__path__" in (globals or {}) else module.rpartition(".")[0]
    return importlib.util.resolve_name("." * level + name, package)
