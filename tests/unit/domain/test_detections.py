import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo, object_names
from imagetag.domain.objects import MAX_OBJECT_NAME_LENGTH

YOLO = DetectorInfo(detector="yolo", model="yolov8n", library_version="8.3.0")

unit_floats = st.floats(min_value=0.0, max_value=1.0)
outside_unit = st.floats(allow_nan=True, allow_infinity=True).filter(
    lambda value: not 0.0 <= value <= 1.0
)
pixel_coordinates = st.floats(min_value=-1e6, max_value=1e6)
image_sizes = st.integers(min_value=1, max_value=10_000)


@given(unit_floats, unit_floats, unit_floats, unit_floats)
def test_box_with_ordered_corners_inside_the_unit_square_is_valid(
    a: float, b: float, c: float, d: float
) -> None:
    box = BoundingBox(min(a, b), min(c, d), max(a, b), max(c, d))

    assert (box.x_min, box.y_min, box.x_max, box.y_max) == (
        min(a, b),
        min(c, d),
        max(a, b),
        max(c, d),
    )


@given(st.integers(min_value=0, max_value=3), outside_unit)
def test_box_with_a_coordinate_outside_zero_to_one_is_rejected(index: int, bad: float) -> None:
    corners = [0.0, 0.0, 1.0, 1.0]
    corners[index] = bad

    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        BoundingBox(*corners)


@pytest.mark.parametrize("corners", [(0.6, 0.0, 0.5, 1.0), (0.0, 0.6, 1.0, 0.5)])
def test_box_with_corners_out_of_order_is_rejected(
    corners: tuple[float, float, float, float],
) -> None:
    with pytest.raises(ValueError, match="out of order"):
        BoundingBox(*corners)


def test_box_from_pixels_is_normalised_to_the_image_size() -> None:
    box = BoundingBox.from_pixels(10, 20, 110, 220, width=200, height=400)

    assert box == BoundingBox(0.05, 0.05, 0.55, 0.55)


def test_box_from_pixels_is_clipped_to_the_image() -> None:
    box = BoundingBox.from_pixels(-5, -1, 250, 900, width=200, height=400)

    assert box == BoundingBox(0.0, 0.0, 1.0, 1.0)


@given(pixel_coordinates, pixel_coordinates, pixel_coordinates, pixel_coordinates, image_sizes)
def test_box_from_ordered_pixels_is_always_a_valid_box(
    a: float, b: float, c: float, d: float, size: int
) -> None:
    box = BoundingBox.from_pixels(
        min(a, b), min(c, d), max(a, b), max(c, d), width=size, height=size
    )

    assert 0.0 <= box.x_min <= box.x_max <= 1.0
    assert 0.0 <= box.y_min <= box.y_max <= 1.0


@pytest.mark.parametrize(("detector", "model"), [("", "m"), ("d", ""), ("  ", "m"), ("d", "\t")])
def test_detector_info_needs_a_detector_and_model_name(detector: str, model: str) -> None:
    with pytest.raises(ValueError, match="named"):
        DetectorInfo(detector=detector, model=model, library_version="1")


@pytest.mark.parametrize("threshold", [-0.1, 1.5, math.nan, math.inf])
def test_detector_info_thresholds_lie_within_zero_to_one(threshold: float) -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        DetectorInfo("d", "m", "1", confidence_threshold=threshold)
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        DetectorInfo("d", "m", "1", iou_threshold=threshold)


def test_detection_name_is_normalised() -> None:
    detection = Detection(name=" Traffic_Light ", confidence=0.5, box=None, detector=YOLO)

    assert detection.name == "traffic light"


@pytest.mark.parametrize("name", ["", "  ", '""', "_"])
def test_detection_without_an_object_name_is_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="needs an object name"):
        Detection(name=name, confidence=0.5, box=None, detector=YOLO)


def test_detection_name_may_be_as_long_as_the_maximum_after_normalisation() -> None:
    name = "x" * MAX_OBJECT_NAME_LENGTH

    assert Detection(name=f"  {name}  ", confidence=0.5, box=None, detector=YOLO).name == name


def test_detection_name_longer_than_the_maximum_is_rejected() -> None:
    with pytest.raises(ValueError, match="longer than"):
        Detection(name="x" * (MAX_OBJECT_NAME_LENGTH + 1), confidence=0.5, box=None, detector=YOLO)


@given(unit_floats)
def test_detection_confidence_within_zero_to_one_is_kept(confidence: float) -> None:
    assert Detection("dog", confidence, None, YOLO).confidence == confidence


@given(outside_unit)
def test_detection_confidence_outside_zero_to_one_is_rejected(confidence: float) -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        Detection("dog", confidence, None, YOLO)


def test_object_names_are_distinct_and_alphabetical() -> None:
    detections = [Detection(name, 0.9, None, YOLO) for name in ["person", "Bus", "person", "dog"]]

    assert object_names(detections) == ("bus", "dog", "person")


def test_object_names_of_no_detections_is_empty() -> None:
    assert object_names(()) == ()


def test_model_version_is_the_weights_sha256_prefix_when_the_weights_are_known() -> None:
    info = DetectorInfo("yolo-torch", "yolov8n.pt", "8.3.0", model_sha256="3b2c1f0e9d8a" + "0" * 52)

    assert info.model_version == "3b2c1f0e9d8a"


def test_model_version_is_the_library_version_when_the_weights_are_unknown() -> None:
    assert DetectorInfo("imagga", "imagga-tagging", "v2").model_version == "v2"
