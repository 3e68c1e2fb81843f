"""Finding a pipeline from a reference: ``path/to/file.py:attr`` or ``package.module:attr``.

A pipeline loaded from a file path is registered with cloudpickle to be pickled by value,
so Dask workers that cannot import that path still run its tasks.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any

from .dsl.pipeline import PipelineDef
from .errors import DefinitionError, UserCodeError

__all__ = ["canonical_ref", "load_module", "load_pipeline", "module_ref", "ref_for", "split_ref"]


def split_ref(ref: str) -> tuple[str, str]:
    """``(target, attribute)`` of a reference; raises :class:`DefinitionError` (importing
    nothing) when it is not of the form ``FILE.py:NAME`` or ``module:NAME``."""
    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr:
        raise DefinitionError(
            f"pipeline reference `{ref}` is not of the form FILE.py:NAME or module:NAME; "
            "for example examples/retrain.py:retrain"
        )
    return target, attr


def _is_file(target: str) -> bool:
    """Whether ``target`` names a ``.py`` file (not an importable module)."""
    return target.endswith(".py") or os.sep in target or "/" in target


def module_ref(target: str) -> str:
    """``target`` as references name it: a file's absolute path, or the module's name."""
    return str(Path(target).expanduser().resolve()) if _is_file(target) else target


def load_module(target: str) -> Any:
    """Import ``target``: a ``.py`` file (from any directory) or an importable module."""
    if _is_file(target):
        return _load_file(Path(target))
    return _import(target)


def load_pipeline(ref: str) -> PipelineDef[Any, Any]:
    """Import and return the pipeline named by ``ref``."""
    target, attr = split_ref(ref)
    module = load_module(target)
    try:
        obj = getattr(module, attr)
    except AttributeError:
        names = sorted(n for n, v in vars(module).items() if isinstance(v, PipelineDef))
        raise DefinitionError(
            f"`{target}` has no attribute `{attr}`; pipelines defined there: "
            f"{', '.join(names) or 'none'}"
        ) from None
    if not isinstance(obj, PipelineDef):
        raise DefinitionError(
            f"`{ref}` is a {type(obj).__name__}, not a pipeline; decorate it with @pipeline"
        )
    obj.ref = canonical_ref(ref)
    return obj


def canonical_ref(ref: str) -> str:
    """Make a file reference absolute so the run can be retried from any directory."""
    target, _, attr = ref.rpartition(":")
    if target.endswith(".py") or "/" in target:
        return f"{Path(target).resolve()}:{attr}"
    return ref


def ref_for(pipeline: PipelineDef[Any, Any]) -> str | None:
    """A reference that imports ``pipeline`` again, if there is one."""
    if pipeline.ref:
        return pipeline.ref
    module = sys.modules.get(pipeline.fn.__module__)
    qualname = pipeline.fn.__qualname__
    if module is None or "<locals>" in qualname:
        return None
    if pipeline.fn.__module__ == "__main__" or _is_by_value(module):
        path = getattr(module, "__file__", None)
        return f"{Path(path).resolve()}:{qualname}" if path else None
    return f"{pipeline.fn.__module__}:{qualname}"


def _is_by_value(module: Any) -> bool:
    return bool(getattr(module, "__glasspane_by_value__", False))


def _load_file(path: Path) -> Any:
    resolved = path.expanduser().resolve()
    _check_readable(path, resolved)
    name = _module_name(resolved)
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) == str(resolved):
        return existing
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise DefinitionError(f"cannot load `{path}` as a Python module; is it a .py file?")
    module = importlib.util.module_from_spec(spec)
    module.__glasspane_by_value__ = True  # type: ignore[attr-defined]
    sys.modules[name] = module
    sys.path.insert(0, str(resolved.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise UserCodeError(
            f"importing `{path}` raised {type(exc).__name__}: {exc}; fix the error in your "
            "module (traceback above)",
            _user_traceback(exc, str(resolved)),
        ) from exc
    finally:
        try:
            sys.path.remove(str(resolved.parent))
        except ValueError:
            pass
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    return module


def _check_readable(path: Path, resolved: Path) -> None:
    """Raise a :class:`DefinitionError` saying why ``path`` is not a readable Python file."""
    if resolved.is_dir():
        raise DefinitionError(
            f"pipeline file `{path}` is a directory, not a Python file; pass the .py file that "
            f"defines the pipeline, e.g. {path}/pipeline.py:NAME"
        )
    if path.expanduser().is_symlink() and not resolved.exists():
        raise DefinitionError(
            f"pipeline file `{path}` is a symbolic link to `{os.readlink(path.expanduser())}`, "
            "which does not exist; fix the link or pass the file itself"
        )
    if not resolved.is_file():
        raise DefinitionError(
            f"pipeline file `{path}` does not exist (looked in {resolved.parent}); "
            "check the path, relative to the current directory"
        )
    try:
        with open(resolved, "rb"):
            pass
    except OSError as exc:
        raise DefinitionError(
            f"cannot read pipeline file `{path}`: {exc.strerror or exc}; check its permissions"
        ) from None


def _module_name(resolved: Path) -> str:
    """The name to import ``resolved`` as; part of its tasks' identities, so stable.

    The file's stem when that names no other module (a user's ``string.py`` or ``json.py``
    must not replace the standard library's in ``sys.modules``); otherwise a name made
    unique by a digest of the path (``hash()`` of a str differs in every process).
    """
    stem = resolved.stem
    if stem.isidentifier() and not _names_another_module(stem, resolved):
        return stem
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:10]
    safe = re.sub(r"\W", "_", stem)
    return f"glasspane_user.{safe}_{digest}"


def _names_another_module(name: str, resolved: Path) -> bool:
    existing = sys.modules.get(name)
    if existing is not None:
        return getattr(existing, "__file__", None) != str(resolved)
    if name in sys.stdlib_module_names:
        return True
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin != str(resolved)


def _import(name: str) -> Any:
    try:
        return _import_with_cwd(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise DefinitionError(
                f"cannot import module `{name}` ({exc}); check the name, install the package, "
                "or pass a file path such as path/to/pipeline.py:NAME"
            ) from None
        raise UserCodeError(
            f"importing `{name}` raised {type(exc).__name__}: {exc}; fix the import in your "
            "module (traceback above)",
            _user_traceback(exc, None),
        ) from exc
    except Exception as exc:
        raise UserCodeError(
            f"importing `{name}` raised {type(exc).__name__}: {exc}; fix the error in your "
            "module (traceback above)",
            _user_traceback(exc, None),
        ) from exc


def _import_with_cwd(name: str) -> Any:
    """Import ``name``, also looking in the working directory (as ``python -m`` does).

    The working directory goes *last* on ``sys.path``, so a user's ``string.py`` never
    shadows the standard library.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        cwd = os.getcwd()
        if cwd in sys.path or not (exc.name and name.startswith(exc.name)):
            raise
        sys.path.append(cwd)
        try:
            return importlib.import_module(name)
        finally:
            sys.path.remove(cwd)


def _user_traceback(exc: BaseException, path: str | None) -> str:
    """The traceback from the first frame in the user's code, without glasspane's frames."""
    frames = traceback.extract_tb(exc.__traceback__)
    # A SyntaxError has no frame in the user's file (the compiler raised it inside importlib):
    # its own text names their file and line, so no glasspane or importlib frame is shown.
    user = [i for i, frame in enumerate(frames) if not _is_ours(frame.filename)]
    lines = []
    if user:
        lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames[user[0] :])]
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


_PACKAGE_DIR = str(Path(__file__).resolve().parent) + os.sep


def _is_ours(filename: str) -> bool:
    """Whether a traceback frame is glasspane's or the import machinery's, not the user's."""
    return (
        filename.startswith("<frozen")
        or "importlib" in filename
        or str(Path(filename).resolve()).startswith(_PACKAGE_DIR)
    )
