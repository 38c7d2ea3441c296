"""Ingesting, reading and searching images."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from imagetag.domain.detections import Detection, object_names
from imagetag.domain.errors import (
    DetectionFailed,
    ImageNotFound,
    ImageTooLarge,
    InvalidInput,
    UnsupportedImage,
    UrlFetchFailed,
)
from imagetag.domain.images import DetectionStatus, Image, NewImage
from imagetag.domain.labels import clean_label, generate_label
from imagetag.domain.principals import Principal
from imagetag.domain.search import ImageQuery
from imagetag.ports.blobs import BlobStore
from imagetag.ports.clock import Clock
from imagetag.ports.detector import Detector
from imagetag.ports.fetcher import UrlFetcher
from imagetag.ports.images import ImageInspector
from imagetag.ports.repository import ImageReader, UnitOfWorkFactory

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UploadedBytes:
    data: bytes
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteUrl:
    url: str


@dataclass(frozen=True, slots=True)
class IngestRequest:
    """An image to ingest: bytes or a URL, an optional label, and whether to detect."""

    content: UploadedBytes | RemoteUrl
    label: str | None = None
    detect: bool = False


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
    ) -> None:
        self._unit_of_work = unit_of_work
        self._reader = reader
        self._blobs = blobs
        self._inspector = inspector
        self._fetcher = fetcher
        self._detector = detector
        self._clock = clock
        self._max_image_bytes = max_image_bytes

    @property
    def detector(self) -> Detector:
        return self._detector

    async def ingest(self, request: IngestRequest, principal: Principal) -> Image:
        """Store an image and, when asked, what the detector finds in it.

        Nothing is stored when the input is refused. Once the bytes are accepted the
        image is kept even if detection fails: then ``DetectionFailed`` is raised
        carrying the new image's id, and the record says why detection failed.
        """
        given_label = clean_label(request.label) if request.label is not None else None
        data, source = await self._read_content(request.content)
        if len(data) > self._max_image_bytes:
            raise ImageTooLarge(
                f"image is {len(data)} bytes; the limit is {self._max_image_bytes} bytes"
            )
        try:
            facts = await asyncio.to_thread(self._inspector.inspect, data)
        except UnsupportedImage as error:
            if isinstance(request.content, RemoteUrl):
                raise UrlFetchFailed(f"the URL did not answer with an image: {error}") from None
            raise
        sha256 = hashlib.sha256(data).hexdigest()
        if request.detect:
            # Writing (and syncing) the blob waits on the disk while the model computes.
            _, (detections, status, failure) = await asyncio.gather(
                self._blobs.put(sha256, data), self._detect(data, sha256)
            )
        else:
            await self._blobs.put(sha256, data)
            detections, status, failure = (), DetectionStatus.NOT_REQUESTED, None

        new_image = NewImage(
            label=generate_label(
                given=given_label, objects=object_names(detections), source=source, sha256=sha256
            ),
            source=source,
            sha256=sha256,
            facts=facts,
            size_bytes=len(data),
            created_at=self._clock.now(),
            created_by=principal.name,
            detection_status=status,
            detection_error=str(failure) if failure else None,
            detections=detections,
        )
        async with self._unit_of_work() as uow:
            image = await uow.images.add(new_image)
            await uow.commit()
        if failure is not None:
            failure.image_id = image.id
            raise failure
        return image

    async def _detect(
        self, data: bytes, sha256: str
    ) -> tuple[tuple[Detection, ...], DetectionStatus, DetectionFailed | None]:
        """Run the detector; a failure is returned, to be recorded with the image."""
        try:
            return tuple(await self._detector.detect(data)), DetectionStatus.SUCCEEDED, None
        except DetectionFailed as error:
            logger.warning("detection failed for image %s: %s", sha256[:12], error)
            return (), DetectionStatus.FAILED, error
        except Exception as error:
            # A faulty detector must not cost the caller their accepted image.
            logger.exception("detector raised unexpectedly for image %s", sha256[:12])
            failure = DetectionFailed(f"the detector failed unexpectedly ({type(error).__name__})")
            return (), DetectionStatus.FAILED, failure

    async def _read_content(self, content: UploadedBytes | RemoteUrl) -> tuple[bytes, str | None]:
        if isinstance(content, RemoteUrl):
            fetched = await self._fetcher.fetch(content.url)
            return fetched.data, content.url
        if not content.data:
            raise InvalidInput("image is empty; send the bytes of a JPEG, PNG or other image")
        return content.data, content.filename or None

    async def get(self, image_id: int) -> Image:
        image = await self._reader.get(image_id)
        if image is None:
            raise ImageNotFound(image_id)
        return image

    async def content(self, image_id: int) -> tuple[Image, bytes]:
        image = await self.get(image_id)
        return image, await self._blobs.get(image.sha256)

    async def search(self, query: ImageQuery) -> ImagePage:
        """A page of images, newest first; ``next_before_id`` continues it."""
        async with self._unit_of_work() as uow:
            found = await uow.images.search(query, limit=query.limit + 1)
        page = found[: query.limit]
        has_more = len(found) > query.limit
        return ImagePage(page, page[-1].id if has_more else None)
