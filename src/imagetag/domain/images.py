"""The image record: what was ingested, by whom, and what was detected in it."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime

from imagetag.domain.detections import Detection, object_names

MAX_LABEL_LENGTH = 200
_SHA256 = re.compile(r"[0-9a-f]{64}")


class DetectionStatus(enum.StrEnum):
    NOT_REQUESTED = "not_requested"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """What decoding the bytes told us: format and size."""

    media_type: str
    width: int
    height: int

    def __post_init__(self) -> None:
        if not self.media_type.startswith("image/"):
            raise ValueError(f"not an image media type: {self.media_type!r}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError("an image has a positive width and height")


@dataclass(frozen=True, slots=True)
class NewImage:
    """An image accepted for storage, before the store gives it an id."""

    label: str
    source: str | None
    sha256: str
    facts: ImageFacts
    size_bytes: int
    created_at: datetime
    created_by: str
    detection_status: DetectionStatus = DetectionStatus.NOT_REQUESTED
    detection_error: str | None = None
    detections: tuple[Detection, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.label or len(self.label) > MAX_LABEL_LENGTH or self.label != self.label.strip():
            raise ValueError("a label is trimmed, non-empty and at most 200 characters")
        if not _SHA256.fullmatch(self.sha256):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        if self.size_bytes <= 0:
            raise ValueError("an image has at least one byte")
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")
        if not self.created_by:
            raise ValueError("created_by names the principal that created the image")
        if self.detections and self.detection_status is not DetectionStatus.SUCCEEDED:
            raise ValueError("only a successful detection run has detections")
        if (self.detection_status is DetectionStatus.FAILED) != (self.detection_error is not None):
            raise ValueError("a failed detection, and only that, carries an error")


@dataclass(frozen=True, slots=True)
class Image(NewImage):
    """A stored image; ``id`` is assigned by the store."""

    id: int = 0

    def __post_init__(self) -> None:
        NewImage.__post_init__(self)
        if self.id <= 0:
            raise ValueError("a stored image has a positive id")

    @property
    def detection_enabled(self) -> bool:
        return self.detection_status is not DetectionStatus.NOT_REQUESTED

    @property
    def objects(self) -> tuple[str, ...]:
        return object_names(self.detections)

    @classmethod
    def stored(cls, new: NewImage, image_id: int) -> Image:
        return cls(
            label=new.label,
            source=new.source,
            sha256=new.sha256,
            facts=new.facts,
            size_bytes=new.size_bytes,
            created_at=new.created_at,
            created_by=new.created_by,
            detection_status=new.detection_status,
            detection_error=new.detection_error,
            detections=new.detections,
            id=image_id,
        )
