"""Translation between rows and domain objects, kept in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagetag.adapters.sqla.tables import ApiKeyRow, DetectionRow, ImageRow
from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo
from imagetag.domain.images import DetectionStatus, Image, ImageFacts, NewImage
from imagetag.domain.principals import ApiKeyRecord


def image_row(image: NewImage) -> ImageRow:
    return ImageRow(
        label=image.label,
        source=image.source,
        sha256=image.sha256,
        media_type=image.facts.media_type,
        width=image.facts.width,
        height=image.facts.height,
        size_bytes=image.size_bytes,
        created_at=image.created_at,
        created_by=image.created_by,
        detection_status=image.detection_status.value,
        detection_error=image.detection_error,
        detections=[detection_row(detection) for detection in image.detections],
    )


def detection_row(detection: Detection) -> DetectionRow:
    box = detection.box
    info = detection.detector
    return DetectionRow(
        name=detection.name,
        confidence=detection.confidence,
        x_min=box.x_min if box else None,
        y_min=box.y_min if box else None,
        x_max=box.x_max if box else None,
        y_max=box.y_max if box else None,
        detector=info.detector,
        model=info.model,
        provenance={
            "library_version": info.library_version,
            "model_sha256": info.model_sha256,
            "confidence_threshold": info.confidence_threshold,
            "iou_threshold": info.iou_threshold,
            "parameters": dict(info.parameters),
        },
    )


def to_image(row: ImageRow) -> Image:
    return image_from_values(
        {name: getattr(row, name) for name in IMAGE_COLUMNS},
        tuple(to_detection(detection) for detection in row.detections),
    )


IMAGE_COLUMNS = (
    "id", "label", "source", "sha256", "media_type", "width", "height", "size_bytes",
    "created_at", "created_by", "detection_status", "detection_error",
)  # fmt: skip


def image_from_values(columns: Mapping[str, Any], detections: tuple[Detection, ...]) -> Image:
    """An image from its stored columns (by ``IMAGE_COLUMNS`` name) and its detections."""
    return Image(
        id=columns["id"],
        label=columns["label"],
        source=columns["source"],
        sha256=columns["sha256"],
        facts=ImageFacts(columns["media_type"], columns["width"], columns["height"]),
        size_bytes=columns["size_bytes"],
        created_at=columns["created_at"],
        created_by=columns["created_by"],
        detection_status=DetectionStatus(columns["detection_status"]),
        detection_error=columns["detection_error"],
        detections=detections,
    )


def to_detection(row: DetectionRow) -> Detection:
    return detection_from_values(
        name=row.name,
        confidence=row.confidence,
        corners=(row.x_min, row.y_min, row.x_max, row.y_max),
        detector=row.detector,
        model=row.model,
        provenance=row.provenance or {},
    )


def detection_from_values(
    *,
    name: str,
    confidence: float,
    corners: tuple[float | None, float | None, float | None, float | None],
    detector: str,
    model: str,
    provenance: dict[str, Any],
) -> Detection:
    """A detection from its stored columns; the box is absent when any corner is NULL."""
    x_min, y_min, x_max, y_max = corners
    box = (
        BoundingBox(x_min, y_min, x_max, y_max)
        if x_min is not None and y_min is not None and x_max is not None and y_max is not None
        else None
    )
    return Detection(
        name=name,
        confidence=confidence,
        box=box,
        detector=DetectorInfo(
            detector=detector,
            model=model,
            library_version=provenance.get("library_version", ""),
            model_sha256=provenance.get("model_sha256"),
            confidence_threshold=provenance.get("confidence_threshold"),
            iou_threshold=provenance.get("iou_threshold"),
            parameters=tuple(sorted((provenance.get("parameters") or {}).items())),
        ),
    )


def api_key_row(record: ApiKeyRecord) -> ApiKeyRow:
    return ApiKeyRow(
        name=record.name,
        key_hash=record.key_hash,
        prefix=record.prefix,
        created_at=record.created_at,
        revoked_at=record.revoked_at,
    )


def to_api_key(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(
        name=row.name,
        key_hash=row.key_hash,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
