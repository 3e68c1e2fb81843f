"""A task's code fingerprint: what its result depends on in the user's own code.

A cache key must change whenever the task could compute something else from the same
inputs. Beyond the task's own source, that is the user code it reaches: helper functions and
classes in the user's modules, and the module-level values it reads (``SCALE = 3``). Two
projects with a ``train.py`` each, whose task ``f`` returns ``x * SCALE`` with different
constants, must not share a cache entry. :func:`code_fingerprint` walks the function's code:

- its own source (:func:`code_hash`, decorator lines left out) and the
  values in its closure;
- the classes of the user's its parameters are annotated with (``spec: Spec``: the methods
  it may call on an input);
- every global name its code (nested functions, lambdas and comprehensions included) reads,
  looked up in the function's module:

  - a function or class defined in a *user module* adds its source and, recursively, what
    that code reads; a class adds the source of the whole class statement and of the code
    of its methods;
  - a user module (``import helpers`` then ``helpers.double(x)``) adds the attributes of the
    module that the code names (``double``), as above;
  - any other value *defined in the user's module* (a constant, a list, a dict, an object)
    adds its content hash (:func:`~glasspane.hashing.content_hash`), and its class as above
    when that is the user's; a value that cannot be hashed (a lock, an open connection) adds
    its type's name only;
  - anything from an installed package or the standard library (``np``, ``np.mean``,
    ``LogisticRegression``) adds its name only: the packages' own code is not covered.

A *user module* is one whose file lies outside the Python installation and its
``site-packages`` (``sys.prefix``, ``sys.base_prefix``, ``sys.exec_prefix``) and outside
glasspane, or ``__main__``; a project installed in editable mode is user code.

The walk runs once per task per compile, so a constant changed in a notebook is seen on the
next run; source digests are kept per code object, which cannot change. Pure apart from
reading source files through ``linecache`` (as :mod:`inspect` does).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import os
import sys
import textwrap
import threading
import types
import typing
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from .errors import SerializationError
from .hashing import _mix, _text, content_hash

__all__ = ["code_fingerprint", "code_hash", "is_user_module", "user_modules"]

_PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__)) + os.sep
_lock = threading.Lock()
_source_digests: weakref.WeakKeyDictionary[types.CodeType, str] = weakref.WeakKeyDictionary()
_user_files: dict[str, bool] = {}


def _prefixes() -> tuple[str, ...]:
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(os.path.realpath(p) + os.sep for p in paths)


def is_user_module(module: Any) -> bool:
    """Whether ``module`` is the user's own code (see the module docstring)."""
    if not isinstance(module, types.ModuleType):
        return False
    name = module.__name__
    if name == "__main__" or name == "__mp_main__":
        return True
    path = getattr(module, "__file__", None)
    if not path or name.split(".")[0] == "glasspane":
        return False
    known = _user_files.get(path)
    if known is None:
        real = os.path.realpath(path)
        known = not real.startswith(_prefixes()) and not real.startswith(_PACKAGE_DIR)
        if len(_user_files) > 100_000:
            _user_files.clear()
        _user_files[path] = known
    return known


def _module_of(obj: Any) -> Any:
    name = getattr(obj, "__module__", None)
    return sys.modules.get(name) if isinstance(name, str) else None


def code_fingerprint(fn: Callable[..., Any]) -> str:
    """The code fingerprint of ``fn``, 64 hex characters.

    Equal to :func:`code_hash` when the function reads no user code and
    no module-level value of the user's, so a self-contained task keeps its key.
    """
    walk = _Walk()
    own = walk.own(fn)
    if not walk.parts:
        return own
    digest = hashlib.sha256(own.encode())
    for name, part in sorted(walk.parts.items()):
        digest.update(f"\0{name}\0{part}".encode())
    return digest.hexdigest()


def user_modules(fn: Callable[..., Any]) -> list[str]:
    """Names of the user modules ``fn`` reaches (its own included), as the walk finds them.

    A Dask worker must be able to load every one of them: they are pickled by value.
    """
    walk = _Walk()
    walk.own(fn)
    module = _module_of(inspect.unwrap(fn)) if callable(fn) else None
    found = set(walk.modules)
    if module is not None and is_user_module(module):
        found.add(module.__name__)
    return sorted(found)


class _Walk:
    """One fingerprint: the parts found so far, by a name that says where they came from."""

    def __init__(self) -> None:
        self.parts: dict[str, str] = {}
        self.modules: set[str] = set()
        self._seen: set[int] = set()

    def own(self, fn: Callable[..., Any]) -> str:
        """The digest of ``fn``'s own source; adds what its code reads to ``parts``."""
        target = _function_of(fn)
        if target is None:
            return code_hash(fn)
        self._seen.add(id(target))
        self._reads(target, "")
        return _source_digest(fn if isinstance(fn, functools.partial) else target)

    def _reads(self, fn: types.FunctionType, where: str) -> None:
        """Add what the code of ``fn`` reads: closure values and globals."""
        module = _module_of(fn)
        if module is not None and is_user_module(module):
            self.modules.add(module.__name__)
        for index, cell in enumerate(fn.__closure__ or ()):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell: a name assigned later in the enclosing scope
                continue
            self._value(f"{where}<closure {fn.__code__.co_freevars[index]}>", value)
        names = _global_names(fn.__code__)
        scope = fn.__globals__
        for name in names:
            if name in scope:
                self._value(f"{where}{name}", scope[name], names)
        for name, hint in _hints(fn).items():  # `spec: Spec`: the methods it may call
            for cls in _classes_in(hint):
                self._class(f"{where}<annotation {name}>", cls)

    def _value(self, path: str, value: Any, names: Any = ()) -> None:
        """Add ``value``, read under ``path`` from user code, to the fingerprint."""
        if isinstance(value, types.ModuleType):
            if is_user_module(value):
                self.modules.add(value.__name__)
                for attr in sorted(n for n in names if n in vars(value)):
                    self._value(f"{path}.{attr}", vars(value)[attr], names)
            return
        fn = _function_of(value)
        if fn is not None:
            self._function(path, value, fn)
            return
        if isinstance(value, type):
            self._class(path, value)
            return
        if isinstance(value, types.BuiltinFunctionType):
            return  # `sqrt = math.sqrt`: an installed function, named in the source already
        try:
            self.parts[path] = content_hash(value)
        except SerializationError:
            self.parts[path] = f"<{type(value).__module__}.{type(value).__qualname__}>"
        self._class(f"{path}<type>", type(value))  # `CONFIG.scale(x)`: its class's code

    def _function(self, path: str, value: Any, fn: types.FunctionType) -> None:
        module = _module_of(fn)
        if module is None or not is_user_module(module):
            return  # an installed package's function: its name is in the source already
        if id(fn) in self._seen:  # recursion, or reached twice: its code is in already
            return
        self._seen.add(id(fn))
        self.parts[path] = _source_digest(value if isinstance(value, functools.partial) else fn)
        self._reads(fn, f"{path}:")

    def _class(self, path: str, cls: type) -> None:
        module = _module_of(cls)
        if module is None or not is_user_module(module) or id(cls) in self._seen:
            return
        self._seen.add(id(cls))
        self.modules.add(module.__name__)
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            source = f"<class {cls.__module__}.{cls.__qualname__}>"
        self.parts[path] = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
        for base in cls.__mro__[1:]:  # a base class of the user's: its source is elsewhere
            self._class(f"{path}<base {base.__qualname__}>", base)
        for attr, member in sorted(vars(cls).items()):  # what its methods read
            fn = _function_of(_unwrap_member(member))
            if fn is not None and id(fn) not in self._seen:
                self._seen.add(id(fn))
                self._reads(fn, f"{path}.{attr}:")


def _hints(fn: types.FunctionType) -> dict[str, Any]:
    annotations = getattr(fn, "__annotations__", None)
    if not annotations:
        return {}
    try:
        return typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - a name under TYPE_CHECKING: the classes given as such
        return dict(annotations)


def _classes_in(hint: Any, depth: int = 0) -> list[type]:
    """The classes an annotation names: ``Spec``, ``Spec | None``, ``list[Spec]``."""
    if isinstance(hint, type) and not typing.get_args(hint):
        return [hint]
    if depth > 3:
        return []
    return [cls for arg in typing.get_args(hint) for cls in _classes_in(arg, depth + 1)]


def _unwrap_member(member: Any) -> Any:
    if isinstance(member, (staticmethod, classmethod)):
        return member.__func__
    if isinstance(member, property):
        return member.fget
    return member


def _function_of(value: Any) -> types.FunctionType | None:
    """The plain function behind ``value`` (a function, task, partial or wrapper), if any."""
    for _ in range(8):  # a task wraps a function; a partial wraps either
        if isinstance(value, types.FunctionType):
            return value
        if isinstance(value, functools.partial):
            value = value.func
            continue
        if isinstance(value, types.MethodType):
            value = value.__func__
            continue
        inner = getattr(value, "fn", None) if type(value).__name__ == "TaskDef" else None
        if inner is None:
            inner = getattr(value, "__wrapped__", None)
        if inner is None or inner is value:
            return None
        value = inner
    return None


def _global_names(code: types.CodeType) -> list[str]:
    """The names the code object (and the code nested in it) may read as globals."""
    names: dict[str, None] = {}
    for one in _codes(code):
        for name in one.co_names:
            names[name] = None
    return list(names)


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _source_digest(fn: Callable[..., Any]) -> str:
    """:func:`code_hash` of ``fn``, kept per code object (which never changes)."""
    target = fn.func if isinstance(fn, functools.partial) else fn
    code = getattr(target, "__code__", None)
    if code is None or isinstance(fn, functools.partial):
        return code_hash(fn)
    with _lock:
        known = _source_digests.get(code)
    if known is None:
        known = code_hash(target)
        with _lock:
            _source_digests[code] = known
    return known


# -- the hash of one function's own code ------------------------------------------------


def code_hash(fn: Callable[..., Any]) -> str:
    """Return a stable hash of a function's code, 64 hex characters.

    The source text is hashed (dedented, from the ``def`` line on: decorator lines are left
    out, so changing a decorator's options does not change the hash). Without source (a
    function typed into ``python -c``), the bytecode, names and constants are hashed
    instead. Wrappers made with ``functools.wraps`` are unwrapped first.

    Args:
        fn: A function, method, lambda or ``functools.partial``.

    Returns:
        The sha256-based hash, 64 lowercase hex characters.
    """
    if isinstance(fn, functools.partial):
        parts = [bytes.fromhex(code_hash(fn.func)), _hash_parts((fn.args, fn.keywords))]
        return _mix("code-partial", type(fn), *parts).hex()
    target = inspect.unwrap(fn)
    try:
        source = inspect.getsource(target)
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        if code is None:  # builtins and callable objects: identify them by value
            return content_hash(target)
        return _code_digest(code).hex()
    return _mix("code-source", object, _text(_strip_decorators(source))).hex()


def _hash_parts(value: Any) -> bytes:
    return bytes.fromhex(content_hash(value))


def _strip_decorators(source: str) -> str:
    text = textwrap.dedent(source)
    try:
        node = ast.parse(text).body[0]
    except (SyntaxError, IndexError):  # e.g. a lambda cut out of a longer expression
        return text
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return "".join(text.splitlines(keepends=True)[node.lineno - 1 :])
    return text


def _code_digest(code: Any) -> bytes:
    consts = [_code_digest(c) if inspect.iscode(c) else _hash_parts(c) for c in code.co_consts]
    names = _text("\0".join(code.co_names))
    return _mix("code-bytes", type(code), _text(code.co_name), code.co_code, names, *consts)
