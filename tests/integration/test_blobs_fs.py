"""What the disk blob store promises beyond the port's contract: durable, atomic writes."""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path

import pytest

from imagetag.adapters.blobs_fs import INCOMING, FileSystemBlobStore


def synced_paths(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every path os.fsync is called on from now on, in order."""
    synced: list[Path] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return synced


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


async def test_a_new_blob_is_synced_then_renamed_and_its_directories_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "blobs"
    root.mkdir()
    store = FileSystemBlobStore(root)
    data = b"first blob"
    sha = hashlib.sha256(data).hexdigest()
    synced = synced_paths(monkeypatch)

    await store.put(sha, io.BytesIO(data))

    target = store.path_for(sha)
    assert target.read_bytes() == data
    assert synced[0].parent == root / INCOMING  # the file's bytes, before the rename
    # then the entry of the file, and of each directory that was new
    assert synced[1:] == [target.parent, target.parent.parent, root]
    assert [p.name for p in target.parent.iterdir()] == [sha]


async def test_a_blob_in_existing_directories_syncs_only_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileSystemBlobStore(tmp_path)
    data = b"second"
    sha = hashlib.sha256(data).hexdigest()
    store.path_for(sha).parent.mkdir(parents=True)
    synced = synced_paths(monkeypatch)

    await store.put(sha, io.BytesIO(data))

    assert synced[1:] == [store.path_for(sha).parent]


async def test_storing_stored_content_writes_and_syncs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileSystemBlobStore(tmp_path)
    data = b"same"
    sha = hashlib.sha256(data).hexdigest()
    await store.put(sha, io.BytesIO(data))
    synced = synced_paths(monkeypatch)

    await store.put(sha, io.BytesIO(data))

    assert synced == []


async def test_a_staged_blob_waits_synced_in_incoming_and_commits_by_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileSystemBlobStore(tmp_path)
    data = b"staged"
    sha = hashlib.sha256(data).hexdigest()
    synced = synced_paths(monkeypatch)

    staged = await store.stage(sha, io.BytesIO(data))

    (waiting,) = [tmp_path / INCOMING / name for name in names(tmp_path / INCOMING)]
    assert synced == [waiting]
    assert waiting.read_bytes() == data
    assert not store.path_for(sha).parent.exists()  # no directory made before the commit

    await staged.commit()

    assert store.path_for(sha).read_bytes() == data
    assert names(tmp_path / INCOMING) == []
    # Committing writes no byte: it syncs only the directories the rename changed.
    assert synced[1:] == [store.path_for(sha).parent, store.path_for(sha).parent.parent, tmp_path]


async def test_a_discarded_blob_leaves_no_file_and_no_directory(tmp_path: Path) -> None:
    store = FileSystemBlobStore(tmp_path)
    data = b"refused"

    await (await store.stage(hashlib.sha256(data).hexdigest(), io.BytesIO(data))).discard()

    assert names(tmp_path) == [INCOMING]
    assert names(tmp_path / INCOMING) == []


async def test_what_a_crash_left_staged_a_day_ago_is_removed_and_newer_kept(
    tmp_path: Path,
) -> None:
    incoming = tmp_path / INCOMING
    incoming.mkdir()
    stale, recent = incoming / "stale", incoming / "recent"
    stale.write_bytes(b"left by a crash")
    recent.write_bytes(b"another process's, in flight")
    day_and_a_minute_ago = time.time() - 24 * 60 * 60 - 60
    os.utime(stale, (day_and_a_minute_ago, day_and_a_minute_ago))

    await FileSystemBlobStore(tmp_path).put(hashlib.sha256(b"x").hexdigest(), io.BytesIO(b"x"))

    assert names(incoming) == ["recent"]
