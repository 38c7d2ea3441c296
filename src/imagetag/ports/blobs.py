"""Content-addressed storage of image bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import IO, Protocol


class BlobStore(Protocol):
    async def put(self, sha256: str, source: IO[bytes]) -> None:
        """Store the whole of ``source`` (a seekable binary file, read from its start)
        under ``sha256``, the digest of its bytes; storing the same content twice is a no-op.

        ``source`` is read in chunks, never whole, so a large upload costs a bounded amount
        of memory; the caller keeps it open and does not use it meanwhile.
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
