"""What a detector found in an image, and which detector found it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from imagetag.domain.errors import InvalidInput
from imagetag.domain.objects import MAX_OBJECT_NAME_LENGTH, normalise_object_name


def _check_unit_interval(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be within 0..1, got {value!r}")


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """An axis-aligned box with coordinates normalised to the image size (0..1)."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float

    def __post_init__(self) -> None:
        for name in ("x_min", "y_min", "x_max", "y_max"):
            _check_unit_interval(name, getattr(self, name))
        if self.x_min > self.x_max or self.y_min > self.y_max:
            raise ValueError(f"box corners are out of order: {self}")

    @classmethod
    def from_pixels(
        cls, x_min: float, y_min: float, x_max: float, y_max: float, *, width: int, height: int
    ) -> BoundingBox:
        """Normalise a pixel box, clipping it to the image."""

        if width <= 0 or height <= 0:
            raise ValueError("an image has a positive width and height")

        def clip(value: float, size: int) -> float:
            return min(max(value / size, 0.0), 1.0)

        return cls(clip(x_min, width), clip(y_min, height), clip(x_max, width), clip(y_max, height))


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Thresholds for one detection run, overriding the detector's configured ones."""

    confidence: float | None = None
    iou: float | None = None

    def __post_init__(self) -> None:
        if self.confidence is not None and not (
            math.isfinite(self.confidence) and 0.0 <= self.confidence <= 1.0
        ):
            raise InvalidInput("confidence must be within 0..1", field="confidence")
        if self.iou is not None and not (math.isfinite(self.iou) and 0.0 < self.iou <= 1.0):
            raise InvalidInput("iou must be within 0..1, above 0", field="iou")


@dataclass(frozen=True, slots=True)
class DetectorInfo:
    """Provenance of a detection: which detector and model, with which settings."""

    detector: str
    model: str
    library_version: str
    model_sha256: str | None = None
    confidence_threshold: float | None = None
    iou_threshold: float | None = None
    parameters: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.detector.strip() or not self.model.strip():
            raise ValueError("detector and model must be named")
        for name in ("confidence_threshold", "iou_threshold"):
            value = getattr(self, name)
            if value is not None:
                _check_unit_interval(name, value)

    def with_thresholds(self, thresholds: Thresholds | None) -> DetectorInfo:
        """This detector as it runs with ``thresholds``: the provenance of that run."""
        if thresholds is None:
            return self
        return replace(
            self,
            confidence_threshold=(
                thresholds.confidence
                if thresholds.confidence is not None
                else self.confidence_threshold
            ),
            iou_threshold=thresholds.iou if thresholds.iou is not None else self.iou_threshold,
        )

    @property
    def model_version(self) -> str:
        """What ``model=NAME@VERSION`` matches: the weights' sha256 prefix when the weights
        are known, else the version of the library or service that ran the model."""
        return self.model_sha256[:12] if self.model_sha256 else self.library_version


@dataclass(frozen=True, slots=True)
class Detection:
    """One object found in an image."""

    name: str
    confidence: float
    box: BoundingBox | None
    detector: DetectorInfo

    def __post_init__(self) -> None:
        normalised = normalise_object_name(self.name)
        if not normalised:
            raise ValueError("a detection needs an object name")
        if len(normalised) > MAX_OBJECT_NAME_LENGTH:
            raise ValueError(f"object name longer than {MAX_OBJECT_NAME_LENGTH} characters")
        object.__setattr__(self, "name", normalised)
        _check_unit_interval("confidence", self.confidence)


def object_names(detections: tuple[Detection, ...] | list[Detection]) -> tuple[str, ...]:
    """Distinct object names in alphabetical order, so equal findings read the same."""
    return tuple(sorted({detection.name for detection in detections}))
