"""The built-in materializers of arrays and tables: pandas DataFrames as parquet, numpy
arrays as ``.npy``. Both stream into the store and read from a path (see
:mod:`glasspane.artifacts.materializers` for the protocol and the order they are tried in).
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO

from .loading import import_module
from .previews import _loaded

__all__ = ["NpyMaterializer", "ParquetMaterializer"]


class ParquetMaterializer:
    """pandas DataFrames as parquet through pyarrow, index and column names included.

    Parquet gives back exactly the frame written when every column is a plain numpy number
    or bool column, the labels are distinct strings and the index is an unnamed
    ``RangeIndex``: such a frame is streamed to the store as it is serialized. Any other
    frame (object columns, extension dtypes, mixed labels, other indexes) is serialized in
    memory and read back first, and passed on to the next materializer unless it comes back
    equal, with the same dtypes, labels and index.
    """

    name = "parquet"
    extension = "parquet"

    def can_handle(self, value: Any) -> bool:
        frame = _loaded("pandas", "DataFrame")
        return frame is not None and type(value) is frame

    def dump(self, value: Any) -> bytes:
        buffer = io.BytesIO()
        self._write(value, buffer)
        data = buffer.getvalue()
        # Mixed column labels, object columns of lists, pandas-2 object strings...: parquet
        # reads these back changed; such a frame is left to the next materializer.
        if not _same_frame(value, self.load(data)):
            raise ValueError("parquet does not round-trip this frame exactly")
        return data

    def dump_to(self, value: Any, file: BinaryIO) -> None:
        if not _exact_schema(value):
            file.write(self.dump(value))
            return
        self._write(value, file)

    def _write(self, value: Any, file: Any) -> None:
        pa, pq = import_module("pyarrow"), import_module("pyarrow.parquet")
        pq.write_table(pa.Table.from_pandas(value, preserve_index=None), file)

    def load(self, data: bytes) -> Any:
        return self.load_from(io.BytesIO(data))

    def load_from(self, source: str | BinaryIO) -> Any:
        pq = import_module("pyarrow.parquet")
        import_module("pandas")  # to_pandas imports it
        return pq.read_table(source).to_pandas()


def _exact_schema(frame: Any) -> bool:
    """Whether parquet gives ``frame`` back exactly, judged from its schema alone: numpy
    number and bool columns (not float16) under distinct string labels of pandas' default
    string dtype, and an unnamed ``RangeIndex``. tests/engine/artifacts/test_large_values.py
    checks every frame this accepts against a full round trip."""
    import numpy as np
    import pandas as pd

    columns, index = frame.columns, frame.index
    return (
        type(index) is pd.RangeIndex
        and index.name is None
        and type(columns) is pd.Index
        and columns.name is None
        and len(columns) > 0
        and columns.is_unique
        and all(type(label) is str for label in columns)
        # object labels come back as pandas' default string dtype (pandas 3): not exact
        and columns.dtype == pd.Index(["label"]).dtype
        and all(
            isinstance(dtype, np.dtype) and dtype.kind in "biuf" and dtype != np.float16
            for dtype in frame.dtypes
        )
    )


def _same_frame(a: Any, b: Any) -> bool:
    return (
        a.equals(b)
        and list(a.dtypes) == list(b.dtypes)
        and _same_index(a.columns, b.columns)
        and _same_index(a.index, b.index)
    )


def _same_index(a: Any, b: Any) -> bool:
    import pandas as pd

    def kind(index: Any) -> type:  # columns 0..n-1 come back as Index, not RangeIndex: alike
        return pd.Index if isinstance(index, pd.RangeIndex) else type(index)

    return (
        kind(a) is kind(b)
        and a.dtype == b.dtype
        and list(a.names) == list(b.names)
        and a.equals(b)
        # object labels compare equal across types (1 == 1.0 == True): compare the types too
        and (a.dtype != object or [type(x) for x in a] == [type(x) for x in b])
    )


class NpyMaterializer:
    """numpy arrays as ``.npy`` (``allow_pickle=False``); object arrays are left to pickle."""

    name = "npy"
    extension = "npy"

    def can_handle(self, value: Any) -> bool:
        ndarray = _loaded("numpy", "ndarray")
        return ndarray is not None and type(value) is ndarray and not value.dtype.hasobject

    def dump(self, value: Any) -> bytes:
        buffer = io.BytesIO()
        self.dump_to(value, buffer)
        return buffer.getvalue()

    def dump_to(self, value: Any, file: BinaryIO) -> None:
        # written in chunks of 16 MiB: never a second copy of the array
        import_module("numpy").save(file, value, allow_pickle=False)

    def load(self, data: bytes) -> Any:
        return self.load_from(io.BytesIO(data))

    def load_from(self, source: str | BinaryIO) -> Any:
        return import_module("numpy").load(source, allow_pickle=False)
