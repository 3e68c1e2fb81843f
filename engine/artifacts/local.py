"""Atomic writes to a local artifact root.

The bytes go to a temporary file (``.tmp-`` prefix) in the target directory, then
``os.replace`` puts them in place, so a reader sees the whole blob or none; a failed
write leaves no temporary file behind. A missing directory is created on the first write
into it.
"""

from __future__ import annotations

import contextlib
import os
import uuid

__all__ = ["TMP_PREFIX", "write_local"]

TMP_PREFIX = ".tmp-"


def write_local(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f"{TMP_PREFIX}{uuid.uuid4().hex}-{name}")
    # O_EXCL: never write through a file (or symlink) someone placed at the temp name.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(tmp, flags, 0o666)
    except (FileNotFoundError, NotADirectoryError):
        # the shard directory's first file: one mkdir, not one per write (and makedirs names
        # a file standing where the directory should be)
        os.makedirs(directory, exist_ok=True)
        fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            # No fsync: the rename makes the write atomic for every reader, and a blob torn
            # by a power loss fails its digest on read and is recomputed. fsync would cost
            # ~0.5 ms per artifact (measured here), twice per task.
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
