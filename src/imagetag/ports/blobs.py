"""Content-addressed storage of image bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import IO, Protocol


class StagedBlob(Protocol):
    """Bytes written ahead of the decision to keep them (``BlobStore.stage``)."""

    async def commit(self) -> None:
        """Store the staged bytes under their digest, as durably as ``put``; a no-op once
        committed, or when the store held that content already."""
        ...

    async def discard(self) -> None:
        """Drop the staged bytes. What the store holds under the digest stays."""
        ...


class BlobStore(Protocol):
    async def put(self, sha256: str, source: IO[bytes]) -> None:
        """Store the whole of ``source`` (a seekable binary file, read from its start)
        under ``sha256``, the digest of its bytes; storing the same content twice is a no-op.

        ``source`` is read in chunks, never whole, so a large upload costs a bounded amount
        of memory; the caller keeps it open and does not use it meanwhile.
        """
        ...

    async def stage(self, sha256: str, source: IO[bytes]) -> StagedBlob:
        """Begin a ``put`` whose outcome is not decided yet: the bytes are written where
        ``get``, ``open`` and ``exists`` do not see them, so that ``commit`` later costs
        little, and ``discard`` leaves the store as it was. A store may also do all of
        the writing in ``commit``. The caller keeps ``source`` open until one of the two.
        """
        ...

    async def get(self, sha256: str) -> bytes:
        """Return the bytes; raises ``KeyError`` if absent."""
        ...

    async def open(self, sha256: str) -> AsyncIterator[bytes]:
        """The bytes in chunks of at most a megabyte, to send on without holding them
        whole; raises ``KeyError`` if absent, before any chunk is read. Iterate it to the
        end or ``aclose()`` it: it holds a file or a connection until then."""
        ...

    async def exists(self, sha256: str) -> bool: ...
