import hashlib

import pytest

from imagetag.domain.errors import (
    DetectionFailed,
    DetectorUnavailable,
    ImageNotFound,
    ImageTooLarge,
    InvalidInput,
    UnsupportedImage,
    UrlFetchFailed,
    UrlRefused,
)
from imagetag.domain.images import DetectionStatus, ImageFacts
from imagetag.domain.principals import Principal
from imagetag.domain.search import ImageQuery, ObjectFilter
from imagetag.ports.fetcher import FetchedContent
from imagetag.services.images import ImageService, IngestRequest, RemoteUrl, UploadedBytes
from tests.fakes import (
    EPOCH,
    PNG_MAGIC,
    FakeBlobStore,
    FakeDetector,
    FakeFetcher,
    FakeImageInspector,
    FakeImageReader,
    FakeUnitOfWorkFactory,
    FixedClock,
    detection,
)

MAX_BYTES = 1000
PNG = PNG_MAGIC + b"a dog on a bus"
PNG_SHA = hashlib.sha256(PNG).hexdigest()
FACTS = ImageFacts("image/png", 640, 480)
ALICE = Principal("alice")
PHOTO_URL = "https://x.org/a/my_dog-photo.jpg?x=1"


@pytest.fixture
def unit_of_work() -> FakeUnitOfWorkFactory:
    return FakeUnitOfWorkFactory()


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
def service(
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    fetcher: FakeFetcher,
    detector: FakeDetector,
) -> ImageService:
    return ImageService(
        unit_of_work=unit_of_work,
        reader=FakeImageReader(unit_of_work.storage),
        blobs=blobs,
        inspector=FakeImageInspector(FACTS),
        fetcher=fetcher,
        detector=detector,
        clock=FixedClock(),
        max_image_bytes=MAX_BYTES,
    )


def upload(
    data: bytes = PNG,
    filename: str | None = None,
    *,
    label: str | None = None,
    detect: bool = False,
) -> IngestRequest:
    return IngestRequest(UploadedBytes(data, filename), label=label, detect=detect)


def assert_nothing_stored(unit_of_work: FakeUnitOfWorkFactory, blobs: FakeBlobStore) -> None:
    assert unit_of_work.committed_images == []
    assert blobs.blobs == {}


async def test_ingesting_bytes_stores_the_record_and_the_bytes(
    service: ImageService, unit_of_work: FakeUnitOfWorkFactory, blobs: FakeBlobStore
) -> None:
    image = await service.ingest(upload(filename="dog.png"), ALICE)

    assert unit_of_work.committed_images == [image]
    assert blobs.blobs == {PNG_SHA: PNG}
    assert image.sha256 == PNG_SHA
    assert image.size_bytes == len(PNG)
    assert image.facts == FACTS
    assert image.source == "dog.png"
    assert image.created_by == "alice"
    assert image.created_at == EPOCH
    assert image.detection_status is DetectionStatus.NOT_REQUESTED


async def test_ingesting_from_a_url_records_the_url_as_source_and_names_the_image_after_it(
    service: ImageService, fetcher: FakeFetcher, blobs: FakeBlobStore
) -> None:
    image = await service.ingest(IngestRequest(RemoteUrl(PHOTO_URL)), ALICE)

    assert fetcher.requested == [PHOTO_URL]
    assert image.source == PHOTO_URL
    assert image.label == "my dog photo"
    assert blobs.blobs == {PNG_SHA: PNG}


async def test_given_label_is_kept_with_its_whitespace_tidied(service: ImageService) -> None:
    image = await service.ingest(upload(filename="dog.png", label="  my   dog "), ALICE)

    assert image.label == "my dog"


async def test_label_is_generated_from_detected_objects_before_the_file_name(
    service: ImageService,
) -> None:
    image = await service.ingest(upload(filename="dog.png", detect=True), ALICE)

    assert image.label == "bus, person"
    assert image.objects == ("bus", "person")
    assert image.detection_status is DetectionStatus.SUCCEEDED
    assert len(image.detections) == 3


async def test_label_is_generated_from_the_file_name_when_detection_finds_nothing(
    service: ImageService, detector: FakeDetector
) -> None:
    detector.detections = []

    image = await service.ingest(upload(filename="red_bus.png", detect=True), ALICE)

    assert image.label == "red bus"
    assert image.detection_status is DetectionStatus.SUCCEEDED


async def test_label_falls_back_to_the_sha256_prefix_without_objects_or_file_name(
    service: ImageService,
) -> None:
    image = await service.ingest(upload(), ALICE)

    assert image.label == f"image {PNG_SHA[:8]}"


async def test_detect_false_never_calls_the_detector(
    service: ImageService, detector: FakeDetector
) -> None:
    image = await service.ingest(upload(filename="dog.png", detect=False), ALICE)

    assert detector.calls == []
    assert image.detections == ()


async def test_detect_true_runs_the_detector_on_the_ingested_bytes(
    service: ImageService, detector: FakeDetector
) -> None:
    await service.ingest(upload(detect=True), ALICE)

    assert detector.calls == [PNG]


@pytest.mark.parametrize("label", ["", "   ", "x" * 201])
async def test_invalid_label_is_refused_before_anything_is_fetched_or_stored(
    service: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    fetcher: FakeFetcher,
    label: str,
) -> None:
    with pytest.raises(InvalidInput):
        await service.ingest(IngestRequest(RemoteUrl(PHOTO_URL), label=label), ALICE)

    assert fetcher.requested == []
    assert_nothing_stored(unit_of_work, blobs)


async def test_empty_upload_is_invalid_and_nothing_is_stored(
    service: ImageService, unit_of_work: FakeUnitOfWorkFactory, blobs: FakeBlobStore
) -> None:
    with pytest.raises(InvalidInput):
        await service.ingest(upload(b""), ALICE)

    assert_nothing_stored(unit_of_work, blobs)


async def test_image_over_the_byte_limit_is_too_large_and_nothing_is_stored(
    service: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    detector: FakeDetector,
) -> None:
    with pytest.raises(ImageTooLarge):
        await service.ingest(upload(PNG_MAGIC.ljust(MAX_BYTES + 1, b"x"), detect=True), ALICE)

    assert detector.calls == []
    assert_nothing_stored(unit_of_work, blobs)


async def test_fetched_image_over_the_byte_limit_is_too_large_and_nothing_is_stored(
    service: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    fetcher: FakeFetcher,
) -> None:
    big = PNG_MAGIC.ljust(MAX_BYTES + 1, b"x")
    fetcher.responses[PHOTO_URL] = FetchedContent(PHOTO_URL, big, "image/png")

    with pytest.raises(ImageTooLarge):
        await service.ingest(IngestRequest(RemoteUrl(PHOTO_URL)), ALICE)

    assert_nothing_stored(unit_of_work, blobs)


async def test_image_of_exactly_the_byte_limit_is_accepted(service: ImageService) -> None:
    image = await service.ingest(upload(PNG_MAGIC.ljust(MAX_BYTES, b"x")), ALICE)

    assert image.size_bytes == MAX_BYTES


async def test_bytes_that_are_not_an_image_are_unsupported_and_nothing_is_stored(
    service: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    detector: FakeDetector,
) -> None:
    with pytest.raises(UnsupportedImage):
        await service.ingest(upload(b"%PDF-1.7 not an image", "doc.png", detect=True), ALICE)

    assert detector.calls == []
    assert_nothing_stored(unit_of_work, blobs)


@pytest.mark.parametrize("error", [UrlRefused("private address"), UrlFetchFailed("timed out")])
async def test_url_that_cannot_be_fetched_fails_and_nothing_is_stored(
    service: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    fetcher: FakeFetcher,
    error: Exception,
) -> None:
    fetcher.responses[PHOTO_URL] = error

    with pytest.raises(type(error)):
        await service.ingest(IngestRequest(RemoteUrl(PHOTO_URL)), ALICE)

    assert_nothing_stored(unit_of_work, blobs)


async def test_url_answering_with_something_else_than_an_image_is_a_fetch_failure(
    service: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    fetcher: FakeFetcher,
) -> None:
    fetcher.responses[PHOTO_URL] = FetchedContent(PHOTO_URL, b"<html>login</html>", "text/html")

    with pytest.raises(UrlFetchFailed, match="did not answer with an image"):
        await service.ingest(IngestRequest(RemoteUrl(PHOTO_URL)), ALICE)

    assert_nothing_stored(unit_of_work, blobs)


async def test_a_detector_raising_something_unexpected_still_keeps_the_image(
    service: ImageService, unit_of_work: FakeUnitOfWorkFactory, detector: FakeDetector
) -> None:
    detector.error = RuntimeError("segfault-ish")

    with pytest.raises(DetectionFailed, match="RuntimeError") as raised:
        await service.ingest(upload(filename="dog.png", detect=True), ALICE)

    stored = await service.get(raised.value.image_id or 0)
    assert unit_of_work.committed_images == [stored]
    assert stored.detection_status is DetectionStatus.FAILED


@pytest.mark.parametrize(
    "error", [DetectionFailed("model crashed"), DetectorUnavailable("model crashed")]
)
async def test_failed_detection_keeps_the_image_and_raises_with_its_id(
    service: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    detector: FakeDetector,
    error: DetectionFailed,
) -> None:
    detector.error = error

    with pytest.raises(type(error)) as raised:
        await service.ingest(upload(filename="dog.png", detect=True), ALICE)

    assert raised.value.image_id is not None
    stored = await service.get(raised.value.image_id)
    assert unit_of_work.committed_images == [stored]
    assert blobs.blobs == {PNG_SHA: PNG}
    assert stored.detection_status is DetectionStatus.FAILED
    assert stored.detection_error == "model crashed"
    assert stored.detections == ()
    assert stored.label == "dog"


async def test_getting_an_unknown_image_is_not_found(service: ImageService) -> None:
    with pytest.raises(ImageNotFound) as raised:
        await service.get(42)

    assert raised.value.image_id == 42


async def test_content_returns_the_record_with_its_bytes(service: ImageService) -> None:
    image = await service.ingest(upload(), ALICE)

    assert await service.content(image.id) == (image, PNG)


async def ingest_numbered(service: ImageService, count: int) -> list[int]:
    images = [await service.ingest(upload(PNG + bytes([n])), ALICE) for n in range(count)]
    return [image.id for image in images]


async def test_search_pages_newest_first_and_continues_before_the_last_id(
    service: ImageService,
) -> None:
    ids = await ingest_numbered(service, 5)

    first = await service.search(ImageQuery(limit=2))
    second = await service.search(ImageQuery(limit=2, before_id=first.next_before_id))
    third = await service.search(ImageQuery(limit=2, before_id=second.next_before_id))

    assert [image.id for image in first.images] == ids[4:2:-1]
    assert first.next_before_id == ids[3]
    assert [image.id for image in second.images] == ids[2:0:-1]
    assert second.next_before_id == ids[1]
    assert [image.id for image in third.images] == ids[:1]
    assert third.next_before_id is None


async def test_search_last_full_page_has_no_cursor_to_an_empty_page(
    service: ImageService,
) -> None:
    ids = await ingest_numbered(service, 4)

    first = await service.search(ImageQuery(limit=2))
    second = await service.search(ImageQuery(limit=2, before_id=first.next_before_id))

    assert [image.id for image in second.images] == ids[1::-1]
    assert second.next_before_id is None


async def test_search_of_an_empty_store_is_one_empty_page(service: ImageService) -> None:
    page = await service.search(ImageQuery())

    assert list(page.images) == []
    assert page.next_before_id is None


async def test_search_with_match_all_returns_only_images_with_every_object(
    service: ImageService, detector: FakeDetector
) -> None:
    detector.detections = [detection("dog"), detection("cat")]
    both = await service.ingest(upload(PNG + b"1", detect=True), ALICE)
    detector.detections = [detection("dog")]
    dog = await service.ingest(upload(PNG + b"2", detect=True), ALICE)
    await service.ingest(upload(PNG + b"3"), ALICE)

    every = await service.search(ImageQuery(objects=ObjectFilter.parse("cat,dog", "all")))
    any_ = await service.search(ImageQuery(objects=ObjectFilter.parse("cat,dog", "any")))

    assert list(every.images) == [both]
    assert list(any_.images) == [dog, both]
