"""What the disk blob store promises beyond the port's contract: durable, atomic writes."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from imagetag.adapters.blobs_fs import FileSystemBlobStore


def synced_paths(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every path os.fsync is called on from now on, in order."""
    synced: list[Path] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return synced


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
    assert synced[0].name.startswith(".incoming-")  # the file's bytes, before the rename
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
