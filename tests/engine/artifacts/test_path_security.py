"""No artifact path can leave the store's root, whatever the names or the links on disk.

``test_artifact_store.py`` covers ``resolve`` refusing ``..``, absolute paths, URLs, encoded
dots and backslashes, and a symlinked ``objects`` directory. This module covers the rest:
crafted hashes and keys through the public methods, symbolic links one level deeper and on
the blob files themselves (also after the store cached the directory), ``ArtifactInfo``
URIs read back from the metadata store, and a fuzz of ``resolve``. (Task logs are not files:
they are kept in the metadata database, so there is no log path to escape through.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glasspane.artifacts import ArtifactStore
from glasspane.errors import ArtifactError
from glasspane.hashing import content_hash
from glasspane.types import ArtifactInfo

HASH = content_hash("value")
KEY = "ab" * 16
OUTSIDE_TEXT = '"the file outside the root"'


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "artifacts"
    path.mkdir()
    return path


@pytest.fixture
def store(root: Path) -> ArtifactStore:
    return ArtifactStore(str(root))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the root, holding one file that must never be read or replaced."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.json").write_text(OUTSIDE_TEXT)
    return path


def _untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["secret.json"]
    assert (outside / "secret.json").read_text() == OUTSIDE_TEXT


# -- crafted hashes and keys through the public methods --------------------------------------

CRAFTED = [
    "../" + "ab" * 16,
    "ab" * 8 + "/../../" + "ab" * 8,
    "ab" * 16 + "/x",
    "/" + "ab" * 16,
    "%2e%2e%2f" + "ab" * 16,
    "ab" * 16 + "\\..",
    "ab" * 16 + "\0",
    "..",
    "ab" * 16 + ".json",
]


@pytest.mark.parametrize("crafted", CRAFTED)
def test_crafted_keys_are_refused_before_any_path_is_built(
    store: ArtifactStore, root: Path, outside: Path, crafted: str
) -> None:
    pattern = r"invalid cache key .*: expected 16-128 lowercase hex characters"
    with pytest.raises(ArtifactError, match=pattern):
        store.write_key(crafted, {"task": "t"})
    with pytest.raises(ArtifactError, match=pattern):
        store.read_key(crafted)
    assert list(root.iterdir()) == []
    _untouched(outside)


@pytest.mark.parametrize("crafted", CRAFTED)
def test_crafted_content_hashes_are_refused(
    store: ArtifactStore, root: Path, outside: Path, crafted: str
) -> None:
    with pytest.raises(ArtifactError, match=r"invalid content hash .*: expected 16-128"):
        store.put("value", content_hash=crafted)
    assert list(root.iterdir()) == []
    _untouched(outside)


@pytest.mark.parametrize(
    "name",
    ["objects/ab/x/../../../outside", "objects/ab/", "keys/ab/.", "objects/ab/%252e%252e", "C:x"],
)
def test_resolve_refuses_multi_segment_tricks(store: ArtifactStore, name: str) -> None:
    with pytest.raises(ArtifactError, match=r"refusing artifact path .* must stay inside"):
        store.resolve(name)


# -- symbolic links below the root ----------------------------------------------------------


def test_symlinked_shard_directory_is_refused(
    store: ArtifactStore, root: Path, outside: Path
) -> None:
    (root / "objects").mkdir()
    (root / "objects" / HASH[:2]).symlink_to(outside)
    with pytest.raises(ArtifactError, match="leaves the root through a symbolic link"):
        store.put("value")
    _untouched(outside)


def test_symlinked_key_shard_is_refused(store: ArtifactStore, root: Path, outside: Path) -> None:
    (root / "keys").mkdir()
    (root / "keys" / KEY[:2]).symlink_to(outside)
    with pytest.raises(ArtifactError, match="leaves the root through a symbolic link"):
        store.write_key(KEY, {"task": "t"})
    with pytest.raises(ArtifactError, match="leaves the root through a symbolic link"):
        store.read_key(KEY)
    _untouched(outside)


def test_symlinked_blob_file_is_refused(store: ArtifactStore, root: Path, outside: Path) -> None:
    blob = root / "objects" / HASH[:2] / f"{HASH}.json"
    blob.parent.mkdir(parents=True)
    blob.symlink_to(outside / "secret.json")
    with pytest.raises(ArtifactError, match="leaves the root through a symbolic link"):
        store.put("value")
    _untouched(outside)


def test_symlinked_blob_file_made_after_the_directory_was_cached_is_refused(
    store: ArtifactStore, root: Path, outside: Path
) -> None:
    # the store resolves each directory once per process; files are checked on every call
    first = store.put("value")
    assert first.uri is not None
    other = content_hash("other")
    shard = root / "objects" / other[:2]
    shard.mkdir(exist_ok=True)
    store.resolve(f"objects/{other[:2]}/{other}.json")  # caches the shard directory
    (shard / f"{other}.json").symlink_to(outside / "secret.json")
    with pytest.raises(ArtifactError, match="leaves the root through a symbolic link"):
        store.put("other")
    os.unlink(first.uri)
    Path(first.uri).symlink_to(outside / "secret.json")
    with pytest.raises(ArtifactError, match="leaves the root through a symbolic link"):
        store.put("value")
    _untouched(outside)


def test_symlinked_key_file_is_neither_written_nor_deleted(
    store: ArtifactStore, root: Path, outside: Path
) -> None:
    store.write_key(KEY, {"task": "t"})  # the shard directory is now cached
    key_file = root / "keys" / KEY[:2] / f"{KEY}.json"
    key_file.unlink()
    key_file.symlink_to(outside / "secret.json")
    with pytest.raises(ArtifactError, match="leaves the root through a symbolic link"):
        store.write_key(KEY, {"task": "t"})
    with pytest.raises(ArtifactError, match="leaves the root through a symbolic link"):
        store.read_key(KEY)
    with pytest.raises(ArtifactError, match="leaves the root through a symbolic link"):
        store.clear_keys()
    _untouched(outside)


def test_symlinked_root_itself_is_followed(tmp_path: Path, outside: Path) -> None:
    # the root is the user's choice: a root that is a link is where the store lives
    link = tmp_path / "link-to-outside"
    link.symlink_to(outside)
    store = ArtifactStore(str(link))
    info = store.put("value")
    assert info.uri is not None and info.uri.startswith(f"{link}/objects/")
    assert store.get(info) == "value"


def test_shard_directory_swapped_for_a_symlink_after_first_use(
    store: ArtifactStore, root: Path, outside: Path
) -> None:
    first = store.put("value")
    store.put("value")  # the shard exists now: this resolve caches it
    assert first.uri is not None
    shard = root / "objects" / HASH[:2]
    os.unlink(first.uri)
    shard.rmdir()
    shard.symlink_to(outside)
    try:
        with pytest.raises(ArtifactError, match="leaves the root through a symbolic link"):
            store.put("value")
    finally:
        _untouched(outside)


# -- URIs read back from the metadata store -------------------------------------------------


def _info(uri: str) -> ArtifactInfo:
    return ArtifactInfo(
        content_hash=HASH, uri=uri, digest=None, type_name="str", materializer="json", size=0
    )


@pytest.mark.parametrize("where", ["absolute", "dotdot"])
def test_get_refuses_uris_outside_the_root(
    store: ArtifactStore, root: Path, outside: Path, where: str
) -> None:
    target = outside / "secret.json"
    uri = str(target) if where == "absolute" else f"{root}/objects/../../outside/secret.json"
    assert not store.verify(_info(uri))
    with pytest.raises(ArtifactError, match="refusing artifact path"):
        store.get(_info(uri))


def test_get_through_a_symlinked_blob_is_not_trusted(
    store: ArtifactStore, root: Path, outside: Path
) -> None:
    # a blob replaced by a link to another file fails its digest instead of loading
    info = store.put("value")
    assert info.uri is not None
    os.unlink(info.uri)
    Path(info.uri).symlink_to(outside / "secret.json")
    with pytest.raises(ArtifactError, match=r"(corrupted|refusing artifact path)"):
        store.get(info)
    assert not store.verify(info)


# -- fuzz -----------------------------------------------------------------------------------

segment = st.one_of(
    st.sampled_from(["..", ".", "", "%2e%2e", "%2E", "~", "C:", "objects", "ab", "a\\b", "x.json"]),
    st.text(alphabet="abc./\\%2e~:", min_size=1, max_size=6),
)
names = st.lists(segment, min_size=1, max_size=5).map("/".join) | st.text(max_size=12)


@settings(max_examples=300, deadline=None)
@given(names)
def test_resolve_never_leaves_a_local_root(tmp_path_factory: pytest.TempPathFactory, name: str):
    base = tmp_path_factory.getbasetemp() / "fuzz-root"
    store = ArtifactStore(str(base))
    try:
        full = store.resolve(name)
    except ArtifactError as exc:
        assert "must stay inside GLASSPANE_ARTIFACT_ROOT" in str(exc)
        return
    real_root = os.path.realpath(base)
    assert os.path.realpath(full).startswith(real_root + os.sep)
    assert ".." not in Path(full).relative_to(base).parts


@settings(max_examples=300, deadline=None)
@given(names)
def test_resolve_never_leaves_an_object_store_root(name: str):
    store = ArtifactStore("memory://glasspane-fuzz/root")
    try:
        full = store.resolve(name)
    except ArtifactError:
        return
    relative = full.removeprefix("memory://glasspane-fuzz/root/")
    assert relative != full
    assert not {"..", ".", ""} & set(relative.split("/"))
    assert "\\" not in relative and "%2e" not in relative.lower()
