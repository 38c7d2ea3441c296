"""Storage of image records and API keys, behind a unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from imagetag.domain.images import Image, NewImage
from imagetag.domain.principals import ApiKeyRecord
from imagetag.domain.search import ImageQuery


class ImageRepository(Protocol):
    async def add(self, image: NewImage) -> Image:
        """Store a new image with its detections; the store assigns the id."""
        ...

    async def get(self, image_id: int) -> Image | None: ...

    async def search(self, query: ImageQuery, *, limit: int) -> Sequence[Image]:
        """Images for which ``query.includes`` holds, newest (highest id) first.

        ``limit`` overrides ``query.limit`` so callers can look one row ahead.
        """
        ...


class ImageReader(Protocol):
    """Point reads of committed images outside a unit of work: the hot read path."""

    async def get(self, image_id: int) -> Image | None: ...


class ApiKeyRepository(Protocol):
    async def add(self, key: ApiKeyRecord) -> None:
        """Store a key; raises ``KeyNameTaken`` if an active key has that name."""
        ...

    async def find_active_by_hash(self, key_hash: str) -> ApiKeyRecord | None: ...

    async def list(self) -> Sequence[ApiKeyRecord]: ...

    async def revoke(self, name: str, at: datetime) -> bool:
        """Revoke the active key of that name; False if there is none."""
        ...

    async def count_active(self) -> int: ...


class UnitOfWork(Protocol):
    """One transaction: changes are kept only if ``commit`` is called before exit."""

    images: ImageRepository
    api_keys: ApiKeyRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
