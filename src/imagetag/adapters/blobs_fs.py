"""Content-addressed blob store on the local file system."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import IO, BinaryIO, TypeVar

T = TypeVar("T")

_SHA256 = re.compile(r"[0-9a-f]{64}")
# Copied a megabyte at a time: a large upload never sits whole in memory.
_CHUNK = 1024 * 1024
INCOMING = ".incoming"
"""The folder under the root where blobs are written before they are committed."""
_STALE_SECONDS = 24 * 60 * 60


class FileSystemBlobStore:
    """Blobs at ``root/ab/cd/abcd...``, written atomically and durably.

    A blob is staged as ``root/.incoming/<sha256>-<random>``: written under an exclusive
    lock, then the file and that folder's entry are synced. Committing it is a rename into
    place with no sync of its own, since the bytes are already on disk under a name that
    says what they are: if a power cut loses the rename, or the process dies between
    staging and committing, the next store to open the folder finds the file unlocked,
    checks its bytes against its name, and finishes the rename (then syncs). A reader
    never sees half an image, and no record committed after ``commit`` points at bytes a
    power cut can take; a blob whose request died undecided is kept, unreferenced, like
    the blob of a record a power cut rolls back. The commit runs beside detection: with a
    sync in it, the model's two threads were preempted ~12 times per image, ~5 without
    (bench/detect).

    Leftovers whose bytes do not match their name (a write a crash cut short) are removed
    after a day. Recovery runs once per store, on its first write or its first miss."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._incoming = root / INCOMING
        self._recovered = False

    def path_for(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256 digest: {sha256!r}")
        return self._root / sha256[:2] / sha256[2:4] / sha256

    async def put(self, sha256: str, source: IO[bytes]) -> None:
        await asyncio.to_thread(self._put, sha256, source)

    def _put(self, sha256: str, source: IO[bytes]) -> None:
        self._stage(sha256, source).commit_now()

    async def stage(self, sha256: str, source: IO[bytes]) -> StagedFile:
        return await asyncio.to_thread(self._stage, sha256, source)

    def _stage(self, sha256: str, source: IO[bytes]) -> StagedFile:
        target = self.path_for(sha256)
        self._recover_once()
        if target.exists():
            return StagedFile(target, None)
        # Made (and synced) now, beside whatever the caller does meanwhile, so that the
        # commit is a bare rename; a discard removes those it made, once empty.
        made = _make_directories(target.parent)
        descriptor, temporary = tempfile.mkstemp(dir=self._incoming, prefix=f"{sha256}-")
        try:
            # Held until committed or discarded: recovery leaves a locked file alone.
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            with open(descriptor, "wb", closefd=False) as handle:
                source.seek(0)
                shutil.copyfileobj(source, handle, _CHUNK)
            os.fsync(descriptor)
            _sync_directory(self._incoming)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            os.close(descriptor)
            _remove_if_empty(made)
            raise
        return StagedFile(target, Path(temporary), descriptor, made)

    async def get(self, sha256: str) -> bytes:
        return await asyncio.to_thread(self._read, sha256, Path.read_bytes)

    async def open(self, sha256: str) -> AsyncIterator[bytes]:
        # Opened and the first chunk read in one hop: most images are one chunk.
        handle, first = await asyncio.to_thread(self._read, sha256, _open_and_read)
        return _chunks(handle, first)

    async def exists(self, sha256: str) -> bool:
        return await asyncio.to_thread(self._exists, sha256)

    def _exists(self, sha256: str) -> bool:
        try:
            self._read(sha256, _require_file)
        except KeyError:
            return False
        return True

    def _read(self, sha256: str, read: Callable[[Path], T]) -> T:
        path = self.path_for(sha256)
        try:
            return read(path)
        except FileNotFoundError:
            if self._recovered:
                raise KeyError(sha256) from None
        # A crash may have left it staged: finish that, then look again.
        self._recover_once()
        try:
            return read(path)
        except FileNotFoundError:
            raise KeyError(sha256) from None

    def _recover_once(self) -> None:
        if not self._recovered:
            self._incoming.mkdir(parents=True, exist_ok=True)
            for leftover in self._incoming.iterdir():
                self._recover(leftover)
            self._recovered = True

    def _recover(self, leftover: Path) -> None:
        """Finish the commit of a staged blob no live process holds, or remove a stale one."""
        try:
            descriptor = os.open(leftover, os.O_RDONLY)
        except FileNotFoundError:
            return  # committed or discarded meanwhile
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # its process is writing or committing it
            sha256 = leftover.name[:64]
            if _SHA256.fullmatch(sha256) and _digest(descriptor) == sha256:
                _commit(leftover, self.path_for(sha256), sync=True)
            elif os.fstat(descriptor).st_mtime < time.time() - _STALE_SECONDS:
                leftover.unlink(missing_ok=True)
        finally:
            os.close(descriptor)


class StagedFile:
    """A blob written and synced in ``.incoming``: committing it is a rename."""

    def __init__(
        self,
        target: Path,
        temporary: Path | None,
        lock: int | None = None,
        made: Sequence[Path] = (),
    ) -> None:
        self._target = target
        # None once committed or discarded, or when the store held the content already.
        self._temporary = temporary
        self._lock = lock
        self._made = made  # folders the staging made for it, outermost first

    async def commit(self) -> None:
        if self._temporary is not None:
            await asyncio.to_thread(self.commit_now)

    async def discard(self) -> None:
        temporary, self._temporary = self._temporary, None
        if temporary is not None:
            await asyncio.to_thread(self._remove, temporary)

    def commit_now(self) -> None:
        """``commit``, blocking."""
        temporary, self._temporary = self._temporary, None
        if temporary is not None:
            try:
                _commit(temporary, self._target, sync=False)
            finally:
                self._unlock()

    def _remove(self, temporary: Path) -> None:
        try:
            temporary.unlink(missing_ok=True)
        finally:
            self._unlock()
        _remove_if_empty(self._made)

    def _unlock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            os.close(lock)


def _make_directories(folder: Path) -> list[Path]:
    """``folder`` and its parent, each new one synced into its own parent (a blob's rename
    must not outlive a power cut that takes its folder); those made here, outermost first."""
    made: list[Path] = []
    for directory in (folder.parent, folder):
        if directory.exists():
            continue
        try:
            directory.mkdir()
        except FileExistsError:
            continue  # another blob's staging made it, and syncs it
        except FileNotFoundError:
            # A refused blob's discard removed the parent, empty, since it was checked.
            return made + _make_directories(folder)
        made.append(directory)
        _sync_directory(directory.parent)
    return made


def _remove_if_empty(folders: Sequence[Path]) -> None:
    """Remove folders a refused blob's staging made, innermost first, unless another blob
    is in one by now. (One about to be renamed in finds its folder gone and makes it again.)"""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return  # not empty, or gone already


def _commit(staged: Path, target: Path, *, sync: bool) -> None:
    """Rename a synced staged file into place; the rename is synced only when ``sync``,
    since the staged name stands in for it until then."""
    # Replacing a copy another request committed meanwhile swaps identical bytes.
    try:
        os.replace(staged, target)
    except FileNotFoundError:
        # No folder: recovering (staging makes it), or a refused blob's discard removed
        # the one it had made, empty, just now.
        _make_directories(target.parent)
        os.replace(staged, target)
    if sync:
        _sync_directory(target.parent)


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(path)


def _digest(descriptor: int) -> str:
    digest = hashlib.sha256()
    while chunk := os.read(descriptor, _CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _sync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _open_and_read(path: Path) -> tuple[BinaryIO, bytes]:
    handle = path.open("rb")
    try:
        return handle, handle.read(_CHUNK)
    except BaseException:
        handle.close()
        raise


async def _chunks(handle: BinaryIO, first: bytes) -> AsyncIterator[bytes]:
    try:
        chunk = first
        while chunk:
            yield chunk
            if len(chunk) < _CHUNK:
                break
            chunk = await asyncio.to_thread(handle.read, _CHUNK)
    finally:
        handle.close()
