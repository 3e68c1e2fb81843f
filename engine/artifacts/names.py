"""What may name an artifact under the root.

Content hashes and cache keys are 16-128 lowercase hex characters, as
:mod:`glasspane.hashing` makes them; a relative path under the root is ``/``-separated
and cannot leave the root by its spelling (absolute paths, URLs, URL-encoding, ``..``).
Symbolic links are checked where the filesystem is, in :meth:`ArtifactStore.resolve`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from ..errors import ArtifactError

__all__ = ["HEX", "check_hex", "containment_problem"]

HEX = re.compile(r"[0-9a-f]{16,128}")


def check_hex(value: Any, what: str) -> str:
    if not isinstance(value, str) or not HEX.fullmatch(value):
        raise ArtifactError(
            f"invalid {what} {value!r}: expected 16-128 lowercase hex characters, as made by "
            "glasspane.hashing; do not build artifact names by hand"
        )
    return value


def containment_problem(relative: Any) -> str | None:
    """Why ``relative`` is not a safe relative name under a root, or None if it is."""
    if not isinstance(relative, str) or not relative:
        return "it is empty"
    if unquote(relative) != relative:
        return "it contains URL-encoded characters"
    if "\\" in relative or "\0" in relative:
        return "it contains a backslash or a NUL byte"
    if relative.startswith(("/", "~")) or "://" in relative or re.match(r"[A-Za-z]:", relative):
        return "it is an absolute path or a URL"
    if any(part in ("", ".", "..") for part in relative.split("/")):
        return "it contains an empty, `.` or `..` segment"
    return None
