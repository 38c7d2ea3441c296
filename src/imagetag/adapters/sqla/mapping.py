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


def _as_is(value: Any) -> Any:
    return value


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
    decode_datetime: Decoder = _as_is,
    decode_json: Decoder = _as_is,
) -> list[Image]:
    """Images from joined rows (``IMAGE_COLUMNS + TAG_COLUMNS + RUN_COLUMNS``), one row
    per tag or one with NULL tag columns, grouped by consecutive image id, order kept.

    The decoders turn what the stdlib SQLite driver returns into Python values; through
    SQLAlchemy the column types have done that already.

    This runs on every ``GET /images/{id}``, so it reads columns by position and builds
    each actor and each run's detector once per call (they are immutable, so tags share
    them); every domain object is still constructed, and so checked, as usual.
    """
    images: list[Image] = []
    image_row: Sequence[Any] | None = None
    tags: list[Tag] = []
    actors: dict[tuple[str, str], Actor] = {}
    detectors: dict[int, DetectorInfo] = {}
    for row in rows:
        if image_row is None or image_row[0] != row[0]:
            if image_row is not None:
                images.append(_image(image_row, tags, decode_datetime))
            image_row = row
            tags = []
        if row[_TAG_START] is not None:
            tags.append(_tag(row, decode_datetime, decode_json, actors, detectors))
    if image_row is not None:
        images.append(_image(image_row, tags, decode_datetime))
    return images


_TAG_START = len(IMAGE_COLUMNS)
_RUN_START = _TAG_START + len(TAG_COLUMNS)


def _image(row: Sequence[Any], tags: list[Tag], decode_datetime: Decoder) -> Image:
    # Unpacked in IMAGE_COLUMNS order.
    (
        image_id, label, source, sha256, media_type, width, height, size_bytes,
        created_at, created_by, created_client, detection_status, detection_error,
    ) = row[:_TAG_START]  # fmt: skip
    return Image(
        id=image_id,
        label=label,
        source=source,
        sha256=sha256,
        facts=ImageFacts(media_type, width, height),
        size_bytes=size_bytes,
        created_at=decode_datetime(created_at),
        created_by=Actor(created_by, created_client),
        tags=tuple(tags),
        detection_status=DetectionStatus(detection_status),
        detection_error=detection_error,
    )


def _tag(
    row: Sequence[Any],
    decode_datetime: Decoder,
    decode_json: Decoder,
    actors: dict[tuple[str, str], Actor],
    detectors: dict[int, DetectorInfo],
) -> Tag:
    # Unpacked in TAG_COLUMNS order.
    (
        _, name, source, confidence, x_min, y_min, x_max, y_max, run_id,
        added_by_user, added_by_client, added_at,
    ) = row[_TAG_START:_RUN_START]  # fmt: skip
    actor = actors.get((added_by_user, added_by_client))
    if actor is None:
        actor = actors[added_by_user, added_by_client] = Actor(added_by_user, added_by_client)
    if source == TagSource.HUMAN:
        return Tag.by_human(name, actor, decode_datetime(added_at))
    box = (
        BoundingBox(x_min, y_min, x_max, y_max)
        if x_min is not None and y_min is not None and x_max is not None and y_max is not None
        else None
    )
    detector = detectors.get(run_id)
    if detector is None:
        detector = detectors[run_id] = _detector(row[_RUN_START:], decode_json)
    return Tag(
        name=name,
        source=TagSource.MODEL,
        actor=actor,
        added_at=decode_datetime(added_at),
        confidence=confidence,
        box=box,
        model=detector,
        run_id=run_id,
    )


def _detector(run: Sequence[Any], decode_json: Decoder) -> DetectorInfo:
    # Unpacked in RUN_COLUMNS order.
    (
        detector, model, model_sha256, library_version, confidence_threshold, iou_threshold,
        parameters,
    ) = run  # fmt: skip
    return DetectorInfo(
        detector=detector,
        model=model,
        library_version=library_version,
        model_sha256=model_sha256,
        confidence_threshold=confidence_threshold,
        iou_threshold=iou_threshold,
        # Stored as a JSON object; detectors list their parameters sorted by name.
        parameters=tuple(sorted((decode_json(parameters) or {}).items())),
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
