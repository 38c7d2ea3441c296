"""Content-addressed blob store on the local file system."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, BinaryIO

_SHA256 = re.compile(r"[0-9a-f]{64}")
# Copied a megabyte at a time: a large upload never sits whole in memory.
_CHUNK = 1024 * 1024
INCOMING = ".incoming"
"""The folder under the root where blobs are written before they are committed."""
_STALE_SECONDS = 24 * 60 * 60


class FileSystemBlobStore:
    """Blobs at ``root/ab/cd/abcd...``; writes are atomic and durable: a temporary file in
    ``root/.incoming``, fsync, rename into place, fsync of the directories the rename and
    any new directory changed. Staged blobs wait in ``root/.incoming`` until committed;
    ones a crash left there are removed after a day."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._incoming = root / INCOMING
        self._swept = False

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
        if target.exists():
            return StagedFile(target, None)
        if not self._swept:
            self._incoming.mkdir(parents=True, exist_ok=True)
            _remove_stale(self._incoming)
            self._swept = True
        descriptor, temporary = tempfile.mkstemp(dir=self._incoming, prefix=f"{sha256[:16]}-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                source.seek(0)
                shutil.copyfileobj(source, handle, _CHUNK)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return StagedFile(target, Path(temporary))

    async def get(self, sha256: str) -> bytes:
        try:
            return await asyncio.to_thread(self.path_for(sha256).read_bytes)
        except FileNotFoundError:
            raise KeyError(sha256) from None

    async def open(self, sha256: str) -> AsyncIterator[bytes]:
        path = self.path_for(sha256)
        try:
            # Opened and the first chunk read in one hop: most images are one chunk.
            handle, first = await asyncio.to_thread(_open_and_read, path)
        except FileNotFoundError:
            raise KeyError(sha256) from None
        return _chunks(handle, first)

    async def exists(self, sha256: str) -> bool:
        return await asyncio.to_thread(self.path_for(sha256).is_file)


class StagedFile:
    """A blob written and synced in ``.incoming``: committing it is a rename and the sync
    of the directories that changed."""

    def __init__(self, target: Path, temporary: Path | None) -> None:
        self._target = target
        # None once committed or discarded, or when the store held the content already.
        self._temporary = temporary

    async def commit(self) -> None:
        if self._temporary is not None:
            await asyncio.to_thread(self.commit_now)

    async def discard(self) -> None:
        temporary, self._temporary = self._temporary, None
        if temporary is not None:
            await asyncio.to_thread(temporary.unlink, missing_ok=True)

    def commit_now(self) -> None:
        """``commit``, blocking."""
        temporary, target = self._temporary, self._target
        if temporary is None:
            return
        new_directories = [d for d in (target.parent.parent, target.parent) if not d.exists()]
        target.parent.mkdir(parents=True, exist_ok=True)
        # Replacing a copy another request committed meanwhile swaps identical bytes.
        os.replace(temporary, target)
        self._temporary = None
        # The rename (and a new directory's entry) survives a power cut only once the
        # directory holding it is on disk; the caller acknowledges the upload after this.
        for directory in (target.parent, *(d.parent for d in reversed(new_directories))):
            _sync_directory(directory)


def _remove_stale(incoming: Path) -> None:
    """Remove what a crash left staged: nothing stays staged for a day."""
    cutoff = time.time() - _STALE_SECONDS
    for leftover in incoming.iterdir():
        with contextlib.suppress(FileNotFoundError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()


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
