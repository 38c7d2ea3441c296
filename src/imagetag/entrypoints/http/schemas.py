"""Request and response bodies of the HTTP API; mapping from domain types is explicit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from imagetag.domain.audit import AuditEvent
from imagetag.domain.detections import BoundingBox, DetectorInfo
from imagetag.domain.images import Image
from imagetag.domain.principals import Actor
from imagetag.domain.tags import Tag


class IngestImageJson(msgspec.Struct, forbid_unknown_fields=True):
    """Send exactly one of ``image`` (base64 bytes) or ``url``."""

    # A view of the body, decoded a window at a time (upload_bodies.py); null is missing.
    image: msgspec.Raw = msgspec.Raw()
    url: Annotated[str, msgspec.Meta(description="An http(s) URL to fetch")] | None = None
    label: Annotated[str, msgspec.Meta(description="Optional; generated when missing")] | None = (
        None
    )
    detect: Annotated[bool, msgspec.Meta(description="Run object detection")] = False
    filename: Annotated[str, msgspec.Meta(description="Original file name of the bytes")] | None = (
        None
    )


class DetectAgainJson(msgspec.Struct, forbid_unknown_fields=True):
    """Thresholds for one detection run; the detector's configured ones otherwise."""

    confidence: float | None = None
    iou: float | None = None


class TagsJson(msgspec.Struct, forbid_unknown_fields=True):
    names: Annotated[
        list[str], msgspec.Meta(description='Tag names to add, e.g. ["cat", "indoor"]')
    ]


class ImagePatchJson(msgspec.Struct, forbid_unknown_fields=True):
    label: Annotated[str, msgspec.Meta(description="The new label (trimmed, 1-200 characters)")]


class ProblemBody(msgspec.Struct):
    """An RFC 9457 problem: every error answer, as ``application/problem+json``."""

    type: Annotated[str, msgspec.Meta(description="A URI naming the kind of problem")]
    title: Annotated[str, msgspec.Meta(description="The status code's phrase")]
    status: int
    detail: Annotated[str, msgspec.Meta(description="What went wrong and what to fix")]
    field: Annotated[str, msgspec.Meta(description="The parameter or field at fault")] | None = None
    errors: (
        Annotated[
            list[dict[str, Any]], msgspec.Meta(description="Each validation error, when several")
        ]
        | None
    ) = None
    image_id: (
        Annotated[int, msgspec.Meta(description="The image stored despite a detector failure")]
        | None
    ) = None


class BoxBody(msgspec.Struct):
    x_min: float
    y_min: float
    x_max: float
    y_max: float


class DetectorBody(msgspec.Struct):
    detector: str
    model: str
    model_version: str
    library_version: str
    model_sha256: str | None
    confidence_threshold: float | None
    iou_threshold: float | None
    parameters: dict[str, str]


class ActorBody(msgspec.Struct):
    user: str
    client: str


class TagBody(msgspec.Struct):
    """A live tag. ``human`` tags have no confidence, box, model or run."""

    name: str
    source: str
    added_by: ActorBody
    added_at: datetime
    confidence: float | None
    box: BoxBody | None
    model: DetectorBody | None
    run_id: int | None


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
    created_by: ActorBody
    detection_enabled: bool
    detection_status: str
    detection_error: str | None
    objects: list[str]
    tags: list[TagBody]
    content_url: str


class ImageListBody(msgspec.Struct):
    images: list[ImageBody]
    next_cursor: str | None


class ImageTagsBody(msgspec.Struct):
    image_id: int
    tags: list[TagBody]


class TagRemovalBody(msgspec.Struct):
    image_id: int
    name: str
    removed: int


class TagCountBody(msgspec.Struct):
    name: str
    images: int
    human: int
    model: int


class TagCountsBody(msgspec.Struct):
    tags: list[TagCountBody]


class AuditEventBody(msgspec.Struct):
    id: int
    type: str
    occurred_at: datetime
    actor: ActorBody
    target: str
    image_id: int | None
    payload: dict[str, str | int | float | bool | None]


class AuditPageBody(msgspec.Struct):
    events: list[AuditEventBody]
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
        model_version=info.model_version,
        library_version=info.library_version,
        model_sha256=info.model_sha256,
        confidence_threshold=info.confidence_threshold,
        iou_threshold=info.iou_threshold,
        parameters=dict(info.parameters),
    )


def actor_body(actor: Actor) -> ActorBody:
    return ActorBody(user=actor.user, client=actor.client)


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


def tag_body(tag: Tag) -> TagBody:
    return TagBody(
        name=tag.name,
        source=tag.source.value,
        added_by=actor_body(tag.actor),
        added_at=tag.added_at,
        confidence=round(tag.confidence, 4) if tag.confidence is not None else None,
        box=_box_body(tag.box),
        model=detector_body(tag.model) if tag.model is not None else None,
        run_id=tag.run_id,
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
        created_by=actor_body(image.created_by),
        detection_enabled=image.detection_enabled,
        detection_status=image.detection_status.value,
        detection_error=image.detection_error,
        objects=list(image.objects),
        tags=[tag_body(tag) for tag in image.tags],
        content_url=f"/images/{image.id}/content",
    )


def audit_event_body(event: AuditEvent) -> AuditEventBody:
    assert event.id is not None
    return AuditEventBody(
        id=event.id,
        type=event.type.value,
        occurred_at=event.occurred_at,
        actor=actor_body(event.actor),
        target=event.target,
        image_id=event.image_id,
        payload=dict(event.payload),
    )
