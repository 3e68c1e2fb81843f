"""Code fingerprints: what a task's cache key covers of the user's own code."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from glasspane import task
from glasspane.fingerprint import code_fingerprint, code_hash, is_user_module, user_modules


def load(tmp_path: Path, name: str, source: str, unique: bool = True) -> ModuleType:
    """Import ``source`` as a user module (a file in tmp_path) named ``name``, made unique
    unless ``unique`` is false (then it replaces the module of that name)."""
    if unique:
        name = f"{name}_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / uuid.uuid4().hex[:8]
    folder.mkdir()
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


TRAIN = """
SCALE = {scale}

def f(x):
    return x * SCALE
"""


def test_a_module_constant_is_covered(tmp_path: Path) -> None:
    two = load(tmp_path, "train", TRAIN.format(scale=2))
    three = load(tmp_path, "train", TRAIN.format(scale=3))
    again = load(tmp_path, "train", TRAIN.format(scale=2))
    assert code_fingerprint(two.f) != code_fingerprint(three.f)
    assert code_fingerprint(two.f) == code_fingerprint(again.f)


def test_a_constant_changed_at_run_time_is_seen_on_the_next_compile(tmp_path: Path) -> None:
    module = load(tmp_path, "train", TRAIN.format(scale=2))
    before = code_fingerprint(module.f)
    module.SCALE = 5  # a notebook cell run again
    assert code_fingerprint(module.f) != before


HELPERS = """
def double(x):
    return {body}

class Model:
    def predict(self, x):
        return x + OFFSET

OFFSET = {offset}
"""

USES_HELPERS = """
import {helpers} as helpers
from {helpers} import Model

def direct(x):
    return helpers.double(x)

def through_class(x):
    return Model().predict(x)
"""


def test_helpers_in_user_modules_are_covered_recursively(tmp_path: Path) -> None:
    def fingerprints(body: str, offset: int) -> tuple[str, str]:
        helpers = load(tmp_path, "helpers", HELPERS.format(body=body, offset=offset))
        user = load(tmp_path, "user", USES_HELPERS.format(helpers=helpers.__name__))
        return code_fingerprint(user.direct), code_fingerprint(user.through_class)

    base = fingerprints("2 * x", 1)
    assert fingerprints("2 * x", 1) == base  # stable
    changed_helper = fingerprints("3 * x", 1)
    assert changed_helper[0] != base[0]  # `helpers.double` (a module attribute) changed
    changed_constant = fingerprints("2 * x", 7)
    assert changed_constant[0] == base[0]
    assert changed_constant[1] != base[1]  # read by a method of a user class


SPEC = """
class Spec:
    def build(self):
        return {body}


SPEC = Spec()


def from_global():
    return SPEC.build()


def from_input(spec: Spec | None) -> int:
    return spec.build()
"""


def test_classes_reached_through_values_and_annotations_are_covered(tmp_path: Path) -> None:
    # one module name for each (the type's name is part of a value's content hash), each
    # fingerprinted while it is the module of that name (which is where its source is found)
    found = []
    for body in ("1", "2", "1"):
        module = load(tmp_path, "glasspane_test_spec", SPEC.format(body=body), unique=False)
        found.append([code_fingerprint(module.from_global), code_fingerprint(module.from_input)])
    one, two, same = found
    assert one == same
    assert one[0] != two[0] and one[1] != two[1]


def test_installed_packages_are_not_walked(tmp_path: Path) -> None:
    module = load(
        tmp_path,
        "plain",
        """
        import json
        import math

        def f(x):
            return json.dumps(math.sqrt(x))
        """,
    )
    assert not is_user_module(json) and is_user_module(module)
    # nothing of the user's is read: the fingerprint is the hash of the source alone
    assert code_fingerprint(module.f) == code_hash(module.f)
    assert user_modules(module.f) == [module.__name__]


def test_closures_recursion_and_unhashable_values(tmp_path: Path) -> None:
    module = load(
        tmp_path,
        "misc",
        """
        import threading

        LOCK = threading.Lock()

        def countdown(n):
            with LOCK:
                pass
            return 0 if n == 0 else countdown(n - 1)

        def make(factor):
            def scaled(x):
                return x * factor
            return scaled
        """,
    )
    assert len(code_fingerprint(module.countdown)) == 64  # the lock counts by its type only
    assert code_fingerprint(module.make(2)) != code_fingerprint(module.make(3))


def test_version_overrides_the_fingerprint(tmp_path: Path) -> None:
    one = load(tmp_path, "train", TRAIN.format(scale=2))
    two = load(tmp_path, "train", TRAIN.format(scale=3))
    assert task(version="1")(one.f).cache_version == task(version="1")(two.f).cache_version
    assert task(one.f).cache_version == f"c:{code_fingerprint(one.f)}"


PROJECT = """
from glasspane import pipeline, task

SCALE = {scale}


@task
def f(x: int) -> int:
    return x * SCALE


@pipeline
def train(x: int = 5):
    return f(x)
"""


def test_two_projects_sharing_a_home_do_not_share_outputs(
    tmp_path: Path, glasspane_cmd: list[str], cli_env: dict[str, str]
) -> None:
    """Two `train.py` files, each with a task `f` returning `x * SCALE`: same module name,
    same task source, different constants. Each must get its own result."""
    outputs = {}
    for project, scale in (("a", 2), ("b", 3), ("a", 2)):
        folder = tmp_path / project
        folder.mkdir(exist_ok=True)
        (folder / "train.py").write_text(PROJECT.format(scale=scale))
        proc = subprocess.run(
            [*glasspane_cmd, "run", "train.py:train", "--json"],
            cwd=folder,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        outputs.setdefault(project, []).append((data["output"], data["tasks"][0]["cached"]))
    assert outputs["a"] == [(10, False), (10, True)]  # the same project hits its own entry
    assert outputs["b"] == [(15, False)]


def test_compile_covers_helpers_in_the_version_hash(tmp_path: Path) -> None:
    def compiled(offset: int) -> Any:
        helpers = load(tmp_path, "helpers", HELPERS.format(body="2 * x", offset=offset))
        flow = load(
            tmp_path,
            "glasspane_test_flow",
            f"""
            from glasspane import pipeline, task
            from {helpers.__name__} import Model

            @task
            def predict(x: int) -> int:
                return Model().predict(x)

            @pipeline
            def flow(x: int = 1):
                return predict(x)
            """,
            unique=False,
        )
        return flow.flow.compile()

    one, same, other = compiled(1), compiled(1), compiled(2)
    assert one["predict"].code == same["predict"].code != other["predict"].code
    assert one.version_hash == same.version_hash != other.version_hash


@pytest.mark.parametrize("scale", [2])
def test_tasks_key_with_the_fingerprint_of_their_compile(tmp_path: Path, scale: int) -> None:
    """A module constant changed between two runs in one process changes the key: the
    second run recomputes instead of returning the first run's output."""
    module = load(
        tmp_path,
        "flow",
        f"""
        from glasspane import pipeline, task

        SCALE = {scale}

        @task
        def f(x: int) -> int:
            return x * SCALE

        @pipeline
        def flow(x: int = 5):
            return f(x)
        """,
    )
    assert module.flow.run(executor="inline").output == 10
    module.SCALE = 3
    again = module.flow.run(executor="inline")
    assert again.output == 15 and not again.tasks[0].cached
