"""Large values go to the store once, streamed and hashed as they are written.

The parquet materializer decides from a frame's schema whether parquet gives it back
exactly, instead of reading every frame back: each frame it lets through unchecked must
come back equal, with the same dtypes, labels and index, and every other frame is still
read back, or pickled.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from glasspane.artifacts import ArtifactStore, materializers, register_materializer
from glasspane.artifacts.columnar import ParquetMaterializer, _exact_schema, _same_frame
from glasspane.errors import CorruptedArtifact, SerializationError

PARQUET = ParquetMaterializer()
INTS = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]

EXACT = {
    "floats": pd.DataFrame(np.random.default_rng(0).standard_normal((50, 3)), columns=list("abc")),
    "special floats": pd.DataFrame(
        {"f4": np.array([1, -0.0, np.nan], "f4"), "f8": [np.inf, -np.inf, np.nan]}
    ),
    "every int width": pd.DataFrame({k: np.array([0, 1, 2], dtype=k) for k in INTS}),
    "extreme ints": pd.DataFrame(
        {"i8": [np.iinfo("i8").min, np.iinfo("i8").max], "u8": np.array([0, 2**64 - 1], "u8")}
    ),
    "bools": pd.DataFrame({"b": [True, False, True], "x": [1.0, 2.0, 3.0]}),
    "offset range index": pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=pd.RangeIndex(5, 11, 2)),
    "no rows": pd.DataFrame({"a": np.array([], "f8"), "n": np.array([], "i4")}),
    "unicode labels": pd.DataFrame({"größe": [1.0], "": [2.0], " a ": [3.0]}),
}

NOT_EXACT = {
    "object labels": pd.DataFrame(np.zeros((2, 2)), columns=pd.Index(["a", "b"], dtype=object)),
    "int labels": pd.DataFrame(np.zeros((2, 2))),
    "named range index": pd.DataFrame({"a": [1.0]}, index=pd.RangeIndex(1, name="i")),
    "int index": pd.DataFrame({"a": [1.0, 2.0]}, index=[3, 9]),
    "string column": pd.DataFrame({"s": ["x", "y"]}),
    "nullable ints": pd.DataFrame({"n": pd.array([1, None], dtype="Int64")}),
    "float16": pd.DataFrame({"h": np.zeros(2, "f2")}),
    "dates": pd.DataFrame({"t": pd.date_range("2024-01-01", periods=2)}),
    "categories": pd.DataFrame({"c": pd.Categorical(["u", "v"])}),
    "named columns": pd.DataFrame({"a": [1.0]}).rename_axis(columns="features"),
    "no columns": pd.DataFrame(index=pd.RangeIndex(3)),
}


def _parquet_back(frame: pd.DataFrame) -> pd.DataFrame:
    buffer = io.BytesIO()
    PARQUET._write(frame, buffer)
    return PARQUET.load(buffer.getvalue())


@pytest.mark.parametrize("name", sorted(EXACT))
def test_frames_judged_exact_by_their_schema_round_trip_exactly(name: str) -> None:
    frame = EXACT[name]
    assert _exact_schema(frame)
    back = _parquet_back(frame)
    assert _same_frame(frame, back)
    assert [str(t) for t in back.dtypes] == [str(t) for t in frame.dtypes]


@pytest.mark.parametrize("name", sorted(NOT_EXACT))
def test_other_frames_are_read_back_before_they_are_trusted(name: str) -> None:
    assert not _exact_schema(NOT_EXACT[name])


def test_random_schemas_judged_exact_always_round_trip() -> None:
    rng = np.random.default_rng(7)
    kinds = [*INTS, "float32", "float64", "bool"]
    for _ in range(200):
        columns = {
            f"c{i}": rng.integers(0, 100, size=4).astype(rng.choice(kinds)) for i in range(3)
        }
        start, step = int(rng.integers(-5, 5)), int(rng.choice([-2, 1, 3]))
        frame = pd.DataFrame(columns, index=pd.RangeIndex(start, start + 4 * step, step))
        assert _exact_schema(frame)
        assert _same_frame(frame, _parquet_back(frame))


@pytest.mark.parametrize(
    "value",
    [
        pd.DataFrame(np.arange(40_000.0).reshape(-1, 4), columns=list("abcd")),
        pd.DataFrame({"a": [[1], [2, 3]]}),  # parquet alters it: pickled
        pd.DataFrame({"s": ["x", "y"], "t": pd.date_range("2024-01-01", periods=2)}),
        np.arange(30_000.0).reshape(-1, 3),
        {"weights": np.ones(1000)},
    ],
    ids=["exact frame", "list column", "checked frame", "array", "pickle"],
)
def test_a_streamed_value_reads_back_and_its_digest_is_the_files(
    tmp_path: Path, value: Any
) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    info = store.put(value)
    stored = Path(info.uri or "")
    assert info.digest == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert info.size == stored.stat().st_size
    back = store.get(info)
    if isinstance(value, pd.DataFrame):
        assert _same_frame(value, back)
    elif isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and np.array_equal(back, value)
    else:
        assert np.array_equal(back["weights"], value["weights"])
    assert [p.name for p in stored.parent.iterdir()] == [stored.name]  # no temporary file


class HalfWriter:
    """Claims ints, writes half of them, then fails."""

    name = "half"
    extension = "half"

    def can_handle(self, value: Any) -> bool:
        return type(value) is int

    def dump(self, value: Any) -> bytes:
        raise AssertionError("dump_to is used")

    def dump_to(self, value: Any, file: Any) -> None:
        file.write(b"x" * 1000)
        raise ValueError("ran out of ideas")

    def load(self, data: bytes) -> Any:
        return int(data)


def test_a_materializer_failing_mid_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(materializers, "_FIRST", [])
    register_materializer(HalfWriter())
    store = ArtifactStore(str(tmp_path / "artifacts"))
    with pytest.raises(SerializationError, match="materializer `half` .*ran out of ideas"):
        store.put(5, where="task `count`")
    assert [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()] == []


def test_a_full_disk_fails_the_write_and_is_not_taken_for_an_unstorable_value(
    tmp_path: Path,
) -> None:
    """A 1 MiB tmpfs, in a mount namespace of its own: a 4 MB frame cannot be written. The
    error names the path and the cause, nothing is left behind, and the frame is not handed
    to the pickle materializer as if parquet had refused it."""
    root = tmp_path / "artifacts"
    root.mkdir()
    code = (
        "import numpy as np, pandas as pd, os\n"
        "from glasspane.artifacts import ArtifactStore\n"
        "from glasspane.errors import ArtifactError\n"
        f"store = ArtifactStore({str(root)!r})\n"
        "frame = pd.DataFrame(np.random.default_rng(0).standard_normal((125_000, 4)), "
        "columns=list('abcd'))\n"
        "try:\n"
        "    store.put(frame)\n"
        "except ArtifactError as exc:\n"
        "    print('ERROR', exc)\n"
        f"print('FILES', sorted(f for _, _, fs in os.walk({str(root)!r}) for f in fs))\n"
    )
    script = (
        f"mount -t tmpfs -o size=1m glasspane-test {root} || exit 77; "
        f'exec {sys.executable} -c "$GLASSPANE_TEST_CODE"'
    )
    try:
        done = subprocess.run(
            ["unshare", "--mount", "sh", "-c", script],
            capture_output=True, text=True, env={**_env(), "GLASSPANE_TEST_CODE": code},
        )  # fmt: skip
    except FileNotFoundError:
        pytest.skip("needs unshare(1)")
    if done.returncode == 77 or "Operation not permitted" in done.stderr[:300]:
        pytest.skip("cannot mount a tmpfs here (needs CAP_SYS_ADMIN)")
    assert done.returncode == 0, done.stderr
    error, files = done.stdout.splitlines()
    assert error == (
        f"ERROR cannot write artifact to {root}/objects: No space left on device; check that "
        "GLASSPANE_ARTIFACT_ROOT is writable"
    )
    assert files == "FILES []"


def _env() -> dict[str, str]:
    return dict(os.environ)


@pytest.mark.parametrize("value", ["frame", "array"])
def test_a_large_blob_corrupted_on_disk_is_never_loaded(tmp_path: Path, value: str) -> None:
    """Large parquet and npy files are hashed while they are read: a flipped byte in the
    middle reads as a plausible value, which must not be returned."""
    data = np.random.default_rng(1).standard_normal((400_000, 4))
    big = pd.DataFrame(data, columns=list("abcd")) if value == "frame" else data
    store = ArtifactStore(str(tmp_path / "artifacts"))
    info = store.put(big)
    assert info.size > 8 << 20  # hashed beside the read
    path = Path(info.uri or "")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptedArtifact, match=f"artifact {path} is corrupted"):
        store.get(info)


class Holder:
    """A plain object holding a large array and, maybe, something that cannot be hashed."""

    def __init__(self, weights: np.ndarray, extra: Any = None) -> None:
        self.weights = weights
        self.extra = extra


@pytest.mark.parametrize("kind", ["array", "frame", "object"])
def test_a_large_value_hashed_beside_its_write_is_named_by_its_content_hash(
    tmp_path: Path, kind: str
) -> None:
    from glasspane.hashing import content_hash

    data = np.random.default_rng(2).standard_normal((300_000, 4))  # 9.6 MB: hashed beside
    value: Any = {"array": data, "frame": pd.DataFrame(data, columns=list("abcd"))}.get(
        kind, Holder(data)
    )
    store = ArtifactStore(str(tmp_path / "artifacts"))
    info = store.put(value)
    assert info.content_hash == content_hash(value)
    assert Path(info.uri or "").name.startswith(info.content_hash + ".")
    assert Path(info.uri or "").parent.name == info.content_hash[:2]
    back = store.get(info)
    assert content_hash(back) == info.content_hash
    leftovers = [p.name for p in (tmp_path / "artifacts" / "objects").iterdir() if p.is_file()]
    assert leftovers == []  # the temporary file was renamed into its shard


def test_a_large_value_that_cannot_be_hashed_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    import threading

    store = ArtifactStore(str(tmp_path / "artifacts"))
    value = Holder(np.zeros((300_000, 4)), extra=threading.Lock())
    with pytest.raises(SerializationError, match="cannot hash a value of type `lock`: it cannot"):
        store.put(value, where="task `fit`")
    assert [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()] == []
