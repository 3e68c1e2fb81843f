"""Executors: where jobs run. An :class:`ExecutorPool` turns a name or address into one and
owns the Dask executors (and embedded clusters) it started; ``make_executor`` uses the
process's default pool."""

from __future__ import annotations

import threading
from typing import Any

from ...errors import ConfigError
from .base import Execution, Executor
from .inline import InlineExecutor
from .threads import ThreadsExecutor


class ExecutorPool:
    """The executors of one configuration: one Dask executor (one client, and one embedded
    cluster when there is no scheduler address) per address, reused by every run;
    :meth:`close` closes them and their clusters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dask: dict[tuple[str | None, int], Any] = {}

    def get(
        self,
        spec: str | Executor | None,
        *,
        default: str = "threads",
        dask_address: str | None = None,
        dask_workers: int = 2,
        dask_lost_after: float = 60.0,
    ) -> Executor:
        """An executor from ``"inline"``, ``"threads"``, ``"dask"``, ``"tcp://host:port"``.

        ``dask_address`` (``GLASSPANE_DASK_ADDRESS``) makes ``"dask"`` mean that cluster.
        """
        if spec is not None and not isinstance(spec, str):
            return spec
        name = (spec or default).strip()
        if name == "inline":
            return InlineExecutor()
        if name == "threads":
            return ThreadsExecutor()
        address: str | None
        if name == "dask":
            address = dask_address
        elif name.startswith(("tcp://", "dask://")):
            address = "tcp://" + name.split("://", 1)[1]
        else:
            raise ConfigError(
                f"unknown executor `{name}`; use inline, threads, dask or tcp://HOST:PORT"
            )
        from .dask import DaskExecutor
        from .dask_cluster import check_address

        if address is not None:
            address = check_address(address)
        with self._lock:
            key = (address, dask_workers)
            executor = self._dask.get(key)
            if executor is None:
                executor = self._dask[key] = DaskExecutor(address, n_workers=dask_workers)
            executor.lost_after = dask_lost_after
            return executor  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close every Dask executor this pool made (clients, and embedded clusters)."""
        with self._lock:
            executors, self._dask = list(self._dask.values()), {}
        for executor in executors:
            executor.close()


#: the pool of the module-level API's runs (``glasspane.run``, the CLI)
DEFAULT_POOL = ExecutorPool()


def make_executor(spec: str | Executor | None, **options: Any) -> Executor:
    """An executor from the process's default pool (see :meth:`ExecutorPool.get`)."""
    return DEFAULT_POOL.get(spec, **options)


__all__ = [
    "DEFAULT_POOL", "Execution", "Executor", "ExecutorPool", "InlineExecutor", "ThreadsExecutor",
    "make_executor",
]  # fmt: skip
