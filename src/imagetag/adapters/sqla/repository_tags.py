"""Human tags, tag removal and tag counts over one AsyncSession."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, Select, case, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from imagetag.adapters.sqla.mapping import human_tag_values
from imagetag.adapters.sqla.tables import LIVE_HUMAN_TAG, ImageRow, TagRow
from imagetag.domain.principals import Actor
from imagetag.domain.tags import TagCount, TagSource


class SqlTagRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_human(
        self, image_id: int, names: Sequence[str], actor: Actor, at: datetime
    ) -> tuple[str, ...]:
        """Insert what the user has not already tagged, in one statement.

        The unique partial index on live human tags (image, name, user) decides: ON
        CONFLICT DO NOTHING skips names the user tagged before, and names a concurrent
        transaction of theirs has just tagged (it waits for that one to finish), so a
        race never surfaces as an IntegrityError.
        """
        wanted = list(dict.fromkeys(names))
        if not wanted or not await self._is_live(image_id):
            return ()
        dialect = postgresql if self._session.get_bind().dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(TagRow)
            .values([human_tag_values(image_id, name, actor, at) for name in wanted])
            .on_conflict_do_nothing(
                index_elements=[TagRow.image_id, TagRow.name, TagRow.added_by_user],
                index_where=text(LIVE_HUMAN_TAG),
            )
            .returning(TagRow.name)
        )
        added = set((await self._session.scalars(statement)).all())
        return tuple(name for name in wanted if name in added)

    async def remove(self, image_id: int, name: str, actor: Actor, at: datetime) -> int:
        result = await self._session.execute(
            update(TagRow)
            .where(
                TagRow.image_id == image_id,
                TagRow.name == name,
                TagRow.removed_at.is_(None),
                _live_image(image_id).exists(),
            )
            .values(removed_at=at, removed_by_user=actor.user, removed_by_client=actor.client)
        )
        assert isinstance(result, CursorResult)
        return int(result.rowcount)

    async def counts(self) -> Sequence[TagCount]:
        rows = await self._session.execute(
            select(
                TagRow.name,
                func.count(func.distinct(TagRow.image_id)),
                _images_with(TagSource.HUMAN),
                _images_with(TagSource.MODEL),
            )
            .join(ImageRow, ImageRow.id == TagRow.image_id)
            .where(TagRow.removed_at.is_(None), ImageRow.deleted_at.is_(None))
            .group_by(TagRow.name)
        )
        counts = [TagCount(name, images, human, model) for name, images, human, model in rows]
        # Sorted here, not in SQL: the databases' collations order names differently.
        return sorted(counts, key=lambda count: (-count.images, count.name))

    async def _is_live(self, image_id: int) -> bool:
        return await self._session.scalar(_live_image(image_id)) is not None


def _live_image(image_id: int) -> Select[Any]:
    return select(ImageRow.id).where(ImageRow.id == image_id, ImageRow.deleted_at.is_(None))


def _images_with(source: TagSource) -> ColumnElement[int]:
    """How many distinct images have a tag of this source, within the group."""
    return func.count(func.distinct(case((TagRow.source == source.value, TagRow.image_id))))
