"""Streaming a value into a blob, hashing the bytes as they are written.

A materializer writes into a :class:`HashingWriter`, which passes every chunk on to a
:class:`Spool` and to a sha256 at once: the value is serialized once, never held as one more
copy in memory, and its digest is that of the bytes written. The spool keeps up to 1 MiB in
memory, then goes on in a temporary file under ``objects/`` (``.tmp-`` prefix, opened with
``O_EXCL``), renamed to the blob's name only once complete (the name comes from the content
hash, which may still be being computed); anything that stops the write removes it.

Invariants:

- A blob exists under its final name only complete (the rename is atomic).
- A write that fails because the file cannot be written (disk full, permissions) is told
  apart from a materializer refusing the value: :attr:`HashingWriter.failed` holds the
  ``OSError``, and the store reports it instead of trying another materializer.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from .local import open_temp, write_local

__all__ = ["HashingWriter", "SinkFailed", "Spool", "sha256_file", "spool_local"]

_CHUNK = 1 << 20  # read 1 MiB at a time to hash a file
SPOOL = 1 << 20  # bytes kept in memory before a blob goes to a temporary file


class HashingWriter:
    """A write-only binary file that hashes (sha256) and counts what passes through it."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._sha = hashlib.sha256()
        self.size = 0
        self.failed: OSError | None = None

    def write(self, data: Any) -> int:
        view = data if isinstance(data, memoryview) else memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        try:
            self._sink.write(view)
        except OSError as exc:
            self.failed = exc
            raise
        self._sha.update(view)
        self.size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._sink.flush()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return False

    def close(self) -> None:  # the owner closes the sink
        pass

    def digest(self) -> str:
        return self._sha.hexdigest()


def sha256_file(path: str) -> str:
    """The sha256 of the file at ``path``, read in chunks (never whole into memory)."""
    sha = hashlib.sha256()
    chunk = bytearray(_CHUNK)
    view = memoryview(chunk)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(chunk):
            sha.update(view[:n])
    return sha.hexdigest()


class SinkFailed(Exception):
    """The blob could not be written: the disk or the directory failed, not the value's
    materializer (``__cause__`` is the ``OSError``)."""


class Spool:
    """A blob being written: its bytes stay in memory up to ``SPOOL`` and go to a temporary
    file in ``directory`` from then on, so a small value costs one write of its bytes
    (:func:`~glasspane.artifacts.local.write_local`) and a large one is never held whole.
    :meth:`commit` puts it at its final path (known only once the value is hashed), or
    :meth:`discard` drops it."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.buffer = bytearray()
        self.tmp: str | None = None
        self._file: BinaryIO | None = None
        self.digest = ""
        self.size = 0

    def write(self, view: memoryview) -> None:
        if self._file is None:
            if len(self.buffer) + view.nbytes <= SPOOL:
                self.buffer += view
                return
            self._file = self._open()
            self._file.write(self.buffer)
            self.buffer = bytearray()
        self._file.write(view)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def _open(self) -> BinaryIO:
        self.tmp, fd = open_temp(self.directory, "blob")
        return os.fdopen(fd, "wb")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def commit(self, path: str, keep: Callable[[], bool]) -> tuple[str, int]:
        """Put the blob at ``path`` atomically; return the digest and size now there.

        ``keep`` is called when a different blob exists at ``path`` already: True keeps it
        (this one is dropped), False replaces it.

        Raises:
            SinkFailed: the file could not be written or renamed (this blob is dropped).
        """
        try:
            if os.path.exists(path):
                existing = sha256_file(path)
                if existing == self.digest or keep():
                    self.discard()
                    return existing, os.path.getsize(path)
            if self.tmp is None:
                write_local(path, bytes(self.buffer))
            else:
                try:
                    os.replace(self.tmp, path)
                except FileNotFoundError:  # the shard directory's first blob
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    os.replace(self.tmp, path)
            return self.digest, self.size
        except OSError as exc:
            self.discard()
            raise SinkFailed(exc) from exc
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            if self._file is not None:
                self._file.close()
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)


def spool_local(directory: str, fill: Callable[[BinaryIO], None]) -> Spool:
    """Serialize through ``fill`` into a :class:`Spool` (a temporary file in ``directory``
    once it outgrows memory), hashing as it goes.

    Raises:
        SinkFailed: the temporary file could not be written.
        Exception: whatever ``fill`` raises otherwise. Either way nothing is left behind.
    """
    spool = Spool(directory)
    writer = HashingWriter(cast(BinaryIO, spool))
    filled = False
    try:
        fill(cast(BinaryIO, writer))
        filled = True
        spool.close()
    except BaseException as exc:
        spool.discard()
        failed = writer.failed
        if failed is None and filled and isinstance(exc, OSError):
            failed = exc
        if failed is not None:
            raise SinkFailed(failed) from exc
        raise
    spool.digest, spool.size = writer.digest(), writer.size
    return spool
