"""YOLO on PyTorch through ultralytics: any ``.pt`` detection checkpoint it can load."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from imagetag.adapters.detectors._executor import (
    RgbImage,
    ThreadedDetector,
    check_thresholds,
    decode_bgr,
    distribution_version,
    file_sha256,
    unit_clip,
)
from imagetag.adapters.detectors.ultralytics_env import configure_ultralytics_offline
from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo
from imagetag.domain.errors import DetectorUnavailable

if TYPE_CHECKING:
    from torch import Tensor
    from ultralytics.engine.predictor import BasePredictor
    from ultralytics.engine.results import Results
    from ultralytics.models import YOLO

logger = logging.getLogger(__name__)

ALLOW_DOWNLOAD_VARIABLE = "IMAGETAG_YOLO_ALLOW_DOWNLOAD"

# How long torch's OpenMP threads (libgomp) spin, waiting for more work, before they sleep.
# libgomp's default, 300,000 turns, keeps a core busy for ~8 ms after every image: the very
# time in which this process records one image and reads, sniffs and stores the next, so
# on two cores its own I/O threads queue behind the spinner (bench/detect). 10,000 turns
# (~0.25 ms) still bridge the gaps between a network's layers.
OPENMP_SPIN_VARIABLE = "GOMP_SPINCOUNT"
OPENMP_SPIN_TURNS = "10000"

# What ultralytics' loader calls an image given as an array.
_ARRAY_NAME = "image0.jpg"


def resolve_weights_path(weights: Path | str, models_dir: Path | None) -> Path:
    """Where weights named in settings live: a bare file name is looked up in ``models_dir``.

    A ``Path``, or a string with a directory part, is taken as it is.
    """
    if isinstance(weights, str) and models_dir is not None:
        bare = Path(weights)
        if bare.name == weights.strip():
            return models_dir.expanduser() / bare.name
    return Path(weights).expanduser()


class UltralyticsYoloDetector(ThreadedDetector["YOLO", RgbImage]):
    """Object detection with an ultralytics YOLO checkpoint on PyTorch (CPU or GPU).

    Nothing is downloaded unless ``allow_download`` is set: weights missing at construction
    raise ``DetectorUnavailable``. The model is loaded on the first image, or by ``load()``.
    A bare file name is looked up in ``models_dir``. ``threads`` sets torch's intra-op
    threads, process-wide (default: every core this process may use). Photos are padded
    as ``yolo predict`` pads them, unless ``square_letterbox`` asks for the square input a
    fixed-shape ONNX export sees (same pixels, same boxes as ``OnnxYoloDetector``).
    """

    def __init__(
        self,
        weights: Path | str,
        *,
        config_dir: Path,
        confidence: float = 0.25,
        iou: float = 0.7,
        image_size: int = 640,
        allow_download: bool = False,
        models_dir: Path | None = None,
        threads: int | None = None,
        square_letterbox: bool = False,
    ) -> None:
        check_thresholds(confidence, iou)
        if image_size < 32:
            raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be positive, got {threads}")
        super().__init__("imagetag-yolo")
        self._weights = resolve_weights_path(weights, models_dir)
        self._config_dir = config_dir
        self._confidence = confidence
        self._iou = iou
        self._image_size = image_size
        self._allow_download = allow_download
        self._threads = threads
        self._square = square_letterbox
        self._library_version = (
            f"ultralytics {distribution_version('ultralytics', 'ultralytics-opencv-headless')}"
            f"; torch {distribution_version('torch')}"
        )
        self._sha256: str | None = None
        self._sha_lock = threading.Lock()
        self._names: dict[int, str] = {}
        if not self._weights.is_file() and not allow_download:
            raise DetectorUnavailable(self._missing_weights_message())

    @property
    def weights_path(self) -> Path:
        """Where the weights are (or will be downloaded to)."""
        return self._weights

    @property
    def info(self) -> DetectorInfo:
        return DetectorInfo(
            detector="yolo",
            model=self._weights.name,
            library_version=self._library_version,
            model_sha256=self._weights_sha256(),
            confidence_threshold=self._confidence,
            iou_threshold=self._iou,
            parameters=(
                ("image_size", str(self._image_size)),
                ("letterbox", "square" if self._square else "minimal"),
            ),
        )

    def _weights_sha256(self) -> str | None:
        # Hashed once the file exists: with allow_download it only appears on first load.
        with self._sha_lock:
            if self._sha256 is None and self._weights.is_file():
                self._sha256 = file_sha256(self._weights)
            return self._sha256

    def _missing_weights_message(self) -> str:
        return (
            f"YOLO weights not found at {self._weights}; place the file there, or set "
            f"{ALLOW_DOWNLOAD_VARIABLE}=true to let imagetag download {self._weights.name} once"
        )

    def _load_model(self) -> YOLO:
        _limit_openmp_spinning()
        configure_ultralytics_offline(self._config_dir)
        if not self._weights.is_file():
            self._download_weights()

        import torch
        from ultralytics.models import YOLO

        model = YOLO(str(self._weights))
        if model.task != "detect":
            raise DetectorUnavailable(
                f"{self._weights.name} is a {model.task!r} model; imagetag needs a detection model"
            )
        self._names = {int(index): str(name) for index, name in model.names.items()}
        # The first predict builds the predictor and fuses layers; pay for it here, not on
        # the first user's image.
        blank = np.zeros((self._image_size, self._image_size, 3), dtype=np.uint8)
        self._predict(model, blank)
        # That first predict also set torch to cpu_count - 1 threads (ultralytics keeps a
        # core free for training data loaders): half the speed on two cores. Inference
        # runs one image at a time and wants every core.
        torch.set_num_threads(self._threads or _available_cores())
        logger.info(
            "loaded YOLO weights %s (%d classes) on %s",
            self._weights,
            len(self._names),
            model.device,
        )
        return model

    def _download_weights(self) -> None:
        if not self._allow_download:
            raise DetectorUnavailable(self._missing_weights_message())
        from ultralytics.utils.downloads import attempt_download_asset

        logger.info("downloading YOLO weights %s (allowed by settings)", self._weights.name)
        self._weights.parent.mkdir(parents=True, exist_ok=True)
        attempt_download_asset(self._weights)
        if not self._weights.is_file():
            raise DetectorUnavailable(
                f"could not download {self._weights.name}: it is not an ultralytics release asset "
                f"or the network is unreachable; place the file at {self._weights}"
            )

    def _predict(
        self, model: YOLO, bgr: npt.NDArray[np.uint8], info: DetectorInfo | None = None
    ) -> Results:
        info = info or self.info
        if model.predictor is not None:
            return _predict_with(model.predictor, bgr, info)
        # The first call builds ultralytics' predictor with these arguments for good.
        results = model.predict(
            bgr,
            conf=info.confidence_threshold,
            iou=info.iou_threshold,
            imgsz=self._image_size,
            # Ultralytics' own default pads non-square photos only to a multiple of the stride:
            # 20-40% less work than the square letterbox a fixed-shape ONNX export needs. The
            # square one makes both backends see the same pixels and agree box for box.
            rect=not self._square,
            verbose=False,
            save=False,
        )
        # One array in, stream off: a one-element list of Results (not tensors, not a generator).
        (result,) = cast("list[Results]", results)
        return result

    def _decode_sync(self, model: YOLO, image: bytes) -> RgbImage:
        # Ultralytics takes arrays in OpenCV's BGR order. Its letterbox fits the long side
        # into image_size: a big JPEG need not be decoded at full size for that.
        return decode_bgr(image, min_long_side=self._image_size)

    def _detect_sync(self, model: YOLO, bgr: RgbImage, info: DetectorInfo) -> list[Detection]:
        height, width = bgr.shape[:2]
        boxes = self._predict(model, bgr, info).boxes
        if boxes is None:
            return []
        corners = _as_numpy(boxes.xyxy).astype(np.float64).tolist()
        scores = _as_numpy(boxes.conf).astype(np.float64).tolist()
        classes = _as_numpy(boxes.cls).astype(np.int64).tolist()
        return [
            Detection(
                name=self._names.get(class_index, f"class {class_index}"),
                confidence=unit_clip(score),
                box=BoundingBox.from_pixels(*corner, width=width, height=height),
                detector=info,
            )
            for corner, score, class_index in zip(corners, scores, classes, strict=True)
        ]


def _predict_with(
    predictor: BasePredictor, bgr: npt.NDArray[np.uint8], info: DetectorInfo
) -> Results:
    """One image through ultralytics' own steps (letterbox, network, NMS, boxes scaled back),
    on the predictor the first ``YOLO.predict`` built.

    What ``YOLO.predict`` adds on every call, for one array, is set-up: merging and checking
    its arguments, a source loader, profilers, callbacks; ~0.7 ms of ~45 per image on two
    cores (bench/detect). Only the thresholds change from call to call, and only this
    detector's one inference thread uses the predictor.
    """
    import torch

    steps: Any = predictor  # ultralytics types its batch as None and postprocess not at all
    steps.args.conf = info.confidence_threshold
    steps.args.iou = info.iou_threshold
    # The batch predict would make of one array: postprocess names each result's image.
    steps.batch = ([_ARRAY_NAME], [bgr], [""])
    with torch.inference_mode():
        tensor = steps.preprocess([bgr])
        raw = steps.inference(tensor)
        (result,) = cast("list[Results]", steps.postprocess(raw, tensor, [bgr]))
    return result


def _as_numpy(values: Tensor | npt.NDArray[Any]) -> npt.NDArray[Any]:
    return values if isinstance(values, np.ndarray) else values.detach().cpu().numpy()


def _limit_openmp_spinning() -> None:
    """Shorten libgomp's spin-wait, unless set already; it is read once, when torch loads."""
    if "torch" not in sys.modules:
        os.environ.setdefault(OPENMP_SPIN_VARIABLE, OPENMP_SPIN_TURNS)


def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
