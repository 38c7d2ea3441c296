"""Idempotency keys of ingests over one AsyncSession."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from imagetag.adapters.sqla.tables import IdempotencyKeyRow
from imagetag.domain.errors import IdempotencyKeyTaken
from imagetag.domain.idempotency import IdempotencyRecord

_keys = IdempotencyKeyRow.__table__


class SqlIdempotencyKeys:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def find(self, user: str, key: str) -> IdempotencyRecord | None:
        result = await self._session.execute(
            select(_keys).where(_keys.c.user_name == user, _keys.c.key == key)
        )
        row = result.mappings().first()
        if row is None:
            return None
        return IdempotencyRecord(
            user=row["user_name"],
            key=row["key"],
            fingerprint=row["fingerprint"],
            image_id=row["image_id"],
            created_at=row["created_at"],
        )

    async def add(self, record: IdempotencyRecord) -> None:
        try:
            # A savepoint, so that losing the race leaves the transaction usable.
            async with self._session.begin_nested():
                await self._session.execute(
                    insert(IdempotencyKeyRow).values(
                        user_name=record.user,
                        key=record.key,
                        fingerprint=record.fingerprint,
                        image_id=record.image_id,
                        created_at=record.created_at,
                    )
                )
        except IntegrityError:
            raise IdempotencyKeyTaken(f"Idempotency-Key {record.key!r} is taken") from None
