"""Property tests for :func:`glasspane.hashing.content_hash`.

The contract (module docstring of ``glasspane.hashing``): equal values of the same type hash
equal in every process, whatever ``PYTHONHASHSEED``; distinct values hash distinct, and the
type always counts (``1``, ``1.0``, ``True`` and ``"1"`` differ although ``1 == 1.0 == True``).
Floats are identified by ``repr``: every nan hashes alike, and ``-0.0`` differs from ``0.0``.

``identity`` below spells that contract out as a plain value: two values must hash equal
exactly when their identities are equal.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import random
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from glasspane.hashing import content_hash

FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- values -------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.binary(max_size=8),
)
hashable = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.tuples(inner, inner), st.frozensets(inner, max_size=3).map(frozenset)
    ),
    max_leaves=4,
)
arrays = hnp.arrays(
    dtype=st.sampled_from([np.int64, np.int32, np.float64, np.bool_]),
    shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4),
)
values = st.recursive(
    scalars | arrays,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(hashable, inner, max_size=4),
        st.sets(hashable, max_size=4),
        st.frozensets(hashable, max_size=4),
    ),
    max_leaves=12,
)


def identity(value: Any) -> Any:
    """What content_hash promises to identify: the type, and the value under that type."""
    kind = type(value).__name__
    if isinstance(value, float):
        return (kind, float.__repr__(value))  # all nans alike; -0.0 is not 0.0
    if isinstance(value, np.ndarray):
        return (kind, value.dtype.str, value.shape, np.ascontiguousarray(value).tobytes())
    if isinstance(value, (list, tuple)):
        return (kind, tuple(identity(item) for item in value))
    if isinstance(value, (set, frozenset)):  # a multiset: {nan, nan} holds two items
        return (kind, tuple(sorted((identity(item) for item in value), key=repr)))
    if isinstance(value, dict):
        pairs = ((identity(k), identity(v)) for k, v in value.items())
        return (kind, tuple(sorted(pairs, key=repr)))
    return (kind, value)


def rebuilt(value: Any, rng: random.Random) -> Any:
    """An equal copy of ``value`` made of new objects, with containers filled in another order."""
    if isinstance(value, np.ndarray):
        return np.asfortranarray(value.copy())
    if isinstance(value, float):
        return float(repr(value)) if not math.isnan(value) else float("nan")
    if isinstance(value, (list, tuple)):
        return type(value)(rebuilt(item, rng) for item in value)
    if isinstance(value, (set, frozenset)):
        items = list(value)
        rng.shuffle(items)
        return type(value)(rebuilt(item, rng) for item in items)
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {rebuilt(k, rng): rebuilt(v, rng) for k, v in items}
    return value


def retyped(value: Any) -> list[Any]:
    """Values that are ``==`` to ``value`` (or hold the same items) but of another type."""
    out: list[Any] = []
    if isinstance(value, bool):
        out += [int(value), float(value)]
    elif isinstance(value, int) and abs(value) < 2**53:
        out += [float(value), str(value)]
        if value in (0, 1):
            out.append(bool(value))
    elif isinstance(value, str):
        out.append(value.encode())
    elif isinstance(value, bytes):
        out.append(value.decode("latin-1"))
    elif isinstance(value, list):
        out.append(tuple(value))
    elif isinstance(value, tuple):
        out.append(list(value))
    elif isinstance(value, set):
        out.append(frozenset(value))
    elif isinstance(value, frozenset):
        out.append(set(value))
    elif isinstance(value, np.ndarray) and value.dtype != np.float64:
        out.append(value.astype(np.float64))
    return out


# -- equal values hash equal ----------------------------------------------------------------------


@FAST
@given(values, st.randoms(use_true_random=False))
def test_equal_values_hash_equal(value: Any, rng: random.Random) -> None:
    copy = rebuilt(value, rng)
    assert identity(copy) == identity(value)
    assert content_hash(copy) == content_hash(value)


@FAST
@given(st.dictionaries(hashable, scalars | arrays, max_size=6))
def test_dict_insertion_order_does_not_count(value: dict[Any, Any]) -> None:
    backwards = dict(reversed(list(value.items())))
    assert content_hash(backwards) == content_hash(value)


@FAST
@given(st.lists(hashable, max_size=8))
def test_sets_hash_alike_however_they_were_built(items: list[Any]) -> None:
    # (not `set(reversed(items))`: `{False, 0}` keeps whichever comes first, a bool or an int)
    members = list(set(items))
    assert content_hash(set(members)) == content_hash(set(reversed(members)))
    assert content_hash(frozenset(members)) == content_hash(frozenset(reversed(members)))


def test_documented_float_identities() -> None:
    assert content_hash(float("nan")) == content_hash(-float("nan"))
    assert content_hash([math.inf, float("nan")]) == content_hash([math.inf, float("nan")])
    assert content_hash(-0.0) != content_hash(0.0)


# -- distinct values hash distinct ----------------------------------------------------------------


@FAST
@given(values, values)
def test_distinct_values_hash_distinct(a: Any, b: Any) -> None:
    assert (content_hash(a) == content_hash(b)) == (identity(a) == identity(b))


@FAST
@given(values)
def test_equal_values_of_another_type_hash_distinct(value: Any) -> None:
    for other in retyped(value):
        assert content_hash(other) != content_hash(value), (value, other)


@FAST
@given(values)
def test_wrapping_changes_the_hash(value: Any) -> None:
    # nesting is part of the identity: x, [x] and (x,) are three values
    digests = {content_hash(value), content_hash([value]), content_hash((value,))}
    assert len(digests) == 3


# -- pandas ---------------------------------------------------------------------------------------

columns = st.one_of(
    st.lists(st.integers(-(2**40), 2**40), min_size=3, max_size=3),
    st.lists(st.floats(allow_nan=True, allow_infinity=False), min_size=3, max_size=3),
    st.lists(st.text(max_size=5), min_size=3, max_size=3),
)
frames = st.dictionaries(st.text(min_size=1, max_size=4), columns, min_size=1, max_size=3).map(
    pd.DataFrame
)


@settings(max_examples=30, deadline=None)
@given(frames)
def test_equal_frames_hash_equal(frame: pd.DataFrame) -> None:
    rebuilt_frame = pd.DataFrame({name: list(frame[name]) for name in frame.columns})
    assert content_hash(rebuilt_frame) == content_hash(frame)
    assert content_hash(frame.copy()) == content_hash(frame)


@settings(max_examples=30, deadline=None)
@given(frames, st.data())
def test_a_changed_cell_changes_the_frame_hash(frame: pd.DataFrame, data: st.DataObject) -> None:
    column = data.draw(st.sampled_from(list(frame.columns)))
    row = data.draw(st.integers(0, len(frame) - 1))
    old = frame[column].iloc[row]
    if not pd.api.types.is_numeric_dtype(frame[column]):
        new: Any = str(old) + "!"
    elif frame[column].dtype.kind == "f":
        new = 0.5 if math.isnan(old) or old != 0.5 else 1.5
    else:
        new = int(old) + 1
    changed = frame.copy()
    changed.iloc[row, list(frame.columns).index(column)] = new
    assert content_hash(changed) != content_hash(frame)
    renamed = frame.rename(columns={column: column + "_"})
    assert content_hash(renamed) != content_hash(frame)


# -- across processes and hash seeds --------------------------------------------------------------

_CHILD = """
import json, pickle, sys
from glasspane.hashing import content_hash
values = pickle.loads(sys.stdin.buffer.read())
print(json.dumps([content_hash(v) for v in values]))
"""


def _hashes_elsewhere(batch: list[Any], seed: str) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=pickle.dumps(batch),
        env=env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return list(json.loads(out.stdout))


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(values, min_size=15, max_size=25),
    st.lists(frames, min_size=1, max_size=3),
    st.integers(0, 2**32 - 1),
)
def test_hashes_agree_across_processes_and_hash_seeds(
    batch: list[Any], frame_batch: list[pd.DataFrame], seed: int
) -> None:
    everything = [*batch, *frame_batch]
    here = [content_hash(v) for v in everything]
    assert _hashes_elsewhere(everything, str(seed)) == here
