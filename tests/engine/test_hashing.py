"""Content hashes of values and code: stable across processes, type-aware, order-free."""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib.util
import os
import re
import subprocess
import sys
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel, PrivateAttr
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsRegressor

from glasspane.errors import SerializationError
from glasspane.fingerprint import code_hash
from glasspane.hashing import content_hash, register_hasher

HEX64 = r"[0-9a-f]{64}"


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Params(BaseModel):
    lr: float
    layers: list[int]


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Plain:
    def __init__(self, tags: set[str]) -> None:
        self.tags = tags


class Opaque:
    """Hashed through a registered hasher (its identity lives in ``key``)."""

    def __init__(self, key: str, noise: float) -> None:
        self.key = key
        self.noise = noise


def _fit(C: float = 1.0) -> LogisticRegression:
    rng = np.random.RandomState(0)
    X = rng.rand(60, 4)
    y = (X[:, 0] + X[:, 1] > 1).astype(int)
    return LogisticRegression(C=C, max_iter=200).fit(X, y)


# Values whose hash must not depend on PYTHONHASHSEED or on the process.
CROSS_PROCESS = """
import json, sys
import numpy as np, pandas as pd
sys.path.insert(0, {tests!r})
from sklearn.neighbors import KNeighborsRegressor
from test_hashing import Params, Plain, Point, _fit
from glasspane.hashing import content_hash
values = {{
    "dict": {{"b": 2, "a": [1, 2.5, None], "c": {{"x", "y", "z"}}}},
    "frozenset": frozenset({{"alpha", "beta", "gamma", ("t", 1)}}),
    "str": "héllo",
    "frame": pd.DataFrame({{"a": [1, 2, 3], "b": ["x", "y", "z"]}}, index=[10, 20, 30]),
    "array": np.arange(12, dtype=np.float32).reshape(3, 4),
    "dataclass": Point(1.0, 2.0),
    "pydantic": Params(lr=0.1, layers=[3, 4]),
    "plain": Plain({{"p", "q", "r"}}),
    "model": _fit(),
    "kd tree": KNeighborsRegressor(algorithm="kd_tree").fit(np.eye(6), np.arange(6.0)),
}}
print(json.dumps({{k: content_hash(v) for k, v in values.items()}}))
"""


def _hashes_in_subprocess(seed: str) -> dict[str, str]:
    import json

    code = CROSS_PROCESS.format(tests=os.path.dirname(__file__))
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_hashes_are_equal_across_processes_and_hash_seeds():
    first = _hashes_in_subprocess("1")
    second = _hashes_in_subprocess("2024")
    assert first == second
    assert len(set(first.values())) == len(first)


def test_hash_is_64_hex_characters():
    assert re.fullmatch(HEX64, content_hash({"a": 1}))
    assert re.fullmatch(HEX64, code_hash(_fit))


def test_dict_order_does_not_matter():
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})
    assert content_hash({"a": {"x": 1, "y": 2}}) == content_hash({"a": {"y": 2, "x": 1}})


def test_sets_are_canonical():
    assert content_hash({3, 1, 2}) == content_hash({1, 2, 3})
    assert content_hash(frozenset({"b", "a"})) == content_hash(frozenset({"a", "b"}))
    assert content_hash({1, 2}) != content_hash(frozenset({1, 2}))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1.0),
        (1, True),
        (1, "1"),
        (1.0, "1.0"),
        (0, None),
        ("", b""),
        ([1, 2], (1, 2)),
        ([1, "1"], ["1", "1"]),
        ({"a": 1}, [("a", 1)]),
        (np.float64(1.0), 1.0),
        (np.int64(1), np.int32(1)),
        (np.arange(3), np.arange(3.0)),
        (np.zeros((2, 3)), np.zeros((3, 2))),
        (Color.RED, 1),
    ],
)
def test_type_and_value_both_count(a: Any, b: Any):
    assert content_hash(a) != content_hash(b)


def test_distinct_values_hash_distinct():
    values = [0, 1, -1, 2**70, 0.5, "a", "b", b"a", None, True, False, [], (), {}, set()]
    assert len({content_hash(v) for v in values}) == len(values)


def test_nan_hashes_stably():
    assert content_hash(float("nan")) == content_hash(float("nan"))
    assert content_hash([float("nan")]) == content_hash([float("nan")])


def test_numpy_arrays_hash_by_dtype_shape_and_bytes():
    a = np.arange(12).reshape(3, 4)
    assert content_hash(a) == content_hash(a.copy())
    # a non-contiguous view hashes like its contiguous copy
    assert content_hash(a.T) == content_hash(np.ascontiguousarray(a.T))
    assert content_hash(a) != content_hash(a + 1)


def test_object_arrays_hash_their_elements():
    a = np.array([1, "x", None], dtype=object)
    b = np.array([1, "x", None], dtype=object)
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(np.array(["1", "x", None], dtype=object))


def test_dataframes_hash_by_content():
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert content_hash(df) == content_hash(df.copy())
    assert content_hash(df) != content_hash(df.assign(a=[1, 3]))
    assert content_hash(df) != content_hash(df.rename(columns={"b": "c"}))
    assert content_hash(df) != content_hash(df.astype({"a": "float64"}))
    assert content_hash(df) != content_hash(df.set_axis([5, 6]))
    assert content_hash(df["a"]) != content_hash(df["a"].rename("z"))


def test_mixed_object_columns_are_not_stringified():
    ints = pd.DataFrame({"a": pd.Series([1, "x"], dtype=object)})
    strs = pd.DataFrame({"a": pd.Series(["1", "x"], dtype=object)})
    assert content_hash(ints) != content_hash(strs)


def test_range_index_and_equal_int_index_hash_alike():
    assert content_hash(pd.DataFrame({"a": [1, 2]})) == content_hash(
        pd.DataFrame({"a": [1, 2]}, index=pd.Index([0, 1]))
    )


def test_fitted_sklearn_models_are_stable_and_sensitive_to_params():
    assert content_hash(_fit()) == content_hash(_fit())
    assert content_hash(_fit(C=1.0)) != content_hash(_fit(C=0.1))
    assert content_hash(_fit()) != content_hash(LogisticRegression(max_iter=200))


def test_models_fitted_on_different_data_hash_distinct():
    """KNN keeps what it learned in private attributes (``_fit_X``, ``_y``): two models fitted
    on different data once hashed equal, so the store kept the first one's blob for the
    second and a task given the second loaded the first."""
    first = KNeighborsRegressor(n_neighbors=1).fit(np.zeros((4, 2)), np.zeros(4))
    second = KNeighborsRegressor(n_neighbors=1).fit(np.ones((4, 2)), np.ones(4))
    assert content_hash(first) != content_hash(second)
    again = KNeighborsRegressor(n_neighbors=1).fit(np.ones((4, 2)), np.ones(4))
    assert content_hash(second) == content_hash(again)


def test_a_store_given_a_second_model_keeps_the_second_model(tmp_path: Any):
    from glasspane.artifacts import ArtifactStore

    store = ArtifactStore(str(tmp_path))
    first = KNeighborsRegressor(n_neighbors=1).fit(np.zeros((4, 2)), np.zeros(4))
    second = KNeighborsRegressor(n_neighbors=1).fit(np.ones((4, 2)), np.full(4, 7.0))
    store.put(first)
    back = store.get(store.put(second))
    assert back.predict(np.ones((1, 2))).tolist() == [7.0]


def test_pydantic_models_differing_in_private_attributes_hash_distinct():
    class Tuned(BaseModel):
        lr: float = 0.1
        _best: float = PrivateAttr(default=0.0)

    first, second = Tuned(), Tuned()
    second._best = 0.9
    assert first != second
    assert content_hash(first) != content_hash(second)
    assert content_hash(first) == content_hash(Tuned())


def test_dataclasses_pydantic_enums_and_plain_objects():
    assert content_hash(Point(1, 2)) == content_hash(Point(1, 2))
    assert content_hash(Point(1, 2)) != content_hash(Point(2, 1))
    assert content_hash(Params(lr=0.1, layers=[1])) == content_hash(Params(lr=0.1, layers=[1]))
    assert content_hash(Params(lr=0.1, layers=[1])) != content_hash(Params(lr=0.2, layers=[1]))
    assert content_hash(Color.RED) != content_hash(Color.BLUE)
    assert content_hash(Plain({"a", "b"})) == content_hash(Plain({"b", "a"}))


def test_self_referencing_values_still_hash():
    items: list[Any] = [1]
    items.append(items)
    assert content_hash(items) == content_hash(items)


def test_registered_hasher_decides_identity():
    register_hasher(Opaque, lambda o: o.key)
    assert content_hash(Opaque("k", 0.1)) == content_hash(Opaque("k", 0.9))
    assert content_hash(Opaque("k", 0.1)) != content_hash(Opaque("j", 0.1))
    assert content_hash(Opaque("k", 0.1)) != content_hash("k")


@pytest.mark.parametrize(
    ("value", "name"), [(threading.Lock(), "lock"), ((i for i in range(3)), "generator")]
)
def test_unpicklable_value_names_its_type(value: Any, name: str):
    with pytest.raises(SerializationError, match=f"type `{name}`.*glasspane.register_hasher"):
        content_hash({"nested": [value]})


# -- code hashes --------------------------------------------------------------------------


def square(x: int) -> int:
    return x * x


MODULE = """
import functools

def deco(**options):
    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            return fn(*args, **kwargs)
        return inner
    return wrap

class Holder:
    @deco(
        retries={retries},
    )
    def step(self, x: int) -> int:
        return x + {increment}
"""


def _load_step(path: Any, retries: int, increment: int) -> Any:
    path.write_text(MODULE.format(retries=retries, increment=increment))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Holder.step


def test_code_hash_is_stable_and_sees_changes():
    assert code_hash(square) == code_hash(square)
    namespace: dict[str, Any] = {}
    exec("def square(x: int) -> int:\n    return x * x * x\n", namespace)
    assert code_hash(square) != code_hash(namespace["square"])


def test_code_hash_ignores_decorator_lines_but_not_the_body(tmp_path: Any):
    one = _load_step(tmp_path / "mod_a.py", retries=1, increment=1)
    five = _load_step(tmp_path / "mod_b.py", retries=5, increment=1)
    changed = _load_step(tmp_path / "mod_c.py", retries=1, increment=2)
    assert code_hash(one) == code_hash(five)
    assert code_hash(one) != code_hash(changed)


def test_code_hash_without_source_uses_bytecode():
    code = (
        "from glasspane.fingerprint import code_hash\n"
        "def f(x):\n    return x + 1\n"
        "print(code_hash(f))\n"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("3", "4")
    }
    assert len(runs) == 1


def test_code_hash_of_partial_and_builtin():
    assert code_hash(functools.partial(square, 2)) != code_hash(functools.partial(square, 3))
    assert code_hash(len) == code_hash(len)
