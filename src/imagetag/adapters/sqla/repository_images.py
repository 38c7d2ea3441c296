"""Images and their detection runs over one AsyncSession; the unit of work commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import CursorResult, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from imagetag.adapters.sqla.mapping import (
    image_values,
    images_from_rows,
    model_tag_values,
    run_values,
)
from imagetag.adapters.sqla.queries import GET_IMAGE, images, runs, search_statement, tags
from imagetag.adapters.sqla.sqlite_writes import insert_image, one_hop_connection
from imagetag.adapters.sqla.tables import ImageRow
from imagetag.domain.errors import ImageNotFound
from imagetag.domain.images import DetectionRun, Image, NewImage
from imagetag.domain.principals import Actor
from imagetag.domain.search import SearchQuery
from imagetag.ports.repository import AddedImage

# The writes of an ingest as Core statements built once, parameters passed at execution:
# building an ORM-enabled statement with .values() per call (coercing every value and
# computing its cache key) cost more than SQLite took to run it.
_INSERT_IMAGE = insert(images).returning(images.c.id)
_INSERT_RUN = insert(runs).returning(runs.c.id)
_INSERT_TAGS = insert(tags)
_RECORD_LATEST_RUN = update(images).where(
    images.c.id == bindparam("live_image_id"), images.c.deleted_at.is_(None)
)


class SqlImageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, image: NewImage) -> AddedImage:
        sqlite_connection = await one_hop_connection(self._session)
        if sqlite_connection is not None:
            image_id, run_id = await sqlite_connection.call(insert_image, image)
            return AddedImage(Image.stored(image, image_id, run_id), run_id)
        result = await self._session.execute(_INSERT_IMAGE, image_values(image))
        image_id = result.scalar_one()
        run_id = None
        if image.detection is not None:
            run_id = await self._insert_run(image_id, image.detection)
        return AddedImage(Image.stored(image, image_id, run_id), run_id)

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
        result = await self._session.execute(
            _RECORD_LATEST_RUN,
            {
                "live_image_id": image_id,
                "detection_status": run.status.value,
                "detection_error": run.error,
            },
        )
        assert isinstance(result, CursorResult)
        if not result.rowcount:
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
        result = await self._session.execute(_INSERT_RUN, run_values(image_id, run))
        run_id: int = result.scalar_one()
        tag_rows = model_tag_values(image_id, run_id, run)
        if tag_rows:
            # One batch, inserted in order: tag ids follow the detector's order.
            await self._session.execute(_INSERT_TAGS, tag_rows)
        return run_id
