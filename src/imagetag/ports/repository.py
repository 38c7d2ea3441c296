"""Storage of images, tags, the audit log and API keys, behind a unit of work."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from imagetag.domain.audit import AuditEvent, AuditQuery
from imagetag.domain.idempotency import IdempotencyRecord
from imagetag.domain.images import DetectionRun, Image, NewImage
from imagetag.domain.principals import Actor, ApiKeyRecord
from imagetag.domain.search import SearchQuery
from imagetag.domain.tags import TagCount


@dataclass(frozen=True, slots=True)
class AddedImage:
    """What ``ImageRepository.add`` stored: the image, and the id of the detection run it
    came with (None when it came with none)."""

    image: Image
    run_id: int | None


class ImageRepository(Protocol):
    """Live (not deleted) images with their live tags."""

    async def add(self, image: NewImage) -> AddedImage:
        """Store a new image with its detection run, if any; the store assigns the ids."""
        ...

    async def get(self, image_id: int) -> Image | None: ...

    async def find_by_sha256(self, sha256: str) -> Image | None:
        """The oldest live image with these bytes, if any."""
        ...

    async def search(self, query: SearchQuery, *, limit: int) -> Sequence[Image]:
        """Images for which ``query.includes`` holds, newest (highest id) first.

        ``limit`` overrides ``query.limit`` so callers can look one row ahead.
        """
        ...

    async def relabel(self, image_id: int, label: str) -> bool:
        """Change a live image's label; False if there is no such image."""
        ...

    async def delete(self, image_id: int, actor: Actor, at: datetime) -> bool:
        """Soft-delete: the image leaves every read and search, its rows stay for the
        audit trail. False if there is no such live image."""
        ...

    async def add_detection_run(self, image_id: int, run: DetectionRun) -> int:
        """Record a run and its model tags; it becomes the image's latest run. Returns
        the run id."""
        ...


class TagRepository(Protocol):
    async def add_human(
        self, image_id: int, names: Sequence[str], actor: Actor, at: datetime
    ) -> tuple[str, ...]:
        """Add human tags by ``actor.user``; names that user already has live on the image
        are skipped (another user's tag of the same name is theirs, and both are kept:
        agreement between people is worth recording). Returns the names actually added."""
        ...

    async def remove(self, image_id: int, name: str, actor: Actor, at: datetime) -> int:
        """Take every live tag of that name off the image, human and model; the rows
        stay with who removed them and when. Returns how many were removed."""
        ...

    async def counts(self) -> Sequence[TagCount]:
        """Every live tag name on live images, with image counts, by name."""
        ...


class IdempotencyKeys(Protocol):
    async def find(self, user: str, key: str) -> IdempotencyRecord | None: ...

    async def add(self, record: IdempotencyRecord) -> None:
        """Raises ``IdempotencyKeyTaken`` when the user's key is already stored."""
        ...


class AuditLog(Protocol):
    """Append-only: events are added and read, never changed."""

    async def append(self, event: AuditEvent) -> None: ...

    async def list(self, query: AuditQuery, *, limit: int) -> Sequence[AuditEvent]:
        """Events for which ``query.includes`` holds, newest (highest id) first."""
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

    # Read-only: an adapter's own repository types then fit (a settable attribute would
    # have to be declared with exactly these types).
    @property
    def images(self) -> ImageRepository: ...

    @property
    def tags(self) -> TagRepository: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def idempotency(self) -> IdempotencyKeys: ...

    @property
    def api_keys(self) -> ApiKeyRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def add_image_and_commit(
        self, image: NewImage, audit: Callable[[AddedImage], Sequence[AuditEvent]]
    ) -> AddedImage:
        """``images.add(image)``, then ``audit.append`` of each event ``audit`` makes of
        what was stored, then ``commit``: an ingest's write, which a store may send in one
        round trip (SQLite: one hop to its connection's thread instead of two). ``audit``
        is pure and may run on another thread."""
        ...

    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
