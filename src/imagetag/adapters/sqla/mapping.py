"""Translation between column values and domain objects, kept in one place."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from imagetag.domain.audit import AuditEvent, AuditEventType
from imagetag.domain.detections import BoundingBox, DetectorInfo
from imagetag.domain.images import DetectionRun, DetectionStatus, Image, ImageFacts, NewImage
from imagetag.domain.principals import Actor, ApiKeyRecord, Role
from imagetag.domain.tags import Tag, TagSource

Values = dict[str, Any]
Decoder = Callable[[Any], Any]

# The columns a read of images with their tags selects, in this order: the image's, then
# the tag's (NULL when the image has none), then the tag's run (NULL for human tags).
IMAGE_COLUMNS = (
    "id", "label", "source", "sha256", "media_type", "width", "height", "size_bytes",
    "created_at", "created_by", "created_client", "detection_status", "detection_error",
)  # fmt: skip
TAG_COLUMNS = (
    "id", "name", "source", "confidence", "x_min", "y_min", "x_max", "y_max", "run_id",
    "added_by_user", "added_by_client", "added_at",
)  # fmt: skip
RUN_COLUMNS = (
    "detector", "model", "model_sha256", "library_version", "confidence_threshold",
    "iou_threshold", "parameters",
)  # fmt: skip


def image_values(image: NewImage) -> Values:
    run = image.detection
    return {
        "label": image.label,
        "source": image.source,
        "sha256": image.sha256,
        "media_type": image.facts.media_type,
        "width": image.facts.width,
        "height": image.facts.height,
        "size_bytes": image.size_bytes,
        "created_at": image.created_at,
        "created_by": image.created_by.user,
        "created_client": image.created_by.client,
        "detection_status": (run.status if run else DetectionStatus.NOT_REQUESTED).value,
        "detection_error": run.error if run else None,
    }


def run_values(image_id: int, run: DetectionRun) -> Values:
    info = run.detector
    return {
        "image_id": image_id,
        "detector": info.detector,
        "model": info.model,
        "model_version": info.model_version,
        "model_sha256": info.model_sha256,
        "library_version": info.library_version,
        "confidence_threshold": info.confidence_threshold,
        "iou_threshold": info.iou_threshold,
        "parameters": dict(info.parameters),
        "status": run.status.value,
        "error": run.error,
        "requested_by_user": run.requested_by.user,
        "requested_by_client": run.requested_by.client,
        "ran_at": run.ran_at,
    }


def model_tag_values(image_id: int, run_id: int, run: DetectionRun) -> list[Values]:
    """The run's model tags; every row has the same keys, so they insert as one batch."""
    info = run.detector
    return [
        {
            "image_id": image_id,
            "name": tag.name,
            "source": TagSource.MODEL.value,
            "confidence": tag.confidence,
            "x_min": tag.box.x_min if tag.box else None,
            "y_min": tag.box.y_min if tag.box else None,
            "x_max": tag.box.x_max if tag.box else None,
            "y_max": tag.box.y_max if tag.box else None,
            "run_id": run_id,
            "model_name": info.model,
            "model_version": info.model_version,
            "added_by_user": tag.actor.user,
            "added_by_client": tag.actor.client,
            "added_at": tag.added_at,
        }
        for tag in run.tags(run_id)
    ]


def human_tag_values(image_id: int, name: str, actor: Actor, at: datetime) -> Values:
    return {
        "image_id": image_id,
        "name": name,
        "source": TagSource.HUMAN.value,
        "added_by_user": actor.user,
        "added_by_client": actor.client,
        "added_at": at,
    }


def images_from_rows(
    rows: Sequence[Sequence[Any]],
    *,
    decode_datetime: Decoder = lambda value: value,
    decode_json: Decoder = lambda value: value,
) -> list[Image]:
    """Images from joined rows (``IMAGE_COLUMNS + TAG_COLUMNS + RUN_COLUMNS``), one row
    per tag or one with NULL tag columns, grouped by consecutive image id, order kept.

    The decoders turn what the stdlib SQLite driver returns into Python values; through
    SQLAlchemy the column types have done that already.
    """
    images: list[Image] = []
    current: dict[str, Any] | None = None
    tags: list[Tag] = []
    tag_start = len(IMAGE_COLUMNS)
    run_start = tag_start + len(TAG_COLUMNS)
    for row in rows:
        if current is None or current["id"] != row[0]:
            if current is not None:
                images.append(_image(current, tags, decode_datetime))
            current = dict(zip(IMAGE_COLUMNS, row[:tag_start], strict=True))
            tags = []
        tag = dict(zip(TAG_COLUMNS, row[tag_start:run_start], strict=True))
        if tag["id"] is not None:
            run = dict(zip(RUN_COLUMNS, row[run_start:], strict=True))
            tags.append(_tag(tag, run, decode_datetime, decode_json))
    if current is not None:
        images.append(_image(current, tags, decode_datetime))
    return images


def _image(columns: Mapping[str, Any], tags: list[Tag], decode_datetime: Decoder) -> Image:
    return Image(
        id=columns["id"],
        label=columns["label"],
        source=columns["source"],
        sha256=columns["sha256"],
        facts=ImageFacts(columns["media_type"], columns["width"], columns["height"]),
        size_bytes=columns["size_bytes"],
        created_at=decode_datetime(columns["created_at"]),
        created_by=Actor(columns["created_by"], columns["created_client"]),
        tags=tuple(tags),
        detection_status=DetectionStatus(columns["detection_status"]),
        detection_error=columns["detection_error"],
    )


def _tag(
    tag: Mapping[str, Any],
    run: Mapping[str, Any],
    decode_datetime: Decoder,
    decode_json: Decoder,
) -> Tag:
    actor = Actor(tag["added_by_user"], tag["added_by_client"])
    added_at = decode_datetime(tag["added_at"])
    if tag["source"] == TagSource.HUMAN:
        return Tag.by_human(tag["name"], actor, added_at)
    x_min, y_min, x_max, y_max = tag["x_min"], tag["y_min"], tag["x_max"], tag["y_max"]
    box = (
        BoundingBox(x_min, y_min, x_max, y_max)
        if x_min is not None and y_min is not None and x_max is not None and y_max is not None
        else None
    )
    return Tag(
        name=tag["name"],
        source=TagSource.MODEL,
        actor=actor,
        added_at=added_at,
        confidence=tag["confidence"],
        box=box,
        model=DetectorInfo(
            detector=run["detector"],
            model=run["model"],
            library_version=run["library_version"],
            model_sha256=run["model_sha256"],
            confidence_threshold=run["confidence_threshold"],
            iou_threshold=run["iou_threshold"],
            # Stored as a JSON object; detectors list their parameters sorted by name.
            parameters=tuple(sorted((decode_json(run["parameters"]) or {}).items())),
        ),
        run_id=tag["run_id"],
    )


def audit_values(event: AuditEvent) -> Values:
    return {
        "occurred_at": event.occurred_at,
        "type": event.type.value,
        "actor_user": event.actor.user,
        "actor_client": event.actor.client,
        "target": event.target,
        "image_id": event.image_id,
        "payload": dict(event.payload),
    }


def audit_event_from_values(columns: Mapping[Any, Any]) -> AuditEvent:
    return AuditEvent(
        type=AuditEventType(columns["type"]),
        actor=Actor(columns["actor_user"], columns["actor_client"]),
        occurred_at=columns["occurred_at"],
        target=columns["target"],
        image_id=columns["image_id"],
        payload=columns["payload"],
        id=columns["id"],
    )


def api_key_values(record: ApiKeyRecord) -> Values:
    return {
        "name": record.name,
        "key_hash": record.key_hash,
        "prefix": record.prefix,
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
        "user_name": record.user,
        "client": record.client,
        "role": record.role.value,
    }


def api_key_from_values(columns: Mapping[Any, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        name=columns["name"],
        key_hash=columns["key_hash"],
        prefix=columns["prefix"],
        created_at=columns["created_at"],
        user=columns["user_name"],
        client=columns["client"],
        role=Role(columns["role"]),
        revoked_at=columns["revoked_at"],
    )
