"""The Detector port: what every detector, fake or real, promises the services."""

from __future__ import annotations

import asyncio
import time

import pytest

from imagetag.domain.detections import Detection, DetectorInfo, Thresholds
from imagetag.domain.errors import DetectionFailed, InvalidInput
from tests.contract.adapters import DetectorCase


def assert_well_formed(found: list[Detection], info: DetectorInfo) -> None:
    for detection in found:
        assert detection.detector == info
        assert 0.0 <= detection.confidence <= 1.0
        if detection.box is not None:
            box = detection.box
            assert 0.0 <= box.x_min <= box.x_max <= 1.0
            assert 0.0 <= box.y_min <= box.y_max <= 1.0


def test_info_names_the_detector_and_its_model(detector_case: DetectorCase) -> None:
    info = detector_case.detector.info

    assert (info.detector, info.model) == (detector_case.detector_name, detector_case.model_name)
    assert info.library_version


async def test_a_real_photo_gives_well_formed_detections_of_the_expected_objects(
    detector_case: DetectorCase,
) -> None:
    detector = detector_case.detector

    found = await detector.detect(detector_case.photo)

    assert_well_formed(found, detector.info)
    expected = [d for d in found if d.name in detector_case.finds_any_of]
    assert len(expected) >= detector_case.at_least, [d.name for d in found]


async def test_a_confidence_threshold_for_one_call_keeps_only_surer_ones_and_is_recorded(
    detector_case: DetectorCase,
) -> None:
    detector = detector_case.detector
    strict = Thresholds(confidence=0.9)

    sure = await detector.detect(detector_case.photo, strict)

    assert_well_formed(sure, detector.info.with_thresholds(strict))
    assert all(d.confidence >= 0.9 for d in sure)
    assert {d.detector.confidence_threshold for d in sure} <= {0.9}


async def test_an_iou_threshold_is_recorded_or_refused_as_invalid_input(
    detector_case: DetectorCase,
) -> None:
    detector = detector_case.detector
    thresholds = Thresholds(confidence=0.3, iou=0.5)

    if not detector_case.has_iou_threshold:
        with pytest.raises(InvalidInput):
            await detector.detect(detector_case.photo, thresholds)
        return
    found = await detector.detect(detector_case.photo, thresholds)
    assert found
    assert_well_formed(found, detector.info.with_thresholds(thresholds))


TRUNCATED_PNG = b"\x89PNG\r\n\x1a\ntruncated"


@pytest.mark.parametrize(
    "data", [b"", b"certainly not an image", TRUNCATED_PNG], ids=["empty", "text", "truncated-png"]
)
async def test_bytes_that_are_no_image_fail_with_a_one_line_message(
    detector_case: DetectorCase, data: bytes
) -> None:
    with pytest.raises(DetectionFailed) as failure:
        await detector_case.detector.detect(data)

    message = str(failure.value)
    assert message
    assert "\n" not in message
    assert "Traceback" not in message


async def test_detection_runs_off_the_event_loop(detector_case: DetectorCase) -> None:
    detector, photo = detector_case.detector, detector_case.photo
    ticks = 0
    stop = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    beating = asyncio.create_task(heartbeat())
    started = time.perf_counter()
    await asyncio.gather(detector.detect(photo), detector.detect(photo))
    elapsed = time.perf_counter() - started
    stop.set()
    await beating

    # A blocked loop would tick once or twice; a free one ticks every few milliseconds.
    assert ticks >= min(10, elapsed / 0.05)
