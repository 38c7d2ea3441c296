import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from imagetag.domain.detections import Detection, DetectorInfo
from imagetag.domain.images import (
    MAX_LABEL_LENGTH,
    DetectionStatus,
    Image,
    ImageFacts,
    NewImage,
)

SHA = "ab" * 32
FACTS = ImageFacts("image/jpeg", 640, 480)
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
YOLO = DetectorInfo(detector="yolo", model="yolov8n", library_version="8.3.0")


def new_image(**changes: Any) -> NewImage:
    values: dict[str, Any] = {
        "label": "dog",
        "source": "dog.jpg",
        "sha256": SHA,
        "facts": FACTS,
        "size_bytes": 1234,
        "created_at": NOW,
        "created_by": "admin",
    }
    return NewImage(**(values | changes))


def detected(*names: str) -> tuple[Detection, ...]:
    return tuple(Detection(name, 0.9, None, YOLO) for name in names)


@pytest.mark.parametrize("media_type", ["text/plain", "application/octet-stream", "", "IMAGE/png"])
def test_image_facts_need_an_image_media_type(media_type: str) -> None:
    with pytest.raises(ValueError, match="media type"):
        ImageFacts(media_type, 1, 1)


@pytest.mark.parametrize(("width", "height"), [(0, 1), (1, 0), (-1, 10)])
def test_image_facts_need_a_positive_width_and_height(width: int, height: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        ImageFacts("image/png", width, height)


def test_new_image_with_valid_fields_is_created_without_detection() -> None:
    image = new_image()

    assert image.detection_status is DetectionStatus.NOT_REQUESTED
    assert image.detections == ()


@pytest.mark.parametrize("label", ["", " dog", "dog ", "x" * (MAX_LABEL_LENGTH + 1)])
def test_new_image_label_must_be_trimmed_non_empty_and_bounded(label: str) -> None:
    with pytest.raises(ValueError, match="label"):
        new_image(label=label)


def test_new_image_label_may_be_exactly_max_length() -> None:
    assert new_image(label="x" * MAX_LABEL_LENGTH).label == "x" * MAX_LABEL_LENGTH


@pytest.mark.parametrize("sha256", ["", "ab" * 31, "AB" * 32, "zz" * 32, "ab" * 32 + "a"])
def test_new_image_sha256_is_64_lowercase_hex_digits(sha256: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        new_image(sha256=sha256)


@pytest.mark.parametrize("size_bytes", [0, -1])
def test_new_image_has_at_least_one_byte(size_bytes: int) -> None:
    with pytest.raises(ValueError, match="byte"):
        new_image(size_bytes=size_bytes)


def test_new_image_creation_time_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone"):
        new_image(created_at=datetime(2024, 5, 1, 12, 0))


def test_new_image_names_who_created_it() -> None:
    with pytest.raises(ValueError, match="created_by"):
        new_image(created_by="")


@pytest.mark.parametrize("status", [DetectionStatus.NOT_REQUESTED, DetectionStatus.FAILED])
def test_only_a_successful_detection_run_has_detections(status: DetectionStatus) -> None:
    with pytest.raises(ValueError, match="successful"):
        new_image(detection_status=status, detection_error="boom", detections=detected("dog"))


def test_failed_detection_must_say_why() -> None:
    with pytest.raises(ValueError, match="error"):
        new_image(detection_status=DetectionStatus.FAILED)


@pytest.mark.parametrize("status", [DetectionStatus.NOT_REQUESTED, DetectionStatus.SUCCEEDED])
def test_only_a_failed_detection_carries_an_error(status: DetectionStatus) -> None:
    with pytest.raises(ValueError, match="error"):
        new_image(detection_status=status, detection_error="boom")


def test_successful_detection_may_find_nothing() -> None:
    assert new_image(detection_status=DetectionStatus.SUCCEEDED).detections == ()


def test_stored_image_keeps_every_field_and_gains_its_id() -> None:
    new = new_image(detection_status=DetectionStatus.SUCCEEDED, detections=detected("dog"))

    image = Image.stored(new, 7)

    assert image.id == 7
    assert {f.name: getattr(image, f.name) for f in dataclasses.fields(NewImage)} == {
        f.name: getattr(new, f.name) for f in dataclasses.fields(NewImage)
    }


@pytest.mark.parametrize("image_id", [0, -3])
def test_stored_image_has_a_positive_id(image_id: int) -> None:
    with pytest.raises(ValueError, match="positive id"):
        Image.stored(new_image(), image_id)


def test_stored_image_still_checks_the_new_image_invariants() -> None:
    fields = {f.name: getattr(new_image(), f.name) for f in dataclasses.fields(NewImage)}

    with pytest.raises(ValueError, match="label"):
        Image(**(fields | {"label": ""}), id=1)


def test_image_objects_are_its_distinct_detected_names_in_alphabetical_order() -> None:
    new = new_image(
        detection_status=DetectionStatus.SUCCEEDED, detections=detected("person", "bus", "person")
    )

    assert Image.stored(new, 1).objects == ("bus", "person")


@pytest.mark.parametrize(
    ("status", "error", "enabled"),
    [
        (DetectionStatus.NOT_REQUESTED, None, False),
        (DetectionStatus.SUCCEEDED, None, True),
        (DetectionStatus.FAILED, "model missing", True),
    ],
)
def test_detection_is_enabled_once_it_was_requested(
    status: DetectionStatus, error: str | None, enabled: bool
) -> None:
    image = Image.stored(new_image(detection_status=status, detection_error=error), 1)

    assert image.detection_enabled is enabled
