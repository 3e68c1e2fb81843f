"""The content-addressed artifact store, on a local directory or any fsspec URL.

Layout under the root::

    objects/<hh>/<content_hash>.<ext>   one blob per stored value (hh: first two hex chars)
    keys/<hh>/<cache_key>.json          the cache key index: cache key -> task outputs

Invariants:

- Blobs are addressed by the content hash of the value, so storing an equal value twice
  writes once. A blob already present is never replaced while it still loads, because
  digests recorded by earlier runs point at its bytes.
- A value is serialized once, into the store, and hashed as it is written (see
  :mod:`glasspane.artifacts.blobs`): never held as bytes in memory beside itself on a local
  root, where it is also read back from the file, not from a copy of its bytes.
- Every write is atomic: on a local disk the bytes go to a temporary file in the target
  directory, then ``os.replace``; on an object store (S3, GCS, Azure) the complete object is
  sent in one PUT, with no temporary object and no rename (s3fs switches to a multipart
  upload above 100 MB, which S3 likewise shows only once it completes). A failed write
  leaves no partial file behind. The store never creates buckets: a missing one is an error.
- Other processes write to the same root, so the store never trusts a cached listing: reads
  fetch the object itself, and the key index is listed afresh each time.
- Every path the store touches is built by :meth:`ArtifactStore.resolve`, which keeps it
  inside the root; content hashes and cache keys must be 16-128 lowercase hex characters.
- Reads are verified against the sha256 digest recorded at write time.
- The store pickles to its root alone (it is shipped to Dask workers); the fsspec
  filesystem is created again, lazily, where it is used.

:class:`ArtifactStore` adds the blobs to a :class:`~glasspane.artifacts.keys.KeyIndex` (the
cache key index), itself an :class:`~glasspane.artifacts.root.ArtifactRoot` (safe paths and
atomic reads and writes of bytes).
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import io
import os
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar, cast

from .. import hashing
from ..errors import ArtifactError, CorruptedArtifact, SerializationError
from ..types import ArtifactInfo
from .blobs import HashingWriter, SinkFailed, Spool, sha256_file, spool_local
from .keys import KeyIndex
from .loading import load
from .materializers import Materializer, dump_with, get_materializer, load_from, type_name
from .names import check_hex
from .previews import preview
from .root import _MISSING, _WRITABLE, _cause, _named

__all__ = ["ArtifactStore"]

T = TypeVar("T")

_RECOMPUTE = (
    "it will be recomputed on the next run, or run `glasspane cache clear` to drop the cache "
    "entries that point at it"
)


# files from this size on are hashed beside their reading, when their reader runs no code
_HASH_BESIDE = 8 << 20
_INERT_READERS = frozenset({"parquet", "npy"})


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactStore(KeyIndex):
    """Stores task outputs by content hash, and the cache key index, under one root.

    Args:
        root: A local directory (created on demand) or an fsspec URL such as
            ``file:///data/artifacts``, ``s3://bucket/prefix`` or ``memory://scratch``.

    Raises:
        ConfigError: the root's protocol is unknown or its fsspec package is not installed.
    """

    def _object_uri(self, content_hash: str, extension: str) -> str:
        h = check_hex(content_hash, "content hash")
        return self.resolve(f"objects/{h[:2]}/{h}.{extension}")

    # -- artifacts -------------------------------------------------------------------------

    def put(self, value: Any, *, content_hash: str | None = None, where: str = "") -> ArtifactInfo:
        """Store ``value`` (once per content hash) and describe where it lives.

        The value is serialized once, straight into the store (on a local root into a
        temporary file renamed into place when complete), and hashed as it is written.

        Args:
            value: The value to store.
            content_hash: Its content hash if already known; computed otherwise.
            where: Who produced the value, for error messages, e.g. ``"task `train`"``.

        Returns:
            The :class:`~glasspane.types.ArtifactInfo` of the stored blob; its digest is that
            of the bytes actually stored.

        Raises:
            SerializationError: no materializer can serialize the value.
            ArtifactError: the blob cannot be written (the message names the path and cause).
        """
        if not self._local:
            if content_hash is None:
                content_hash = hashing.content_hash(value)
            return self._put_remote(value, check_hex(content_hash, "content hash"), where)
        if content_hash is not None or _nbytes(value) < _HASH_BESIDE:
            if content_hash is None:
                content_hash = hashing.content_hash(value)
            check_hex(content_hash, "content hash")
            return self._put_local(value, lambda: cast(str, content_hash), where)
        # a large value: hashed on a second thread while it is serialized (both release the
        # GIL for their bulk), named by its hash once both are done
        with concurrent.futures.ThreadPoolExecutor(1, "glasspane-hash") as pool:
            hashed = pool.submit(hashing.content_hash, value)
            try:
                return self._put_local(
                    value, lambda: check_hex(hashed.result(), "content hash"), where
                )
            except SerializationError:
                hashed.result()  # a value that cannot be hashed says so first, as before
                raise

    def _put_local(self, value: Any, content_hash: Callable[[], str], where: str) -> ArtifactInfo:
        objects = self.resolve("objects")

        def write(fill: Callable[[BinaryIO], None]) -> Spool:
            return _sink_errors(objects, lambda: spool_local(objects, fill))

        materializer, spool = dump_with(value, write, where=where)
        try:
            hash_ = content_hash()
        except BaseException:
            spool.discard()
            raise
        uri = self._object_uri(hash_, materializer.extension)
        keep = functools.partial(_holds, materializer, uri, hash_)
        digest, size = _sink_errors(uri, lambda: spool.commit(uri, keep))
        return self._info(value, hash_, uri, digest, materializer, size)

    def _info(
        self, value: Any, content_hash: str, uri: str, digest: str, m: Materializer, size: int
    ) -> ArtifactInfo:
        return ArtifactInfo(
            content_hash=content_hash,
            uri=uri,
            digest=digest,
            type_name=type_name(value),
            materializer=m.name,
            size=size,
            preview=preview(value),
        )

    def _put_remote(self, value: Any, content_hash: str, where: str) -> ArtifactInfo:
        """Serialize into memory (hashing as it goes), then send the blob in one write."""

        def write(fill: Callable[[BinaryIO], None]) -> tuple[bytes, str]:
            buffer = io.BytesIO()
            writer = HashingWriter(buffer)
            fill(cast(BinaryIO, writer))
            return buffer.getvalue(), writer.digest()

        m, (data, digest) = dump_with(value, write, where=where)
        uri = self._object_uri(content_hash, m.extension)
        existing = self._read_optional(uri)
        found = _sha256(existing) if existing is not None else None
        if existing is not None and (
            found == digest or _holds(m, io.BytesIO(existing), content_hash)
        ):
            data, digest = existing, cast(str, found)
        else:
            self._write(uri, data)
        return self._info(value, content_hash, uri, digest, m, len(data))

    def put_file(self, path: str | os.PathLike[str]) -> ArtifactInfo:
        """Store a file's bytes as they are, by their sha256 (what a task hands the trackers
        with ``glasspane.log_artifact(path)``); read back with :meth:`open_blob`, never loaded
        as a value.

        Raises:
            ArtifactError: the file cannot be read, or the blob cannot be written.
        """
        try:
            with open(path, "rb") as src:
                data = src.read()
        except OSError as exc:
            raise ArtifactError(f"cannot read {path}: {exc}") from exc
        digest = _sha256(data)
        suffix = "".join(ch for ch in os.path.splitext(str(path))[1] if ch.isalnum())[:12]
        uri = self._object_uri(digest, suffix or "bin")
        if self._read_optional(uri) is None:
            self._write(uri, data)
        return ArtifactInfo(
            content_hash=digest, uri=uri, digest=digest, type_name="file",
            materializer="file", size=len(data),
        )  # fmt: skip

    def get(self, info: ArtifactInfo, *, verify: bool = True) -> Any:
        """Load the value described by ``info``.

        Args:
            info: As returned by :meth:`put` (or read back from the metadata store).
            verify: Check the bytes against ``info.digest`` before loading.

        Loading imports the libraries the value needs without deadlocking against other
        threads importing them (see :mod:`glasspane.artifacts.loading`).

        Raises:
            ArtifactError: the blob is missing or unreadable, its record is unusable, or
                loading it fails in any way (the original exception is the ``__cause__``).
            CorruptedArtifact: the bytes do not match the recorded digest.
        """
        try:
            return self._get(info, verify)
        except ArtifactError:
            raise
        except (Exception, SystemExit) as exc:  # a value must not end a worker thread either
            raise ArtifactError(
                f"cannot load artifact {info.uri} of type `{info.type_name}` with materializer "
                f"`{info.materializer or 'pickle'}` ({_named(exc)}); check that the libraries "
                "that wrote it are installed in compatible versions, or run `glasspane cache "
                "clear` to recompute it"
            ) from exc

    def _get(self, info: ArtifactInfo, verify: bool) -> Any:
        uri = info.uri
        if uri is None:
            raise ArtifactError(
                f"artifact {info.content_hash} was kept in memory only and has no stored copy; "
                "rerun the task that produced it, or let it persist its output"
            )
        uri = self.resolve(self._relative(uri))  # a recorded URI is not trusted as given
        materializer = get_materializer(info.materializer or "pickle")
        digest = info.digest if verify else None
        if self._local:
            return self._get_local(uri, materializer, digest)
        try:
            data = self._read(uri)
        except _MISSING as exc:
            raise ArtifactError(f"artifact {uri} is missing; {_RECOMPUTE}") from exc
        _check(uri, digest, _sha256(data) if digest is not None else None)
        return load(materializer.load, data)

    def _get_local(self, uri: str, materializer: Materializer, digest: str | None) -> Any:
        """Hash the file in chunks and let the materializer read the file: no copy of its
        bytes is held. A large parquet or npy file (formats whose readers run no code from
        the bytes) is hashed on a second thread while it is read, and the value is returned
        only once its digest is right."""

        def read(path: str) -> Any:
            return load_from(materializer, path)

        try:
            size = os.path.getsize(uri)
        except _MISSING as exc:
            raise ArtifactError(f"artifact {uri} is missing; {_RECOMPUTE}") from exc
        if digest is None:
            return load(read, uri)
        if size < _HASH_BESIDE or materializer.name not in _INERT_READERS:
            _check(uri, digest, sha256_file(uri))
            return load(read, uri)
        with concurrent.futures.ThreadPoolExecutor(1, "glasspane-verify") as pool:
            hashed = pool.submit(sha256_file, uri)
            try:
                value = load(read, uri)
            except BaseException:
                _check(uri, digest, hashed.result())  # corrupted, rather than unreadable
                raise
            _check(uri, digest, hashed.result())
        return value

    def open_blob(self, info: ArtifactInfo) -> BinaryIO:
        """The stored bytes of ``info`` as a seekable binary file; the caller closes it.

        For reading part of a large blob (a preview reads a header, or a Parquet footer and
        its first rows): not checked against the digest, and nothing is deserialized.

        Raises:
            ArtifactError: the artifact has no stored copy, or it is missing or unreadable.
        """
        if info.uri is None:
            raise ArtifactError(f"artifact {info.content_hash} was kept in memory only")
        uri = self.resolve(self._relative(info.uri))  # a recorded URI is not trusted as given
        try:
            if "://" not in uri:
                return open(uri, "rb")
            return cast(BinaryIO, self.fs.open(uri, "rb"))
        except _MISSING as exc:
            raise ArtifactError(f"artifact {uri} is missing; {_RECOMPUTE}") from exc
        except Exception as exc:
            raise ArtifactError(f"cannot read artifact {uri}: {_cause(exc, uri)}") from exc

    def verify(self, info: ArtifactInfo) -> bool:
        """Return True if the blob of ``info`` exists and matches its digest; never raises."""
        try:
            if info.uri is None:
                return False
            uri = self.resolve(self._relative(info.uri))
            if self._local:
                return sha256_file(uri) == info.digest if info.digest is not None else True
            data = self._read(uri)
        except Exception:
            return False
        return info.digest is None or _sha256(data) == info.digest


def _sink_errors(uri: str, action: Callable[[], T]) -> T:
    """``action()``, a failure to write the blob raised as an :class:`ArtifactError`."""
    try:
        return action()
    except SinkFailed as exc:
        cause = exc.__cause__ or exc
        raise ArtifactError(
            f"cannot write artifact to {uri}: {_cause(cause, uri)}; {_WRITABLE}"
        ) from cause


def _nbytes(value: Any) -> int:
    """A cheap lower bound of a value's size: arrays, frames, and the arrays an object (a
    fitted model) holds directly; 0 for anything else."""
    try:
        return _sized(value)
    except Exception:  # noqa: BLE001 - an estimate only: an attribute may raise
        return 0


def _sized(value: Any) -> int:
    size = getattr(value, "nbytes", None)
    if isinstance(size, int):
        return size
    frame = getattr(value, "memory_usage", None)
    if callable(frame) and type(value).__name__ == "DataFrame":
        return int(frame(index=False, deep=False).sum())
    state = getattr(value, "__dict__", None)
    if isinstance(state, dict):
        return sum(v.nbytes for v in state.values() if isinstance(getattr(v, "nbytes", None), int))
    return 0


def _check(uri: str, expected: str | None, actual: str | None) -> None:
    if expected is not None and actual is not None and actual != expected:
        raise CorruptedArtifact(
            f"artifact {uri} is corrupted: expected sha256 {expected}, found {actual}; {_RECOMPUTE}"
        )


def _holds(materializer: Materializer, source: str | BinaryIO, content_hash: str) -> bool:
    """Whether a stored blob (a local path, or its bytes as a file) still holds the value
    ``content_hash`` names.

    Serialized bytes need not be reproducible (parquet), so a blob written earlier may differ
    from the new bytes and still be right: it is kept (earlier runs recorded its digest)
    only if it loads to a value with the same content hash. A corrupted blob that happens to
    load is replaced.
    """
    try:
        value = load(lambda src: load_from(materializer, src), source)
        return bool(hashing.content_hash(value) == content_hash)
    except Exception:
        return False
