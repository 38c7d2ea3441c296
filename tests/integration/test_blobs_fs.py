"""What the disk blob store promises beyond the port's contract: durable, atomic writes, and
recovery of what a crash left staged."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


async def test_a_new_blob_is_synced_with_its_staged_name_then_renamed_into_new_directories(
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
    # Each directory made for the blob, into its parent; then the bytes and their name in
    # .incoming: all on disk before the rename, which is not synced itself.
    assert synced[:2] == [root, target.parent.parent]
    assert synced[2].parent == root / INCOMING
    assert synced[2].name.startswith(f"{sha}-")
    assert synced[3:] == [root / INCOMING]
    assert [p.name for p in target.parent.iterdir()] == [sha]


async def test_a_blob_in_existing_directories_syncs_only_its_staged_file_and_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileSystemBlobStore(tmp_path)
    data = b"second"
    sha = hashlib.sha256(data).hexdigest()
    store.path_for(sha).parent.mkdir(parents=True)
    synced = synced_paths(monkeypatch)

    await store.put(sha, io.BytesIO(data))

    assert [path.parent for path in synced] == [tmp_path / INCOMING, tmp_path]


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


async def test_a_staged_blob_waits_synced_and_locked_in_incoming_and_commits_by_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileSystemBlobStore(tmp_path)
    data = b"staged"
    sha = hashlib.sha256(data).hexdigest()
    store.path_for(sha).parent.mkdir(parents=True)
    synced = synced_paths(monkeypatch)

    staged = await store.stage(sha, io.BytesIO(data))

    (waiting,) = [tmp_path / INCOMING / name for name in names(tmp_path / INCOMING)]
    assert synced == [waiting, tmp_path / INCOMING]
    assert waiting.read_bytes() == data
    assert is_locked(waiting)
    assert not await store.exists(sha)  # staged bytes are not the store's yet

    await staged.commit()

    assert store.path_for(sha).read_bytes() == data
    assert names(tmp_path / INCOMING) == []
    assert synced[2:] == []  # committing writes no byte and waits for no disk


async def test_a_discarded_blob_leaves_no_file_and_no_folder(tmp_path: Path) -> None:
    store = FileSystemBlobStore(tmp_path)
    data = b"refused"
    sha = hashlib.sha256(data).hexdigest()

    await (await store.stage(sha, io.BytesIO(data))).discard()

    assert names(tmp_path) == [INCOMING]  # the folders made for it are gone too
    assert names(tmp_path / INCOMING) == []
    assert not await store.exists(sha)


async def test_a_discard_keeps_a_folder_another_blob_is_in(tmp_path: Path) -> None:
    store = FileSystemBlobStore(tmp_path)
    refused, kept = b"refused", b"kept"
    staged = await store.stage(hashlib.sha256(refused).hexdigest(), io.BytesIO(refused))
    # Another blob in the same top folder ("ab/"), in a folder of its own below it.
    kept_sha = hashlib.sha256(refused).hexdigest()[:2] + hashlib.sha256(kept).hexdigest()[2:]
    await store.put(kept_sha, io.BytesIO(kept))

    await staged.discard()

    assert store.path_for(kept_sha).read_bytes() == kept
    assert names(store.path_for(kept_sha).parent.parent) == [kept_sha[2:4]]


async def test_a_commit_makes_again_a_folder_a_discard_removed_meanwhile(tmp_path: Path) -> None:
    store = FileSystemBlobStore(tmp_path)
    data = b"accepted"
    sha = hashlib.sha256(data).hexdigest()
    staged = await store.stage(sha, io.BytesIO(data))
    # What a refused blob's discard in the same folders does between this staging and
    # this commit.
    store.path_for(sha).parent.rmdir()

    await staged.commit()

    assert store.path_for(sha).read_bytes() == data


async def test_staging_makes_again_a_top_folder_a_discard_removed_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileSystemBlobStore(tmp_path)
    data = b"staged while another blob was refused"
    sha = hashlib.sha256(data).hexdigest()
    top = store.path_for(sha).parent.parent
    top.mkdir(parents=True)
    real_mkdir = Path.mkdir
    removed: list[Path] = []

    def mkdir_after_a_discard(self: Path, *args: Any, **kwargs: Any) -> None:
        if self == top / sha[2:4] and not removed:
            # The refused blob's discard empties and removes the top folder first.
            removed.append(top)
            top.rmdir()
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir_after_a_discard)

    await (await store.stage(sha, io.BytesIO(data))).commit()

    assert removed == [top]
    assert store.path_for(sha).read_bytes() == data


def test_a_blob_staged_by_a_process_that_died_is_committed_by_the_next_store_to_read(
    tmp_path: Path,
) -> None:
    data = b"accepted, then the process was killed"
    sha = hashlib.sha256(data).hexdigest()
    # A real process stages the blob, then dies without committing or discarding it: what
    # a power cut that took the rename leaves, too.
    staging = (
        "import asyncio, io, os, sys\n"
        "from pathlib import Path\n"
        "from imagetag.adapters.blobs_fs import FileSystemBlobStore\n"
        "store = FileSystemBlobStore(Path(sys.argv[1]))\n"
        "asyncio.run(store.stage(sys.argv[2], io.BytesIO(sys.argv[3].encode())))\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", staging, str(tmp_path), sha, data.decode()], check=True)
    assert [name[:64] for name in names(tmp_path / INCOMING)] == [sha]

    assert asyncio.run(FileSystemBlobStore(tmp_path).get(sha)) == data
    assert names(tmp_path / INCOMING) == []


async def test_a_leftover_whose_folders_a_crash_lost_is_committed_into_new_ones(
    tmp_path: Path,
) -> None:
    data = b"staged, then the power went"
    sha = hashlib.sha256(data).hexdigest()
    (tmp_path / INCOMING).mkdir()
    (tmp_path / INCOMING / f"{sha}-left").write_bytes(data)
    store = FileSystemBlobStore(tmp_path)

    assert await store.exists(sha)
    assert store.path_for(sha).read_bytes() == data
    assert names(tmp_path / INCOMING) == []


async def test_a_blob_another_store_holds_staged_is_left_to_it(tmp_path: Path) -> None:
    data = b"in flight in another process"
    sha = hashlib.sha256(data).hexdigest()
    staged = await FileSystemBlobStore(tmp_path).stage(sha, io.BytesIO(data))
    other = FileSystemBlobStore(tmp_path)

    assert not await other.exists(sha)  # its lock says it is not a leftover
    with pytest.raises(KeyError):
        await other.get(sha)
    await other.put(hashlib.sha256(b"x").hexdigest(), io.BytesIO(b"x"))
    assert len(names(tmp_path / INCOMING)) == 1

    await staged.discard()
    assert names(tmp_path / INCOMING) == []
    assert not await FileSystemBlobStore(tmp_path).exists(sha)


async def test_leftovers_that_do_not_match_their_name_are_removed_after_a_day(
    tmp_path: Path,
) -> None:
    incoming = tmp_path / INCOMING
    incoming.mkdir()
    name = hashlib.sha256(b"the whole blob").hexdigest()
    stale, recent = incoming / f"{name}-stale", incoming / f"{name}-recent"
    stale.write_bytes(b"the whole")  # a write a crash cut short
    recent.write_bytes(b"the wh")
    unnamed = incoming / "unnamed"
    unnamed.write_bytes(b"not staged by a store")
    day_and_a_minute_ago = time.time() - 24 * 60 * 60 - 60
    for old in (stale, unnamed):
        os.utime(old, (day_and_a_minute_ago, day_and_a_minute_ago))

    await FileSystemBlobStore(tmp_path).put(hashlib.sha256(b"x").hexdigest(), io.BytesIO(b"x"))

    assert names(incoming) == [recent.name]
    assert not FileSystemBlobStore(tmp_path).path_for(name).exists()


def is_locked(path: Path) -> bool:
    """Whether some open file holds ``path``'s exclusive lock (as a live stager does)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False
