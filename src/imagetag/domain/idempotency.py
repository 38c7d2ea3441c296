"""Idempotent ingestion: a retried request returns the first one's image, not a second."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from imagetag.domain.errors import InvalidInput

MAX_IDEMPOTENCY_KEY_LENGTH = 200


class DuplicatePolicy(enum.StrEnum):
    """What storing bytes already stored does: ``reuse`` returns the live image that has
    them; ``new`` stores another record sharing the blob."""

    REUSE = "reuse"
    NEW = "new"


def check_idempotency_key(raw: str) -> str:
    key = raw.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"an Idempotency-Key is 1-{MAX_IDEMPOTENCY_KEY_LENGTH} printable characters, "
            "e.g. a UUID",
            field="Idempotency-Key",
        )
    return key


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A key a user sent with an ingest, what the request was, and the image it gave.

    Keys are per user: two users may pick the same key without meeting.
    """

    user: str
    key: str
    fingerprint: str
    image_id: int
    created_at: datetime
