import asyncio
import hashlib
import io
import threading
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, NoReturn

import pytest

from imagetag.domain.audit import AuditEventType
from imagetag.domain.detections import Thresholds
from imagetag.domain.errors import (
    DetectionFailed,
    DetectorUnavailable,
    ImageNotFound,
    ImageTooLarge,
    InvalidInput,
    PermissionDenied,
    UnsupportedImage,
    UrlFetchFailed,
    UrlRefused,
)
from imagetag.domain.images import DetectionStatus, NewImage
from imagetag.domain.search import Match, SearchQuery
from imagetag.domain.tags import TagSource
from imagetag.ports.fetcher import FetchedContent
from imagetag.ports.repository import AddedImage
from imagetag.services.images import (
    INLINE_ACCEPT_BYTES,
    ImageService,
    IngestRequest,
    RemoteUrl,
    UploadedBytes,
    UploadedFile,
)
from tests.fakes import (
    ALICE,
    BOB,
    CORRUPT,
    EPOCH,
    FAKE_DETECTOR_INFO,
    PNG_MAGIC,
    READER,
    FakeBlobStore,
    FakeDetector,
    FakeFetcher,
    FakeImageInspector,
    FakeImageRepository,
    FakeUnitOfWork,
    FakeUnitOfWorkFactory,
    detection,
)
from tests.unit.services.inputs import FACTS, MAX_BYTES, PHOTO_URL, PNG

PNG_SHA = hashlib.sha256(PNG).hexdigest()
SECOND = timedelta(seconds=1)


def upload(
    data: bytes = PNG,
    filename: str | None = None,
    *,
    label: str | None = None,
    detect: bool = False,
) -> IngestRequest:
    return IngestRequest(UploadedBytes(data, filename), label=label, detect=detect)


def commits(unit_of_work: FakeUnitOfWorkFactory) -> int:
    return sum(unit.committed for unit in unit_of_work.units)


def event_types(unit_of_work: FakeUnitOfWorkFactory) -> list[AuditEventType]:
    return [event.type for event in unit_of_work.committed_audit]


def run_ids(unit_of_work: FakeUnitOfWorkFactory) -> list[int]:
    return sorted(unit_of_work.storage.state.runs)


def assert_nothing_stored(unit_of_work: FakeUnitOfWorkFactory, blobs: FakeBlobStore) -> None:
    assert unit_of_work.committed_images == []
    assert unit_of_work.committed_audit == []
    assert commits(unit_of_work) == 0
    assert blobs.blobs == {}


# Ingesting.


async def test_ingesting_bytes_stores_the_record_and_the_bytes(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory, blobs: FakeBlobStore
) -> None:
    image = await images.ingest(upload(filename="dog.png"), ALICE)

    assert unit_of_work.committed_images == [image]
    assert blobs.blobs == {PNG_SHA: PNG}
    assert image.sha256 == PNG_SHA
    assert image.size_bytes == len(PNG)
    assert image.facts == FACTS
    assert image.source == "dog.png"
    assert image.created_by == ALICE.actor
    assert image.created_at == EPOCH
    assert image.tags == ()
    assert image.detection_status is DetectionStatus.NOT_REQUESTED


async def test_ingesting_writes_an_image_created_event_in_the_same_commit(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await images.ingest(upload(filename="dog.png"), ALICE)

    [event] = unit_of_work.committed_audit
    assert event.type is AuditEventType.IMAGE_CREATED
    assert event.actor == ALICE.actor
    assert event.occurred_at == image.created_at
    assert (event.target, event.image_id) == (f"image:{image.id}", image.id)
    assert event.payload == {"label": "dog", "sha256": PNG_SHA, "source": "dog.png"}
    assert commits(unit_of_work) == 1


async def test_ingesting_from_a_url_records_the_url_as_source_and_names_the_image_after_it(
    images: ImageService, fetcher: FakeFetcher, blobs: FakeBlobStore
) -> None:
    image = await images.ingest(IngestRequest(RemoteUrl(PHOTO_URL)), ALICE)

    assert fetcher.requested == [PHOTO_URL]
    assert image.source == PHOTO_URL
    assert image.label == "my dog photo"
    assert blobs.blobs == {PNG_SHA: PNG}


async def test_given_label_is_kept_with_its_whitespace_tidied(images: ImageService) -> None:
    image = await images.ingest(upload(filename="dog.png", label="  my   dog "), ALICE)

    assert image.label == "my dog"


async def test_label_is_generated_from_detected_objects_before_the_file_name(
    images: ImageService,
) -> None:
    image = await images.ingest(upload(filename="dog.png", detect=True), ALICE)

    assert image.label == "bus, person"
    assert image.objects == ("bus", "person")
    assert image.detection_status is DetectionStatus.SUCCEEDED


async def test_label_is_generated_from_the_file_name_when_detection_finds_nothing(
    images: ImageService, detector: FakeDetector
) -> None:
    detector.detections = []

    image = await images.ingest(upload(filename="red_bus.png", detect=True), ALICE)

    assert image.label == "red bus"
    assert image.detection_status is DetectionStatus.SUCCEEDED


async def test_label_falls_back_to_the_sha256_prefix_without_objects_or_file_name(
    images: ImageService,
) -> None:
    image = await images.ingest(upload(), ALICE)

    assert image.label == f"image {PNG_SHA[:8]}"


async def test_detect_false_never_calls_the_detector(
    images: ImageService, detector: FakeDetector, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await images.ingest(upload(filename="dog.png", detect=False), ALICE)

    assert detector.calls == []
    assert image.tags == ()
    assert unit_of_work.committed_runs == []


async def test_detect_true_runs_the_detector_on_the_ingested_bytes(
    images: ImageService, detector: FakeDetector
) -> None:
    await images.ingest(upload(detect=True), ALICE)

    assert detector.calls == [PNG]


async def test_detections_become_model_tags_with_the_provenance_of_their_run(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await images.ingest(upload(detect=True), ALICE)

    [run_id] = run_ids(unit_of_work)
    assert [(tag.name, tag.confidence) for tag in image.tags] == [
        ("person", 0.9),
        ("bus", 0.9),
        ("person", 0.4),
    ]
    assert all(tag.source is TagSource.MODEL for tag in image.tags)
    assert {(tag.model, tag.run_id, tag.actor) for tag in image.tags} == {
        (FAKE_DETECTOR_INFO, run_id, ALICE.actor)
    }
    assert {tag.added_at for tag in image.tags} == {EPOCH + SECOND}


async def test_an_image_is_created_before_its_detection_run_tags_it(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await images.ingest(upload(detect=True), ALICE)

    created, detected = unit_of_work.committed_audit
    assert image.created_at == created.occurred_at == EPOCH
    assert detected.occurred_at == EPOCH + SECOND
    assert all(tag.added_at > image.created_at for tag in image.tags)


async def test_ingesting_with_detection_records_the_run_and_its_event_in_the_same_commit(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await images.ingest(upload(detect=True), ALICE)

    [(image_id, run)] = unit_of_work.committed_runs
    assert image_id == image.id
    assert run.requested_by == ALICE.actor
    assert run.status is DetectionStatus.SUCCEEDED
    assert event_types(unit_of_work) == [
        AuditEventType.IMAGE_CREATED,
        AuditEventType.DETECTION_RUN,
    ]
    run_event = unit_of_work.committed_audit[1]
    assert run_event.image_id == image.id
    assert run_event.payload == {
        "run_id": run_ids(unit_of_work)[0],
        "status": "succeeded",
        "detector": "fake",
        "model": "fake-model",
        "model_version": "0",
        "confidence_threshold": None,
        "iou_threshold": None,
        "tags": 3,
        "error": None,
    }
    assert commits(unit_of_work) == 1


async def test_the_detection_event_names_its_run_even_when_the_run_found_nothing(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory, detector: FakeDetector
) -> None:
    detector.detections = []

    await images.ingest(upload(detect=True), ALICE)

    [run_id] = run_ids(unit_of_work)
    assert unit_of_work.committed_audit[1].payload["run_id"] == run_id


async def test_a_reader_may_not_ingest_and_nothing_is_fetched_or_stored(
    images: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    fetcher: FakeFetcher,
    detector: FakeDetector,
) -> None:
    with pytest.raises(PermissionDenied) as raised:
        await images.ingest(IngestRequest(RemoteUrl(PHOTO_URL), detect=True), READER)

    assert (raised.value.role, raised.value.needed) == ("reader", "tagger")
    assert fetcher.requested == []
    assert detector.calls == []
    assert_nothing_stored(unit_of_work, blobs)


@pytest.mark.parametrize("label", ["", "   ", "x" * 201])
async def test_invalid_label_is_refused_before_anything_is_fetched_or_stored(
    images: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    fetcher: FakeFetcher,
    label: str,
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await images.ingest(IngestRequest(RemoteUrl(PHOTO_URL), label=label), ALICE)

    assert raised.value.field == "label"
    assert fetcher.requested == []
    assert_nothing_stored(unit_of_work, blobs)


async def test_empty_upload_is_invalid_and_nothing_is_stored(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory, blobs: FakeBlobStore
) -> None:
    with pytest.raises(InvalidInput):
        await images.ingest(upload(b""), ALICE)

    assert_nothing_stored(unit_of_work, blobs)


async def test_image_over_the_byte_limit_is_too_large_and_nothing_is_stored(
    images: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    detector: FakeDetector,
) -> None:
    with pytest.raises(ImageTooLarge):
        await images.ingest(upload(PNG_MAGIC.ljust(MAX_BYTES + 1, b"x"), detect=True), ALICE)

    assert detector.calls == []
    assert_nothing_stored(unit_of_work, blobs)


async def test_fetched_image_over_the_byte_limit_is_too_large_and_nothing_is_stored(
    images: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    fetcher: FakeFetcher,
) -> None:
    big = PNG_MAGIC.ljust(MAX_BYTES + 1, b"x")
    fetcher.responses[PHOTO_URL] = FetchedContent(PHOTO_URL, big, "image/png")

    with pytest.raises(ImageTooLarge):
        await images.ingest(IngestRequest(RemoteUrl(PHOTO_URL)), ALICE)

    assert_nothing_stored(unit_of_work, blobs)


async def test_image_of_exactly_the_byte_limit_is_accepted(images: ImageService) -> None:
    image = await images.ingest(upload(PNG_MAGIC.ljust(MAX_BYTES, b"x")), ALICE)

    assert image.size_bytes == MAX_BYTES


async def test_bytes_that_are_not_an_image_are_unsupported_and_nothing_is_stored(
    images: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    detector: FakeDetector,
) -> None:
    with pytest.raises(UnsupportedImage):
        await images.ingest(upload(b"%PDF-1.7 not an image", "doc.png", detect=True), ALICE)

    assert detector.calls == []
    assert_nothing_stored(unit_of_work, blobs)


@pytest.mark.parametrize("error", [UrlRefused("private address"), UrlFetchFailed("timed out")])
async def test_url_that_cannot_be_fetched_fails_and_nothing_is_stored(
    images: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    fetcher: FakeFetcher,
    error: Exception,
) -> None:
    fetcher.responses[PHOTO_URL] = error

    with pytest.raises(type(error)):
        await images.ingest(IngestRequest(RemoteUrl(PHOTO_URL)), ALICE)

    assert_nothing_stored(unit_of_work, blobs)


async def test_url_answering_with_something_else_than_an_image_is_a_fetch_failure(
    images: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    fetcher: FakeFetcher,
) -> None:
    fetcher.responses[PHOTO_URL] = FetchedContent(PHOTO_URL, b"<html>login</html>", "text/html")

    with pytest.raises(UrlFetchFailed, match="did not answer with an image"):
        await images.ingest(IngestRequest(RemoteUrl(PHOTO_URL)), ALICE)

    assert_nothing_stored(unit_of_work, blobs)


async def test_a_detector_raising_something_unexpected_still_keeps_the_image(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory, detector: FakeDetector
) -> None:
    detector.error = RuntimeError("segfault-ish")

    with pytest.raises(DetectionFailed, match="RuntimeError") as raised:
        await images.ingest(upload(filename="dog.png", detect=True), ALICE)

    stored = await images.get(raised.value.image_id or 0)
    assert unit_of_work.committed_images == [stored]
    assert stored.detection_status is DetectionStatus.FAILED


@pytest.mark.parametrize(
    "error", [DetectionFailed("model crashed"), DetectorUnavailable("model crashed")]
)
async def test_failed_detection_keeps_the_image_and_raises_with_its_id(
    images: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    detector: FakeDetector,
    error: DetectionFailed,
) -> None:
    detector.error = error

    with pytest.raises(type(error)) as raised:
        await images.ingest(upload(filename="dog.png", detect=True), ALICE)

    assert raised.value.image_id is not None
    stored = await images.get(raised.value.image_id)
    assert unit_of_work.committed_images == [stored]
    assert blobs.blobs == {PNG_SHA: PNG}
    assert stored.detection_status is DetectionStatus.FAILED
    assert stored.detection_error == "model crashed"
    assert stored.tags == ()
    assert stored.label == "dog"


async def test_failed_detection_is_recorded_as_a_failed_run_with_its_event(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory, detector: FakeDetector
) -> None:
    detector.error = DetectionFailed("model crashed")

    with pytest.raises(DetectionFailed):
        await images.ingest(upload(detect=True), ALICE)

    [(_, run)] = unit_of_work.committed_runs
    assert (run.status, run.error) == (DetectionStatus.FAILED, "model crashed")
    assert event_types(unit_of_work) == [
        AuditEventType.IMAGE_CREATED,
        AuditEventType.DETECTION_RUN,
    ]
    payload = unit_of_work.committed_audit[1].payload
    assert (payload["status"], payload["error"]) == ("failed", "model crashed")
    assert payload["run_id"] == run_ids(unit_of_work)[0]


# Reading.


async def test_getting_an_unknown_image_is_not_found(images: ImageService) -> None:
    with pytest.raises(ImageNotFound) as raised:
        await images.get(42)

    assert raised.value.image_id == 42


async def test_content_returns_the_record_with_its_bytes(images: ImageService) -> None:
    image = await images.ingest(upload(), ALICE)

    found, chunks = await images.content(image.id)
    assert found == image
    assert b"".join([chunk async for chunk in chunks]) == PNG


async def ingest_numbered(images: ImageService, count: int, *, detect: bool = False) -> list[int]:
    stored = [
        await images.ingest(upload(PNG + bytes([n]), detect=detect), ALICE) for n in range(count)
    ]
    return [image.id for image in stored]


async def test_search_pages_newest_first_and_continues_before_the_last_id(
    images: ImageService,
) -> None:
    ids = await ingest_numbered(images, 5)

    first = await images.search(SearchQuery(limit=2))
    second = await images.search(SearchQuery(limit=2, before_id=first.next_before_id))
    third = await images.search(SearchQuery(limit=2, before_id=second.next_before_id))

    assert [image.id for image in first.images] == ids[4:2:-1]
    assert first.next_before_id == ids[3]
    assert [image.id for image in second.images] == ids[2:0:-1]
    assert second.next_before_id == ids[1]
    assert [image.id for image in third.images] == ids[:1]
    assert third.next_before_id is None


async def test_search_last_full_page_has_no_cursor_to_an_empty_page(
    images: ImageService,
) -> None:
    ids = await ingest_numbered(images, 4)

    first = await images.search(SearchQuery(limit=2))
    second = await images.search(SearchQuery(limit=2, before_id=first.next_before_id))

    assert [image.id for image in second.images] == ids[1::-1]
    assert second.next_before_id is None


async def test_search_of_an_empty_store_is_one_empty_page(images: ImageService) -> None:
    page = await images.search(SearchQuery())

    assert list(page.images) == []
    assert page.next_before_id is None


async def test_search_with_match_all_returns_only_images_with_every_object(
    images: ImageService, detector: FakeDetector
) -> None:
    detector.detections = [detection("dog"), detection("cat")]
    both = await images.ingest(upload(PNG + b"1", detect=True), ALICE)
    detector.detections = [detection("dog")]
    dog = await images.ingest(upload(PNG + b"2", detect=True), ALICE)
    await images.ingest(upload(PNG + b"3"), ALICE)

    every = await images.search(SearchQuery(objects=("cat", "dog"), match=Match.ALL))
    some = await images.search(SearchQuery(objects=("cat", "dog"), match=Match.ANY))

    assert list(every.images) == [both]
    assert list(some.images) == [dog, both]


async def test_search_for_untagged_images_returns_those_without_detections(
    images: ImageService, detector: FakeDetector
) -> None:
    await images.ingest(upload(PNG + b"1", detect=True), ALICE)
    plain = await images.ingest(upload(PNG + b"2"), ALICE)

    page = await images.search(SearchQuery(untagged=True))

    assert list(page.images) == [plain]


# Relabelling.


async def test_relabelling_changes_the_label_and_audits_before_and_after(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await images.ingest(upload(filename="dog.png"), ALICE)

    relabelled = await images.relabel(image.id, "  my   best dog ", BOB)

    assert relabelled.label == "my best dog"
    assert (await images.get(image.id)).label == "my best dog"
    event = unit_of_work.committed_audit[-1]
    assert event.type is AuditEventType.IMAGE_UPDATED
    assert event.actor == BOB.actor
    assert event.occurred_at == image.created_at + SECOND
    assert (event.target, event.image_id) == (f"image:{image.id}", image.id)
    assert event.payload == {"label_before": "dog", "label": "my best dog"}
    assert commits(unit_of_work) == 2


async def test_relabelling_to_the_same_label_writes_nothing(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await images.ingest(upload(filename="dog.png"), ALICE)

    unchanged = await images.relabel(image.id, " dog ", BOB)

    assert unchanged == image
    assert event_types(unit_of_work) == [AuditEventType.IMAGE_CREATED]
    assert commits(unit_of_work) == 1


async def test_relabelling_to_an_invalid_label_is_refused_and_changes_nothing(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await images.ingest(upload(filename="dog.png"), ALICE)

    with pytest.raises(InvalidInput) as raised:
        await images.relabel(image.id, "   ", ALICE)

    assert raised.value.field == "label"
    assert unit_of_work.committed_images == [image]
    assert commits(unit_of_work) == 1


async def test_relabelling_an_unknown_image_is_not_found(images: ImageService) -> None:
    with pytest.raises(ImageNotFound):
        await images.relabel(42, "dog", ALICE)


# Deleting.


async def test_deleting_is_soft_the_image_leaves_reads_and_searches_and_the_audit_keeps_it(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory, blobs: FakeBlobStore
) -> None:
    kept = await images.ingest(upload(PNG + b"1"), ALICE)
    image = await images.ingest(upload(PNG + b"2", filename="dog.png"), ALICE)

    await images.delete(image.id, BOB)

    with pytest.raises(ImageNotFound):
        await images.get(image.id)
    assert list((await images.search(SearchQuery())).images) == [kept]
    assert unit_of_work.committed_images == [kept]
    assert image.id in unit_of_work.storage.state.images
    assert unit_of_work.storage.state.deleted[image.id] == (BOB.actor, EPOCH + 2 * SECOND)
    event = unit_of_work.committed_audit[-1]
    assert event.type is AuditEventType.IMAGE_DELETED
    assert event.actor == BOB.actor
    assert (event.target, event.image_id) == (f"image:{image.id}", image.id)
    assert event.payload == {"label": "dog", "sha256": image.sha256}


async def test_deleting_twice_is_not_found_the_second_time_and_audits_once(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await images.ingest(upload(), ALICE)
    await images.delete(image.id, ALICE)

    with pytest.raises(ImageNotFound):
        await images.delete(image.id, ALICE)

    assert event_types(unit_of_work).count(AuditEventType.IMAGE_DELETED) == 1


async def test_a_deleted_image_can_no_longer_be_relabelled(images: ImageService) -> None:
    image = await images.ingest(upload(), ALICE)
    await images.delete(image.id, ALICE)

    with pytest.raises(ImageNotFound):
        await images.relabel(image.id, "new", ALICE)


# Detecting again.


async def test_redetecting_adds_a_run_and_keeps_the_tags_of_earlier_runs(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory, detector: FakeDetector
) -> None:
    detector.detections = [detection("dog", 0.6)]
    image = await images.ingest(upload(detect=True), ALICE)
    detector.detections = [detection("dog", 0.8), detection("cat")]

    redetected = await images.redetect(image.id, BOB)

    first_run, second_run = run_ids(unit_of_work)
    assert [(tag.name, tag.confidence, tag.run_id, tag.actor) for tag in redetected.tags] == [
        ("dog", 0.6, first_run, ALICE.actor),
        ("dog", 0.8, second_run, BOB.actor),
        ("cat", 0.9, second_run, BOB.actor),
    ]
    assert redetected.objects == ("cat", "dog")
    assert redetected.detection_status is DetectionStatus.SUCCEEDED
    assert await images.get(image.id) == redetected
    assert [run.requested_by for _, run in unit_of_work.committed_runs] == [
        ALICE.actor,
        BOB.actor,
    ]


async def test_redetecting_with_thresholds_runs_with_them_and_records_them(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory, detector: FakeDetector
) -> None:
    image = await images.ingest(upload(), ALICE)
    detector.detections = [detection("dog", 0.8), detection("cat", 0.3)]

    redetected = await images.redetect(image.id, BOB, Thresholds(confidence=0.5, iou=0.4))

    assert detector.thresholds[-1] == Thresholds(confidence=0.5, iou=0.4)
    assert [tag.name for tag in redetected.tags] == ["dog"]
    ((_, run),) = unit_of_work.committed_runs
    assert (run.detector.confidence_threshold, run.detector.iou_threshold) == (0.5, 0.4)
    event = unit_of_work.committed_audit[-1]
    assert event.payload["confidence_threshold"] == 0.5
    assert event.payload["iou_threshold"] == 0.4


async def test_a_threshold_the_detector_does_not_have_is_refused_and_nothing_recorded(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory, detector: FakeDetector
) -> None:
    image = await images.ingest(upload(), ALICE)
    detector.error = InvalidInput("no IoU here", field="iou")
    audited = len(unit_of_work.committed_audit)

    with pytest.raises(InvalidInput):
        await images.redetect(image.id, BOB, Thresholds(iou=0.5))

    assert unit_of_work.committed_runs == []
    assert len(unit_of_work.committed_audit) == audited


async def test_redetecting_audits_the_run_with_its_id(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await images.ingest(upload(), ALICE)

    await images.redetect(image.id, BOB)

    event = unit_of_work.committed_audit[-1]
    assert event.type is AuditEventType.DETECTION_RUN
    assert event.actor == BOB.actor
    assert event.image_id == image.id
    assert event.payload["run_id"] == run_ids(unit_of_work)[-1]
    assert event.payload["status"] == "succeeded"
    assert event.payload["tags"] == 3


async def test_redetecting_runs_the_detector_on_the_stored_bytes(
    images: ImageService, detector: FakeDetector
) -> None:
    image = await images.ingest(upload(), ALICE)

    await images.redetect(image.id, ALICE)

    assert detector.calls == [PNG]


async def test_a_failed_redetection_is_recorded_and_raised_with_the_image_id(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory, detector: FakeDetector
) -> None:
    image = await images.ingest(upload(detect=True), ALICE)
    detector.error = DetectorUnavailable("weights missing")

    with pytest.raises(DetectorUnavailable) as raised:
        await images.redetect(image.id, BOB)

    assert raised.value.image_id == image.id
    stored = await images.get(image.id)
    assert stored.detection_status is DetectionStatus.FAILED
    assert stored.detection_error == "weights missing"
    assert stored.tags == image.tags
    [_, (_, failed)] = unit_of_work.committed_runs
    assert (failed.status, failed.error, failed.requested_by) == (
        DetectionStatus.FAILED,
        "weights missing",
        BOB.actor,
    )
    assert unit_of_work.committed_audit[-1].payload["status"] == "failed"


async def test_redetecting_an_unknown_image_is_not_found(
    images: ImageService, detector: FakeDetector
) -> None:
    with pytest.raises(ImageNotFound):
        await images.redetect(42, ALICE)

    assert detector.calls == []


async def test_redetecting_a_deleted_image_is_not_found(images: ImageService) -> None:
    image = await images.ingest(upload(), ALICE)
    await images.delete(image.id, ALICE)

    with pytest.raises(ImageNotFound):
        await images.redetect(image.id, ALICE)


# Roles.


async def test_a_reader_may_read_and_search(images: ImageService) -> None:
    image = await images.ingest(upload(), ALICE)

    assert await images.get(image.id) == image
    assert list((await images.search(SearchQuery())).images) == [image]


READER_CHANGES: dict[str, Callable[[ImageService, int], Awaitable[object]]] = {
    "relabel": lambda images, image_id: images.relabel(image_id, "mine now", READER),
    "delete": lambda images, image_id: images.delete(image_id, READER),
    "redetect": lambda images, image_id: images.redetect(image_id, READER),
}


@pytest.mark.parametrize("change", READER_CHANGES)
async def test_a_reader_may_not_change_an_image_and_nothing_is_written(
    images: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    detector: FakeDetector,
    change: str,
) -> None:
    image = await images.ingest(upload(), ALICE)
    before = (unit_of_work.committed_images, unit_of_work.committed_audit)

    with pytest.raises(PermissionDenied):
        await READER_CHANGES[change](images, image.id)

    assert (unit_of_work.committed_images, unit_of_work.committed_audit) == before
    assert unit_of_work.committed_runs == []
    assert detector.calls == []


# Uploads in files: read in chunks, never whole unless the detector needs the bytes.


class CountingFile(io.BytesIO):
    """A file that remembers the largest read asked of it."""

    largest_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.largest_read = max(self.largest_read, len(data))
        return data


def file_upload(data: bytes, filename: str | None = None, *, detect: bool = False) -> IngestRequest:
    return IngestRequest(UploadedFile(CountingFile(data), filename), detect=detect)


async def test_a_file_upload_is_stored_like_bytes_and_read_in_chunks(
    make_images: Callable[..., ImageService], blobs: FakeBlobStore
) -> None:
    images = make_images(max_image_bytes=4 * 1024 * 1024)
    data = PNG_MAGIC.ljust(3 * 1024 * 1024, b"x")
    request = file_upload(data, "big.png")

    image = await images.ingest(request, ALICE)

    assert (image.sha256, image.size_bytes, image.source) == (
        hashlib.sha256(data).hexdigest(),
        len(data),
        "big.png",
    )
    assert blobs.blobs[image.sha256] == data
    assert isinstance(request.content, UploadedFile)
    assert isinstance(request.content.file, CountingFile)
    assert request.content.file.largest_read <= 1024 * 1024


@pytest.mark.parametrize("detect", [False, True])
async def test_a_file_over_the_byte_limit_is_refused_without_reading_it_all(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory, blobs: FakeBlobStore, detect: bool
) -> None:
    big = CountingFile(PNG_MAGIC.ljust(MAX_BYTES * 50, b"x"))

    with pytest.raises(ImageTooLarge, match=f"larger; the limit is {MAX_BYTES} bytes"):
        await images.ingest(IngestRequest(UploadedFile(big), detect=detect), ALICE)

    assert big.tell() <= MAX_BYTES + 1024 * 1024
    assert_nothing_stored(unit_of_work, blobs)


async def test_an_empty_file_is_invalid(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory, blobs: FakeBlobStore
) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        await images.ingest(file_upload(b""), ALICE)

    assert_nothing_stored(unit_of_work, blobs)


async def test_a_file_upload_with_detection_hands_the_detector_the_whole_image(
    images: ImageService, detector: FakeDetector, blobs: FakeBlobStore
) -> None:
    data = PNG + b"more pixels"

    image = await images.ingest(file_upload(data, detect=True), ALICE)

    assert detector.calls == [data]
    assert blobs.blobs[image.sha256] == data
    assert image.objects


async def test_a_retried_file_upload_with_the_same_key_returns_the_first_image(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    first = await images.ingest(file_upload(PNG, "a.png"), ALICE, idempotency_key="k-1")
    again = await images.ingest(file_upload(PNG, "a.png"), ALICE, idempotency_key="k-1")
    as_bytes = await images.ingest(upload(PNG, "a.png"), ALICE, idempotency_key="k-1")

    assert again.id == first.id == as_bytes.id
    assert len(unit_of_work.committed_images) == 1


# The check that an image decodes whole: before storing, beside the detector when it runs.


@pytest.mark.parametrize("detect", [False, True])
async def test_an_image_that_does_not_decode_is_refused_and_nothing_is_stored(
    images: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    inspector: FakeImageInspector,
    detect: bool,
) -> None:
    damaged = PNG + CORRUPT

    with pytest.raises(UnsupportedImage, match="corrupt"):
        await images.ingest(upload(damaged, detect=detect), ALICE)

    assert inspector.verified == [damaged]
    assert_nothing_stored(unit_of_work, blobs)


async def test_a_url_that_answers_with_a_damaged_image_is_refused_while_detecting(
    images: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    fetcher: FakeFetcher,
) -> None:
    fetcher.responses[PHOTO_URL] = FetchedContent(PHOTO_URL, PNG + CORRUPT, "image/png")

    with pytest.raises(UrlFetchFailed, match="did not answer with an image"):
        await images.ingest(IngestRequest(RemoteUrl(PHOTO_URL), detect=True), ALICE)

    assert_nothing_stored(unit_of_work, blobs)


async def test_a_detector_whose_decode_checks_the_image_spares_a_second_decode(
    images: ImageService, detector: FakeDetector, inspector: FakeImageInspector
) -> None:
    detector.checks_decoding = True

    image = await images.ingest(file_upload(PNG, detect=True), ALICE)

    assert detector.decoded == [PNG]
    assert detector.calls == [PNG]
    assert inspector.verified == []
    assert image.objects


@pytest.mark.parametrize("from_url", [False, True])
async def test_an_image_the_detectors_decode_refuses_is_refused_and_nothing_is_stored(
    images: ImageService,
    detector: FakeDetector,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    fetcher: FakeFetcher,
    from_url: bool,
) -> None:
    detector.checks_decoding = True
    damaged = PNG + CORRUPT
    fetcher.responses[PHOTO_URL] = FetchedContent(PHOTO_URL, damaged, "image/png")
    content = RemoteUrl(PHOTO_URL) if from_url else UploadedBytes(damaged)

    refusal = UrlFetchFailed if from_url else UnsupportedImage
    with pytest.raises(refusal, match="did not answer with an image" if from_url else "corrupt"):
        await images.ingest(IngestRequest(content, detect=True), ALICE)

    assert detector.calls == []  # the model never ran
    assert [staged.outcome for staged in blobs.staged] == ["discarded"]
    assert_nothing_stored(unit_of_work, blobs)


async def test_an_image_the_detector_cannot_decode_now_is_verified_and_kept(
    images: ImageService,
    detector: FakeDetector,
    inspector: FakeImageInspector,
    blobs: FakeBlobStore,
) -> None:
    detector.error = DetectorUnavailable("the model would not load")

    async def cannot_decode(image: bytes, *, start_detecting: bool = False) -> NoReturn:
        raise DetectorUnavailable("the model would not load")

    detector.decode = cannot_decode  # type: ignore[method-assign]

    with pytest.raises(DetectorUnavailable) as failure:
        await images.ingest(file_upload(PNG, detect=True), ALICE)

    assert inspector.verified == [PNG]
    stored = await images.get(failure.value.image_id or 0)
    assert stored.detection_status is DetectionStatus.FAILED
    assert blobs.blobs[stored.sha256] == PNG


async def test_the_blob_is_staged_beside_the_decode_and_committed_beside_the_model(
    images: ImageService,
    detector: FakeDetector,
    inspector: FakeImageInspector,
    blobs: FakeBlobStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[str] = []
    detector.delay = 0.02
    verify, detect, stage = inspector.verify, detector.detect, blobs.stage

    def recorded_verify(source: io.BytesIO) -> None:
        events.append("verify")
        verify(source)

    async def recorded_detect(*args: object, **kwargs: object) -> object:
        events.append("model starts")
        try:
            return await detect(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            events.append("model ends")

    async def recorded_stage(sha256: str, source: io.BytesIO) -> object:
        events.append("blob staging")
        staged = await stage(sha256, source)
        commit = staged.commit

        async def recorded_commit() -> None:
            await asyncio.sleep(0.005)
            await commit()
            events.append("blob committed")

        staged.commit = recorded_commit  # type: ignore[method-assign]
        return staged

    add = FakeImageRepository.add

    async def recorded_add(*args: object) -> object:
        events.append("rows")
        return await add(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(inspector, "verify", recorded_verify)
    monkeypatch.setattr(detector, "detect", recorded_detect)
    monkeypatch.setattr(blobs, "stage", recorded_stage)
    monkeypatch.setattr(FakeImageRepository, "add", recorded_add)

    await images.ingest(file_upload(PNG, detect=True), ALICE)

    # Staging and the check run at once, in either order. Nothing is committed before the
    # bytes pass the check. The rows' transaction begins once the blob is committed: on
    # SQLite, waiting for the disk inside it would hold the one write lock.
    assert sorted(events[:2]) == ["blob staging", "verify"]
    assert events[2:] == ["model starts", "blob committed", "model ends", "rows"]
    assert [staged.outcome for staged in blobs.staged] == ["committed"]


async def test_the_rows_wait_for_a_blob_commit_slower_than_the_model(
    images: ImageService, blobs: FakeBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = blobs.stage
    rows_began_with_blob: list[bool] = []

    async def slow_commit_stage(sha256: str, source: io.BytesIO) -> object:
        staged = await stage(sha256, source)
        commit = staged.commit

        async def slow_commit() -> None:
            await asyncio.sleep(0.02)
            await commit()

        staged.commit = slow_commit  # type: ignore[method-assign]
        return staged

    add = FakeImageRepository.add

    async def recorded_add(repository: FakeImageRepository, image: NewImage) -> object:
        rows_began_with_blob.append(image.sha256 in blobs.blobs)
        return await add(repository, image)

    monkeypatch.setattr(blobs, "stage", slow_commit_stage)
    monkeypatch.setattr(FakeImageRepository, "add", recorded_add)

    await images.ingest(file_upload(PNG, detect=True), ALICE)

    assert rows_began_with_blob == [True]


def stalling(started: asyncio.Event) -> Callable[..., Awaitable[NoReturn]]:
    """A stand-in for a detector's method that sets ``started`` and never ends."""

    async def stall(*args: object, **kwargs: object) -> NoReturn:
        started.set()
        await asyncio.sleep(3600)
        raise AssertionError("the ingest was to be cancelled")

    return stall


async def cancel_ingest_once(images: ImageService, started: asyncio.Event) -> None:
    """Start an ingest with detection and cancel it once ``started`` is set, as a client
    that hangs up cancels its request's task."""
    ingest = asyncio.create_task(images.ingest(file_upload(PNG, detect=True), ALICE))
    await started.wait()
    ingest.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ingest


async def test_an_ingest_cancelled_before_its_bytes_pass_discards_its_staged_blob(
    images: ImageService,
    detector: FakeDetector,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoding = asyncio.Event()
    monkeypatch.setattr(detector, "decode", stalling(decoding))

    await cancel_ingest_once(images, decoding)

    assert [staged.outcome for staged in blobs.staged] == ["discarded"]
    assert_nothing_stored(unit_of_work, blobs)


async def test_an_ingest_cancelled_while_the_model_runs_commits_no_rows(
    images: ImageService,
    detector: FakeDetector,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model_runs = asyncio.Event()
    monkeypatch.setattr(detector, "detect", stalling(model_runs))

    await cancel_ingest_once(images, model_runs)

    assert unit_of_work.committed_images == []
    assert commits(unit_of_work) == 0
    # The bytes were accepted: their blob is stored, unreferenced, for the retry to reuse.
    assert list(blobs.blobs.values()) == [PNG]


@pytest.mark.parametrize("detect", [False, True])
async def test_an_image_whose_bytes_cannot_be_written_is_not_committed(
    images: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    monkeypatch: pytest.MonkeyPatch,
    detect: bool,
) -> None:
    async def disk_full(sha256: str, source: io.BytesIO) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(blobs, "put", disk_full)
    monkeypatch.setattr(blobs, "stage", disk_full)

    with pytest.raises(OSError, match="No space left"):
        await images.ingest(file_upload(PNG, detect=detect), ALICE)

    assert_nothing_stored(unit_of_work, blobs)


@pytest.mark.parametrize("detect", [False, True])
async def test_every_stored_image_was_verified_once(
    images: ImageService, inspector: FakeImageInspector, detect: bool
) -> None:
    await images.ingest(file_upload(PNG, detect=detect), ALICE)
    await images.ingest(IngestRequest(RemoteUrl(PHOTO_URL), detect=detect), ALICE)

    assert inspector.verified == [PNG, PNG]


@pytest.mark.parametrize(
    ("content", "detect", "bounded", "on_the_loop"),
    [
        pytest.param(UploadedBytes(PNG), True, True, True, id="small bytes, bounded header"),
        pytest.param(UploadedBytes(PNG), True, False, False, id="a header only inspect reads"),
        pytest.param(UploadedBytes(PNG), False, True, False, id="verified whole"),
        pytest.param(
            UploadedBytes(PNG + b"x" * INLINE_ACCEPT_BYTES), True, True, False, id="big bytes"
        ),
        pytest.param(UploadedFile(io.BytesIO(PNG)), True, True, False, id="a file"),
    ],
)
async def test_only_a_small_upload_with_a_bounded_header_is_accepted_on_the_event_loop(
    make_images: Callable[..., ImageService],
    inspector: FakeImageInspector,
    monkeypatch: pytest.MonkeyPatch,
    content: UploadedBytes | UploadedFile,
    detect: bool,
    bounded: bool,
    on_the_loop: bool,
) -> None:
    # Hashing a photo and a bounded read of its header cost less than two thread
    # hand-offs. A header the bounded read leaves to ``inspect`` can hide work that would
    # stall every other request: Pillow took ~190 ms to read a 0.75 MB JPEG of 150,000
    # empty segments, and as long for a 200 kB PNG of compressed text chunks. So does a
    # whole decode (the verify), megabytes of bytes or a file.
    inspected_on: list[int] = []
    inspect = inspector.inspect

    def recorded_inspect(source: io.BytesIO) -> object:
        inspected_on.append(threading.get_ident())
        return inspect(source)

    monkeypatch.setattr(inspector, "inspect", recorded_inspect)
    inspector.bounded = bounded
    images = make_images(max_image_bytes=2 * INLINE_ACCEPT_BYTES)

    image = await images.ingest(IngestRequest(content, detect=detect), ALICE)

    assert image.facts == inspector.facts
    if on_the_loop:
        assert inspected_on == []
    else:
        assert len(inspected_on) == 1
        assert inspected_on[0] != threading.get_ident()


async def test_the_size_limit_holds_for_an_upload_accepted_on_the_event_loop(
    make_images: Callable[..., ImageService], inspector: FakeImageInspector
) -> None:
    inspector.bounded = True
    images = make_images(max_image_bytes=len(PNG) - 1)

    with pytest.raises(ImageTooLarge, match="the limit is"):
        await images.ingest(upload(detect=True), ALICE)


@pytest.mark.parametrize("key", [None, "retry-1"], ids=["no key", "an Idempotency-Key"])
async def test_an_ingest_is_written_in_one_call_to_the_unit_of_work_unless_it_has_a_key(
    images: ImageService,
    unit_of_work: FakeUnitOfWorkFactory,
    monkeypatch: pytest.MonkeyPatch,
    key: str | None,
) -> None:
    # On SQLite that call is one hop to the connection's thread instead of two
    # (bench/detect); the key's record needs the image's id in the same transaction.
    in_one: list[NewImage] = []
    add_and_commit = FakeUnitOfWork.add_image_and_commit

    async def recorded(self: FakeUnitOfWork, image: NewImage, audit: Any) -> AddedImage:
        in_one.append(image)
        return await add_and_commit(self, image, audit)

    monkeypatch.setattr(FakeUnitOfWork, "add_image_and_commit", recorded)

    image = await images.ingest(upload(detect=True), ALICE, idempotency_key=key)

    assert [new.sha256 for new in in_one] == ([] if key else [image.sha256])
    assert event_types(unit_of_work) == [
        AuditEventType.IMAGE_CREATED,
        AuditEventType.DETECTION_RUN,
    ]
