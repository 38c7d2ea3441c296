"""Content-addressed storage of image bytes."""

from __future__ import annotations

from typing import Protocol


class BlobStore(Protocol):
    async def put(self, sha256: str, data: bytes) -> None:
        """Store ``data`` under its sha256; storing the same content twice is a no-op."""
        ...

    async def get(self, sha256: str) -> bytes:
        """Return the bytes; raises ``KeyError`` if absent."""
        ...

    async def exists(self, sha256: str) -> bool: ...
