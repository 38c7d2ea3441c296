"""The audit log: an append-only record of who changed what, and when."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from imagetag.domain.errors import InvalidInput
from imagetag.domain.principals import Actor
from imagetag.domain.search import (
    DEFAULT_PAGE_SIZE,
    check_page,
    check_range,
    decode_cursor,
    parse_time_bound,
)

# Small, flat facts about the change; the audited records hold the rest.
PayloadValue = str | int | float | bool | None


class AuditEventType(enum.StrEnum):
    IMAGE_CREATED = "image.created"
    IMAGE_UPDATED = "image.updated"
    IMAGE_DELETED = "image.deleted"
    TAG_ADDED = "tag.added"
    TAG_REMOVED = "tag.removed"
    DETECTION_RUN = "detection.run"
    KEY_CREATED = "key.created"
    KEY_REVOKED = "key.revoked"


def parse_event_types(raw: str) -> tuple[AuditEventType, ...]:
    """Comma-separated event types, e.g. ``tag.added,tag.removed``."""
    types: list[AuditEventType] = []
    for piece in raw.split(","):
        text = piece.strip().casefold()
        if not text:
            continue
        try:
            types.append(AuditEventType(text))
        except ValueError:
            known = ", ".join(kind.value for kind in AuditEventType)
            raise InvalidInput(
                f"unknown event type {text!r}; known types: {known}", field="type"
            ) from None
    if not types:
        raise InvalidInput("type must name at least one event type", field="type")
    return tuple(dict.fromkeys(types))


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One change. ``target`` names what changed (``image:12``, ``tag:cat``, ``key:ci``);
    ``image_id`` is set whenever the change concerns an image, for filtering."""

    type: AuditEventType
    actor: Actor
    occurred_at: datetime
    target: str
    image_id: int | None = None
    payload: Mapping[str, PayloadValue] = field(default_factory=dict)
    id: int | None = None

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")
        if not self.target:
            raise ValueError("an audit event names its target")


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """A page of audit events, newest first, filtered by any of actor, image, type, time.

    The time range is half-open: ``after <= occurred_at < before``.
    """

    user: str | None = None
    image_id: int | None = None
    types: tuple[AuditEventType, ...] = ()
    after: datetime | None = None
    before: datetime | None = None
    limit: int = DEFAULT_PAGE_SIZE
    before_id: int | None = None

    def __post_init__(self) -> None:
        check_page(self.limit, self.before_id)
        check_range(self.after, self.before)

    def includes(self, event: AuditEvent) -> bool:
        """The pure predicate the storage adapters must agree with."""
        assert event.id is not None
        return (
            (self.before_id is None or event.id < self.before_id)
            and (self.user is None or event.actor.user == self.user)
            and (self.image_id is None or event.image_id == self.image_id)
            and (not self.types or event.type in self.types)
            and (self.after is None or event.occurred_at >= self.after)
            and (self.before is None or event.occurred_at < self.before)
        )


def parse_audit_query(
    *,
    user: str | None = None,
    image_id: int | None = None,
    type: str | None = None,
    after: str | None = None,
    before: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> AuditQuery:
    """An ``AuditQuery`` from the text of query parameters or command-line options, named
    alike; each refusal is ``InvalidInput`` naming the parameter."""
    return AuditQuery(
        user=user,
        image_id=image_id,
        types=parse_event_types(type) if type is not None else (),
        after=parse_time_bound(after, "after") if after is not None else None,
        before=parse_time_bound(before, "before") if before is not None else None,
        limit=limit,
        before_id=decode_cursor(cursor) if cursor is not None else None,
    )
