"""Which detector ``IMAGETAG_DETECTOR`` and the files at hand give (no model is loaded)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from imagetag.adapters.detectors.opencv_cascade import OpenCvCascadeDetector
from imagetag.adapters.detectors.selection import build_detector
from imagetag.adapters.detectors.yolo_onnx import OnnxYoloDetector
from imagetag.adapters.detectors.yolo_torch import UltralyticsYoloDetector
from imagetag.domain.errors import DetectorUnavailable
from imagetag.ports.detector import Detector

SELECTION_LOGGER = "imagetag.adapters.detectors.selection"


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "models"
    directory.mkdir()
    return directory


def place(models_dir: Path, name: str) -> Path:
    # Selection only checks that the file is there; nothing here loads it.
    path = models_dir / name
    path.write_bytes(b"weights")
    return path


def build(
    kind: str, models_dir: Path, *, yolo_model: str = "yolo11n.pt", allow_download: bool = False
) -> Detector:
    return build_detector(
        kind,
        yolo_model=yolo_model,
        models_dir=models_dir,
        config_dir=models_dir.parent / "ultralytics",
        confidence=0.3,
        iou=0.6,
        allow_download=allow_download,
    )


@pytest.fixture
def without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``torch`` unimportable, as Python itself marks a module that must not load."""
    monkeypatch.setitem(sys.modules, "torch", None)


def selection_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == SELECTION_LOGGER]


def test_auto_without_yolo_weights_falls_back_to_opencv_and_says_why(
    models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SELECTION_LOGGER)

    detector = build("auto", models_dir)

    assert isinstance(detector, OpenCvCascadeDetector)
    (message,) = selection_messages(caplog)
    assert "opencv" in message
    assert f"no YOLO weights at {models_dir / 'yolo11n.pt'}" in message


def test_auto_never_downloads_even_when_downloads_are_allowed(models_dir: Path) -> None:
    detector = build("auto", models_dir, allow_download=True)

    assert isinstance(detector, OpenCvCascadeDetector)
    assert not (models_dir / "yolo11n.pt").exists()


def test_auto_with_a_checkpoint_in_the_models_dir_uses_yolo_on_torch(
    models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    weights = place(models_dir, "yolo11n.pt")
    caplog.set_level(logging.INFO, logger=SELECTION_LOGGER)

    detector = build("auto", models_dir)

    assert isinstance(detector, UltralyticsYoloDetector)
    assert detector.weights_path == weights
    assert not detector.loaded
    (message,) = selection_messages(caplog)
    assert "yolo (yolo11n.pt)" in message


def test_auto_with_a_checkpoint_but_no_torch_falls_back_to_opencv(
    models_dir: Path, without_torch: None, caplog: pytest.LogCaptureFixture
) -> None:
    place(models_dir, "yolo11n.pt")
    caplog.set_level(logging.INFO, logger=SELECTION_LOGGER)

    detector = build("auto", models_dir)

    assert isinstance(detector, OpenCvCascadeDetector)
    (message,) = selection_messages(caplog)
    assert "imagetag[yolo]" in message


def test_auto_with_an_onnx_model_uses_onnxruntime_even_without_torch(
    models_dir: Path, without_torch: None
) -> None:
    place(models_dir, "yolo11n.onnx")

    detector = build("auto", models_dir, yolo_model="yolo11n.onnx")

    assert isinstance(detector, OnnxYoloDetector)
    assert detector.info.model == "yolo11n.onnx"


def test_a_path_is_taken_as_given_not_looked_up_in_the_models_dir(
    models_dir: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    weights = place(elsewhere, "custom.pt")

    detector = build("auto", models_dir, yolo_model=str(weights))

    assert isinstance(detector, UltralyticsYoloDetector)
    assert detector.weights_path == weights


def test_yolo_with_onnx_weights_runs_them_on_onnxruntime(models_dir: Path) -> None:
    place(models_dir, "yolo11n.onnx")

    assert isinstance(build("yolo", models_dir, yolo_model="yolo11n.onnx"), OnnxYoloDetector)


def test_yolo_onnx_takes_the_file_whatever_its_suffix(models_dir: Path) -> None:
    place(models_dir, "model.bin")

    assert isinstance(build("yolo-onnx", models_dir, yolo_model="model.bin"), OnnxYoloDetector)


def test_yolo_passes_the_thresholds_on(models_dir: Path) -> None:
    place(models_dir, "yolo11n.pt")

    info = build("yolo", models_dir).info

    assert (info.confidence_threshold, info.iou_threshold) == (0.3, 0.6)


def test_yolo_with_missing_weights_and_no_download_is_unavailable(models_dir: Path) -> None:
    with pytest.raises(DetectorUnavailable, match="IMAGETAG_YOLO_ALLOW_DOWNLOAD=true"):
        build("yolo", models_dir)


def test_yolo_with_missing_weights_may_download_them_on_first_use(models_dir: Path) -> None:
    detector = build("yolo", models_dir, allow_download=True)

    assert isinstance(detector, UltralyticsYoloDetector)
    assert detector.info.model_sha256 is None
    assert not (models_dir / "yolo11n.pt").exists()


def test_yolo_onnx_with_a_missing_model_is_unavailable(models_dir: Path) -> None:
    with pytest.raises(DetectorUnavailable, match="not found"):
        build("yolo-onnx", models_dir, yolo_model="yolo11n.onnx")


def test_opencv_is_used_when_asked_even_with_yolo_weights_at_hand(models_dir: Path) -> None:
    place(models_dir, "yolo11n.pt")

    assert isinstance(build("opencv", models_dir), OpenCvCascadeDetector)


def test_the_kind_is_read_without_regard_to_case_or_spaces(models_dir: Path) -> None:
    assert isinstance(build(" OpenCV ", models_dir), OpenCvCascadeDetector)


def test_an_unknown_kind_names_the_setting(models_dir: Path) -> None:
    with pytest.raises(ValueError, match="IMAGETAG_DETECTOR") as failure:
        build("tensorflow", models_dir)

    assert "'tensorflow'" in str(failure.value)
