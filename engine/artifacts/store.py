"""The content-addressed artifact store, on a local directory or any fsspec URL.

Layout under the root::

    objects/<hh>/<content_hash>.<ext>   one blob per stored value (hh: first two hex chars)
    keys/<hh>/<cache_key>.json          the cache key index: cache key -> task outputs

Invariants:

- Blobs are addressed by the content hash of the value, so storing an equal value twice
  writes once. A blob already present is never replaced while it still loads, because
  digests recorded by earlier runs point at its bytes.
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
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

from .. import hashing
from ..errors import ArtifactError, ConfigError, CorruptedArtifact, SerializationError
from ..types import ArtifactInfo
from .loading import load
from .local import TMP_PREFIX, write_local
from .materializers import dump, get_materializer, preview, type_name
from .names import HEX, check_hex, containment_problem

__all__ = ["ArtifactStore"]

_MISSING = (FileNotFoundError, NotADirectoryError)
# fsspec protocols of object stores: no directories, so nothing to create before a write.
_OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"})
_WRITABLE = "check that GLASSPANE_ARTIFACT_ROOT is writable"
_RECOMPUTE = (
    "it will be recomputed on the next run, or run `glasspane cache clear` to drop the cache "
    "entries that point at it"
)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactStore:
    """Stores task outputs by content hash, and the cache key index, under one root.

    Args:
        root: A local directory (created on demand) or an fsspec URL such as
            ``file:///data/artifacts``, ``s3://bucket/prefix`` or ``memory://scratch``.

    Raises:
        ConfigError: the root's protocol is unknown or its fsspec package is not installed.
    """

    def __init__(self, root: str) -> None:
        import fsspec
        from fsspec.core import split_protocol
        from fsspec.implementations.local import LocalFileSystem

        self.root = root
        self._fs: Any = None
        try:
            if not isinstance(root, str) or not root.strip():
                raise ValueError("it is empty")
            protocol, path = split_protocol(root)
            fs_class = fsspec.get_filesystem_class(protocol or "file")
        except (ValueError, ImportError) as exc:
            raise ConfigError(
                f"artifact root `{root}` is not usable: {exc}; set GLASSPANE_ARTIFACT_ROOT to a "
                "local path or an fsspec URL such as s3://bucket/prefix"
            ) from exc
        self._local = issubclass(fs_class, LocalFileSystem)
        self._object_store = (protocol or "file") in _OBJECT_STORES
        # A relative local root is pinned to the current directory now, not on each worker.
        self._base = os.path.abspath(os.path.expanduser(path)) if self._local else root.rstrip("/")

    def __repr__(self) -> str:
        return f"ArtifactStore({self.root!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "_local": self._local,
            "_object_store": self._object_store,
            "_base": self._base,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._fs = None

    @property
    def fs(self) -> Any:
        """The fsspec filesystem behind the root, created on first use."""
        if self._fs is None:
            from fsspec.core import url_to_fs

            self._fs = url_to_fs(self.root)[0]
        return self._fs

    # -- paths ---------------------------------------------------------------------------

    def resolve(self, relative: str) -> str:
        """Return the full path (local root) or URL of ``relative`` under the root.

        Args:
            relative: A ``/``-separated relative name such as ``objects/ab/<hash>.npy``.

        Raises:
            ArtifactError: the name is absolute, a URL, URL-encoded, contains ``..``, ``.``,
                an empty segment or a backslash, or (local roots) leaves the root through a
                symlink.
        """
        problem = containment_problem(relative)
        full = ""
        if problem is None and not self._local:
            full = f"{self._base}/{relative}"
        elif problem is None:
            full = os.path.join(self._base, *relative.split("/"))
            if not self._inside_root(relative, full):
                problem = "it leaves the root through a symbolic link"
        if problem is not None:
            raise ArtifactError(
                f"refusing artifact path {relative!r} under `{self.root}`: {problem}; artifact "
                "paths must stay inside GLASSPANE_ARTIFACT_ROOT"
            )
        return full

    def _inside_root(self, relative: str, full: str) -> bool:
        """Whether ``full`` stays under the root once symlinks are followed.

        The root itself is resolved once per process; below it, every existing component of
        ``relative`` is ``lstat``-ed on each call (two or three per path, against one per
        component of the whole absolute path for ``realpath``), so a directory swapped for
        a symlink at any time is still caught.
        """
        real_root = self.__dict__.get("_real_root")
        if real_root is None:
            real_root = self.__dict__["_real_root"] = os.path.realpath(self._base)
        path = self._base
        for part in relative.split("/"):
            path = os.path.join(path, part)
            try:
                if not stat.S_ISLNK(os.lstat(path).st_mode):
                    continue
            except OSError:  # missing, or not a directory: nothing below can be a link yet
                return True
            real = os.path.realpath(full)
            return real.startswith(real_root.rstrip(os.sep) + os.sep)
        return True

    def _relative(self, uri: str) -> str:
        """The part of a recorded ``uri`` below the root; refuses URIs elsewhere."""
        prefix = self._base.rstrip("/") + ("/" if not self._local else os.sep)
        if not isinstance(uri, str) or not uri.startswith(prefix):
            raise ArtifactError(
                f"refusing artifact path {uri!r}: it is not under `{self.root}`; artifacts "
                "are read only from GLASSPANE_ARTIFACT_ROOT (rerun the task to recompute it)"
            )
        return uri[len(prefix) :].replace(os.sep, "/") if self._local else uri[len(prefix) :]

    def _object_uri(self, content_hash: str, extension: str) -> str:
        h = check_hex(content_hash, "content hash")
        return self.resolve(f"objects/{h[:2]}/{h}.{extension}")

    def _key_uri(self, cache_key: str) -> str:
        k = check_hex(cache_key, "cache key")
        return self.resolve(f"keys/{k[:2]}/{k}.json")

    # -- bytes ---------------------------------------------------------------------------

    def _read(self, uri: str) -> bytes:
        """The bytes at ``uri``; a missing file passes through, other errors are wrapped."""
        try:
            if "://" not in uri:
                with open(uri, "rb") as fh:
                    return fh.read()
            if uri.startswith(f"{self._base}/"):
                return self.fs.cat_file(uri)
            from fsspec.core import url_to_fs

            return url_to_fs(uri)[0].cat_file(uri)
        except _MISSING:
            raise
        except Exception as exc:
            raise ArtifactError(
                f"cannot read artifact {uri}: {_cause(exc, uri)}; check that "
                "GLASSPANE_ARTIFACT_ROOT is reachable and readable"
            ) from exc

    def _read_optional(self, uri: str) -> bytes | None:
        try:
            return self._read(uri)
        except _MISSING:
            return None

    def _write(self, uri: str, data: bytes, what: str = "artifact") -> None:
        try:
            if self._local:
                write_local(uri, data)
            elif self._object_store:
                # FileNotFoundError here means no bucket; makedirs would create one.
                self.fs.pipe_file(uri, data)
            else:
                try:
                    self.fs.pipe_file(uri, data)
                except FileNotFoundError:  # filesystems with real directories (sftp, ...)
                    self.fs.makedirs(uri.rsplit("/", 1)[0], exist_ok=True)
                    self.fs.pipe_file(uri, data)
        except Exception as exc:
            raise ArtifactError(
                f"cannot write {what} to {uri}: {_cause(exc, uri)}; {_WRITABLE}"
            ) from exc

    def check_writable(self) -> None:
        """Check that outputs can be stored under the root, before a run starts.

        Writes a small probe object under ``objects/`` and removes it: on a local root,
        missing directories are created as :meth:`put` would; on an object store it is one
        PUT and one delete. Costs well under a millisecond on a local disk.

        Raises:
            ConfigError: the root cannot be written (permission denied, not a directory,
                read-only file system, a missing bucket, ...); the message names the root,
                the reason and what to do.
        """
        try:
            uri = self.resolve(f"objects/{TMP_PREFIX}probe-{uuid.uuid4().hex}")
            self._write(uri, b"", what="probe")
            self._delete(uri)
        except ArtifactError as exc:
            cause = exc.__cause__
            if self._object_store and isinstance(cause, FileNotFoundError):
                reason = "the bucket does not exist (glasspane never creates buckets)"
            else:
                reason = _cause(cause, uri) if cause is not None else str(exc)
            raise ConfigError(
                f"artifact root `{self.root}` is not writable: {reason}; fix its permissions, "
                "or set GLASSPANE_ARTIFACT_ROOT to a directory or bucket glasspane can write to"
            ) from (cause or exc)

    # -- artifacts -------------------------------------------------------------------------

    def put(self, value: Any, *, content_hash: str | None = None, where: str = "") -> ArtifactInfo:
        """Store ``value`` (once per content hash) and describe where it lives.

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
        if content_hash is None:
            content_hash = hashing.content_hash(value)
        check_hex(content_hash, "content hash")
        materializer, data = dump(value, where=where)
        uri = self._object_uri(content_hash, materializer.extension)
        digest = _sha256(data)
        existing = self._read_optional(uri)
        if existing is not None and (
            _sha256(existing) == digest or _holds(materializer, existing, content_hash)
        ):
            data, digest = existing, _sha256(existing)
        else:
            self._write(uri, data)
        return ArtifactInfo(
            content_hash=content_hash,
            uri=uri,
            digest=digest,
            type_name=type_name(value),
            materializer=materializer.name,
            size=len(data),
            preview=preview(value),
        )

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
        try:
            data = self._read(uri)
        except _MISSING as exc:
            raise ArtifactError(f"artifact {uri} is missing; {_RECOMPUTE}") from exc
        if verify and info.digest is not None:
            actual = _sha256(data)
            if actual != info.digest:
                raise CorruptedArtifact(
                    f"artifact {uri} is corrupted: expected sha256 {info.digest}, found {actual}; "
                    f"{_RECOMPUTE}"
                )
        return load(get_materializer(info.materializer or "pickle").load, data)

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
            data = self._read(self.resolve(self._relative(info.uri)))
        except Exception:
            return False
        return info.digest is None or _sha256(data) == info.digest

    # -- cache key index -------------------------------------------------------------------

    def read_key(self, cache_key: str) -> dict[str, Any] | None:
        """Return the entry stored for ``cache_key``, or None if absent or unreadable JSON.

        Raises:
            ArtifactError: the key is not hex, or the index cannot be read (not just absent).
        """
        data = self._read_optional(self._key_uri(cache_key))
        if data is None:
            return None
        try:
            entry = json.loads(data)
        except ValueError:
            return None
        return entry if isinstance(entry, dict) else None

    def write_key(self, cache_key: str, entry: dict[str, Any]) -> None:
        """Store ``entry`` (a JSON-able dict) for ``cache_key``, atomically.

        Raises:
            SerializationError: the entry is not JSON-serializable.
            ArtifactError: the key is not hex, or the index cannot be written.
        """
        uri = self._key_uri(cache_key)
        try:
            text = json.dumps(entry, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                f"cache entry for key {cache_key} is not JSON-serializable ({exc}); store only "
                "str, numbers, bools, None, lists and str-keyed dicts in cache entries"
            ) from exc
        self._write(uri, text.encode("utf-8"), what="cache key")

    def clear_keys(self, task: str | None = None) -> int:
        """Delete cache key entries: all of them, or those whose ``entry["task"] == task``.

        Blobs stay; only the index that points at them is removed, so the next run
        recomputes (and, values being equal, rewrites nothing).

        Returns:
            The number of entries deleted.

        Raises:
            ArtifactError: an entry cannot be deleted.
        """
        removed = 0
        for uri in self._key_files():
            if task is not None:
                data = self._read_optional(uri)
                try:
                    entry = json.loads(data) if data is not None else None
                except ValueError:
                    entry = None
                if not isinstance(entry, dict) or entry.get("task") != task:
                    continue
            try:
                self._delete(uri)
            except _MISSING:
                continue
            except Exception as exc:
                raise ArtifactError(
                    f"cannot delete cache key {uri}: {_cause(exc, uri)}; {_WRITABLE}"
                ) from exc
            removed += 1
        return removed

    def _delete(self, uri: str) -> None:
        if self._local:
            os.unlink(uri)
        else:
            self.fs.rm_file(uri)

    def key_entries(self) -> Iterator[dict[str, Any]]:
        """Every readable entry of the cache key index (each a dict with ``task``).

        Raises:
            ArtifactError: the index cannot be listed.
        """
        for uri in self._key_files():
            data = self._read_optional(uri)
            try:
                entry = json.loads(data) if data is not None else None
            except ValueError:
                continue
            if isinstance(entry, dict):
                yield entry

    def _key_files(self) -> Iterator[str]:
        keys = self.resolve("keys")
        try:
            if self._local:
                found = [
                    os.path.relpath(os.path.join(d, name), keys).replace(os.sep, "/")
                    for d, _, names in os.walk(keys)
                    for name in names
                ]
            else:
                # Other processes add keys: a listing cached by this process would miss them.
                self.fs.invalidate_cache(keys)
                prefix = self.fs._strip_protocol(keys).rstrip("/") + "/"
                try:
                    paths = self.fs.find(keys)
                except FileNotFoundError:
                    paths = []
                found = [p[len(prefix) :] for p in paths if p.startswith(prefix)]
        except Exception as exc:
            raise ArtifactError(
                f"cannot list cache keys under {keys}: {_cause(exc, keys)}; check that "
                "GLASSPANE_ARTIFACT_ROOT is reachable"
            ) from exc
        for relative in sorted(found):
            # Only names write_key makes (<hh>/<key>.json); temporary files and anything else
            # put under keys/ by hand (stray uploads, odd object names) are left alone.
            hh, _, name = relative.partition("/")
            key = name.removesuffix(".json")
            if name.endswith(".json") and HEX.fullmatch(key) and hh == key[:2]:
                yield self._key_uri(key)


def _cause(exc: BaseException, uri: str) -> str:
    """The reason for a failed operation on ``uri``; another path the OS blamed is named."""
    if isinstance(exc, OSError) and exc.strerror:
        culprit = exc.filename
        if isinstance(culprit, str) and culprit and not uri.endswith(culprit):
            return f"{exc.strerror} ({culprit})"
        return exc.strerror
    return str(exc) or type(exc).__name__


def _named(exc: BaseException) -> str:
    """``Type: message`` of an exception, for one-line messages."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _holds(materializer: Any, data: bytes, content_hash: str) -> bool:
    """Whether stored bytes still hold the value ``content_hash`` names.

    Serialized bytes need not be reproducible (parquet), so a blob written earlier may differ
    from the new bytes and still be right: it is kept (earlier runs recorded its digest)
    only if it loads to a value with the same content hash. A corrupted blob that happens to
    load is replaced.
    """
    try:
        return bool(hashing.content_hash(load(materializer.load, data)) == content_hash)
    except Exception:
        return False
