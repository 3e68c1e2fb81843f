"""Following a run from any process: its events as the process running it stores them."""

from __future__ import annotations

import time
from collections.abc import Iterator

from .events import Event, RunFinished, from_dict
from .store import MetadataStore
from .store.event_log import run_state
from .types import CRASHED, TERMINAL_STATES

#: seconds ``follow`` waits for ``RunFinished`` once a run's final state is stored
FINISH_GRACE = 10.0


def follow(
    store: MetadataStore,
    run_id: str,
    *,
    after: int = 0,
    poll: float = 0.2,
    timeout: float | None = None,
) -> Iterator[Event]:
    """See :meth:`glasspane.workspace.Workspace.follow`."""
    run_id = store.get_run(run_id)["run_id"]
    deadline = None if timeout is None else time.monotonic() + timeout
    ended_at: float | None = None  # when the run was first seen over, without RunFinished
    while True:
        payloads = store.run_events(run_id, after=after)
        for payload in payloads:
            event = from_dict(payload)
            after = event.seq
            yield event
            if isinstance(event, RunFinished):
                return
        if payloads:
            continue
        state = store.read(run_state, run_id)
        if state in TERMINAL_STATES:
            # the driver commits the final state, then logs RunFinished: wait for it,
            # unless no driver is left to log it (swept as crashed, or gone meanwhile)
            ended_at = ended_at or time.monotonic()
            if state == CRASHED or time.monotonic() - ended_at > FINISH_GRACE:
                return
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} did not finish within {timeout:g} s")
        time.sleep(poll)
