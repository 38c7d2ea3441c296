import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from imagetag.domain.detections import Detection, DetectorInfo
from imagetag.domain.images import (
    MAX_LABEL_LENGTH,
    DetectionRun,
    DetectionStatus,
    Image,
    ImageFacts,
    NewImage,
)
from imagetag.domain.principals import Actor
from imagetag.domain.tags import Tag, TagSource

SHA = "ab" * 32
FACTS = ImageFacts("image/jpeg", 640, 480)
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ALICE = Actor("alice", "labelling-ui")
YOLO = DetectorInfo(detector="yolo", model="yolov8n", library_version="8.3.0")


def detected(*names: str) -> tuple[Detection, ...]:
    return tuple(Detection(name, 0.9, None, YOLO) for name in names)


def run(**changes: Any) -> DetectionRun:
    values: dict[str, Any] = {
        "detector": YOLO,
        "status": DetectionStatus.SUCCEEDED,
        "requested_by": ALICE,
        "ran_at": NOW,
    }
    return DetectionRun(**(values | changes))


def new_image(**changes: Any) -> NewImage:
    values: dict[str, Any] = {
        "label": "dog",
        "source": "dog.jpg",
        "sha256": SHA,
        "facts": FACTS,
        "size_bytes": 1234,
        "created_at": NOW,
        "created_by": ALICE,
    }
    return NewImage(**(values | changes))


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

    assert image.detection is None
    assert image.created_by == ALICE


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


def test_a_detection_run_either_succeeded_or_failed() -> None:
    with pytest.raises(ValueError, match="succeeded or failed"):
        run(status=DetectionStatus.NOT_REQUESTED)


def test_only_a_successful_detection_run_has_detections() -> None:
    with pytest.raises(ValueError, match="successful"):
        run(status=DetectionStatus.FAILED, error="boom", detections=detected("dog"))


def test_a_failed_detection_run_must_say_why() -> None:
    with pytest.raises(ValueError, match="error"):
        run(status=DetectionStatus.FAILED)


def test_only_a_failed_detection_run_carries_an_error() -> None:
    with pytest.raises(ValueError, match="error"):
        run(error="boom")


def test_a_successful_detection_run_may_find_nothing() -> None:
    assert run().tags() == ()


def test_a_detection_run_time_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone"):
        run(ran_at=datetime(2024, 5, 1, 12, 0))


def test_a_detection_run_tags_the_image_with_each_detection_as_asked_for_by_its_requester() -> None:
    found = Detection("dog", 0.7, None, YOLO)

    [tag] = run(detections=(found,)).tags(run_id=4)

    assert tag == Tag.from_detection(found, ALICE, NOW, run_id=4)
    assert (tag.source, tag.actor, tag.added_at, tag.run_id) == (TagSource.MODEL, ALICE, NOW, 4)


def test_a_stored_image_keeps_every_field_and_gains_its_id() -> None:
    new = new_image()

    image = Image.stored(new, 7)

    assert image.id == 7
    fields = {f.name for f in dataclasses.fields(NewImage)} - {"detection"}
    assert {name: getattr(image, name) for name in fields} == {
        name: getattr(new, name) for name in fields
    }
    assert image.tags == ()
    assert image.detection_status is DetectionStatus.NOT_REQUESTED


def test_a_stored_image_carries_the_model_tags_of_its_detection_run() -> None:
    new = new_image(detection=run(detections=detected("person", "bus", "person")))

    image = Image.stored(new, 7, run_id=2)

    assert [(tag.name, tag.source, tag.run_id) for tag in image.tags] == [
        ("person", TagSource.MODEL, 2),
        ("bus", TagSource.MODEL, 2),
        ("person", TagSource.MODEL, 2),
    ]
    assert image.detection_status is DetectionStatus.SUCCEEDED


def test_a_stored_image_whose_detection_failed_says_why_and_has_no_tags() -> None:
    new = new_image(detection=run(status=DetectionStatus.FAILED, error="model missing"))

    image = Image.stored(new, 7)

    assert image.detection_status is DetectionStatus.FAILED
    assert image.detection_error == "model missing"
    assert image.tags == ()


@pytest.mark.parametrize("image_id", [0, -3])
def test_a_stored_image_has_a_positive_id(image_id: int) -> None:
    with pytest.raises(ValueError, match="positive id"):
        Image.stored(new_image(), image_id)


def test_a_stored_image_still_checks_the_label() -> None:
    with pytest.raises(ValueError, match="label"):
        dataclasses.replace(Image.stored(new_image(), 1), label="")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (DetectionStatus.FAILED, None),
        (DetectionStatus.SUCCEEDED, "boom"),
        (DetectionStatus.NOT_REQUESTED, "boom"),
    ],
)
def test_a_stored_image_carries_an_error_exactly_when_its_detection_failed(
    status: DetectionStatus, error: str | None
) -> None:
    with pytest.raises(ValueError, match="error"):
        dataclasses.replace(
            Image.stored(new_image(), 1), detection_status=status, detection_error=error
        )


def test_image_objects_are_the_distinct_model_tag_names_in_alphabetical_order() -> None:
    image = Image.stored(
        new_image(detection=run(detections=detected("person", "bus", "person"))), 1
    )
    image = dataclasses.replace(image, tags=(*image.tags, Tag.by_human("zebra", ALICE, NOW)))

    assert image.objects == ("bus", "person")


def test_image_tag_names_are_the_distinct_names_of_every_tag_in_alphabetical_order() -> None:
    image = Image.stored(new_image(detection=run(detections=detected("person", "bus"))), 1)
    image = dataclasses.replace(
        image,
        tags=(*image.tags, Tag.by_human("zebra", ALICE, NOW), Tag.by_human("bus", ALICE, NOW)),
    )

    assert image.tag_names == ("bus", "person", "zebra")


@pytest.mark.parametrize(
    ("detection", "enabled"),
    [
        (None, False),
        (run(), True),
        (run(status=DetectionStatus.FAILED, error="model missing"), True),
    ],
)
def test_detection_is_enabled_once_it_was_requested(
    detection: DetectionRun | None, enabled: bool
) -> None:
    image = Image.stored(new_image(detection=detection), 1)

    assert image.detection_enabled is enabled
