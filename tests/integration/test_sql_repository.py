"""What only the SQL stores do, on SQLite and on a real PostgreSQL server: concurrent
transactions and the rows kept behind. What every store does is in tests/contract."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from imagetag.adapters.sqla.engine import create_engine, session_factory
from imagetag.adapters.sqla.tables import TagRow
from imagetag.adapters.sqla.unit_of_work import SqlUnitOfWorkFactory
from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo
from imagetag.domain.images import DetectionRun, DetectionStatus, ImageFacts, NewImage
from imagetag.domain.principals import Actor

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ALICE = Actor("alice", "labelling-ui")
BOB = Actor("bob", "notebook")
YOLO = DetectorInfo(
    detector="yolo",
    model="yolo11n.pt",
    library_version="ultralytics 8",
    model_sha256="ab" * 32,
    confidence_threshold=0.25,
    iou_threshold=0.7,
    parameters=(("image_size", "640"), ("letterbox", "minimal")),
)


def run_of(
    *objects: str | tuple[str, float],
    detector: DetectorInfo = YOLO,
    by: Actor = ALICE,
    at: datetime = T0,
) -> DetectionRun:
    """A successful run finding ``objects`` (a name, or a name and a confidence)."""
    detections = tuple(
        Detection(
            name=found if isinstance(found, str) else found[0],
            confidence=0.5 + index / 100 if isinstance(found, str) else found[1],
            box=BoundingBox(0.1, 0.2, 0.3, 0.4) if index % 2 == 0 else None,
            detector=detector,
        )
        for index, found in enumerate(objects)
    )
    return DetectionRun(detector, DetectionStatus.SUCCEEDED, by, at, detections)


def new_image(number: int, detection: DetectionRun | None = None, *, by: Actor = ALICE) -> NewImage:
    return NewImage(
        label=f"image {number}",
        source=f"photo-{number}.jpg",
        sha256=f"{number:064x}",
        facts=ImageFacts("image/jpeg", 640, 480),
        size_bytes=1000 + number,
        created_at=T0 + timedelta(minutes=number),
        created_by=by,
        detection=detection,
    )


@pytest.fixture
async def unit_of_work(database_url: str) -> AsyncIterator[SqlUnitOfWorkFactory]:
    engine = create_engine(database_url)
    yield SqlUnitOfWorkFactory(session_factory(engine))
    await engine.dispose()


async def test_two_transactions_of_one_user_adding_the_same_tag_store_it_once(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        image = (await uow.images.add(new_image(1))).image
        await uow.commit()
    first = unit_of_work()
    async with first:
        assert await first.tags.add_human(image.id, ["cat"], ALICE, T0) == ("cat",)

        async def add_in_second() -> tuple[str, ...]:
            async with unit_of_work() as second:
                added = await second.tags.add_human(image.id, ["cat", "dog"], ALICE, T0)
                await second.commit()
                return added

        # The second waits on the first's uncommitted row (the unique index on PostgreSQL,
        # the write lock on SQLite), then finds "cat" there.
        racing = asyncio.create_task(add_in_second())
        await asyncio.sleep(0.3)
        assert not racing.done()
        await first.commit()
        assert await racing == ("dog",)
    async with unit_of_work() as uow:
        loaded = await uow.images.get(image.id)
    assert loaded is not None
    assert [tag.name for tag in loaded.tags] == ["cat", "dog"]


async def test_removing_a_tag_takes_off_every_live_tag_of_that_name_and_keeps_the_rows(
    unit_of_work: SqlUnitOfWorkFactory, database_url: str
) -> None:
    removed_at = T0 + timedelta(hours=2)
    async with unit_of_work() as uow:
        image = (await uow.images.add(new_image(1, run_of("cat", "cat", "dog")))).image
        other = (await uow.images.add(new_image(2, run_of("cat")))).image
        await uow.tags.add_human(image.id, ["cat"], ALICE, T0)
        assert await uow.tags.remove(image.id, "cat", BOB, removed_at) == 3
        assert await uow.tags.remove(image.id, "cat", BOB, removed_at) == 0
        assert await uow.tags.remove(image.id, "zebra", BOB, removed_at) == 0
        await uow.commit()
    async with unit_of_work() as uow:
        loaded = await uow.images.get(image.id)
        untouched = await uow.images.get(other.id)
    assert loaded is not None
    assert loaded.tag_names == ("dog",)
    assert untouched == other
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            removed = await connection.execute(
                select(TagRow.removed_at, TagRow.removed_by_user, TagRow.removed_by_client).where(
                    TagRow.image_id == image.id, TagRow.removed_at.is_not(None)
                )
            )
            assert removed.all() == [(removed_at, BOB.user, BOB.client)] * 3
    finally:
        await engine.dispose()
