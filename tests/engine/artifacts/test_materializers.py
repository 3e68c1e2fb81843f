"""Materializers: which one a value gets, round trips, user materializers and previews."""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest

from glasspane.artifacts import (
    dump,
    get_materializer,
    materializer_for,
    materializers,
    preview,
    register_materializer,
    type_name,
)
from glasspane.errors import ArtifactError, ConfigError, SerializationError


@pytest.fixture(autouse=True)
def _isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Materializers registered by a test do not leak into the next one."""
    monkeypatch.setattr(materializers, "_FIRST", [])
    monkeypatch.setattr(materializers, "_LAST", [])


def _round_trip(value: Any) -> tuple[str, Any]:
    materializer, data = dump(value)
    return materializer.name, get_materializer(materializer.name).load(data)


FRAMES = {
    "plain": pd.DataFrame({"a": [1, 2, 3], "b": [0.5, None, 2.0], "c": ["x", "y", "z"]}),
    "named index": pd.DataFrame({"a": [1, 2]}, index=pd.Index(["p", "q"], name="key")),
    "int labels": pd.DataFrame({0: [1, 2], 1: [3.0, 4.0]}, index=[7, 9]),
    "multiindex": pd.DataFrame(
        {"v": [1, 2]}, index=pd.MultiIndex.from_tuples([(1, "a"), (2, "b")], names=["i", "j"])
    ),
    "dates": pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3, tz="UTC")}),
    "categories": pd.DataFrame({"c": pd.Categorical(["u", "v", "u"])}),
    "nullable": pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64")}),
    "empty": pd.DataFrame(),
}


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_dataframes_round_trip_through_parquet(name: str):
    frame = FRAMES[name]
    used, back = _round_trip(frame)
    assert used == "parquet"
    assert back.equals(frame)
    assert list(back.columns) == list(frame.columns)
    assert list(back.index.names) == list(frame.index.names)


def test_frames_parquet_would_alter_are_pickled():
    lists = pd.DataFrame({"a": [[1], [2, 3]]})
    mixed_labels = pd.DataFrame({0: [1], "a": [2]})
    for frame in (lists, mixed_labels):
        used, back = _round_trip(frame)
        assert used == "pickle"
        assert back.equals(frame)
        assert list(back.columns) == list(frame.columns)


@pytest.mark.parametrize(
    "array",
    [np.arange(12, dtype=np.int16).reshape(3, 4), np.array([1.5, np.nan]), np.array(["a", "bc"])],
)
def test_arrays_round_trip_through_npy(array: np.ndarray):
    used, back = _round_trip(array)
    assert used == "npy"
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


def test_object_arrays_fall_through_to_pickle():
    array = np.array([{"a": 1}, None], dtype=object)
    used, back = _round_trip(array)
    assert used == "pickle"
    assert back.tolist() == array.tolist()


@pytest.mark.parametrize(
    "value",
    [None, True, 3, 2**80, 1.25, -0.0, "héllo", [1, "a", None], {"a": [1, {"b": 2.5}]}],
)
def test_json_able_values_round_trip_through_json(value: Any):
    used, back = _round_trip(value)
    assert used == "json"
    assert back == value and type(back) is type(value)


@pytest.mark.parametrize(
    "value",
    [(1, 2), {1: "int key"}, {"a": (1,)}, float("nan"), {"s": {1, 2}}, b"bytes", 1 + 2j],
)
def test_values_json_would_change_are_pickled(value: Any):
    used, back = _round_trip(value)
    assert used == "pickle"
    if value == value:  # nan is not equal to itself
        assert back == value and type(back) is type(value)


def test_pickle_takes_local_functions():
    offset = 3
    used, back = _round_trip(lambda x: x + offset)
    assert used == "pickle"
    assert back(1) == 4


@pytest.mark.parametrize(
    ("value", "name"), [(threading.Lock(), "lock"), ((i for i in range(3)), "generator")]
)
def test_unpicklable_value_names_type_and_what_to_do(value: Any, name: str):
    pattern = (
        rf"task `train` returned `{name}`, which cannot be serialized.*return a picklable value "
        rf"or register a materializer for `{name}` with glasspane.register_materializer"
    )
    with pytest.raises(SerializationError, match=pattern):
        dump(value, where="task `train`")


class Vector:
    def __init__(self, *items: float) -> None:
        self.items = list(items)


class VectorMaterializer:
    name = "vector-test"
    extension = "vec"

    def can_handle(self, value: Any) -> bool:
        return isinstance(value, Vector)

    def dump(self, value: Any) -> bytes:
        return json.dumps(value.items).encode()

    def load(self, data: bytes) -> Any:
        return Vector(*json.loads(data))


class BrokenMaterializer(VectorMaterializer):
    name = "broken-test"

    def can_handle(self, value: Any) -> bool:
        return isinstance(value, Vector) and len(value.items) == 0

    def dump(self, value: Any) -> bytes:
        raise RuntimeError("no empty vectors")


def test_registered_materializer_wins_for_its_type():
    register_materializer(VectorMaterializer())
    assert materializer_for(Vector(1.0, 2.0)).name == "vector-test"
    used, back = _round_trip(Vector(1.0, 2.0))
    assert used == "vector-test"
    assert back.items == [1.0, 2.0]
    assert materializer_for([1, 2]).name == "json"


def test_registering_the_same_name_again_replaces_it():
    register_materializer(VectorMaterializer())
    register_materializer(VectorMaterializer(), first=False)
    assert [m.name for m in materializers._FIRST + materializers._LAST] == ["vector-test"]
    # after the built-ins: a Vector is still not JSON-able, so it reaches this one
    assert materializer_for(Vector()).name == "vector-test"
    assert materializer_for([1]).name == "json"


def test_failing_user_materializer_is_reported():
    register_materializer(BrokenMaterializer())
    with pytest.raises(SerializationError, match=r"materializer `broken-test` \(RuntimeError"):
        dump(Vector(), where="task `embed`")


def test_invalid_materializers_are_refused():
    with pytest.raises(ConfigError, match="lacks name, extension, can_handle, dump or load"):
        register_materializer(object())  # type: ignore[arg-type]

    class Impostor(VectorMaterializer):
        name = "json"

    with pytest.raises(ConfigError, match="`json` is taken by a built-in"):
        register_materializer(Impostor())


def test_unknown_materializer_name():
    with pytest.raises(ArtifactError, match="no materializer named `nope`.*register_materializer"):
        get_materializer("nope")


def test_type_name():
    assert type_name(1) == "int"
    assert type_name(pd.DataFrame()) == "pandas.DataFrame"
    assert type_name(np.zeros(1)) == "numpy.ndarray"


# -- previews -------------------------------------------------------------------------------


def test_dataframe_preview():
    frame = pd.DataFrame({f"c{i}": range(8) for i in range(25)})
    frame["when"] = pd.Timestamp("2024-01-01")
    frame["c0"] = frame["c0"].astype(float)
    frame.loc[0, "c0"] = np.nan
    summary = preview(frame)
    assert summary["shape"] == [8, 26]
    assert summary["columns"] == [f"c{i}" for i in range(20)]
    assert summary["dtypes"]["c0"] == "float64"
    assert len(summary["head"]) == 5
    assert summary["head"][1]["c1"] == 1
    assert summary["head"][0]["c0"] is None
    json.dumps(summary, allow_nan=False)


def test_small_previews():
    assert preview(np.zeros((2, 3))) == {"shape": [2, 3], "dtype": "float64"}
    assert preview(3) == {"value": 3}
    assert preview(np.int64(3)) == {"value": 3}
    assert preview("x" * 500)["value"] == "x" * 199 + "…"
    assert preview([1, 2, 3]) == {"len": 3, "repr": "[1, 2, 3]"}
    assert preview({"a": 1})["len"] == 1
    assert len(preview(list(range(1000)))["repr"]) == 200
    assert preview(Vector(1.0))["repr"].startswith("<")


def test_preview_never_raises():
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("boom")

    assert preview(Hostile()) == {"repr": "<Hostile object>"}
