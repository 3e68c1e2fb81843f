"""The root an artifact store lives under: a local directory or any fsspec URL.

:class:`ArtifactRoot` turns relative names into paths that stay inside the root, and reads,
writes and deletes bytes there:

- Every path is built by :meth:`ArtifactRoot.resolve`, which keeps it inside the root (also
  through symbolic links on a local disk).
- Every write is atomic: on a local disk the bytes go to a temporary file in the target
  directory, then ``os.replace``; on an object store (S3, GCS, Azure) the complete object is
  sent in one PUT, with no temporary object and no rename (s3fs switches to a multipart
  upload above 100 MB, which S3 likewise shows only once it completes). A failed write
  leaves no partial file behind. The root never creates buckets: a missing one is an error.
- It pickles to its root alone (it is shipped to Dask workers); the fsspec filesystem is
  created again, lazily, where it is used.
"""

from __future__ import annotations

import os
import stat
import uuid
from typing import Any

from ..errors import ArtifactError, ConfigError
from .local import TMP_PREFIX, write_local
from .names import containment_problem

__all__ = ["ArtifactRoot"]

_MISSING = (FileNotFoundError, NotADirectoryError)
# fsspec protocols of object stores: no directories, so nothing to create before a write.
_OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"})
_WRITABLE = "check that GLASSPANE_ARTIFACT_ROOT is writable"


class ArtifactRoot:
    """Safe, atomic reads and writes of bytes under one root.

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
        return f"{type(self).__name__}({self.root!r})"

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

    def _delete(self, uri: str) -> None:
        if self._local:
            os.unlink(uri)
        else:
            self.fs.rm_file(uri)


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
