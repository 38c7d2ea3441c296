"""Hand-written fakes of the core's ports, for unit tests of the services.

They keep state in memory and behave like the real adapters in the ways the
services rely on; tests inspect that state directly instead of mocking calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import IO, Self

from imagetag.domain.audit import AuditEvent, AuditQuery
from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo, Thresholds
from imagetag.domain.errors import (
    DetectionFailed,
    IdempotencyKeyTaken,
    ImageNotFound,
    KeyNameTaken,
    UnsupportedImage,
    UrlFetchFailed,
)
from imagetag.domain.idempotency import IdempotencyRecord
from imagetag.domain.images import DetectionRun, Image, ImageFacts, NewImage
from imagetag.domain.principals import Actor, ApiKeyRecord, Principal, Role
from imagetag.domain.search import SearchQuery
from imagetag.domain.tags import Tag, TagCount, TagSource
from imagetag.ports.detector import DecodedImage
from imagetag.ports.fetcher import FetchedContent
from imagetag.ports.repository import (
    AddedImage,
    ApiKeyRepository,
    AuditLog,
    IdempotencyKeys,
    ImageRepository,
    TagRepository,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FAKE_DETECTOR_INFO = DetectorInfo(detector="fake", model="fake-model", library_version="0")


ALICE = Principal(Actor("alice", "labelling-ui"), Role.TAGGER)
BOB = Principal(Actor("bob", "notebook"), Role.TAGGER)
READER = Principal(Actor("rita", "dashboard"), Role.READER)
ADMIN = Principal(Actor("ada", "imagetag-cli"), Role.ADMIN)


def detection(name: str, confidence: float = 0.9, box: BoundingBox | None = None) -> Detection:
    """A detection as the fake detector reports it."""
    return Detection(name=name, confidence=confidence, box=box, detector=FAKE_DETECTOR_INFO)


@dataclass(frozen=True, slots=True)
class StoredTag:
    """A tag row: live until ``removed_at`` is set, kept afterwards like the real store."""

    id: int
    image_id: int
    tag: Tag
    removed_at: datetime | None = None
    removed_by: Actor | None = None

    @property
    def live(self) -> bool:
        return self.removed_at is None


@dataclass
class FakeState:
    """Everything one transaction sees; ``copy`` starts a transaction over it."""

    images: dict[int, Image] = field(default_factory=dict)
    deleted: dict[int, tuple[Actor, datetime]] = field(default_factory=dict)
    tags: list[StoredTag] = field(default_factory=list)
    runs: dict[int, tuple[int, DetectionRun]] = field(default_factory=dict)
    audit: list[AuditEvent] = field(default_factory=list)
    api_keys: list[ApiKeyRecord] = field(default_factory=list)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)

    def copy(self) -> FakeState:
        return FakeState(
            dict(self.images),
            dict(self.deleted),
            list(self.tags),
            dict(self.runs),
            list(self.audit),
            list(self.api_keys),
            dict(self.idempotency),
        )

    def live_image(self, image_id: int) -> Image | None:
        image = self.images.get(image_id)
        if image is None or image_id in self.deleted:
            return None
        tags = tuple(row.tag for row in self.tags if row.image_id == image_id and row.live)
        return dataclasses.replace(image, tags=tags)


@dataclass
class FakeSequences:
    """Like database sequences: ids handed out by a rolled-back transaction are not reused."""

    images: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    tags: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    runs: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    audit: Iterator[int] = field(default_factory=lambda: itertools.count(1))


class FakeImageRepository:
    def __init__(self, state: FakeState, ids: FakeSequences) -> None:
        self._state = state
        self._ids = ids

    async def add(self, image: NewImage) -> AddedImage:
        image_id = next(self._ids.images)
        self._state.images[image_id] = Image.stored(
            dataclasses.replace(image, detection=None), image_id
        )
        run_id = None
        if image.detection is not None:
            run_id = await self.add_detection_run(image_id, image.detection)
        stored = self._state.live_image(image_id)
        assert stored is not None
        return AddedImage(stored, run_id)

    async def get(self, image_id: int) -> Image | None:
        return self._state.live_image(image_id)

    async def find_by_sha256(self, sha256: str) -> Image | None:
        live = (self._state.live_image(image_id) for image_id in sorted(self._state.images))
        return next((image for image in live if image and image.sha256 == sha256), None)

    async def search(self, query: SearchQuery, *, limit: int) -> Sequence[Image]:
        live = (
            self._state.live_image(image_id)
            for image_id in sorted(self._state.images, reverse=True)
        )
        found = (image for image in live if image is not None and query.includes(image))
        return list(itertools.islice(found, limit))

    async def relabel(self, image_id: int, label: str) -> bool:
        if self._state.live_image(image_id) is None:
            return False
        self._state.images[image_id] = dataclasses.replace(
            self._state.images[image_id], label=label
        )
        return True

    async def delete(self, image_id: int, actor: Actor, at: datetime) -> bool:
        if self._state.live_image(image_id) is None:
            return False
        self._state.deleted[image_id] = (actor, at)
        return True

    async def add_detection_run(self, image_id: int, run: DetectionRun) -> int:
        if self._state.live_image(image_id) is None:
            raise ImageNotFound(image_id)
        run_id = next(self._ids.runs)
        self._state.runs[run_id] = (image_id, run)
        self._state.tags.extend(
            StoredTag(next(self._ids.tags), image_id, tag) for tag in run.tags(run_id)
        )
        self._state.images[image_id] = dataclasses.replace(
            self._state.images[image_id], detection_status=run.status, detection_error=run.error
        )
        return run_id


class FakeTagRepository:
    def __init__(self, state: FakeState, ids: FakeSequences) -> None:
        self._state = state
        self._ids = ids

    async def add_human(
        self, image_id: int, names: Sequence[str], actor: Actor, at: datetime
    ) -> tuple[str, ...]:
        if self._state.live_image(image_id) is None:
            return ()
        present = {
            row.tag.name
            for row in self._state.tags
            if row.image_id == image_id
            and row.live
            and row.tag.source is TagSource.HUMAN
            and row.tag.actor.user == actor.user
        }
        added = tuple(name for name in dict.fromkeys(names) if name not in present)
        self._state.tags.extend(
            StoredTag(next(self._ids.tags), image_id, Tag.by_human(name, actor, at))
            for name in added
        )
        return added

    async def remove(self, image_id: int, name: str, actor: Actor, at: datetime) -> int:
        if self._state.live_image(image_id) is None:
            return 0
        removed = 0
        for index, row in enumerate(self._state.tags):
            if row.image_id == image_id and row.live and row.tag.name == name:
                self._state.tags[index] = dataclasses.replace(row, removed_at=at, removed_by=actor)
                removed += 1
        return removed

    async def counts(self) -> Sequence[TagCount]:
        by_name: dict[str, dict[str, set[int]]] = {}
        for row in self._state.tags:
            if row.live and row.image_id not in self._state.deleted:
                sources = by_name.setdefault(row.tag.name, {"human": set(), "model": set()})
                sources[row.tag.source.value].add(row.image_id)
        counts = [
            TagCount(name, len(s["human"] | s["model"]), len(s["human"]), len(s["model"]))
            for name, s in by_name.items()
        ]
        return sorted(counts, key=lambda count: (-count.images, count.name))


class FakeAuditLog:
    def __init__(self, state: FakeState, ids: FakeSequences) -> None:
        self._state = state
        self._ids = ids

    async def append(self, event: AuditEvent) -> None:
        self._state.audit.append(dataclasses.replace(event, id=next(self._ids.audit)))

    async def list(self, query: AuditQuery, *, limit: int) -> Sequence[AuditEvent]:
        newest_first = reversed(self._state.audit)
        return list(itertools.islice((e for e in newest_first if query.includes(e)), limit))


class FakeIdempotencyKeys:
    def __init__(self, state: FakeState) -> None:
        self._state = state

    async def find(self, user: str, key: str) -> IdempotencyRecord | None:
        return self._state.idempotency.get((user, key))

    async def add(self, record: IdempotencyRecord) -> None:
        if (record.user, record.key) in self._state.idempotency:
            raise IdempotencyKeyTaken(record.key)
        self._state.idempotency[(record.user, record.key)] = record


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

    state: FakeState = field(default_factory=FakeState)
    ids: FakeSequences = field(default_factory=FakeSequences)


class FakeImageReader:
    """Reads what the units of work of one storage have committed."""

    def __init__(self, storage: FakeStorage) -> None:
        self._storage = storage

    async def get(self, image_id: int) -> Image | None:
        return self._storage.state.live_image(image_id)


class FakeUnitOfWork:
    """A transaction over a private copy of the storage, published by ``commit``.

    Units of work are expected not to overlap, as with SQLite's single writer:
    the last commit wins.
    """

    images: ImageRepository
    tags: TagRepository
    audit: AuditLog
    idempotency: IdempotencyKeys
    api_keys: ApiKeyRepository

    def __init__(self, storage: FakeStorage | None = None) -> None:
        self.storage = storage if storage is not None else FakeStorage()
        self.committed = False
        self._begin()

    def _begin(self) -> None:
        self._state = self.storage.state.copy()
        self.images = FakeImageRepository(self._state, self.storage.ids)
        self.tags = FakeTagRepository(self._state, self.storage.ids)
        self.audit = FakeAuditLog(self._state, self.storage.ids)
        self.idempotency = FakeIdempotencyKeys(self._state)
        self.api_keys = FakeApiKeyRepository(self._state.api_keys)

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
        self.storage.state = self._state.copy()
        self.committed = True

    async def add_image_and_commit(
        self, image: NewImage, audit: Callable[[AddedImage], Sequence[AuditEvent]]
    ) -> AddedImage:
        added = await self.images.add(image)
        for event in audit(added):
            await self.audit.append(event)
        await self.commit()
        return added

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
        """Live images with their live tags, oldest first."""
        state = self.storage.state
        images = (state.live_image(image_id) for image_id in sorted(state.images))
        return [image for image in images if image is not None]

    @property
    def committed_api_keys(self) -> list[ApiKeyRecord]:
        return list(self.storage.state.api_keys)

    @property
    def committed_audit(self) -> list[AuditEvent]:
        return list(self.storage.state.audit)

    @property
    def committed_runs(self) -> list[tuple[int, DetectionRun]]:
        return [self.storage.state.runs[run_id] for run_id in sorted(self.storage.state.runs)]


class FakeBlobStore:
    """Blobs in a dict; refuses what is not a sha256 digest, like the disk store."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.staged: list[FakeStagedBlob] = []

    async def put(self, sha256: str, source: IO[bytes]) -> None:
        digest = _checked_digest(sha256)
        if digest not in self.blobs:
            # In chunks, as the real stores read.
            source.seek(0)
            self.blobs[digest] = b"".join(iter(lambda: source.read(1024 * 1024), b""))

    async def stage(self, sha256: str, source: IO[bytes]) -> FakeStagedBlob:
        digest = _checked_digest(sha256)
        source.seek(0)
        staged = FakeStagedBlob(self, digest, b"".join(iter(lambda: source.read(1024 * 1024), b"")))
        self.staged.append(staged)
        return staged

    async def get(self, sha256: str) -> bytes:
        return self.blobs[_checked_digest(sha256)]

    async def open(self, sha256: str) -> AsyncIterator[bytes]:
        data = self.blobs[_checked_digest(sha256)]
        return _in_chunks(data)

    async def exists(self, sha256: str) -> bool:
        return _checked_digest(sha256) in self.blobs


class FakeStagedBlob:
    """Staged bytes held apart from the store's until committed; ``outcome`` says which."""

    def __init__(self, store: FakeBlobStore, sha256: str, data: bytes) -> None:
        self.store = store
        self.sha256 = sha256
        self.data = data
        self.outcome: str | None = None

    async def commit(self) -> None:
        if self.outcome is None:
            self.store.blobs.setdefault(self.sha256, self.data)
            self.outcome = "committed"

    async def discard(self) -> None:
        if self.outcome is None:
            self.outcome = "discarded"


async def _in_chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 1024 * 1024):
        yield data[start : start + 1024 * 1024]


def _checked_digest(sha256: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"not a sha256 digest: {sha256!r}")
    return sha256


CORRUPT = b"<corrupt>"


class FakeImageInspector:
    """Accepts bytes that start with ``magic`` and reports the same facts for all of them;
    bytes that contain ``CORRUPT`` pass ``inspect`` (the header is fine) and fail
    ``verify``, as a truncated or damaged image does. ``bounded`` says whether the bounded
    read finds those facts too (as Pillow's does for most JPEGs) or leaves them to
    ``inspect`` (as for every other format)."""

    def __init__(
        self,
        facts: ImageFacts | None = None,
        *,
        magic: bytes = PNG_MAGIC,
        bounded: bool = False,
    ) -> None:
        self.facts = facts if facts is not None else ImageFacts("image/png", 640, 480)
        self.magic = magic
        self.bounded = bounded
        self.verified: list[bytes] = []

    def inspect(self, source: IO[bytes]) -> ImageFacts:
        source.seek(0)
        if source.read(len(self.magic)) != self.magic:
            raise UnsupportedImage("not an image of a supported format")
        return self.facts

    def inspect_bounded(self, data: bytes) -> ImageFacts | None:
        return self.facts if self.bounded and data.startswith(self.magic) else None

    def verify(self, source: IO[bytes]) -> None:
        source.seek(0)
        # In chunks, as the real inspector reads.
        data = b"".join(iter(lambda: source.read(1024 * 1024), b""))
        self.verified.append(data)
        if CORRUPT in data:
            raise UnsupportedImage("the image is corrupt or truncated")


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
    """Finds the configured detections in any image, or fails with ``error``; given
    ``image_magic``, bytes that do not start with it fail as no image, like the real ones.
    With ``checks_decoding``, its ``decode`` refuses those and bytes that contain
    ``CORRUPT``, as the real detectors refuse a damaged JPEG, and vouches for the rest."""

    def __init__(
        self,
        detections: Sequence[Detection] = (),
        *,
        error: Exception | None = None,
        image_magic: bytes | None = None,
        checks_decoding: bool = False,
    ) -> None:
        self.detections = list(detections)
        self.error = error
        self.image_magic = image_magic
        self.checks_decoding = checks_decoding
        self.decoded: list[bytes] = []
        self.calls: list[bytes] = []
        self.thresholds: list[Thresholds | None] = []
        self.delay = 0.0

    @property
    def info(self) -> DetectorInfo:
        return FAKE_DETECTOR_INFO

    async def decode(self, image: bytes, *, start_detecting: bool = False) -> DecodedImage:
        self.decoded.append(image)
        if self.checks_decoding and (not self._is_image(image) or CORRUPT in image):
            raise UnsupportedImage("the image is corrupt or truncated")
        return DecodedImage(image, None, checked=self.checks_decoding, decoded_by=self)

    async def detect(
        self, image: bytes | DecodedImage, thresholds: Thresholds | None = None
    ) -> list[Detection]:
        """The configured detections at or above the confidence threshold given."""
        data = image.data if isinstance(image, DecodedImage) else image
        self.calls.append(data)
        self.thresholds.append(thresholds)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        if not self._is_image(data):
            raise DetectionFailed("the data is not an image the detector can read")
        info = FAKE_DETECTOR_INFO.with_thresholds(thresholds)
        minimum = info.confidence_threshold or 0.0
        return [
            dataclasses.replace(found, detector=info)
            for found in self.detections
            if found.confidence >= minimum
        ]

    def _is_image(self, data: bytes) -> bool:
        return self.image_magic is None or data.startswith(self.image_magic)


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
