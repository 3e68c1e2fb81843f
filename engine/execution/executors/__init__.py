"""Executors: where jobs run. ``make_executor`` turns a name or address into one."""

from __future__ import annotations

import threading
from typing import Any

from ...errors import ConfigError
from .base import Execution, Executor
from .inline import InlineExecutor
from .threads import ThreadsExecutor

_dask_lock = threading.Lock()
_dask_executors: dict[tuple[str | None, int], Any] = {}


def make_executor(
    spec: str | Executor | None,
    *,
    default: str = "threads",
    dask_address: str | None = None,
    dask_workers: int = 2,
    dask_lost_after: float = 60.0,
) -> Executor:
    """An executor from ``"inline"``, ``"threads"``, ``"dask"``, ``"tcp://host:port"``.

    ``dask_address`` (``GLASSPANE_DASK_ADDRESS``) makes ``"dask"`` mean that cluster.
    Dask executors are cached per address so one client (and one embedded cluster) serves
    every run in the process.
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
    with _dask_lock:
        key = (address, dask_workers)
        executor = _dask_executors.get(key)
        if executor is None:
            executor = _dask_executors[key] = DaskExecutor(address, n_workers=dask_workers)
        executor.lost_after = dask_lost_after
        return executor  # type: ignore[no-any-return]


__all__ = ["Execution", "Executor", "InlineExecutor", "ThreadsExecutor", "make_executor"]
