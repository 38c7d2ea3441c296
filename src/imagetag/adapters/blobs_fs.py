"""Content-addressed blob store on the local file system."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, BinaryIO

_SHA256 = re.compile(r"[0-9a-f]{64}")
# Copied a megabyte at a time: a large upload never sits whole in memory.
_CHUNK = 1024 * 1024


class FileSystemBlobStore:
    """Blobs at ``root/ab/cd/abcd...``; writes are atomic and durable: temporary file,
    fsync, rename, fsync of the directories the rename and any new directory changed."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def path_for(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256 digest: {sha256!r}")
        return self._root / sha256[:2] / sha256[2:4] / sha256

    async def put(self, sha256: str, source: IO[bytes]) -> None:
        await asyncio.to_thread(self._put, sha256, source)

    def _put(self, sha256: str, source: IO[bytes]) -> None:
        target = self.path_for(sha256)
        if target.exists():
            return
        new_directories = [d for d in (target.parent.parent, target.parent) if not d.exists()]
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                source.seek(0)
                shutil.copyfileobj(source, handle, _CHUNK)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        # The rename (and a new directory's entry) survives a power cut only once the
        # directory holding it is on disk; the caller acknowledges the upload after this.
        for directory in (target.parent, *(d.parent for d in reversed(new_directories))):
            _sync_directory(directory)

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
