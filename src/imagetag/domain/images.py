"""The image record: what was ingested, by whom, and the tags it carries."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime

from imagetag.domain.detections import Detection, DetectorInfo
from imagetag.domain.principals import Actor
from imagetag.domain.tags import Tag, TagSource

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


def check_label(label: str) -> None:
    if not label or len(label) > MAX_LABEL_LENGTH or label != label.strip():
        raise ValueError("a label is trimmed, non-empty and at most 200 characters")


@dataclass(frozen=True, slots=True)
class DetectionRun:
    """One run of a detector over one image, asked for by someone.

    A failed run keeps why it failed; a successful one what it found. Running again adds
    a run: earlier runs and their tags stay, each with its own provenance.
    """

    detector: DetectorInfo
    status: DetectionStatus
    requested_by: Actor
    ran_at: datetime
    detections: tuple[Detection, ...] = field(default=())
    error: str | None = None

    def __post_init__(self) -> None:
        if self.status is DetectionStatus.NOT_REQUESTED:
            raise ValueError("a detection run either succeeded or failed")
        if (self.status is DetectionStatus.FAILED) != (self.error is not None):
            raise ValueError("a failed run, and only that, carries an error")
        if self.detections and self.status is not DetectionStatus.SUCCEEDED:
            raise ValueError("only a successful run has detections")
        if self.ran_at.tzinfo is None:
            raise ValueError("ran_at must be timezone-aware")

    def tags(self, run_id: int | None = None) -> tuple[Tag, ...]:
        """The model tags this run puts on the image."""
        return tuple(
            Tag.from_detection(detection, self.requested_by, self.ran_at, run_id)
            for detection in self.detections
        )


@dataclass(frozen=True, slots=True)
class NewImage:
    """An image accepted for storage, before the store gives it an id."""

    label: str
    source: str | None
    sha256: str
    facts: ImageFacts
    size_bytes: int
    created_at: datetime
    created_by: Actor
    detection: DetectionRun | None = None

    def __post_init__(self) -> None:
        check_label(self.label)
        if not _SHA256.fullmatch(self.sha256):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        if self.size_bytes <= 0:
            raise ValueError("an image has at least one byte")
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Image:
    """A stored image with its live tags; ``id`` is assigned by the store.

    ``detection_status`` and ``detection_error`` describe the latest detection run.
    """

    id: int
    label: str
    source: str | None
    sha256: str
    facts: ImageFacts
    size_bytes: int
    created_at: datetime
    created_by: Actor
    tags: tuple[Tag, ...] = field(default=())
    detection_status: DetectionStatus = DetectionStatus.NOT_REQUESTED
    detection_error: str | None = None

    def __post_init__(self) -> None:
        if self.id <= 0:
            raise ValueError("a stored image has a positive id")
        check_label(self.label)
        if (self.detection_status is DetectionStatus.FAILED) != (self.detection_error is not None):
            raise ValueError("a failed detection, and only that, carries an error")

    @property
    def detection_enabled(self) -> bool:
        return self.detection_status is not DetectionStatus.NOT_REQUESTED

    @property
    def objects(self) -> tuple[str, ...]:
        """Distinct names of what detectors found, alphabetical."""
        return tuple(sorted({tag.name for tag in self.tags if tag.source is TagSource.MODEL}))

    @property
    def tag_names(self) -> tuple[str, ...]:
        """Distinct names of every live tag, alphabetical."""
        return tuple(sorted({tag.name for tag in self.tags}))

    @classmethod
    def stored(cls, new: NewImage, image_id: int, run_id: int | None = None) -> Image:
        """The image as a store returns it right after adding ``new``."""
        run = new.detection
        return cls(
            id=image_id,
            label=new.label,
            source=new.source,
            sha256=new.sha256,
            facts=new.facts,
            size_bytes=new.size_bytes,
            created_at=new.created_at,
            created_by=new.created_by,
            tags=run.tags(run_id) if run else (),
            detection_status=run.status if run else DetectionStatus.NOT_REQUESTED,
            detection_error=run.error if run else None,
        )
