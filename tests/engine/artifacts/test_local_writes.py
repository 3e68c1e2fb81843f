"""Atomic writes to a local root (glasspane.artifacts.local): temporary names and cleanup."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from glasspane.artifacts import local
from glasspane.artifacts.local import TMP_PREFIX, write_local


def test_write_local_writes_the_bytes_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "shard" / "blob.pkl"
    write_local(str(target), b"abc" * 1000)
    assert target.read_bytes() == b"abc" * 1000
    assert os.listdir(target.parent) == ["blob.pkl"]


def test_write_local_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "blob.pkl"
    target.write_bytes(b"old")
    write_local(str(target), b"new")
    assert target.read_bytes() == b"new"


def test_a_file_left_at_the_next_temporary_name_is_neither_used_nor_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a process that crashed mid-write (or one with the same pid, earlier) left a temporary
    # file behind: the next write must pick another name, not fail or write through it
    target = tmp_path / "blob.pkl"
    taken = tmp_path / local.tmp_name("blob.pkl")
    taken.write_bytes(b"stale")
    monkeypatch.setattr(local, "tmp_name", lambda name: taken.name)
    write_local(str(target), b"fresh")
    assert target.read_bytes() == b"fresh"
    assert taken.read_bytes() == b"stale"
    assert sorted(os.listdir(tmp_path)) == sorted(["blob.pkl", taken.name])


def test_temporary_names_are_unique_across_threads() -> None:
    names: list[str] = []
    lock = threading.Lock()

    def make() -> None:
        mine = [local.tmp_name("x.json") for _ in range(500)]
        with lock:
            names.extend(mine)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(names)) == len(names) == 4000
    assert all(name.startswith(TMP_PREFIX) and name.endswith("-x.json") for name in names)


def test_a_failed_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(local.os, "replace", broken)
    with pytest.raises(OSError, match="No space left"):
        write_local(str(tmp_path / "blob.pkl"), b"data")
    assert os.listdir(tmp_path) == []
