"""API keys over one AsyncSession."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import CursorResult, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from imagetag.adapters.sqla.mapping import api_key_from_values, api_key_values
from imagetag.adapters.sqla.tables import ApiKeyRow
from imagetag.domain.errors import KeyNameTaken
from imagetag.domain.principals import ApiKeyRecord

_keys = ApiKeyRow.__table__


class SqlApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, key: ApiKeyRecord) -> None:
        try:
            await self._session.execute(insert(ApiKeyRow).values(api_key_values(key)))
        except IntegrityError:
            raise KeyNameTaken(key.name) from None

    async def find_active_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        result = await self._session.execute(
            select(_keys).where(_keys.c.key_hash == key_hash, _keys.c.revoked_at.is_(None))
        )
        row = result.mappings().first()
        return api_key_from_values(row) if row is not None else None

    async def list(self) -> Sequence[ApiKeyRecord]:
        result = await self._session.execute(select(_keys).order_by(_keys.c.id))
        return [api_key_from_values(row) for row in result.mappings()]

    async def revoke(self, name: str, at: datetime) -> bool:
        result = await self._session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        assert isinstance(result, CursorResult)
        return bool(result.rowcount)

    async def count_active(self) -> int:
        count = await self._session.scalar(
            select(func.count()).select_from(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None))
        )
        return int(count or 0)
