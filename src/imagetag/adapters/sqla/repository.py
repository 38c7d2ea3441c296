"""Repositories over one AsyncSession; they never commit, the unit of work does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, distinct, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from imagetag.adapters.sqla.mapping import api_key_row, image_row, to_api_key, to_image
from imagetag.adapters.sqla.tables import ApiKeyRow, DetectionRow, ImageRow
from imagetag.domain.errors import KeyNameTaken
from imagetag.domain.images import Image, NewImage
from imagetag.domain.principals import ApiKeyRecord
from imagetag.domain.search import ImageQuery, Match


class SqlImageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, image: NewImage) -> Image:
        row = image_row(image)
        self._session.add(row)
        await self._session.flush()
        return Image.stored(image, row.id)

    async def get(self, image_id: int) -> Image | None:
        row = await self._session.scalar(
            select(ImageRow)
            .where(ImageRow.id == image_id)
            .options(selectinload(ImageRow.detections))
        )
        return to_image(row) if row is not None else None

    async def search(self, query: ImageQuery, *, limit: int) -> Sequence[Image]:
        statement = _search_statement(query).limit(limit)
        rows = await self._session.scalars(statement.options(selectinload(ImageRow.detections)))
        return [to_image(row) for row in rows]


def _search_statement(query: ImageQuery) -> Select[ImageRow]:
    """The SQL form of ``ImageQuery.includes``; newest first by id (a keyset cursor)."""
    statement = select(ImageRow).order_by(ImageRow.id.desc())
    if query.before_id is not None:
        statement = statement.where(ImageRow.id < query.before_id)
    if query.objects is not None:
        names = list(query.objects.names)
        having = select(DetectionRow.image_id).where(DetectionRow.name.in_(names))
        if query.objects.match is Match.ALL:
            having = having.group_by(DetectionRow.image_id).having(
                func.count(distinct(DetectionRow.name)) == len(names)
            )
        statement = statement.where(ImageRow.id.in_(having))
    return statement


class SqlApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, key: ApiKeyRecord) -> None:
        self._session.add(api_key_row(key))
        try:
            await self._session.flush()
        except IntegrityError:
            raise KeyNameTaken(key.name) from None

    async def find_active_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        row = await self._session.scalar(
            select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash, ApiKeyRow.revoked_at.is_(None))
        )
        return to_api_key(row) if row is not None else None

    async def list(self) -> Sequence[ApiKeyRecord]:
        rows = await self._session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))
        return [to_api_key(row) for row in rows]

    async def revoke(self, name: str, at: datetime) -> bool:
        result = await self._session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def count_active(self) -> int:
        count = await self._session.scalar(
            select(func.count()).select_from(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None))
        )
        return int(count or 0)
