"""Task bodies importing sibling modules of one package on threads: no import lock cycle.

A small package written to ``tmp_path`` is shaped like scikit-learn's: a subpackage whose
``__init__`` imports its submodules, submodules that import their package, and a
top-level ``__init__`` that a gate holds until the test lets it go, so that the second task
meets the first one's import in the state that used to close a lock cycle (``_DeadlockError``
or a partially initialised module in one of the tasks).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glasspane import pipeline, task

PACKAGE_INIT = """
import {gate} as gate

if gate.armed:  # a slow package __init__, as scikit-learn's
    gate.entered.set()
    gate.proceed.wait(10)
"""

SUB_INIT = """
from {pkg}.sub.model import Model  # the subpackage imports its submodules, as sklearn's do
from {pkg}.sub.other import Other
"""

SUBMODULE = """
import {pkg}.sub  # a submodule imports its package


class {cls}:
    n = {n}
"""

GATE = """
import threading

armed = False
entered = threading.Event()
proceed = threading.Event()
"""


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"taskpkg_{uuid.uuid4().hex[:8]}"
    sub = tmp_path / name / "sub"
    sub.mkdir(parents=True)
    (tmp_path / name / "__init__.py").write_text(PACKAGE_INIT.format(gate=f"{name}_gate"))
    (tmp_path / f"{name}_gate.py").write_text(GATE)
    (sub / "__init__.py").write_text(SUB_INIT.format(pkg=name))
    (sub / "model.py").write_text(SUBMODULE.format(pkg=name, cls="Model", n=1))
    (sub / "other.py").write_text(SUBMODULE.format(pkg=name, cls="Other", n=2))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[module]


@task(cache=False)
def import_other(package: str) -> int:
    import importlib

    gate = importlib.import_module(f"{package}_gate")
    gate.armed = True
    __import__(f"{package}.sub.other")  # an import statement: holds `other`, then the package
    return int(sys.modules[f"{package}.sub.other"].Other.n)


@task(cache=False)
def import_model(package: str) -> int:
    import importlib

    gate = importlib.import_module(f"{package}_gate")
    assert gate.entered.wait(10)  # the other task is inside the package's __init__ ...
    threading_timer = importlib.import_module("threading").Timer(0.3, gate.proceed.set)
    threading_timer.start()  # ... and goes on while this one imports a sibling module
    __import__(f"{package}.sub.model")
    return int(sys.modules[f"{package}.sub.model"].Model.n)


@pipeline
def both(package: str):
    return [import_other(package), import_model(package)]


def test_task_bodies_importing_sibling_modules_on_threads(package: str) -> None:
    result: Any = both.run(package=package, executor="threads", raise_on_failure=False)
    assert [(t.node, t.state, t.error) for t in result.tasks] == [
        ("import_other", "succeeded", None),
        ("import_model", "succeeded", None),
    ]
    assert result.output == [2, 1]
