"""Request and response bodies of the HTTP API; mapping from domain types is explicit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo
from imagetag.domain.images import Image


class IngestImageJson(msgspec.Struct, forbid_unknown_fields=True):
    """Send exactly one of ``image`` (base64 bytes) or ``url``."""

    image: Annotated[str, msgspec.Meta(description="The image bytes, base64-encoded")] | None = None
    url: Annotated[str, msgspec.Meta(description="An http(s) URL to fetch")] | None = None
    label: Annotated[str, msgspec.Meta(description="Optional; generated when missing")] | None = (
        None
    )
    detect: Annotated[bool, msgspec.Meta(description="Run object detection")] = False
    filename: Annotated[str, msgspec.Meta(description="Original file name of the bytes")] | None = (
        None
    )


class BoxBody(msgspec.Struct):
    x_min: float
    y_min: float
    x_max: float
    y_max: float


class DetectorBody(msgspec.Struct):
    detector: str
    model: str
    library_version: str
    model_sha256: str | None
    confidence_threshold: float | None
    iou_threshold: float | None


class DetectionBody(msgspec.Struct):
    name: str
    confidence: float
    box: BoxBody | None
    model: DetectorBody


class ImageBody(msgspec.Struct):
    id: int
    label: str
    source: str | None
    sha256: str
    media_type: str
    width: int
    height: int
    size_bytes: int
    created_at: datetime
    created_by: str
    detection_enabled: bool
    detection_status: str
    detection_error: str | None
    objects: list[str]
    detections: list[DetectionBody]
    content_url: str


class ImageListBody(msgspec.Struct):
    images: list[ImageBody]
    next_cursor: str | None


class HealthBody(msgspec.Struct):
    status: str
    version: str
    database: str
    detector: DetectorBody


def detector_body(info: DetectorInfo) -> DetectorBody:
    return DetectorBody(
        detector=info.detector,
        model=info.model,
        library_version=info.library_version,
        model_sha256=info.model_sha256,
        confidence_threshold=info.confidence_threshold,
        iou_threshold=info.iou_threshold,
    )


def _box_body(box: BoundingBox | None) -> BoxBody | None:
    if box is None:
        return None
    # Five decimals is a tenth of a pixel on a 10,000-pixel side.
    return BoxBody(
        x_min=round(box.x_min, 5),
        y_min=round(box.y_min, 5),
        x_max=round(box.x_max, 5),
        y_max=round(box.y_max, 5),
    )


def detection_body(detection: Detection) -> DetectionBody:
    return DetectionBody(
        name=detection.name,
        confidence=round(detection.confidence, 4),
        box=_box_body(detection.box),
        model=detector_body(detection.detector),
    )


def image_body(image: Image) -> ImageBody:
    return ImageBody(
        id=image.id,
        label=image.label,
        source=image.source,
        sha256=image.sha256,
        media_type=image.facts.media_type,
        width=image.facts.width,
        height=image.facts.height,
        size_bytes=image.size_bytes,
        created_at=image.created_at,
        created_by=image.created_by,
        detection_enabled=image.detection_enabled,
        detection_status=image.detection_status.value,
        detection_error=image.detection_error,
        objects=list(image.objects),
        detections=[detection_body(detection) for detection in image.detections],
        content_url=f"/images/{image.id}/content",
    )
