"""Micro-batching for the model server: concurrent requests share one ``predict`` call.

Requests wait on an asyncio queue. One consumer task takes what is queued, up to
``max_rows`` rows (waiting at most ``max_wait`` seconds for more once the first request is
in, when other requests are in the server: a lone client does not wait), builds one
DataFrame per column layout, runs one ``model.predict`` in a worker thread and hands each
request the slice of predictions for its rows. Invariants:

- a request is never split across batches (one larger than ``max_rows`` is a batch alone);
- a request only ever gets its own predictions or its own error: when ``predict`` raises on
  a batch, its requests are scored one by one, so only the bad one fails;
- ``max_rows=1`` turns batching off (one ``predict`` per request, no waiting).

The queue and the consumer belong to the event loop of the first request; a batcher used
from a new loop (a test client per request) starts a new consumer there.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from glasspane.errors import InvalidArgument

from .scoring import Rows, ScoringError, describe, jsonable

#: a request's predictions, or the error it gets instead
Outcome = list[Any] | ScoringError


@dataclass
class _Pending:
    rows: Rows
    future: asyncio.Future[list[Any]]


class MicroBatcher:
    """Scores requests' rows with ``model.predict``, coalescing concurrent requests.

    Args:
        model: anything with ``predict(pandas.DataFrame)`` returning one value per row.
        max_rows: the most rows one ``predict`` gets (1: no batching).
        max_wait: seconds to wait for more requests once one is queued.
    """

    def __init__(self, model: Any, *, max_rows: int = 256, max_wait: float = 0.002) -> None:
        if max_rows < 1:
            raise InvalidArgument(f"max_rows must be at least 1 (1: no batching), not {max_rows}")
        if max_wait < 0:
            raise InvalidArgument(f"max_wait must be 0 or more seconds, not {max_wait}")
        self.model = model
        self.max_rows = max_rows
        self.max_wait = max_wait
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        self._inside = 0  # requests queued, being scored, or answered but not yet resumed

    async def predict(self, rows: Rows) -> list[Any]:
        """The predictions for ``rows``, one per row.

        Raises:
            ScoringError: ``predict`` raised on these rows (400).
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._queue is None:
            self._loop, self._queue = loop, asyncio.Queue()
            self._task = loop.create_task(self._consume(self._queue))
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._queue.put_nowait(_Pending(rows, future))
        self._inside += 1
        try:
            return await future
        finally:
            self._inside -= 1

    async def close(self) -> None:
        """Stop the consumer (requests still queued are not answered)."""
        task, self._task, self._loop, self._queue = self._task, None, None, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _consume(self, queue: asyncio.Queue[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        carry: _Pending | None = None
        while True:
            first = carry if carry is not None else await queue.get()
            carry = None
            batch, size = [first], len(first.rows.data)
            # wait for more only while other requests are in the server (just answered: their
            # clients' next requests are on the way); a lone client is answered at once
            waiting = self._inside > queue.qsize() + 1
            deadline = loop.time() + self.max_wait
            while size < self.max_rows:
                if queue.empty():
                    remaining = deadline - loop.time()
                    if not waiting or remaining <= 0:
                        break
                    await asyncio.sleep(remaining)
                    continue
                item = queue.get_nowait()
                if size + len(item.rows.data) > self.max_rows:
                    carry = item  # the first of the next batch
                    break
                batch.append(item)
                size += len(item.rows.data)
            try:
                outcomes = await asyncio.to_thread(self.score, [p.rows for p in batch])
            except Exception as exc:  # a bug here must not stop the server answering
                error = ScoringError(f"scoring failed: {describe(exc)}", 500)
                outcomes = [error] * len(batch)
            for pending, outcome in zip(batch, outcomes):
                if pending.future.done():  # its client went away
                    continue
                if isinstance(outcome, ScoringError):
                    pending.future.set_exception(outcome)
                else:
                    pending.future.set_result(outcome)

    def score(self, requests: list[Rows]) -> list[Outcome]:
        """Each request's outcome, with one ``predict`` per column layout (synchronous: the
        consumer runs it in a worker thread)."""
        groups: dict[tuple[str, ...] | None, list[int]] = {}
        for i, rows in enumerate(requests):
            groups.setdefault(rows.columns, []).append(i)
        outcomes: list[Outcome] = [[] for _ in requests]
        for indices in groups.values():
            for i, outcome in zip(indices, self._score_group([requests[i] for i in indices])):
                outcomes[i] = outcome
        return outcomes

    def _score_group(self, group: list[Rows]) -> list[Outcome]:
        try:
            return list(self._predict(group))
        except Exception as exc:  # the model's own errors, whatever their class
            if len(group) > 1:  # find the bad request: score each alone
                return [self._score_group([rows])[0] for rows in group]
            return [
                ScoringError(
                    "Encountered an unexpected error while evaluating the model. Verify that "
                    "the input is compatible with the model for inference. "
                    f"Error: {describe(exc)}"
                )
            ]

    def _predict(self, group: list[Rows]) -> list[list[Any]]:
        import pandas as pd

        columns = group[0].columns
        data = group[0].data if len(group) == 1 else [row for rows in group for row in rows.data]
        frame = pd.DataFrame(data, columns=list(columns) if columns is not None else None)
        values = jsonable(self.model.predict(frame), len(data))
        slices, start = [], 0
        for rows in group:
            slices.append(values[start : start + len(rows.data)])
            start += len(rows.data)
        return slices
