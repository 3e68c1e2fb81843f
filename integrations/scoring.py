"""Scoring requests for glasspane's local model server, in MLflow's scoring protocol.

A request body becomes :class:`Rows` (column names, if the request gave them, and a list of
rows) in three steps, each raising :class:`ScoringError` (status, MLflow error code, a
message saying what was wrong and what is accepted) and nothing else for a bad payload:

1. :func:`parse_request`: the content type (``application/json`` or ``text/csv``, UTF-8)
   and the body. JSON holds exactly one of ``dataframe_split``, ``dataframe_records``,
   ``instances`` or ``inputs``, with MLflow's meanings.
2. :func:`conform`: the rows checked against what the model says it was trained on
   (``feature_names_in_``, ``n_features_in_``) and put in its column order.
3. :func:`jsonable`: what ``predict`` returned as one JSON-able value per row.

Rows stay plain Python lists until a batch of requests is scored: building one DataFrame per
batch, not per request, is what makes micro-batching cheap. Nothing here imports pandas
except the CSV and DataFrame paths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from glasspane.errors import GlasspaneError

JSON, CSV = "application/json", "text/csv"
CONTENT_TYPES = (JSON, CSV)
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
REQUIRED_INPUT_FORMAT = (
    "The input must be a JSON dictionary with exactly one of the input fields "
    + ", ".join(f"'{key}'" for key in FORMATS)
)
#: MLflow's error codes (``mlflow.protos.databricks_pb2``) for the statuses this server uses
ERROR_CODES = {400: "BAD_REQUEST", 405: "BAD_REQUEST", 415: "BAD_REQUEST", 500: "INTERNAL_ERROR"}


class ScoringError(GlasspaneError, ValueError):
    """A scoring request the model server cannot answer with predictions: ``status`` is the
    HTTP status (400, 415, ...), ``error_code`` MLflow's name for it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = ERROR_CODES.get(status, "BAD_REQUEST")

    def body(self) -> dict[str, str]:
        """The JSON body of the error response, in MLflow's shape."""
        return {"error_code": self.error_code, "message": str(self)}


@dataclass(frozen=True)
class Rows:
    """A request's rows: ``columns`` names them (None: by position), each row is a list of
    ``len(columns)`` values when named."""

    columns: tuple[str, ...] | None
    data: list[list[Any]]


@dataclass(frozen=True)
class Features:
    """What a model says about its input: ``names`` (``feature_names_in_``) and ``count``
    (``n_features_in_``), each None when it does not say."""

    names: tuple[str, ...] | None = None
    count: int | None = None

    @classmethod
    def of(cls, model: Any) -> Features:
        names = getattr(model, "feature_names_in_", None)
        count = getattr(model, "n_features_in_", None)
        return cls(
            names=tuple(str(name) for name in names) if names is not None else None,
            count=int(count) if count is not None else None,
        )


def parse_request(body: bytes, content_type: str | None) -> Rows:
    """The rows of a scoring request.

    Raises:
        ScoringError: 415 for a content type or charset other than the accepted ones, 400
            for a body that does not hold rows in one of the accepted formats.
    """
    mime, _, parameters = (content_type or "").partition(";")
    mime = mime.strip().lower()
    options = dict(
        (key.strip().lower(), value.strip().strip('"').lower())
        for key, _, value in (p.partition("=") for p in parameters.split(";") if p.strip())
    )
    if mime not in CONTENT_TYPES:
        raise ScoringError(
            f"This predictor only supports the following content types: {list(CONTENT_TYPES)}. "
            f"Got '{content_type or ''}'.",
            415,
        )
    if options.get("charset", "utf-8") != "utf-8" or set(options) - {"charset"}:
        raise ScoringError(
            f"The scoring server only supports UTF-8 and no content type parameters but "
            f"charset; got '{content_type}'.",
            415,
        )
    if mime == CSV:
        return parse_csv(body)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ScoringError(
            f"Invalid input. Ensure that input is a valid JSON formatted string. Error: {exc}"
        ) from None
    return parse_json(payload)


def parse_json(payload: Any) -> Rows:
    """The rows of a decoded JSON scoring request (see :func:`parse_request`)."""
    if not isinstance(payload, dict):
        kind = "a list" if isinstance(payload, list) else f"a {type(payload).__name__}"
        raise ScoringError(f"{REQUIRED_INPUT_FORMAT}. Received {kind}.")
    keys = list(payload)
    unknown = [key for key in keys if key not in FORMATS and key != "params"]
    found = [key for key in keys if key in FORMATS]
    if unknown or len(found) != 1:
        what = f"unknown input fields {unknown}; " if unknown else ""
        raise ScoringError(
            f"{REQUIRED_INPUT_FORMAT}. Received dictionary with input fields: {keys} "
            f"({what}{len(found)} of the input fields)."
        )
    if payload.get("params"):
        raise ScoringError(
            "Invalid input. This model's predict takes no params; send the input field alone."
        )
    key = found[0]
    value = payload[key]
    if key == "dataframe_split":
        return _split(value)
    if key == "dataframe_records":
        if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
            raise ScoringError(
                "Invalid input. Dataframe records format must be a list of records "
                '(objects mapping column to value, e.g. [{"a": 1, "b": 2}]). '
                f"Got {_kind(value)}."
            )
        return _records(value, key)
    if key == "inputs" and isinstance(value, dict):
        return _columns(value)
    return _instances(value, key)


def parse_csv(body: bytes) -> Rows:
    """The rows of a CSV body with a header row."""
    import io

    import pandas as pd

    try:
        frame = pd.read_csv(io.StringIO(body.decode("utf-8")))
    except Exception as exc:  # pandas raises many kinds for a malformed file
        raise ScoringError(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
            "CSV-formatted Pandas DataFrame, with a header row, produced using the "
            f"`pandas.DataFrame.to_csv()` method. Error: '{exc}'"
        ) from None
    columns = tuple(str(c) for c in frame.columns)
    return _checked(columns, frame.astype(object).values.tolist(), "text/csv")


def conform(rows: Rows, features: Features) -> Rows:
    """``rows`` in the order of the columns the model was trained on, named when it says
    their names; unnamed when it was trained on unnamed columns (an array).

    Raises:
        ScoringError: the rows have the wrong width, or columns the model does not know or
            lacks columns it needs.
    """
    names, count = features.names, features.count
    if rows.columns is None:
        width = len(rows.data[0])
        expected = len(names) if names is not None else count
        if expected is not None and width != expected:
            wants = f"the columns {list(names)}" if names is not None else "values"
            raise ScoringError(
                f"Invalid input. Each row must have {expected} values ({wants}, in that "
                f"order), got rows of {width}; or name the columns (e.g. 'dataframe_split' "
                "with 'columns', or 'dataframe_records')."
            )
        return Rows(names, rows.data)
    if names is None:
        if count is not None and len(rows.columns) != count:
            raise ScoringError(
                f"Invalid input. The model takes {count} columns, got "
                f"{len(rows.columns)}: {list(rows.columns)}."
            )
        # trained on an array: its columns have no names to match
        return Rows(None if count is not None else rows.columns, rows.data)
    if rows.columns == names:
        return rows
    unknown = [c for c in rows.columns if c not in names]
    missing = [c for c in names if c not in rows.columns]
    if unknown or missing or len(set(rows.columns)) != len(rows.columns):
        said = []
        if unknown:
            said.append(f"Columns the model was not trained on: {unknown}")
        if missing:
            said.append(f"{'m' if unknown else 'M'}issing columns: {missing}")
        if not said:
            said.append(f"Repeated columns: {list(rows.columns)}")
        raise ScoringError(
            f"Invalid input. {'; '.join(said)}. The model takes the columns {list(names)}."
        )
    where = [rows.columns.index(name) for name in names]
    return Rows(names, [[row[i] for i in where] for row in rows.data])


def jsonable(predictions: Any, n_rows: int) -> list[Any]:
    """``predictions`` as a list of ``n_rows`` JSON-able values (numpy scalars and arrays
    become Python's; a DataFrame becomes one record per row).

    Raises:
        TypeError: the model returned something that is not one prediction per row.
    """
    if hasattr(predictions, "to_dict") and hasattr(predictions, "columns"):  # a DataFrame
        values = predictions.to_dict(orient="records")
    elif hasattr(predictions, "tolist"):  # a numpy array or a pandas Series
        values = predictions.tolist()
    elif isinstance(predictions, (list, tuple)):
        values = [_native(v) for v in predictions]
    else:
        raise TypeError(f"predict returned a {type(predictions).__name__}, not one per row")
    if not isinstance(values, list) or len(values) != n_rows:
        got = len(values) if isinstance(values, list) else "a scalar"
        raise TypeError(f"predict returned {got} predictions for {n_rows} rows")
    return values


def dumps(value: Any) -> bytes:
    """``value`` as compact JSON bytes, numpy scalars included."""
    return json.dumps(value, separators=(",", ":"), default=_native_or_fail).encode()


def _split(value: Any) -> Rows:
    if not isinstance(value, dict):
        raise ScoringError(
            f"Invalid input. Dataframe split format must be a dictionary. Got {_kind(value)}."
        )
    keys = set(value)
    if "data" not in keys or keys - {"columns", "data", "index"}:
        raise ScoringError(
            "Invalid input. Dataframe split format must have 'data' field and optionally "
            f"'columns' and 'index' fields. Got {sorted(keys)}."
        )
    data, columns, index = value["data"], value.get("columns"), value.get("index")
    if not isinstance(data, list):
        raise ScoringError(
            f"Invalid input. 'dataframe_split' 'data' must be a list of rows. Got {_kind(data)}."
        )
    if columns is not None and (
        not isinstance(columns, list) or not all(isinstance(c, (str, int)) for c in columns)
    ):
        raise ScoringError(
            "Invalid input. 'dataframe_split' 'columns' must be a list of column names. "
            f"Got {_kind(columns)}."
        )
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise ScoringError(
            "Invalid input. 'dataframe_split' 'index' must be a list with one label per row "
            f"of 'data' ({len(data)})."
        )
    if data and not isinstance(data[0], list) and columns is not None and len(columns) == 1:
        data = [[v] for v in data]  # one column's values, as pandas reads them
    names = tuple(str(c) for c in columns) if columns is not None else None
    return _checked(names, data, "'dataframe_split' 'data'")


def _records(records: list[dict[str, Any]], key: str) -> Rows:
    if not records:
        return _checked((), [], f"'{key}'")
    columns = list(records[0])
    known = set(columns)
    for record in records[1:]:
        for column in record:
            if column not in known:
                known.add(column)
                columns.append(column)
    # a column a record lacks is missing there (NaN), as pandas reads records
    data = [[record.get(c) for c in columns] for record in records]
    return _checked(tuple(columns), data, f"'{key}'")


def _columns(value: dict[str, Any]) -> Rows:
    columns = tuple(str(c) for c in value)
    values = list(value.values())
    if all(not isinstance(v, list) for v in values):
        return _checked(columns, [values], "'inputs'")  # one value per column: one row
    lengths = {len(v) if isinstance(v, list) else None for v in values}
    if len(lengths) != 1 or None in lengths:
        raise ScoringError(
            "Invalid input. The length of values for each input/column name are not the same: "
            "'inputs' as a dictionary maps each column to a list of its values, one per row."
        )
    return _checked(columns, [list(row) for row in zip(*values)], "'inputs'")


def _instances(value: Any, key: str) -> Rows:
    if not isinstance(value, list):
        raise ScoringError(
            f"Invalid input. '{key}' must be a list of rows (lists of values), of records "
            f"(objects mapping column to value) or of single values. Got {_kind(value)}."
        )
    if value and all(isinstance(v, dict) for v in value):
        return _records(value, key)
    if value and all(isinstance(v, list) for v in value):
        return _checked(None, value, f"'{key}'")
    if any(isinstance(v, (list, dict)) for v in value):
        raise ScoringError(
            f"Invalid input. '{key}' mixes rows, records and single values; send one kind."
        )
    return _checked(None, [[v] for v in value], f"'{key}'")


def _checked(columns: tuple[str, ...] | None, data: list[Any], where: str) -> Rows:
    if not data:
        raise ScoringError(f"Invalid input. {where} holds no rows; send at least one row.")
    width = len(columns) if columns is not None else None
    for i, row in enumerate(data):
        if not isinstance(row, list):
            raise ScoringError(
                f"Invalid input. {where} must be a list of rows (lists of values); "
                f"row {i} is {_kind(row)}."
            )
        if width is None:
            width = len(row)
        if len(row) != width:
            named = f" for the {width} columns" if columns is not None else " as row 0"
            raise ScoringError(
                f"Invalid input. Rows of {where} must all have {width} values{named}; "
                f"row {i} has {len(row)}."
            )
    if width == 0:
        raise ScoringError(f"Invalid input. {where} has rows of no values.")
    return Rows(columns, data)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a dictionary"
    if isinstance(value, list):
        return "a list"
    return "null" if value is None else f"a {type(value).__name__}"


def _native(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value


def _native_or_fail(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception raised by the model, short enough for a response."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
