"""Images and their detection runs over one AsyncSession; the unit of work commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import CursorResult, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from imagetag.adapters.sqla.mapping import (
    image_values,
    images_from_rows,
    model_tag_values,
    run_values,
)
from imagetag.adapters.sqla.queries import GET_IMAGE, search_statement
from imagetag.adapters.sqla.tables import DetectionRunRow, ImageRow, TagRow
from imagetag.domain.errors import ImageNotFound
from imagetag.domain.images import DetectionRun, Image, NewImage
from imagetag.domain.principals import Actor
from imagetag.domain.search import SearchQuery


class SqlImageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, image: NewImage) -> Image:
        image_id: int | None = await self._session.scalar(
            insert(ImageRow).values(image_values(image)).returning(ImageRow.id)
        )
        assert image_id is not None
        run_id = None
        if image.detection is not None:
            run_id = await self._insert_run(image_id, image.detection)
        return Image.stored(image, image_id, run_id)

    async def get(self, image_id: int) -> Image | None:
        result = await self._session.execute(GET_IMAGE, {"image_id": image_id})
        found = images_from_rows(result.all())
        return found[0] if found else None

    async def find_by_sha256(self, sha256: str) -> Image | None:
        oldest = await self._session.scalar(
            select(ImageRow.id)
            .where(ImageRow.sha256 == sha256, ImageRow.deleted_at.is_(None))
            .order_by(ImageRow.id)
            .limit(1)
        )
        return await self.get(oldest) if oldest is not None else None

    async def search(self, query: SearchQuery, *, limit: int) -> Sequence[Image]:
        dialect = self._session.get_bind().dialect.name
        result = await self._session.execute(search_statement(query, limit, dialect))
        return images_from_rows(result.all())

    async def relabel(self, image_id: int, label: str) -> bool:
        return await self._update_live(image_id, label=label)

    async def delete(self, image_id: int, actor: Actor, at: datetime) -> bool:
        return await self._update_live(
            image_id, deleted_at=at, deleted_by_user=actor.user, deleted_by_client=actor.client
        )

    async def add_detection_run(self, image_id: int, run: DetectionRun) -> int:
        if not await self._update_live(
            image_id, detection_status=run.status.value, detection_error=run.error
        ):
            raise ImageNotFound(image_id)
        return await self._insert_run(image_id, run)

    async def _update_live(self, image_id: int, **values: object) -> bool:
        result = await self._session.execute(
            update(ImageRow)
            .where(ImageRow.id == image_id, ImageRow.deleted_at.is_(None))
            .values(**values)
        )
        assert isinstance(result, CursorResult)
        return bool(result.rowcount)

    async def _insert_run(self, image_id: int, run: DetectionRun) -> int:
        run_id: int | None = await self._session.scalar(
            insert(DetectionRunRow).values(run_values(image_id, run)).returning(DetectionRunRow.id)
        )
        assert run_id is not None
        tag_rows = model_tag_values(image_id, run_id, run)
        if tag_rows:
            # One batch, inserted in order: tag ids follow the detector's order.
            await self._session.execute(insert(TagRow), tag_rows)
        return run_id
