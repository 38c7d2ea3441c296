"""Hand-written fakes of the core's ports, for unit tests of the services.

They keep state in memory and behave like the real adapters in the ways the
services rely on; tests inspect that state directly instead of mocking calls.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo
from imagetag.domain.errors import KeyNameTaken, UnsupportedImage, UrlFetchFailed
from imagetag.domain.images import Image, ImageFacts, NewImage
from imagetag.domain.principals import ApiKeyRecord
from imagetag.domain.search import ImageQuery
from imagetag.ports.fetcher import FetchedContent
from imagetag.ports.repository import ApiKeyRepository, ImageRepository

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FAKE_DETECTOR_INFO = DetectorInfo(detector="fake", model="fake-model", library_version="0")


def detection(name: str, confidence: float = 0.9, box: BoundingBox | None = None) -> Detection:
    """A detection as the fake detector reports it."""
    return Detection(name=name, confidence=confidence, box=box, detector=FAKE_DETECTOR_INFO)


class FakeImageRepository:
    def __init__(self, images: dict[int, Image], ids: Iterator[int]) -> None:
        self._images = images
        self._ids = ids

    async def add(self, image: NewImage) -> Image:
        stored = Image.stored(image, next(self._ids))
        self._images[stored.id] = stored
        return stored

    async def get(self, image_id: int) -> Image | None:
        return self._images.get(image_id)

    async def search(self, query: ImageQuery, *, limit: int) -> Sequence[Image]:
        newest_first = sorted(self._images.values(), key=lambda image: image.id, reverse=True)
        found = (image for image in newest_first if query.includes(image.id, image.objects))
        return list(itertools.islice(found, limit))


class FakeApiKeyRepository:
    def __init__(self, keys: list[ApiKeyRecord]) -> None:
        self._keys = keys

    async def add(self, key: ApiKeyRecord) -> None:
        if any(existing.active and existing.name == key.name for existing in self._keys):
            raise KeyNameTaken(key.name)
        self._keys.append(key)

    async def find_active_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        return next((k for k in self._keys if k.active and k.key_hash == key_hash), None)

    async def list(self) -> Sequence[ApiKeyRecord]:
        return tuple(self._keys)

    async def revoke(self, name: str, at: datetime) -> bool:
        for index, key in enumerate(self._keys):
            if key.active and key.name == name:
                self._keys[index] = dataclasses.replace(key, revoked_at=at)
                return True
        return False

    async def count_active(self) -> int:
        return sum(1 for key in self._keys if key.active)


@dataclass
class FakeStorage:
    """What has been committed; shared by every unit of work of one factory."""

    images: dict[int, Image] = field(default_factory=dict)
    api_keys: list[ApiKeyRecord] = field(default_factory=list)
    # Like a database sequence, ids handed out by a rolled-back transaction are not reused.
    image_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))


class FakeImageReader:
    """Reads what the units of work of one storage have committed."""

    def __init__(self, storage: FakeStorage) -> None:
        self._storage = storage

    async def get(self, image_id: int) -> Image | None:
        return self._storage.images.get(image_id)


class FakeUnitOfWork:
    """A transaction over a private copy of the storage, published by ``commit``.

    Units of work are expected not to overlap, as with SQLite's single writer:
    the last commit wins.
    """

    images: ImageRepository
    api_keys: ApiKeyRepository

    def __init__(self, storage: FakeStorage | None = None) -> None:
        self.storage = storage if storage is not None else FakeStorage()
        self.committed = False
        self._begin()

    def _begin(self) -> None:
        self._images = dict(self.storage.images)
        self._api_keys = list(self.storage.api_keys)
        self.images = FakeImageRepository(self._images, self.storage.image_ids)
        self.api_keys = FakeApiKeyRepository(self._api_keys)

    async def __aenter__(self) -> Self:
        self._begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.rollback()

    async def commit(self) -> None:
        self.storage.images = dict(self._images)
        self.storage.api_keys = list(self._api_keys)
        self.committed = True

    async def rollback(self) -> None:
        self._begin()


class FakeUnitOfWorkFactory:
    """Hands out units of work over one shared storage, and remembers them."""

    def __init__(self) -> None:
        self.storage = FakeStorage()
        self.units: list[FakeUnitOfWork] = []

    def __call__(self) -> FakeUnitOfWork:
        unit = FakeUnitOfWork(self.storage)
        self.units.append(unit)
        return unit

    @property
    def committed_images(self) -> list[Image]:
        return sorted(self.storage.images.values(), key=lambda image: image.id)

    @property
    def committed_api_keys(self) -> list[ApiKeyRecord]:
        return list(self.storage.api_keys)


class FakeBlobStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    async def put(self, sha256: str, data: bytes) -> None:
        self.blobs.setdefault(sha256, data)

    async def get(self, sha256: str) -> bytes:
        return self.blobs[sha256]

    async def exists(self, sha256: str) -> bool:
        return sha256 in self.blobs


class FakeImageInspector:
    """Accepts bytes that start with ``magic`` and reports the same facts for all of them."""

    def __init__(
        self,
        facts: ImageFacts | None = None,
        *,
        magic: bytes = PNG_MAGIC,
    ) -> None:
        self.facts = facts if facts is not None else ImageFacts("image/png", 640, 480)
        self.magic = magic

    def inspect(self, data: bytes) -> ImageFacts:
        if not data.startswith(self.magic):
            raise UnsupportedImage("not an image of a supported format")
        return self.facts


class FakeFetcher:
    """Serves the configured answer for each URL; any other URL is not found."""

    def __init__(self, responses: Mapping[str, FetchedContent | Exception] | None = None) -> None:
        self.responses = dict(responses or {})
        self.requested: list[str] = []

    async def fetch(self, url: str) -> FetchedContent:
        self.requested.append(url)
        response = self.responses.get(url)
        if response is None:
            raise UrlFetchFailed(f"{url} answered 404")
        if isinstance(response, Exception):
            raise response
        return response


class FakeDetector:
    """Finds the configured detections in any image, or fails with ``error``."""

    def __init__(
        self, detections: Sequence[Detection] = (), *, error: Exception | None = None
    ) -> None:
        self.detections = list(detections)
        self.error = error
        self.calls: list[bytes] = []

    @property
    def info(self) -> DetectorInfo:
        return FAKE_DETECTOR_INFO

    async def detect(self, image: bytes) -> list[Detection]:
        self.calls.append(image)
        if self.error is not None:
            raise self.error
        return list(self.detections)


EPOCH = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class FixedClock:
    def __init__(self, at: datetime = EPOCH) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


class TickingClock:
    """Each reading is ``step`` later than the one before."""

    def __init__(self, start: datetime = EPOCH, step: timedelta = timedelta(seconds=1)) -> None:
        self._next = start
        self.step = step

    def now(self) -> datetime:
        current = self._next
        self._next += self.step
        return current


class FakeKeyHasher:
    """Numbered secrets, so tests can predict them; sha256 stands in for the real hash."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)

    def new_secret(self) -> str:
        return f"{next(self._numbers):04d}-fake-secret"

    def hash(self, secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()
