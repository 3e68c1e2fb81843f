"""The cache key index: cache key -> the outputs a task run stored, as small JSON files.

Layout under the root: ``keys/<hh>/<cache_key>.json`` (hh: first two hex characters). Other
processes write to the same root, so the index is listed afresh each time, never from a
cached listing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from ..errors import ArtifactError, SerializationError
from .names import HEX, check_hex
from .root import _MISSING, _WRITABLE, ArtifactRoot, _cause

__all__ = ["KeyIndex"]


class KeyIndex(ArtifactRoot):
    """The cache key index under an :class:`~glasspane.artifacts.root.ArtifactRoot`."""

    def _key_uri(self, cache_key: str) -> str:
        k = check_hex(cache_key, "cache key")
        return self.resolve(f"keys/{k[:2]}/{k}.json")

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
