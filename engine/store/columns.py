"""Values as the metadata tables store them: UTC datetimes, captured text cut to its tail,
an attempt's text columns, and the id of an inserted row."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Insert

#: bytes of each captured text (stdout, stderr, log tail, traceback, error) kept: the last
TEXT_LIMIT = 64 * 1024


def utc(ts: float | None) -> datetime | None:
    """An epoch timestamp from ``time.time()`` as an aware UTC datetime."""
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


def tail(text: str | None, limit: int = TEXT_LIMIT) -> str | None:
    """The last ``limit`` bytes (UTF-8) of ``text``, marked when something was cut."""
    if text is None or len(text) * 4 <= limit:
        return text
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    marker = f"[... {len(data) - limit} bytes truncated ...]\n"
    kept = data[len(data) - limit + len(marker.encode()) :]
    return marker + kept.decode("utf-8", errors="ignore")


def attempt_text(event: dict[str, Any], prefix: str) -> dict[str, str | None]:
    """The captured text of one attempt, as ``attempts`` columns.

    An ``attempt_finished`` event carries its attempt's ``stdout``, ``stderr`` and ``log_tail``
    (``prefix=""``); a ``task_finished`` event carries the task run's text under those names
    and the final attempt's own as ``attempt_stdout``... (``prefix="attempt_"``). Both carry
    the attempt's ``traceback``. A missing field (an older worker) is NULL.
    """
    columns = {name: tail(event.get(prefix + name)) for name in ("stdout", "stderr", "log_tail")}
    columns["traceback"] = tail(event.get("traceback"))
    return columns


def insert_id(conn: Connection, statement: Insert, row: dict[str, Any] | None = None) -> int:
    """Insert one row (``row``, or the statement's own values); return the id it was given."""
    key = conn.execute(statement, row).inserted_primary_key
    if key is None or key[0] is None:
        raise RuntimeError(f"the database returned no id for a row of {statement.table}")
    return int(key[0])
