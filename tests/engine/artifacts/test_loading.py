"""Loading values on threads: no import lock cycles, and every load failure an ArtifactError.

The import tests use a small package written to ``tmp_path`` and shaped like
scikit-learn's: a subpackage whose ``__init__`` imports its submodules, submodules that
refer back to their package, and a top-level ``__init__`` that takes a while (a gate
module holds it until the test lets it go), so that other threads meet the import in the
state that used to close a lock cycle.
"""

from __future__ import annotations

import collections
import importlib
import json
import pickle
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from glasspane import pipeline, task
from glasspane.artifacts import ArtifactStore, unpickle
from glasspane.artifacts.loading import import_module
from glasspane.errors import ArtifactError
from glasspane.types import ArtifactInfo

PACKAGE_INIT = """
import {gate} as gate

if gate.armed:  # a slow package __init__, as scikit-learn's (about a second)
    gate.entered.set()
    gate.proceed.wait(10)
"""

SUB_INIT = """
helper = "helper"
from {pkg}.sub import model  # the package imports its submodules, as sklearn's do
from {pkg}.sub import other
"""

SUBMODULE = """
from {pkg}.sub import helper  # a submodule refers back to its package


class {cls}:
    def __init__(self, n):
        self.n = n

    def __eq__(self, other):
        return type(other).__name__ == "{cls}" and other.n == self.n
"""

GATE = """
import threading

armed = False
entered = threading.Event()
proceed = threading.Event()
"""


class Package:
    """A fresh scikit-learn-shaped package on ``sys.path``, and its gate."""

    def __init__(self, root: Path) -> None:
        self.name = f"racepkg_{uuid.uuid4().hex[:8]}"
        self.gate_name = f"{self.name}_gate"
        sub = root / self.name / "sub"
        sub.mkdir(parents=True)
        (root / self.name / "__init__.py").write_text(PACKAGE_INIT.format(gate=self.gate_name))
        (root / f"{self.gate_name}.py").write_text(GATE)
        (sub / "__init__.py").write_text(SUB_INIT.format(pkg=self.name))
        for module, cls in (("model", "Model"), ("other", "Other")):
            (sub / f"{module}.py").write_text(SUBMODULE.format(pkg=self.name, cls=cls))

    def value(self, module: str, cls: str, n: int) -> Any:
        __import__(f"{self.name}.sub.{module}")
        return getattr(sys.modules[f"{self.name}.sub.{module}"], cls)(n)

    def forget(self) -> Any:
        """Unimport the package, as in a process that never imported it; return the gate."""
        for name in [n for n in sys.modules if n == self.name or n.startswith(f"{self.name}.")]:
            del sys.modules[name]
        __import__(self.gate_name)
        return sys.modules[self.gate_name]


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Package]:
    monkeypatch.syspath_prepend(str(tmp_path))
    made = Package(tmp_path)
    yield made
    made.forget()


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def _finish(*threads: threading.Thread) -> None:
    for thread in threads:
        thread.join(15)
        assert not thread.is_alive(), "a thread is stuck in an import"


def test_two_threads_load_models_whose_package_neither_has_imported(
    package: Package, tmp_path: Path
):
    store = ArtifactStore(str(tmp_path / "artifacts"))
    model = store.put(package.value("model", "Model", 1))
    other = store.put(package.value("other", "Other", 2))
    assert (model.materializer, other.materializer) == ("pickle", "pickle")
    gate = package.forget()
    gate.armed = True
    # The first load imports `sub.other`, so `sub`, so the package, and waits in its __init__
    first, first_box = _in_thread(lambda: store.get(other))
    assert gate.entered.wait(10)
    # ... while the second loads a model from `sub.model` ...
    second, second_box = _in_thread(lambda: store.get(model))
    time.sleep(0.2)
    gate.proceed.set()  # ... then `sub`'s __init__ imports `sub.model`.
    _finish(first, second)
    assert first_box == {"value": package.value("other", "Other", 2)}
    assert second_box == {"value": package.value("model", "Model", 1)}


def test_a_load_waits_for_a_thread_importing_the_package(package: Package, tmp_path: Path):
    store = ArtifactStore(str(tmp_path / "artifacts"))
    info = store.put(package.value("model", "Model", 3))
    gate = package.forget()
    gate.armed = True
    # A task's own import (glasspane has no say in it) waits in the package's __init__ ...
    importer, import_box = _in_thread(lambda: __import__(f"{package.name}.sub.other"))
    assert gate.entered.wait(10)
    loader, load_box = _in_thread(lambda: store.get(info))  # ... while a model loads ...
    time.sleep(0.2)
    gate.proceed.set()  # ... then the task's import goes on to `sub.model`.
    _finish(importer, loader)
    assert "error" not in import_box, import_box
    assert load_box == {"value": package.value("model", "Model", 3)}


def test_many_threads_load_models_of_a_package_no_thread_has_imported(
    package: Package, tmp_path: Path
):
    store = ArtifactStore(str(tmp_path / "artifacts"))
    infos = [
        store.put(package.value(*("model", "Model") if n % 2 else ("other", "Other"), n))
        for n in range(8)
    ]
    gate = package.forget()
    gate.armed = True
    threads = [_in_thread(lambda info=info: store.get(info)) for info in infos]
    assert gate.entered.wait(10)
    time.sleep(0.3)  # every thread is in the import machinery by now
    gate.proceed.set()
    _finish(*(thread for thread, _ in threads))
    assert [box for _, box in threads] == [
        {"value": package.value(*("model", "Model") if n % 2 else ("other", "Other"), n)}
        for n in range(8)
    ]


FLAKY = """
from pathlib import Path

tries = Path(__file__).with_suffix(".tries")
count = int(tries.read_text()) + 1 if tries.exists() else 1
tries.write_text(str(count))
if count == 1:  # as importlib reports losing a lock cycle to another thread
    raise RuntimeError("deadlock detected by _ModuleLock('{name}') at 140000000000000")
"""

CIRCULAR = """
from pathlib import Path

tries = Path(__file__).with_suffix(".tries")
tries.write_text(str(int(tries.read_text()) + 1 if tries.exists() else 1))
from {name} import missing  # a circular import in the library itself: fails every time
"""


def test_an_import_that_lost_a_race_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"flaky_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(FLAKY.format(name=name))
    try:
        assert import_module(name) is sys.modules[name]
    finally:
        sys.modules.pop(name, None)
    assert (tmp_path / f"{name}.tries").read_text() == "2"


def test_a_circular_import_fails_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"circular_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(CIRCULAR.format(name=name))
    started = time.monotonic()
    with pytest.raises(ImportError, match="partially initialized module"):
        import_module(name)
    # tried once more (no other thread was importing), not retried for seconds
    assert (tmp_path / f"{name}.tries").read_text() == "2"
    assert time.monotonic() - started < 1


def test_unpickle_reads_python_2_names_and_every_protocol():
    values = [{1, 2}, collections.OrderedDict(a=1), Fraction(1, 3), [b"x", 1.5, None]]
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert unpickle(pickle.dumps(values, protocol=protocol)) == values


# -- every failure to load a value is an ArtifactError ---------------------------------------


class ExitsOnLoad:
    """Unpickling this calls ``sys.exit``: loading must still not end the thread."""

    def __reduce__(self) -> Any:
        return (sys.exit, (3,))


def test_a_pickle_of_a_module_that_is_gone(package: Package, tmp_path: Path):
    store = ArtifactStore(str(tmp_path / "artifacts"))
    info = store.put(package.value("model", "Model", 1))
    package.forget()
    shutil.rmtree(tmp_path / package.name)  # uninstalled since
    importlib.invalidate_caches()
    with pytest.raises(ArtifactError) as caught:
        store.get(info)
    assert str(caught.value) == (
        f"cannot load artifact {info.uri} of type `{package.name}.Model` with materializer "
        f"`pickle` (ModuleNotFoundError: No module named '{package.name}'); check "
        "that the libraries that wrote it are installed in compatible versions, or run "
        "`glasspane cache clear` to recompute it"
    )
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


def test_a_value_whose_loading_exits(tmp_path: Path):
    store = ArtifactStore(str(tmp_path / "artifacts"))
    info = store.put(ExitsOnLoad())
    with pytest.raises(ArtifactError, match=r"\(SystemExit: 3\); check that the libraries"):
        store.get(info)


def test_a_recorded_uri_that_is_not_a_string(tmp_path: Path):
    store = ArtifactStore(str(tmp_path / "artifacts"))
    info = ArtifactInfo.from_dict({**store.put([1, 2]).to_dict(), "uri": 42})
    with pytest.raises(ArtifactError, match=r"refusing artifact path 42: it is not under"):
        store.get(info)


@task
def numbers() -> list[int]:
    return [1, 2, 3]


@task(cache=False)
def offset() -> int:
    return 10


@task
def shifted(values: list[int], by: int) -> list[int]:
    return [v + by for v in values]


@pipeline
def shifting():
    return shifted(numbers(), offset())


def test_a_run_recomputes_an_output_whose_cache_entry_is_damaged(tmp_path: Path):
    first = shifting.run(executor="threads")
    assert first.output == [11, 12, 13]
    # a cache entry edited by hand (or by an older glasspane) with a URI that is not a path
    entries = {p: json.loads(p.read_text()) for p in tmp_path.rglob("keys/*/*.json")}
    ((entry_path, entry),) = [(p, e) for p, e in entries.items() if e["task"] == "shifted"]
    entry["outputs"][0]["uri"] = 42
    entry_path.write_text(json.dumps(entry))
    second = shifting.run(executor="threads")
    assert second.state == "succeeded" and second.output == [11, 12, 13]
    (record,) = [t for t in second.to_dict()["tasks"] if t["node"] == "shifted"]
    assert (record["cached"], record["state"]) == (False, "succeeded")
    assert record["note"].startswith(
        "cached output could not be used (refusing artifact path 42: it is not under"
    )
    assert record["note"].endswith("); recomputed")
