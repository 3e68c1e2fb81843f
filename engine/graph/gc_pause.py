"""``gc_paused``: building a large graph (or its JSON) without the cyclic collector's passes."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a graph (or its JSON) is being built.

    A 100,000-node graph is a few million container objects. With the collector on, every
    full collection walks all of those made so far, and there are a dozen of them while the
    graph grows: more time than making the objects. Reference counting still frees what is
    dropped; the collector runs again on exit (the pause is process-wide, and lasts as long
    as the compile).
    """
    if not gc.isenabled():  # paused already (nested, or by the caller)
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
