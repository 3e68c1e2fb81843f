"""Artifacts by content hash, with a safe preview of what is stored.

A preview reads a stored blob without running any code from it: JSON is parsed as JSON, a
Parquet file through pyarrow (its footer and first rows only), a ``.npy`` file through numpy's
header reader and a raw read of its first rows, never with ``allow_pickle``. A pickled
artifact (or one a custom materializer wrote) gets no preview at all, only its type and size:
unpickling runs arbitrary code, and a UI must never do that to show a value.
"""

from __future__ import annotations

import json
import math
from typing import Any, BinaryIO

from ..artifacts import ArtifactStore
from ..errors import ArtifactError
from ..store import MetadataStore, browse
from ..types import ArtifactInfo
from .records import ArtifactDetail, ArtifactPreview, TaskRunRef

PREVIEW_ROWS = 5
PREVIEW_COLUMNS = 20
MAX_JSON_BYTES = 1 << 20
MAX_ITEMS = 20
MAX_CHARS = 200
MAX_CELLS = 1000


def artifact(
    metadata: MetadataStore, artifacts: ArtifactStore, content_hash: str
) -> ArtifactDetail:
    """The artifact with ``content_hash``: type, size, where it is stored, the task runs that
    output and consumed it, and a safe :func:`preview` of its content.

    Args:
        content_hash: the full content hash, or a unique prefix of at least 8 characters.

    Raises:
        NotFound: no artifact matches, or the prefix matches several.
    """
    row = metadata.read(browse.artifact, content_hash)
    info = ArtifactInfo.from_dict(row)
    return ArtifactDetail(
        content_hash=row["content_hash"],
        type_name=row["type_name"],
        materializer=row["materializer"],
        size=row["size"],
        uri=row["uri"],
        digest=row["digest"],
        created_at=row["created_at"],
        summary=row["preview"],
        produced_by=[TaskRunRef(**ref) for ref in row["produced_by"]],
        consumed_by=[TaskRunRef(**ref) for ref in row["consumed_by"]],
        preview=preview(artifacts, info),
    )


def preview(artifacts: ArtifactStore, info: ArtifactInfo) -> ArtifactPreview:
    """A look inside the stored blob of ``info``, read without unpickling; never raises.

    Returns kind ``none`` with a ``note`` for a pickled value (or one a custom materializer
    wrote), a value kept in memory only, and a blob that is missing or unreadable.
    """
    kind = info.materializer or "pickle"
    if kind not in ("json", "parquet", "npy"):
        return ArtifactPreview(
            kind="none",
            note=f"a {info.type_name} stored by the `{kind}` materializer ({info.size} bytes); "
            "glasspane previews JSON, Parquet and .npy only, and never unpickles to preview",
        )
    if info.uri is None:
        return ArtifactPreview(kind="none", note="kept in memory only: there is no stored copy")
    try:
        with artifacts.open_blob(info) as blob:
            if kind == "json":
                return _json(blob, info.size)
            if kind == "parquet":
                return _parquet(blob)
            return _npy(blob)
    except ArtifactError as exc:
        return ArtifactPreview(kind="none", note=str(exc))
    except Exception as exc:  # a damaged blob: say so, do not fail the page
        return ArtifactPreview(
            kind="none", note=f"cannot read the stored {kind}: {type(exc).__name__}: {exc}"
        )


def _json(blob: BinaryIO, size: int) -> ArtifactPreview:
    if size > MAX_JSON_BYTES:
        return ArtifactPreview(
            kind="none", note=f"JSON of {size} bytes; previews read JSON up to {MAX_JSON_BYTES}"
        )
    cut = [False]
    value = _shorten(json.loads(blob.read(MAX_JSON_BYTES + 1)), cut)
    return ArtifactPreview(kind="json", value=value, truncated=cut[0])


def _shorten(value: Any, cut: list[bool], level: int = 0) -> Any:
    """``value`` with at most :data:`MAX_ITEMS` items per list or dict, :data:`MAX_CHARS`
    characters per string and 5 levels; ``cut[0]`` becomes True when anything was cut."""
    if isinstance(value, str) and len(value) > MAX_CHARS:
        cut[0] = True
        return value[: MAX_CHARS - 1] + "…"
    if isinstance(value, (list, dict)) and level >= 5:
        cut[0] = True
        return f"<{type(value).__name__} of {len(value)}>"
    if isinstance(value, list):
        cut[0] = cut[0] or len(value) > MAX_ITEMS
        return [_shorten(item, cut, level + 1) for item in value[:MAX_ITEMS]]
    if isinstance(value, dict):
        cut[0] = cut[0] or len(value) > MAX_ITEMS
        items = list(value.items())[:MAX_ITEMS]
        return {key: _shorten(item, cut, level + 1) for key, item in items}
    return value


def _cell(value: Any) -> Any:
    """A JSON-safe stand-in for one cell or array element."""
    if isinstance(value, list):
        return [_cell(item) for item in value]
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def _parquet(blob: BinaryIO) -> ArtifactPreview:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(blob)
    schema = parquet.schema_arrow
    names = [name for name in schema.names if not name.startswith("__index_level_")]
    columns = names[:PREVIEW_COLUMNS]
    rows: list[dict[str, Any]] = []
    if parquet.metadata.num_rows and columns:
        batch = next(parquet.iter_batches(batch_size=PREVIEW_ROWS, columns=columns), None)
        if batch is not None:
            rows = [
                {name: _cell(cell) for name, cell in row.items()}
                for row in batch.to_pylist()[:PREVIEW_ROWS]
            ]
    return ArtifactPreview(
        kind="parquet",
        shape=[parquet.metadata.num_rows, len(names)],
        columns=columns,
        dtypes={name: str(schema.field(name).type) for name in columns},
        head=rows,
        truncated=len(names) > len(columns) or parquet.metadata.num_rows > PREVIEW_ROWS,
    )


def _npy(blob: BinaryIO) -> ArtifactPreview:
    import numpy as np
    from numpy.lib import format as npy

    version = npy.read_magic(blob)
    if version == (1, 0):
        shape, fortran_order, dtype = npy.read_array_header_1_0(blob)
    elif version == (2, 0):
        shape, fortran_order, dtype = npy.read_array_header_2_0(blob)
    else:
        return ArtifactPreview(kind="none", note=f".npy format version {version} not previewed")
    found = ArtifactPreview(kind="npy", shape=list(shape), dtype=str(dtype))
    if dtype.hasobject:
        return found.model_copy(update={"note": "an object array (pickled inside): no head"})
    total = math.prod(shape)
    rows = min(shape[0], PREVIEW_ROWS) if shape else 1
    per_row = math.prod(shape[1:]) if shape else 1
    size = dtype.itemsize
    if rows * per_row > MAX_CELLS or total == 0:
        count = min(total, MAX_ITEMS)
        head = np.frombuffer(blob.read(count * size), dtype=dtype, count=count).tolist()
        order = "Fortran" if fortran_order else "C"
        note = f"the first {count} values in storage ({order}) order" if count else None
        return found.model_copy(
            update={"head": _cell(head), "truncated": count < total, "note": note}
        )
    if fortran_order and len(shape) > 1:
        # the first rows are `rows` values at the start of each run of shape[0] values
        start = blob.tell()
        chunks = []
        for k in range(per_row):
            blob.seek(start + k * shape[0] * size)
            chunks.append(np.frombuffer(blob.read(rows * size), dtype=dtype, count=rows))
        array = np.reshape(np.stack(chunks).T, (rows, *shape[1:]), order="F")
    else:
        count = rows * per_row
        data = np.frombuffer(blob.read(count * size), dtype=dtype, count=count)
        array = data.reshape((rows, *shape[1:]) if shape else ())
    head = array.tolist()
    return found.model_copy(update={"head": _cell(head), "truncated": rows * per_row < total})
