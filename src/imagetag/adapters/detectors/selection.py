"""Pick the detector named by ``IMAGETAG_DETECTOR``, or the best one at hand for ``auto``."""

from __future__ import annotations

import logging
from importlib.util import find_spec
from pathlib import Path

from imagetag.adapters.detectors.imagga_http import ImaggaConfig, ImaggaHttpDetector
from imagetag.adapters.detectors.opencv_cascade import OpenCvCascadeDetector
from imagetag.adapters.detectors.yolo_onnx import OnnxYoloDetector
from imagetag.adapters.detectors.yolo_torch import UltralyticsYoloDetector, resolve_weights_path
from imagetag.ports.detector import Detector

logger = logging.getLogger(__name__)

DETECTOR_KINDS = ("auto", "yolo", "yolo-onnx", "opencv", "imagga")


def torch_stack_installed() -> bool:
    """Whether ultralytics and torch are installed; found without importing torch (slow)."""
    return find_spec("ultralytics") is not None and find_spec("torch") is not None


def build_detector(
    kind: str,
    *,
    yolo_model: str,
    models_dir: Path,
    config_dir: Path,
    confidence: float,
    iou: float,
    allow_download: bool,
    imagga: ImaggaConfig | None = None,
) -> Detector:
    """Build the detector for ``kind``: ``auto``, ``yolo``, ``yolo-onnx``, ``opencv`` or
    ``imagga`` (Imagga's tagging API, configured by ``imagga``).

    ``yolo`` runs ``.onnx`` weights on onnxruntime and anything else on ultralytics.
    ``auto`` takes YOLO only when its weights are already on disk (it never downloads) and
    the runtime they need is installed, and falls back to OpenCV's Haar cascades otherwise.
    Models load on first use, so building is cheap.
    """
    choice = kind.strip().lower()
    if choice not in DETECTOR_KINDS:
        raise ValueError(
            f"IMAGETAG_DETECTOR must be one of {', '.join(DETECTOR_KINDS)}; got {kind!r}"
        )
    if choice == "imagga":
        if imagga is None:
            raise ValueError("IMAGETAG_DETECTOR=imagga needs the Imagga settings")
        return _chosen(ImaggaHttpDetector(imagga), f"IMAGETAG_DETECTOR=imagga, {imagga.url}")
    weights = resolve_weights_path(yolo_model, models_dir)
    is_onnx = weights.suffix.lower() == ".onnx"

    def yolo_torch() -> Detector:
        return UltralyticsYoloDetector(
            weights,
            config_dir=config_dir,
            confidence=confidence,
            iou=iou,
            allow_download=allow_download,
        )

    def yolo_onnx() -> Detector:
        return OnnxYoloDetector(weights, confidence=confidence, iou=iou)

    if choice == "opencv":
        return _chosen(OpenCvCascadeDetector(), "IMAGETAG_DETECTOR=opencv")
    if choice == "yolo-onnx" or (choice == "yolo" and is_onnx):
        return _chosen(yolo_onnx(), f"IMAGETAG_DETECTOR={choice}, weights {weights}")
    if choice == "yolo":
        return _chosen(yolo_torch(), f"IMAGETAG_DETECTOR=yolo, weights {weights}")

    if not weights.is_file():
        reason = (
            f"no YOLO weights at {weights} (auto never downloads; place the file there, or set "
            "IMAGETAG_DETECTOR=yolo and IMAGETAG_YOLO_ALLOW_DOWNLOAD=true)"
        )
    elif is_onnx:
        return _chosen(yolo_onnx(), f"auto, found {weights}")
    elif torch_stack_installed():
        return _chosen(yolo_torch(), f"auto, found {weights} and ultralytics with torch")
    else:
        reason = (
            f"{weights} needs ultralytics and torch, which are not installed "
            "(pip install 'imagetag[yolo]', or export the weights to ONNX)"
        )
    return _chosen(OpenCvCascadeDetector(), f"auto, {reason}")


def _chosen(detector: Detector, reason: str) -> Detector:
    info = detector.info
    logger.info("detector: %s (%s), chosen by %s", info.detector, info.model, reason)
    return detector
