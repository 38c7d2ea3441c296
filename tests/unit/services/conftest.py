"""The in-memory world the service tests run in: fakes of every port, one shared store."""

from collections.abc import Callable
from typing import Any

import pytest

from imagetag.ports.fetcher import FetchedContent
from imagetag.services.images import ImageService
from tests.fakes import (
    FakeBlobStore,
    FakeDetector,
    FakeFetcher,
    FakeImageInspector,
    FakeImageReader,
    FakeUnitOfWorkFactory,
    TickingClock,
    detection,
)
from tests.unit.services.inputs import FACTS, MAX_BYTES, PHOTO_URL, PNG


@pytest.fixture
def unit_of_work() -> FakeUnitOfWorkFactory:
    return FakeUnitOfWorkFactory()


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def blobs() -> FakeBlobStore:
    return FakeBlobStore()


@pytest.fixture
def fetcher() -> FakeFetcher:
    return FakeFetcher({PHOTO_URL: FetchedContent(PHOTO_URL, PNG, "image/png")})


@pytest.fixture
def detector() -> FakeDetector:
    return FakeDetector([detection("person"), detection("bus"), detection("person", 0.4)])


@pytest.fixture
def inspector() -> FakeImageInspector:
    return FakeImageInspector(FACTS)


@pytest.fixture
def make_images(
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    fetcher: FakeFetcher,
    detector: FakeDetector,
    inspector: FakeImageInspector,
    clock: TickingClock,
) -> Callable[..., ImageService]:
    """Builds the service over the shared fakes; keyword options override its settings."""

    def make(**options: Any) -> ImageService:
        return ImageService(
            unit_of_work=unit_of_work,
            reader=FakeImageReader(unit_of_work.storage),
            blobs=blobs,
            inspector=inspector,
            fetcher=fetcher,
            detector=detector,
            clock=clock,
            **{"max_image_bytes": MAX_BYTES, **options},
        )

    return make


@pytest.fixture
def images(make_images: Callable[..., ImageService]) -> ImageService:
    return make_images()
