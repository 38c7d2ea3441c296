"""The offline fallback: OpenCV's pretrained Haar cascades, no model files to fetch.

Four cascades from ``cv2.data.haarcascades`` (OpenCV 4.x wheels): frontal faces, full
bodies, cat faces and license plates. Far weaker than YOLO (frontal, upright objects
only) but always at hand.

Confidence. A cascade only reports windows that passed all its stages, so the evidence
left is how far the window's score in the last stage (the "level weight") cleared that
stage's threshold. We express it as a fraction of the headroom the stage allows,
``m = (weight - threshold) / (max_stage_sum - threshold)`` in 0..1, so cascades with
different score scales compare, and map it through a logistic,
``confidence = 1 / (1 + exp(-_SLOPE * m))``. A window that barely passed reads 0.5, one at
the stage's ceiling reads ~0.98; real faces in the sample photos read 0.64-0.73. This is a
monotone score, not a calibrated probability.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from imagetag.adapters.detectors._executor import GrayImage, ThreadedDetector, decode_rgb
from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo, Thresholds
from imagetag.domain.errors import DetectorUnavailable, InvalidInput

logger = logging.getLogger(__name__)

_SLOPE = 4.0
_SCALE_FACTOR = 1.1
# Neighbours a detection needs (overlapping hits at nearby scales and shifts). At 3 the
# sample photos gain a "face" on a flower (sklearn's flower.jpg); at 5 the turned face in
# zidane.jpg is lost.
_MIN_NEIGHBOURS = 4
_MIN_SIZE = (24, 24)


@dataclass(frozen=True, slots=True)
class _CascadeSpec:
    name: str
    file: str


_CASCADES = (
    # alt2 rather than "default": on the sample photos "default" adds three false faces
    # on zidane.jpg, alt2 none, and it finds the same true faces.
    _CascadeSpec("face", "haarcascade_frontalface_alt2.xml"),
    _CascadeSpec("person", "haarcascade_fullbody.xml"),
    _CascadeSpec("cat", "haarcascade_frontalcatface_extended.xml"),
    _CascadeSpec("license plate", "haarcascade_russian_plate_number.xml"),
)


@dataclass(frozen=True, slots=True)
class _Cascade:
    name: str
    classifier: cv2.CascadeClassifier
    threshold: float
    max_sum: float

    def confidence(self, level_weight: float) -> float:
        headroom = self.max_sum - self.threshold
        margin = (level_weight - self.threshold) / headroom if headroom > 0 else 1.0
        margin = min(max(margin, 0.0), 1.0)
        return 1.0 / (1.0 + math.exp(-_SLOPE * margin))


def _cascade_dir() -> Path:
    data = getattr(cv2, "data", None)
    directory = Path(getattr(data, "haarcascades", "")) if data is not None else None
    missing = [
        spec.file
        for spec in _CASCADES
        if directory is None or not (directory / spec.file).is_file()
    ]
    if directory is None or missing:
        raise DetectorUnavailable(
            f"OpenCV {cv2.__version__} does not ship the Haar cascades ({', '.join(missing)}); "
            "install opencv-python-headless 4.x (OpenCV 5 dropped them) or use a YOLO detector"
        )
    return directory


def _last_stage_bounds(path: Path) -> tuple[float, float]:
    """The last stage's threshold and the largest sum its weak classifiers can reach."""
    # Trusted input: the XML files ship inside the OpenCV wheel.
    root = ElementTree.parse(path).getroot()  # noqa: S314
    stages = root.findall("./cascade/stages/_")
    if not stages:
        raise DetectorUnavailable(f"{path.name} is not a cascade in OpenCV's XML format")
    last = stages[-1]
    threshold = float(last.findtext("stageThreshold", "nan"))
    max_sum = sum(
        max(float(value) for value in (weak.findtext("leafValues") or "0").split())
        for weak in last.findall("./weakClassifiers/_")
    )
    return threshold, max_sum


class OpenCvCascadeDetector(ThreadedDetector[list[_Cascade], GrayImage]):
    """Faces, people, cat faces and license plates with OpenCV's Haar cascades.

    Images are shrunk so their longest side is at most ``max_side`` pixels first: the face
    cascade alone takes ~10 s on a 12-megapixel photo and under 0.2 s at 800 pixels.
    """

    def __init__(self, *, max_side: int = 800) -> None:
        if max_side < 64:
            raise ValueError(f"max_side must be at least 64 pixels, got {max_side}")
        self._directory = _cascade_dir()
        super().__init__("imagetag-opencv")
        self._max_side = max_side

    @property
    def info(self) -> DetectorInfo:
        return DetectorInfo(
            detector="opencv",
            model="haarcascades",
            library_version=f"opencv {cv2.__version__}",
            parameters=(
                ("cascades", ",".join(Path(spec.file).stem for spec in _CASCADES)),
                ("max_side", str(self._max_side)),
                ("min_neighbours", str(_MIN_NEIGHBOURS)),
                ("scale_factor", str(_SCALE_FACTOR)),
            ),
        )

    def _load_model(self) -> list[_Cascade]:
        cascades = []
        for spec in _CASCADES:
            path = self._directory / spec.file
            classifier = cv2.CascadeClassifier(str(path))
            if classifier.empty():
                raise DetectorUnavailable(f"OpenCV could not read the cascade {path}")
            threshold, max_sum = _last_stage_bounds(path)
            cascades.append(_Cascade(spec.name, classifier, threshold, max_sum))
        logger.info("loaded %d OpenCV Haar cascades from %s", len(cascades), self._directory)
        return cascades

    def _check_thresholds(self, thresholds: Thresholds) -> None:
        if thresholds.iou is not None:
            raise InvalidInput(
                "the opencv detector has no IoU threshold (its cascades merge neighbours "
                "instead); send only confidence",
                field="iou",
            )

    def _decode_sync(self, model: list[_Cascade], image: bytes) -> GrayImage:
        gray = cv2.cvtColor(decode_rgb(image, max_side=self._max_side), cv2.COLOR_RGB2GRAY)
        height, width = gray.shape[:2]
        scale = self._max_side / max(height, width)
        if scale < 1.0:
            size = (max(round(width * scale), 1), max(round(height * scale), 1))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        return np.asarray(gray, dtype=np.uint8)

    def _detect_sync(
        self, model: list[_Cascade], gray: GrayImage, info: DetectorInfo
    ) -> list[Detection]:
        # The cascades have no score cut-off of their own; a confidence threshold given for
        # a run drops the windows it would not trust.
        minimum = info.confidence_threshold or 0.0
        height, width = gray.shape[:2]
        detections = []
        for cascade in model:
            rectangles, _levels, weights = cascade.classifier.detectMultiScale3(
                gray,
                scaleFactor=_SCALE_FACTOR,
                minNeighbors=_MIN_NEIGHBOURS,
                minSize=_MIN_SIZE,
                outputRejectLevels=True,
            )
            for (x, y, box_width, box_height), weight in zip(
                np.asarray(rectangles).reshape(-1, 4).tolist(),
                np.asarray(weights).reshape(-1).tolist(),
                strict=True,
            ):
                if cascade.confidence(weight) < minimum:
                    continue
                detections.append(
                    Detection(
                        name=cascade.name,
                        confidence=cascade.confidence(weight),
                        box=BoundingBox.from_pixels(
                            x, y, x + box_width, y + box_height, width=width, height=height
                        ),
                        detector=info,
                    )
                )
        return detections
