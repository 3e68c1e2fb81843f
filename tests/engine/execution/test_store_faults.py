"""The artifact store becomes unwritable (or full) in the middle of a run.

The first task stores its output; then, inside the second task, the store is broken for real,
so that the operating system refuses the second task's write:

- ``objects/<hh>``, the directory the second output goes to, is replaced by a regular file
  (works anywhere; chmod would not do, since the tests may run as root);
- the root is a tiny tmpfs that gets filled up (needs permission to mount; skipped otherwise).

The run must fail naming the path, and record nothing that was not written: no cache key and
no output artifact for the failed task, so that a rerun after the repair recomputes it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import glasspane
from glasspane import pipeline, task
from glasspane.artifacts import ArtifactStore
from glasspane.hashing import content_hash
from glasspane.types import FAILED, SUCCEEDED, ArtifactInfo

ROWS = [1, 2, 3]
RESULT = {"sum": 6, "padding": "x" * 20_000}  # big enough not to fit on the full tmpfs


def note_call(calls: str, name: str) -> None:
    with open(os.path.join(calls, name), "a") as fh:
        fh.write("x\n")


def count(calls: Path, name: str) -> int:
    path = calls / name
    return len(path.read_text().splitlines()) if path.exists() else 0


def block_objects_dir(root: str, value: object) -> None:
    """Put a regular file where the directory for ``value``'s blob would be created."""
    h = content_hash(value)
    target = Path(root, "objects", h[:2])
    if target.is_dir():
        shutil.rmtree(target)
    target.write_text("a file where the store expects a directory\n")


def fill_up(root: str) -> None:
    """Write to ``root`` until the filesystem has no space left."""
    with open(os.path.join(root, "filler"), "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


SABOTAGE = {"block": block_objects_dir, "fill": lambda root, value: fill_up(root)}


@task
def first(calls: str) -> list[int]:
    note_call(calls, "first")
    return ROWS


@task
def second(rows: list[int], calls: str, root: str, sabotage_file: str) -> dict[str, object]:
    note_call(calls, "second")
    value = {"sum": sum(rows), "padding": "x" * 20_000}
    if os.path.exists(sabotage_file):  # once: the store is broken after `first` stored
        kind = Path(sabotage_file).read_text()
        os.unlink(sabotage_file)
        SABOTAGE[kind](root, value)
    return value


@pipeline
def two_steps(calls: str, root: str, sabotage_file: str):
    return second(first(calls), calls, root, sabotage_file)


def _run_broken(tmp_path: Path, root: str, kind: str, executor: str) -> glasspane.RunResult:
    sabotage = tmp_path / "sabotage"
    sabotage.write_text(kind)
    result = two_steps.run(
        calls=str(tmp_path),
        root=root,
        sabotage_file=str(sabotage),
        executor=executor,
        raise_on_failure=False,
    )
    assert not sabotage.exists()  # the sabotage happened
    return result


def _assert_nothing_recorded_for_second(result: glasspane.RunResult, root: str) -> None:
    assert result.state == FAILED
    assert [t.state for t in result.tasks] == [SUCCEEDED, FAILED]
    run = glasspane.get_run(result.run_id)
    assert run["state"] == FAILED
    first_run, second_run = run["tasks"]
    assert second_run["outputs"] == []
    store = ArtifactStore(root)
    assert second_run["cache_key"] and store.read_key(second_run["cache_key"]) is None
    assert store.read_key(first_run["cache_key"]) is not None
    # Whatever the run did record is really there.
    for out in first_run["outputs"]:
        assert store.verify(ArtifactInfo.from_dict(out))
    blob = Path(root, "objects", content_hash(RESULT)[:2])
    assert not blob.is_dir() or not any(blob.iterdir())


def _assert_rerun_recomputes_second(tmp_path: Path, root: str, executor: str) -> None:
    again = two_steps.run(
        calls=str(tmp_path), root=root, sabotage_file=str(tmp_path / "sabotage"), executor=executor
    )
    assert again.state == SUCCEEDED and again.output == RESULT
    assert [t.cached for t in again.tasks] == [True, False]
    assert (count(tmp_path, "first"), count(tmp_path, "second")) == (1, 2)
    stored = glasspane.get_run(again.run_id)["tasks"][1]["outputs"]
    assert len(stored) == 1 and ArtifactStore(root).verify(ArtifactInfo.from_dict(stored[0]))


@pytest.mark.parametrize("executor", ["inline", "threads"])
def test_objects_dir_replaced_by_a_file(
    executor: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    assert content_hash(ROWS)[:2] != content_hash(RESULT)[:2]  # different object dirs
    root = str(tmp_path / "artifacts")
    monkeypatch.setenv("GLASSPANE_ARTIFACT_ROOT", root)
    result = _run_broken(tmp_path, root, "block", executor)

    h = content_hash(RESULT)
    blob = os.path.join(root, "objects", h[:2], f"{h}.json")
    assert result.task("second").error == (
        f"ArtifactError: cannot write artifact to {blob}: File exists "
        f"({os.path.join(root, 'objects', h[:2])}); check that GLASSPANE_ARTIFACT_ROOT is writable"
    )
    _assert_nothing_recorded_for_second(result, root)

    os.unlink(os.path.join(root, "objects", h[:2]))  # the repair
    _assert_rerun_recomputes_second(tmp_path, root, executor)


def _tmpfs(tmp_path: Path, name: str, options: str) -> Iterator[str]:
    """A tmpfs mounted under tmp_path with ``options`` (skips where mounting is not
    permitted), unmounted afterwards."""
    mountpoint = tmp_path / name
    mountpoint.mkdir()
    mount = shutil.which("mount")
    if mount is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and the mount command")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", options, "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield str(mountpoint)
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, timeout=30)


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[str]:
    """A 64 KiB tmpfs, to fill up."""
    yield from _tmpfs(tmp_path, "tiny", "size=64k")


def test_store_fills_up(tiny_tmpfs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GLASSPANE_ARTIFACT_ROOT", tiny_tmpfs)
    result = _run_broken(tmp_path, tiny_tmpfs, "fill", "threads")

    h = content_hash(RESULT)
    blob = os.path.join(tiny_tmpfs, "objects", h[:2], f"{h}.json")
    assert result.task("second").error == (
        f"ArtifactError: cannot write artifact to {blob}: No space left on device; check that "
        "GLASSPANE_ARTIFACT_ROOT is writable"
    )
    _assert_nothing_recorded_for_second(result, tiny_tmpfs)
    leftovers = [p for p in Path(tiny_tmpfs).rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []  # the partial temporary file was removed

    os.unlink(os.path.join(tiny_tmpfs, "filler"))  # the repair
    _assert_rerun_recomputes_second(tmp_path, tiny_tmpfs, "threads")


@task
def one() -> int:
    return 1


@pipeline
def tiny():
    return one()


@pytest.fixture
def read_only_tmpfs(tmp_path: Path) -> Iterator[str]:
    """A read-only tmpfs: writes fail with EROFS, for root too."""
    yield from _tmpfs(tmp_path, "read-only", "ro,size=64k")


def test_an_unwritable_artifact_root_is_refused_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_only_tmpfs: str
) -> None:
    a_file = tmp_path / "not-a-directory"
    a_file.write_text("")
    for root, reason in (
        (str(a_file / "artifacts"), "Not a directory"),
        (read_only_tmpfs, "Read-only file system"),
    ):
        monkeypatch.setenv("GLASSPANE_ARTIFACT_ROOT", root)
        with pytest.raises(glasspane.ConfigError) as info:
            tiny.run(executor="threads")
        message = str(info.value)
        assert message.startswith(f"artifact root `{root}` is not writable: ")
        assert reason in message
        assert message.endswith(
            "fix its permissions, or set GLASSPANE_ARTIFACT_ROOT to a directory or bucket "
            "glasspane can write to"
        )
    assert glasspane.runs() == []  # nothing was started
