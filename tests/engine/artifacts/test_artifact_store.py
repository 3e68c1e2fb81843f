"""The artifact store: content addressing, atomic writes, verified reads, the key index."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from glasspane.artifacts import ArtifactStore
from glasspane.errors import ArtifactError, ConfigError, CorruptedArtifact, SerializationError
from glasspane.hashing import content_hash
from glasspane.types import ArtifactInfo

KEY = "ab" * 16
OTHER_KEY = "cd" * 16


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


@pytest.fixture
def memory_store() -> ArtifactStore:
    return ArtifactStore(f"memory://glasspane-test-{uuid.uuid4().hex}")


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


VALUES = [
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}),
    np.arange(6).reshape(2, 3),
    {"scores": [0.5, 0.75], "best": "rf"},
    (1, "tuple"),
]


@pytest.mark.parametrize("value", VALUES, ids=["frame", "array", "json", "pickle"])
def test_put_then_get_round_trips(store: ArtifactStore, value: Any):
    info = store.put(value)
    back = store.get(info)
    if isinstance(value, pd.DataFrame):
        assert back.equals(value)
    elif isinstance(value, np.ndarray):
        np.testing.assert_array_equal(back, value)
    else:
        assert back == value


def test_layout_and_info(store: ArtifactStore, tmp_path: Path):
    info = store.put([1, 2, 3])
    h = content_hash([1, 2, 3])
    blob = tmp_path / "artifacts" / "objects" / h[:2] / f"{h}.json"
    assert info.content_hash == h
    assert info.uri == str(blob)
    assert info.digest == hashlib.sha256(blob.read_bytes()).hexdigest()
    assert info.size == blob.stat().st_size
    assert (info.type_name, info.materializer) == ("list", "json")
    assert info.preview == {"len": 3, "repr": "[1, 2, 3]"}
    assert ArtifactInfo.from_dict(info.to_dict()) == info


def test_put_is_idempotent(store: ArtifactStore, tmp_path: Path):
    first = store.put({"a": 1})
    mtime = os.stat(first.uri).st_mtime_ns
    second = store.put({"a": 1})
    assert second == first
    assert os.stat(first.uri).st_mtime_ns == mtime
    assert len(_files(tmp_path / "artifacts")) == 1


def test_existing_blob_is_kept_and_its_digest_reported(store: ArtifactStore):
    # The same value, stored earlier with other (still valid) bytes: keep them, since
    # digests recorded by earlier runs point at them.
    first = store.put({"a": 1})
    Path(first.uri).write_text('{"a":  1}')
    second = store.put({"a": 1})
    assert Path(first.uri).read_text() == '{"a":  1}'
    assert second.digest == hashlib.sha256(b'{"a":  1}').hexdigest()
    assert store.get(second) == {"a": 1}


def test_unloadable_existing_blob_is_replaced(store: ArtifactStore):
    first = store.put({"a": 1})
    Path(first.uri).write_bytes(b"\x00 not json")
    second = store.put({"a": 1})
    assert second.digest == first.digest
    assert store.get(second) == {"a": 1}


def test_given_content_hash_is_used(store: ArtifactStore):
    info = store.put("value", content_hash="0123456789abcdef" * 4)
    assert info.content_hash == "0123456789abcdef" * 4
    assert info.uri is not None and info.uri.endswith("0123456789abcdef" * 4 + ".json")


def test_atomic_write_leaves_no_temp_files(store: ArtifactStore, tmp_path: Path):
    for i in range(5):
        store.put(np.full(10, i))
    store.write_key(KEY, {"task": "t", "outputs": []})
    names = _files(tmp_path / "artifacts")
    assert len(names) == 6
    assert not [n for n in names if ".tmp-" in n]


def test_concurrent_puts_of_one_value_agree(store: ArtifactStore, tmp_path: Path):
    value = pd.DataFrame({"x": range(1000)})
    infos: list[ArtifactInfo] = []
    threads = [threading.Thread(target=lambda: infos.append(store.put(value))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({i.uri for i in infos}) == 1
    assert all(store.verify(i) for i in infos)
    assert len(_files(tmp_path / "artifacts")) == 1


def test_failed_write_leaves_no_partial_file(store: ArtifactStore, tmp_path: Path, monkeypatch):
    def disk_full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(ArtifactError, match=r"cannot write artifact to .*No space left on device"):
        store.put([1])
    assert _files(tmp_path / "artifacts") == []


def test_corrupted_blob_is_detected(store: ArtifactStore):
    info = store.put(np.arange(100))
    assert info.uri is not None
    data = bytearray(Path(info.uri).read_bytes())
    data[-1] ^= 0xFF
    Path(info.uri).write_bytes(bytes(data))
    assert not store.verify(info)
    pattern = (
        rf"artifact {info.uri} is corrupted: expected sha256 {info.digest}, found [0-9a-f]{{64}}"
    )
    with pytest.raises(CorruptedArtifact, match=pattern + ".*glasspane cache clear"):
        store.get(info)
    assert store.get(info, verify=False)[-1] != 99


def test_missing_blob(store: ArtifactStore):
    info = store.put("gone")
    assert info.uri is not None
    os.remove(info.uri)
    assert not store.verify(info)
    with pytest.raises(ArtifactError, match=r"artifact .* is missing; it will be recomputed"):
        store.get(info)


def test_unwritable_root_names_the_path(tmp_path: Path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a regular file where the root should be")
    store = ArtifactStore(str(blocker))
    with pytest.raises(
        ArtifactError, match=rf"cannot write artifact to {blocker}/objects/.*writable"
    ):
        store.put([1, 2])
    assert store.read_key(KEY) is None


def test_unpicklable_value(store: ArtifactStore):
    with pytest.raises(
        SerializationError, match=r"task `train` returned `lock`.*register_materializer"
    ):
        store.put(threading.Lock(), content_hash="f" * 64, where="task `train`")


def test_unusable_root_is_a_config_error():
    with pytest.raises(
        ConfigError, match=r"artifact root `nosuch://x` is not usable: .*GLASSPANE_ARTIFACT_ROOT"
    ):
        ArtifactStore("nosuch://x")


def test_file_url_root(tmp_path: Path):
    store = ArtifactStore(f"file://{tmp_path}/arts")
    info = store.put("hello")
    assert info.uri is not None and info.uri.startswith(f"{tmp_path}/arts/objects/")
    assert store.get(info) == "hello"


def test_memory_root(memory_store: ArtifactStore):
    frame = pd.DataFrame({"a": [1.5, 2.5]})
    info = memory_store.put(frame)
    assert info.uri is not None and info.uri.startswith(f"{memory_store.root}/objects/")
    assert memory_store.get(info).equals(frame)
    assert memory_store.verify(info)
    assert memory_store.put(frame) == info
    memory_store.fs.pipe_file(info.uri, b"garbage")
    with pytest.raises(CorruptedArtifact, match="is corrupted"):
        memory_store.get(info)


def test_memory_root_key_index(memory_store: ArtifactStore):
    memory_store.write_key(KEY, {"task": "train", "outputs": []})
    memory_store.write_key(OTHER_KEY, {"task": "load", "outputs": []})
    assert memory_store.read_key(KEY) == {"task": "train", "outputs": []}
    assert memory_store.clear_keys("train") == 1
    assert memory_store.read_key(KEY) is None
    assert memory_store.clear_keys() == 1


def test_store_pickles_without_its_filesystem(memory_store: ArtifactStore, tmp_path: Path):
    info = memory_store.put({"x": 1})
    assert memory_store.fs is not None
    clone = pickle.loads(pickle.dumps(memory_store))
    assert clone._fs is None
    assert clone.get(info) == {"x": 1}
    local = ArtifactStore(str(tmp_path))
    assert pickle.loads(pickle.dumps(local)).resolve("keys") == str(tmp_path / "keys")


# -- key index ------------------------------------------------------------------------------


def test_key_index_round_trip(store: ArtifactStore, tmp_path: Path):
    assert store.read_key(KEY) is None
    entry = {"task": "train", "outputs": [store.put(1).to_dict()], "created": 1700000000.0}
    store.write_key(KEY, entry)
    assert store.read_key(KEY) == entry
    assert (tmp_path / "artifacts" / "keys" / KEY[:2] / f"{KEY}.json").is_file()


def test_corrupt_key_file_reads_as_none(store: ArtifactStore, tmp_path: Path):
    store.write_key(KEY, {"task": "t"})
    (tmp_path / "artifacts" / "keys" / KEY[:2] / f"{KEY}.json").write_text("{truncated")
    assert store.read_key(KEY) is None
    store.write_key(OTHER_KEY, {"task": "t"})
    (tmp_path / "artifacts" / "keys" / OTHER_KEY[:2] / f"{OTHER_KEY}.json").write_text("[1]")
    assert store.read_key(OTHER_KEY) is None


def test_key_entry_must_be_json(store: ArtifactStore):
    with pytest.raises(SerializationError, match=f"cache entry for key {KEY} is not JSON"):
        store.write_key(KEY, {"task": object()})


def test_clear_keys_by_task(store: ArtifactStore):
    keys = [f"{i:02x}" * 16 for i in range(6)]
    for i, key in enumerate(keys):
        store.write_key(key, {"task": "train" if i % 2 else "load"})
    assert store.clear_keys("train") == 3
    assert store.read_key(keys[0]) == {"task": "load"}
    assert store.read_key(keys[1]) is None
    assert store.clear_keys("nothing") == 0
    assert store.clear_keys() == 3
    assert store.clear_keys() == 0


@pytest.mark.parametrize(
    "bad", ["", "ABCDEF0123456789", "abc", "g" * 32, "a" * 129, "ab" * 8 + "\n"]
)
def test_keys_and_hashes_must_be_hex(store: ArtifactStore, bad: str):
    with pytest.raises(ArtifactError, match="expected 16-128 lowercase hex characters"):
        store.read_key(bad)
    with pytest.raises(ArtifactError, match="expected 16-128 lowercase hex characters"):
        store.put(1, content_hash=bad)


# -- containment ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("../outside", r"`\.\.` segment"),
        ("objects/../../outside", r"`\.\.` segment"),
        ("objects/./x", r"`\.\.` segment"),
        ("objects//x", "empty"),
        ("/etc/passwd", "absolute"),
        ("~/x", "absolute"),
        ("s3://bucket/x", "absolute path or a URL"),
        ("C:/windows", "absolute"),
        ("objects\\..\\x", "backslash"),
        ("%2e%2e/outside", "URL-encoded"),
        ("objects/%2E%2E/x", "URL-encoded"),
        ("", "empty"),
    ],
)
def test_resolve_rejects_escapes(store: ArtifactStore, relative: str, reason: str):
    with pytest.raises(ArtifactError, match=f"refusing artifact path .*{reason}"):
        store.resolve(relative)


def test_resolve_rejects_escapes_on_object_stores(memory_store: ArtifactStore):
    with pytest.raises(ArtifactError, match="refusing artifact path"):
        memory_store.resolve("../other-root/x")
    assert memory_store.resolve("keys/ab") == f"{memory_store.root}/keys/ab"


def test_resolve_rejects_symlinks_out_of_the_root(store: ArtifactStore, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "artifacts"
    root.mkdir()
    (root / "objects").symlink_to(outside)
    with pytest.raises(ArtifactError, match="leaves the root through a symbolic link"):
        store.resolve("objects/ab/x.json")
    with pytest.raises(ArtifactError, match="leaves the root through a symbolic link"):
        store.put("value")
    assert list(outside.iterdir()) == []


def test_symlinks_inside_the_root_are_fine(store: ArtifactStore, tmp_path: Path):
    root = tmp_path / "artifacts"
    (root / "real").mkdir(parents=True)
    (root / "objects").symlink_to(root / "real")
    info = store.put("value")
    assert store.get(info) == "value"


# -- check_writable: the artifact root, checked before a run starts --------------------------

UNWRITABLE = (
    "fix its permissions, or set GLASSPANE_ARTIFACT_ROOT to a directory or bucket glasspane "
    "can write to"
)


def test_check_writable_creates_a_missing_root_and_leaves_nothing(tmp_path: Path):
    root = tmp_path / "new" / "artifacts"
    ArtifactStore(str(root)).check_writable()
    assert root.is_dir()
    assert _files(root) == []


def test_check_writable_on_a_root_that_is_a_file(tmp_path: Path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a regular file where the root should be")
    with pytest.raises(ConfigError) as caught:
        ArtifactStore(str(blocker)).check_writable()
    assert str(caught.value) == (
        f"artifact root `{blocker}` is not writable: Not a directory ({blocker}/objects); "
        + UNWRITABLE
    )
    assert isinstance(caught.value.__cause__, NotADirectoryError)


def test_check_writable_where_even_root_may_not_write(tmp_path: Path):
    root = "/sys/glasspane-artifacts"  # sysfs refuses new directories, to root as well
    if not os.path.isdir("/sys") or os.path.exists(root):
        pytest.skip("needs a Linux /sys")
    with pytest.raises(ConfigError) as caught:
        ArtifactStore(root).check_writable()
    message = str(caught.value)
    assert message.startswith(f"artifact root `{root}` is not writable: ")
    assert message.endswith(UNWRITABLE)
    assert isinstance(caught.value.__cause__, OSError)


def test_check_writable_on_a_read_only_directory(tmp_path: Path):
    if os.geteuid() != 0:
        root = tmp_path / "artifacts"
        root.mkdir(mode=0o555)
        with pytest.raises(ConfigError) as caught:
            ArtifactStore(str(root)).check_writable()
        message = str(caught.value)
    else:  # permissions do not stop root: check in a child that runs as `nobody`
        base = Path(tempfile.mkdtemp(dir="/tmp"))  # reachable by nobody (tmp_path is not)
        try:
            base.chmod(0o755)
            ArtifactStore(str(base / "warm")).check_writable()  # imports what the child needs
            root = base / "artifacts"
            root.mkdir(mode=0o555)
            message = _as_nobody(lambda: ArtifactStore(str(root)).check_writable())
        finally:
            shutil.rmtree(base)
    assert message.startswith(f"artifact root `{root}` is not writable: Permission denied")
    assert message.endswith(UNWRITABLE)


def _as_nobody(check: Any) -> str:
    """The message of the ConfigError ``check`` raises in a forked child running as
    ``nobody`` (the parent stays root)."""
    import pwd

    nobody = pwd.getpwnam("nobody")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root, check, report, leave without running cleanups
        os.close(read)
        text = "no error"
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            check()
        except ConfigError as exc:
            text = str(exc)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            text = f"unexpected {type(exc).__name__}: {exc}"
        os.write(write, text.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        text = fh.read().decode()
    os.waitpid(pid, 0)
    return text


def test_check_writable_on_a_read_only_file_system(tmp_path: Path):
    """A read-only bind mount, in a mount namespace of its own that ends with the check."""
    root = tmp_path / "artifacts"
    root.mkdir()
    script = (
        f"mount --bind {root} {root} && mount -o remount,ro,bind {root} || exit 77; "
        f'exec {sys.executable} -c "from glasspane.artifacts import ArtifactStore; '
        f"ArtifactStore('{root}').check_writable()\""
    )
    try:
        done = subprocess.run(
            ["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True
        )
    except FileNotFoundError:
        pytest.skip("needs unshare(1)")
    if done.returncode == 77 or "Operation not permitted" in done.stderr[:300]:
        pytest.skip("cannot make a read-only mount here (needs CAP_SYS_ADMIN)")
    assert (
        f"glasspane.errors.ConfigError: artifact root `{root}` is not writable: Read-only file "
        f"system ({root}/objects); {UNWRITABLE}"
    ) in done.stderr


def test_check_writable_on_a_memory_root(memory_store: ArtifactStore):
    memory_store.check_writable()
    assert memory_store.fs.find(memory_store.root) == []


def test_check_writable_is_cheap(tmp_path: Path):
    store = ArtifactStore(str(tmp_path / "artifacts"))
    store.check_writable()  # the first call creates the directory
    timings = []
    for _ in range(50):
        started = time.perf_counter()
        store.check_writable()
        timings.append(time.perf_counter() - started)
    assert sorted(timings)[len(timings) // 2] < 0.005  # it runs before every run
