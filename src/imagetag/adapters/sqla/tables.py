"""The relational schema, as SQLAlchemy declarative models.

Rows are written and read with SQL expressions over these tables and mapped to domain
objects in ``mapping``; no ORM instances are loaded, so relationships are not declared.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Actor names come from keys or identity-provider claims (domain.principals).
ACTOR_LENGTH = 200
LIVE_TAG = "removed_at IS NULL"
LIVE_HUMAN_TAG = "source = 'human' AND removed_at IS NULL"


def partial_index(name: str, *columns: str, where: str, unique: bool = False) -> Index:
    """An index over the rows ``where`` holds, on both databases; queries must repeat the
    condition word for word for SQLite to use it."""
    return Index(
        name,
        *columns,
        unique=unique,
        sqlite_where=text(where),
        postgresql_where=text(where),
    )


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes in UTC on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; attach a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ImageRow(Base):
    """An image; ``detection_status``/``detection_error`` repeat its latest run's outcome
    so reads need no join. Deleting sets ``deleted_at``: the row stays for the audit log."""

    __tablename__ = "images"
    # With the id, a creation window's newest image is an index-only scan (search bounds).
    __table_args__ = (Index("ix_images_created_at_id", "created_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    label: Mapped[str] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    media_type: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    created_client: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    detection_status: Mapped[str] = mapped_column(String(16))
    detection_error: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deleted_by_user: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))
    deleted_by_client: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))


class DetectionRunRow(Base):
    """One run of a detector over an image, with the provenance its model tags share."""

    __tablename__ = "detection_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    image_id: Mapped[int] = mapped_column(BigId, ForeignKey("images.id"), index=True)
    detector: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    # DetectorInfo.model_version when the run was stored, for search without a join.
    model_version: Mapped[str] = mapped_column(String(64))
    model_sha256: Mapped[str | None] = mapped_column(String(64))
    library_version: Mapped[str] = mapped_column(String(64))
    confidence_threshold: Mapped[float | None] = mapped_column(Float)
    iou_threshold: Mapped[float | None] = mapped_column(Float)
    parameters: Mapped[dict[str, str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    requested_by_user: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    requested_by_client: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    ran_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TagRow(Base):
    """A tag, human or model. Removing one sets ``removed_at``; only live rows are indexed.

    Model tags copy their run's model name and version so that ``model=`` filters on
    this table alone.
    """

    __tablename__ = "tags"
    __table_args__ = (
        partial_index("ix_tags_name_image_id", "name", "image_id", where=LIVE_TAG),
        partial_index("ix_tags_image_id", "image_id", where=LIVE_TAG),
        partial_index("ix_tags_added_at_image_id", "added_at", "image_id", where=LIVE_TAG),
        partial_index(
            "ix_tags_added_by_user_image_id", "added_by_user", "image_id", where=LIVE_TAG
        ),
        # A person tagging twice changes nothing: one live human tag per image, name and
        # user. Two people's tags of one name are both kept: their agreement is data.
        partial_index(
            "uq_tags_human_image_id_name_added_by_user",
            "image_id",
            "name",
            "added_by_user",
            where=LIVE_HUMAN_TAG,
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    image_id: Mapped[int] = mapped_column(BigId, ForeignKey("images.id"))
    name: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8))
    confidence: Mapped[float | None] = mapped_column(Float)
    x_min: Mapped[float | None] = mapped_column(Float)
    y_min: Mapped[float | None] = mapped_column(Float)
    x_max: Mapped[float | None] = mapped_column(Float)
    y_max: Mapped[float | None] = mapped_column(Float)
    run_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("detection_runs.id"))
    model_name: Mapped[str | None] = mapped_column(String(200))
    model_version: Mapped[str | None] = mapped_column(String(64))
    added_by_user: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    added_by_client: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    removed_by_user: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))
    removed_by_client: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))


class AuditEventRow(Base):
    """Append-only. ``image_id`` has no foreign key: the log outlives what it describes."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_image_id_id", "image_id", "id"),
        Index("ix_audit_events_actor_user_id", "actor_user", "id"),
        Index("ix_audit_events_type_id", "type", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    type: Mapped[str] = mapped_column(String(32))
    actor_user: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    actor_client: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    target: Mapped[str] = mapped_column(String(300))
    image_id: Mapped[int | None] = mapped_column(BigId)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class IdempotencyKeyRow(Base):
    """A user's Idempotency-Key, the request it came with, and the image it gave."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("user_name", "key", name="uq_idempotency_keys_user_name_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_name: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    image_id: Mapped[int] = mapped_column(BigId, ForeignKey("images.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        # A name is reusable once its key is revoked, but only one active key holds it.
        partial_index("uq_api_keys_active_name", "name", where="revoked_at IS NULL", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    user_name: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    client: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    role: Mapped[str] = mapped_column(String(16))
