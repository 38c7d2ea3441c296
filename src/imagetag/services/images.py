"""Ingesting, reading and searching images."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import IO

from imagetag.domain.audit import AuditEvent, AuditEventType
from imagetag.domain.detections import Thresholds, object_names
from imagetag.domain.errors import (
    DetectionFailed,
    IdempotencyKeyReused,
    IdempotencyKeyTaken,
    ImageNotFound,
    ImageTooLarge,
    InvalidInput,
    UnsupportedImage,
    UrlFetchFailed,
)
from imagetag.domain.idempotency import (
    DuplicatePolicy,
    IdempotencyRecord,
    check_idempotency_key,
)
from imagetag.domain.images import DetectionRun, Image, ImageFacts, NewImage
from imagetag.domain.labels import clean_label, generate_label
from imagetag.domain.principals import Actor, Principal, Role
from imagetag.domain.search import SearchQuery
from imagetag.ports.blobs import BlobStore, StagedBlob
from imagetag.ports.clock import Clock
from imagetag.ports.detector import DecodedImage, Detector
from imagetag.ports.fetcher import UrlFetcher
from imagetag.ports.images import ImageInspector
from imagetag.ports.repository import AddedImage, ImageReader, UnitOfWorkFactory
from imagetag.services.authorization import require
from imagetag.services.detection import run_detector

# Uploads are hashed and copied a megabyte at a time.
_CHUNK = 1024 * 1024
# Bytes in memory up to this size, for a detector that checks their decode, are hashed and
# their header read on the event loop when the inspector's bounded read finds it: ~0.1 ms
# for a 150 kB photo (0.6 ms at most), less than the two thread hand-offs it saves
# (bench/detect). A header only Pillow can read, a verify (a whole decode) or a file still
# go to a thread: a header can hide unbounded work.
INLINE_ACCEPT_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class UploadedBytes:
    """An upload already in memory."""

    data: bytes
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """An upload in a seekable binary file (on disk, or a spooled temporary file): read in
    chunks and copied to the blob store, never held whole unless detection asks for it.
    The caller opens and closes it."""

    file: IO[bytes]
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteUrl:
    url: str


@dataclass(frozen=True, slots=True)
class IngestRequest:
    """An image to ingest: bytes, a file or a URL, an optional label, and whether to detect."""

    content: UploadedBytes | UploadedFile | RemoteUrl
    label: str | None = None
    detect: bool = False


@dataclass(frozen=True, slots=True)
class _Accepted:
    """Bytes that passed the size limit and the inspector, with their digest."""

    content: UploadedBytes | UploadedFile
    source: str | None
    source_is_url: bool
    sha256: str
    size: int
    facts: ImageFacts

    def open(self) -> IO[bytes]:
        """A file over the bytes, for one reader at a time."""
        return _open(self.content)

    def in_memory(self) -> bytes:
        """The whole image, for the detector: bytes accepted ``for_detection`` were read
        into memory then, in the same hop as their digest."""
        if not isinstance(self.content, UploadedBytes):
            raise RuntimeError("these bytes were accepted into a file, not for detection")
        return self.content.data


def _not_an_image_at_url(error: UnsupportedImage) -> UrlFetchFailed:
    return UrlFetchFailed(f"the URL did not answer with an image: {error}")


async def _abandon(staging: asyncio.Task[StagedBlob]) -> None:
    """Discard a staged blob once its staging ends; a failed staging left nothing."""
    try:
        staged = await asyncio.shield(staging)
    except Exception:
        return
    await staged.discard()


def _open(content: UploadedBytes | UploadedFile) -> IO[bytes]:
    if isinstance(content, UploadedBytes):
        # BytesIO over bytes shares their buffer until written to: no copy.
        return io.BytesIO(content.data)
    return content.file


@dataclass(frozen=True, slots=True)
class ImagePage:
    images: Sequence[Image]
    next_before_id: int | None


class ImageService:
    """The image use cases, shared by the HTTP API, the CLI and embedding code."""

    def __init__(
        self,
        *,
        unit_of_work: UnitOfWorkFactory,
        reader: ImageReader,
        blobs: BlobStore,
        inspector: ImageInspector,
        fetcher: UrlFetcher,
        detector: Detector,
        clock: Clock,
        max_image_bytes: int,
        duplicates: DuplicatePolicy = DuplicatePolicy.NEW,
        detect_timeout: timedelta | None = None,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._reader = reader
        self._blobs = blobs
        self._inspector = inspector
        self._fetcher = fetcher
        self._detector = detector
        self._clock = clock
        self._max_image_bytes = max_image_bytes
        self._duplicates = duplicates
        self._detect_timeout = detect_timeout

    @property
    def detector(self) -> Detector:
        return self._detector

    async def ingest(
        self,
        request: IngestRequest,
        principal: Principal,
        *,
        idempotency_key: str | None = None,
    ) -> Image:
        """Store an image and, when asked, what the detector finds in it (needs ``tagger``).

        Nothing is stored when the input is refused. Once the bytes are accepted the
        image is kept even if detection fails: then ``DetectionFailed`` is raised
        carrying the new image's id, and the record says why detection failed. (A caller
        who cancels while the detector runs leaves the accepted bytes stored but no
        record; the same bytes sent again reuse them.)

        With an ``idempotency_key``, a repeat of the same request by the same user
        returns the image the first one stored (as it is now), and the same key with a
        different request is refused. Bytes already stored give the image that has them
        when the duplicate policy is ``reuse``.
        """
        require(principal, Role.TAGGER)
        given_label = clean_label(request.label) if request.label is not None else None
        key = check_idempotency_key(idempotency_key) if idempotency_key is not None else None
        # Uploads are checked first: a refused one is refused whatever its key. A URL is
        # fetched only when the key has no earlier request to replay.
        content = request.content
        pending = (
            content
            if isinstance(content, RemoteUrl)
            else await self._accept(content, for_detection=request.detect)
        )
        if key is None:
            return await self._ingest(request, pending, principal, given_label, None)
        digest = pending.sha256 if isinstance(pending, _Accepted) else None
        fingerprint = request_fingerprint(request, digest)
        earlier = await self._replay(principal.user, key, fingerprint)
        if earlier is not None:
            return earlier
        remembered = IdempotencyRecord(principal.user, key, fingerprint, 0, self._clock.now())
        try:
            return await self._ingest(request, pending, principal, given_label, remembered)
        except IdempotencyKeyTaken:
            # A concurrent request with the same key committed first: its image stands.
            earlier = await self._replay(principal.user, key, fingerprint)
            if earlier is None:
                raise
            return earlier

    async def _ingest(
        self,
        request: IngestRequest,
        pending: _Accepted | RemoteUrl,
        principal: Principal,
        given_label: str | None,
        remembered: IdempotencyRecord | None,
    ) -> Image:
        accepted = (
            pending
            if isinstance(pending, _Accepted)
            else await self._fetch(pending, for_detection=request.detect)
        )
        sha256 = accepted.sha256
        # The image exists from the moment its bytes are accepted: a detection run (and the
        # tags it adds) comes after it, in time as in the audit log.
        created_at = self._clock.now()
        if self._duplicates is DuplicatePolicy.REUSE:
            async with self._unit_of_work() as uow:
                existing = await uow.images.find_by_sha256(sha256)
                if existing is not None:
                    if remembered is not None:
                        await uow.idempotency.add(replace(remembered, image_id=existing.id))
                        await uow.commit()
                    return existing

        run: DetectionRun | None = None
        failure: DetectionFailed | None = None
        if request.detect:
            data = accepted.in_memory()
            # Written and synced while the detector decodes, on another core.
            staging = asyncio.create_task(self._blobs.stage(sha256, io.BytesIO(data)))
            try:
                decoded = await self._checked_decode(data, accepted)
                staged = await staging
            except BaseException:
                await _abandon(staging)
                raise
            # Accepted: the blob is kept whatever the detector does. Committed (on disk a
            # rename: no bytes, no sync) while the model runs; the rows' transaction begins
            # after both, never waiting for the disk inside it, as on SQLite that would hold
            # the database's one write lock (bench/load).
            committing = asyncio.create_task(staged.commit())
            try:
                run, failure = await run_detector(
                    self._detector,
                    decoded or data,
                    principal.actor,
                    self._clock.now(),
                    image_ref=sha256[:12],
                    time_limit=self._detect_timeout,
                )
            finally:
                await committing
        else:
            await self._blobs.put(sha256, accepted.open())

        new_image = NewImage(
            label=generate_label(
                given=given_label,
                objects=object_names(run.detections) if run else (),
                source=accepted.source,
                sha256=sha256,
            ),
            source=accepted.source,
            sha256=sha256,
            facts=accepted.facts,
            size_bytes=accepted.size,
            created_at=created_at,
            created_by=principal.actor,
            detection=run,
        )
        image = await self._record(new_image, principal.actor, remembered)
        if failure is not None:
            failure.image_id = image.id
            raise failure
        return image

    async def _record(
        self, new_image: NewImage, actor: Actor, remembered: IdempotencyRecord | None
    ) -> Image:
        """Store a new image with its audit events, and the idempotency key it came with."""

        def events(added: AddedImage) -> list[AuditEvent]:
            return ingest_events(added, new_image.detection, actor)

        async with self._unit_of_work() as uow:
            if remembered is None:
                # The common case, in one round trip where the store allows.
                return (await uow.add_image_and_commit(new_image, events)).image
            added = await uow.images.add(new_image)
            for event in events(added):
                await uow.audit.append(event)
            await uow.idempotency.add(replace(remembered, image_id=added.image.id))
            await uow.commit()
            return added.image

    async def _checked_decode(self, data: bytes, accepted: _Accepted) -> DecodedImage | None:
        """The detector's decode of accepted bytes (see ``_decode``), once they are known to
        decode whole: a JPEG's decode checks that itself, other formats are verified."""
        try:
            decoded = await self._decode(data)
            if decoded is None or not decoded.checked:
                await asyncio.to_thread(self._inspector.verify, io.BytesIO(data))
        except UnsupportedImage as error:
            if accepted.source_is_url:
                raise _not_an_image_at_url(error) from None
            raise
        return decoded

    async def _accept(
        self,
        content: UploadedBytes | UploadedFile,
        url: str | None = None,
        *,
        for_detection: bool = False,
    ) -> _Accepted:
        """Size, digest and facts of upload bytes, or the error that refuses them; ``url``
        is where they came from, if not an upload. ``for_detection`` reads a file whole (up
        to the size limit) in the same hop and leaves the decode check to the detector's
        decode, or to the inspector's verify for what that decode does not check."""
        source, from_url = url or content.filename or None, url is not None
        if (
            for_detection
            and isinstance(content, UploadedBytes)
            and len(content.data) <= INLINE_ACCEPT_BYTES
        ):
            accepted = self._accept_at_once(content, source, from_url)
            if accepted is not None:
                return accepted
        # One hop off the event loop: hashing and inspecting megabytes would block it.
        return await asyncio.to_thread(
            self._accept_blocking, content, source, from_url, for_detection
        )

    def _accept_at_once(
        self, content: UploadedBytes, source: str | None, from_url: bool
    ) -> _Accepted | None:
        """Small bytes accepted on the event loop when the inspector's bounded read of their
        header finds their facts (see ``INLINE_ACCEPT_BYTES``); None otherwise."""
        size = len(content.data)
        self._check_size(size, size_known=True)
        facts = self._inspector.inspect_bounded(content.data)
        if facts is None:
            return None
        return _Accepted(
            content, source, from_url, hashlib.sha256(content.data).hexdigest(), size, facts
        )

    def _accept_blocking(
        self,
        content: UploadedBytes | UploadedFile,
        source: str | None,
        from_url: bool,
        for_detection: bool,
    ) -> _Accepted:
        size_known = isinstance(content, UploadedBytes)
        if for_detection and isinstance(content, UploadedFile):
            content.file.seek(0)
            content = UploadedBytes(content.file.read(self._max_image_bytes + 1), content.filename)
        if isinstance(content, UploadedBytes):
            size, sha256 = len(content.data), hashlib.sha256(content.data).hexdigest()
        else:
            size, sha256 = self._hash_file(content.file)
        self._check_size(size, size_known=size_known)
        facts = self._inspector.inspect(_open(content))
        if not for_detection:
            self._inspector.verify(_open(content))
        return _Accepted(content, source, from_url, sha256, size, facts)

    def _check_size(self, size: int, *, size_known: bool) -> None:
        if size == 0:
            raise InvalidInput("image is empty; send the bytes of a JPEG, PNG or other image")
        if size > self._max_image_bytes:
            # A file is read only up to the limit: its whole size is not known.
            whole = f"{size} bytes" if size_known else "larger"
            raise ImageTooLarge(f"image is {whole}; the limit is {self._max_image_bytes} bytes")

    def _hash_file(self, file: IO[bytes]) -> tuple[int, str]:
        """Size and sha256 of a file, read in chunks; stops once past the size limit."""
        file.seek(0)
        digest = hashlib.sha256()
        size = 0
        while size <= self._max_image_bytes and (chunk := file.read(_CHUNK)):
            size += len(chunk)
            digest.update(chunk)
        return size, digest.hexdigest()

    async def _fetch(self, remote: RemoteUrl, *, for_detection: bool) -> _Accepted:
        fetched = await self._fetcher.fetch(remote.url)
        try:
            return await self._accept(
                UploadedBytes(fetched.data), remote.url, for_detection=for_detection
            )
        except UnsupportedImage as error:
            raise _not_an_image_at_url(error) from None

    async def _decode(self, data: bytes) -> DecodedImage | None:
        """The detector's decode of accepted bytes; None when it cannot decode now (the
        detection then fails on its own and the image is kept). Data it finds corrupt
        raises ``UnsupportedImage``, as the inspector's verify does."""
        try:
            return await self._detector.decode(data, start_detecting=True)
        except UnsupportedImage:
            raise
        except Exception:
            # run_detector meets the same failure again, and records and logs it.
            return None

    async def _replay(self, user: str, key: str, fingerprint: str) -> Image | None:
        """The image an earlier request with this key stored, or None if there was none."""
        async with self._unit_of_work() as uow:
            earlier = await uow.idempotency.find(user, key)
        if earlier is None:
            return None
        if earlier.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key came with a different request before; send a new key "
                "for a new request"
            )
        return await self.get(earlier.image_id)

    async def get(self, image_id: int) -> Image:
        image = await self._reader.get(image_id)
        if image is None:
            raise ImageNotFound(image_id)
        return image

    async def content(self, image_id: int) -> tuple[Image, AsyncIterator[bytes]]:
        """The image and its stored bytes, in chunks (see ``BlobStore.open``)."""
        image = await self.get(image_id)
        return image, await self._blobs.open(image.sha256)

    async def search(self, query: SearchQuery) -> ImagePage:
        """A page of images, newest first; ``next_before_id`` continues it."""
        async with self._unit_of_work() as uow:
            found = await uow.images.search(query, limit=query.limit + 1)
        page = found[: query.limit]
        has_more = len(found) > query.limit
        return ImagePage(page, page[-1].id if has_more else None)

    async def relabel(self, image_id: int, label: str, principal: Principal) -> Image:
        require(principal, Role.TAGGER)
        new_label = clean_label(label)
        async with self._unit_of_work() as uow:
            image = await uow.images.get(image_id)
            if image is None:
                raise ImageNotFound(image_id)
            if image.label != new_label:
                await uow.images.relabel(image_id, new_label)
                await uow.audit.append(
                    AuditEvent(
                        type=AuditEventType.IMAGE_UPDATED,
                        actor=principal.actor,
                        occurred_at=self._clock.now(),
                        target=f"image:{image_id}",
                        image_id=image_id,
                        payload={"label_before": image.label, "label": new_label},
                    )
                )
                await uow.commit()
        return replace(image, label=new_label)

    async def delete(self, image_id: int, principal: Principal) -> None:
        """Soft delete: the image leaves reads and searches; the audit trail keeps it."""
        require(principal, Role.TAGGER)
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            image = await uow.images.get(image_id)
            if image is None or not await uow.images.delete(image_id, principal.actor, now):
                raise ImageNotFound(image_id)
            await uow.audit.append(
                AuditEvent(
                    type=AuditEventType.IMAGE_DELETED,
                    actor=principal.actor,
                    occurred_at=now,
                    target=f"image:{image_id}",
                    image_id=image_id,
                    payload={"label": image.label, "sha256": image.sha256},
                )
            )
            await uow.commit()

    async def redetect(
        self, image_id: int, principal: Principal, thresholds: Thresholds | None = None
    ) -> Image:
        """Run the detector again on a stored image, optionally with other thresholds.
        Earlier runs and their tags stay.

        A failed run is recorded too, then ``DetectionFailed`` is raised with the id.
        """
        require(principal, Role.TAGGER)
        image = await self.get(image_id)
        data = await self._blobs.get(image.sha256)
        run, failure = await run_detector(
            self._detector,
            data,
            principal.actor,
            self._clock.now(),
            image_ref=str(image_id),
            thresholds=thresholds,
            time_limit=self._detect_timeout,
        )
        async with self._unit_of_work() as uow:
            if await uow.images.get(image_id) is None:
                raise ImageNotFound(image_id)
            run_id = await uow.images.add_detection_run(image_id, run)
            await uow.audit.append(detection_run_event(image_id, run, run_id))
            await uow.commit()
            stored = await uow.images.get(image_id)
        if failure is not None:
            failure.image_id = image_id
            raise failure
        assert stored is not None
        return stored


def request_fingerprint(request: IngestRequest, content_sha256: str | None) -> str:
    """What makes two ingest requests the same request, as one digest; uploads go by the
    sha256 of their bytes, URLs by the URL."""
    content = request.content
    if isinstance(content, RemoteUrl):
        parts = ["url", content.url]
    else:
        parts = ["bytes", content_sha256 or "", content.filename or ""]
    parts += [request.label or "", "detect" if request.detect else "store"]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def ingest_events(added: AddedImage, run: DetectionRun | None, actor: Actor) -> list[AuditEvent]:
    """The audit events of a stored ingest: the image's creation, and its detection run if
    it came with one."""
    image = added.image
    created = image_created_event(image, actor)
    if run is None:
        return [created]
    return [created, detection_run_event(image.id, run, added.run_id)]


def image_created_event(image: Image, actor: Actor) -> AuditEvent:
    return AuditEvent(
        type=AuditEventType.IMAGE_CREATED,
        actor=actor,
        occurred_at=image.created_at,
        target=f"image:{image.id}",
        image_id=image.id,
        payload={"label": image.label, "sha256": image.sha256, "source": image.source},
    )


def detection_run_event(image_id: int, run: DetectionRun, run_id: int | None) -> AuditEvent:
    return AuditEvent(
        type=AuditEventType.DETECTION_RUN,
        actor=run.requested_by,
        occurred_at=run.ran_at,
        target=f"image:{image_id}",
        image_id=image_id,
        payload={
            "run_id": run_id,
            "status": run.status.value,
            "detector": run.detector.detector,
            "model": run.detector.model,
            "model_version": run.detector.model_version,
            "confidence_threshold": run.detector.confidence_threshold,
            "iou_threshold": run.detector.iou_threshold,
            "tags": len(run.detections),
            "error": run.error,
        },
    )
