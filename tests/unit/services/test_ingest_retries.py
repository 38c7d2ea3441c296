"""Retries and duplicates: an Idempotency-Key replays the first result; bytes already
stored are stored again or reused, as configured."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from imagetag.domain.errors import (
    DetectionFailed,
    DetectorUnavailable,
    IdempotencyKeyReused,
    ImageNotFound,
    InvalidInput,
)
from imagetag.domain.idempotency import DuplicatePolicy
from imagetag.domain.images import DetectionStatus
from imagetag.services.images import ImageService, IngestRequest, RemoteUrl, UploadedBytes
from tests.fakes import (
    ALICE,
    BOB,
    FakeBlobStore,
    FakeDetector,
    FakeUnitOfWorkFactory,
)
from tests.unit.services.inputs import PHOTO_URL, PNG

OTHER_PNG = PNG + b" and a cat"


@pytest.fixture
def reusing(make_images: Callable[..., ImageService]) -> ImageService:
    """The service over the same fakes, returning the image of bytes already stored."""
    return make_images(duplicates=DuplicatePolicy.REUSE)


def upload(data: bytes = PNG, *, label: str | None = None, detect: bool = False) -> IngestRequest:
    return IngestRequest(UploadedBytes(data, "photo.png"), label=label, detect=detect)


async def test_a_retry_with_the_same_key_returns_the_first_image_and_stores_nothing_more(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    first = await images.ingest(upload(), ALICE, idempotency_key="k-1")
    audited = len(unit_of_work.committed_audit)

    again = await images.ingest(upload(), ALICE, idempotency_key=" k-1 ")

    assert again == first
    assert len(unit_of_work.committed_images) == 1
    assert len(unit_of_work.committed_audit) == audited


async def test_a_retry_returns_the_image_as_it_is_now(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    first = await images.ingest(upload(), ALICE, idempotency_key="k-1")
    await images.relabel(first.id, "renamed", ALICE)

    again = await images.ingest(upload(), ALICE, idempotency_key="k-1")

    assert again.id == first.id
    assert again.label == "renamed"


async def test_the_same_key_with_another_request_is_refused(images: ImageService) -> None:
    await images.ingest(upload(), ALICE, idempotency_key="k-1")

    for different in (upload(OTHER_PNG), upload(label="other"), upload(detect=True)):
        with pytest.raises(IdempotencyKeyReused, match="different request"):
            await images.ingest(different, ALICE, idempotency_key="k-1")
    url = IngestRequest(RemoteUrl(PHOTO_URL))
    with pytest.raises(IdempotencyKeyReused):
        await images.ingest(url, ALICE, idempotency_key="k-1")


async def test_keys_belong_to_their_user(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    mine = await images.ingest(upload(), ALICE, idempotency_key="k-1")
    theirs = await images.ingest(upload(OTHER_PNG), BOB, idempotency_key="k-1")

    assert mine.id != theirs.id
    assert len(unit_of_work.committed_images) == 2


@pytest.mark.parametrize("key", ["", "   ", "x" * 201, "tab\there"])
async def test_a_malformed_key_is_refused_before_anything_is_stored(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory, key: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await images.ingest(upload(), ALICE, idempotency_key=key)

    assert refused.value.field == "Idempotency-Key"
    assert unit_of_work.committed_images == []


async def test_a_retry_after_a_failed_detection_returns_the_kept_image(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory, detector: FakeDetector
) -> None:
    detector.error = DetectionFailed("model crashed")
    with pytest.raises(DetectionFailed) as failed:
        await images.ingest(upload(detect=True), ALICE, idempotency_key="k-1")

    again = await images.ingest(upload(detect=True), ALICE, idempotency_key="k-1")

    assert again.id == failed.value.image_id
    assert again.detection_error == "model crashed"
    assert len(unit_of_work.committed_images) == 1


async def test_by_default_the_same_bytes_make_a_new_image_sharing_the_blob(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    first = await images.ingest(upload(), ALICE)
    second = await images.ingest(upload(label="again"), BOB)

    assert second.id != first.id
    assert second.sha256 == first.sha256
    assert [image.label for image in unit_of_work.committed_images] == ["photo", "again"]


async def test_reuse_returns_the_live_image_with_those_bytes_and_stores_nothing(
    reusing: ImageService, unit_of_work: FakeUnitOfWorkFactory, detector: FakeDetector
) -> None:
    first = await reusing.ingest(upload(), ALICE)
    audited = len(unit_of_work.committed_audit)

    again = await reusing.ingest(upload(label="ignored", detect=True), BOB)

    assert again == first
    assert detector.calls == []
    assert len(unit_of_work.committed_audit) == audited
    await reusing.delete(first.id, ALICE)
    after_delete = await reusing.ingest(upload(), BOB)
    assert after_delete.id != first.id


async def test_reuse_remembers_the_key_of_the_request_that_found_a_duplicate(
    reusing: ImageService,
) -> None:
    first = await reusing.ingest(upload(), ALICE)
    await reusing.ingest(upload(), BOB, idempotency_key="bob-1")
    await reusing.delete(first.id, ALICE)

    with pytest.raises(ImageNotFound):
        await reusing.ingest(upload(), BOB, idempotency_key="bob-1")


async def test_a_detector_that_does_not_answer_in_time_fails_and_the_image_is_kept(
    make_images: Callable[..., ImageService],
    unit_of_work: FakeUnitOfWorkFactory,
    blobs: FakeBlobStore,
    detector: FakeDetector,
) -> None:
    impatient = make_images(detect_timeout=timedelta(milliseconds=20))
    detector.delay = 5.0

    with pytest.raises(DetectorUnavailable, match=r"did not answer within 0\.02 s") as failed:
        await impatient.ingest(upload(detect=True), ALICE)

    (stored,) = unit_of_work.committed_images
    assert stored.id == failed.value.image_id
    assert stored.detection_status is DetectionStatus.FAILED
    assert blobs.blobs
