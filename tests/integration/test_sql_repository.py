"""The SQL unit of work and repositories, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagetag.adapters.sqla.engine import create_engine, session_factory
from imagetag.adapters.sqla.reader import create_image_reader
from imagetag.adapters.sqla.unit_of_work import SqlUnitOfWorkFactory
from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo
from imagetag.domain.errors import KeyNameTaken
from imagetag.domain.images import DetectionStatus, ImageFacts, NewImage
from imagetag.domain.principals import ApiKeyRecord
from imagetag.domain.search import ImageQuery, Match, ObjectFilter

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
YOLO = DetectorInfo(
    detector="yolo",
    model="yolo11n.pt",
    library_version="ultralytics 8",
    model_sha256="ab" * 32,
    confidence_threshold=0.25,
    iou_threshold=0.7,
)


def new_image(
    number: int, objects: tuple[str, ...] = (), *, status: DetectionStatus | None = None
) -> NewImage:
    detections = tuple(
        Detection(name, 0.5 + index / 100, BoundingBox(0.1, 0.2, 0.3, 0.4), YOLO)
        for index, name in enumerate(objects)
    )
    return NewImage(
        label=f"image {number}",
        source=f"photo-{number}.jpg",
        sha256=f"{number:064x}",
        facts=ImageFacts("image/jpeg", 640, 480),
        size_bytes=1000 + number,
        created_at=T0 + timedelta(minutes=number),
        created_by="tester",
        detection_status=status
        or (DetectionStatus.SUCCEEDED if objects else DetectionStatus.NOT_REQUESTED),
        detections=detections,
    )


@pytest.fixture
async def unit_of_work(database_url: str) -> AsyncIterator[SqlUnitOfWorkFactory]:
    engine = create_engine(database_url)
    yield SqlUnitOfWorkFactory(session_factory(engine))
    await engine.dispose()


async def test_added_image_reads_back_equal_with_its_id_and_detections(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        stored = await uow.images.add(new_image(1, ("bus", "person")))
        await uow.commit()
    async with unit_of_work() as uow:
        loaded = await uow.images.get(stored.id)
    assert loaded == stored
    assert loaded.created_at.tzinfo is not None
    assert loaded.objects == ("bus", "person")
    assert loaded.detections[0].detector == YOLO


async def test_the_point_reader_sees_exactly_what_was_committed(
    unit_of_work: SqlUnitOfWorkFactory, database_url: str
) -> None:
    engine = create_engine(database_url)
    reader = create_image_reader(database_url, engine)
    async with unit_of_work() as uow:
        with_objects = await uow.images.add(new_image(1, ("bus", "person", "person")))
        plain = await uow.images.add(new_image(2))
        await uow.commit()
    async with unit_of_work() as uow:
        uncommitted = await uow.images.add(new_image(3, ("dog",)))
        assert await reader.get(uncommitted.id) is None
    try:
        assert await reader.get(with_objects.id) == with_objects
        assert await reader.get(plain.id) == plain
        assert await reader.get(999_999) is None
    finally:
        await engine.dispose()


async def test_ids_come_from_the_store_and_increase(unit_of_work: SqlUnitOfWorkFactory) -> None:
    async with unit_of_work() as uow:
        first = await uow.images.add(new_image(1))
        second = await uow.images.add(new_image(2))
        await uow.commit()
    assert 0 < first.id < second.id


async def test_uncommitted_work_is_rolled_back(unit_of_work: SqlUnitOfWorkFactory) -> None:
    async with unit_of_work() as uow:
        stored = await uow.images.add(new_image(1))
    async with unit_of_work() as uow:
        assert await uow.images.get(stored.id) is None


async def test_failed_detection_is_stored_with_its_reason(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    failed = NewImage(
        label="x",
        source=None,
        sha256="f" * 64,
        facts=ImageFacts("image/png", 1, 1),
        size_bytes=1,
        created_at=T0,
        created_by="tester",
        detection_status=DetectionStatus.FAILED,
        detection_error="model crashed",
    )
    async with unit_of_work() as uow:
        stored = await uow.images.add(failed)
        await uow.commit()
    async with unit_of_work() as uow:
        loaded = await uow.images.get(stored.id)
    assert loaded is not None
    assert loaded.detection_status is DetectionStatus.FAILED
    assert loaded.detection_error == "model crashed"


async def test_search_any_all_and_keyset_pages(unit_of_work: SqlUnitOfWorkFactory) -> None:
    async with unit_of_work() as uow:
        dog = await uow.images.add(new_image(1, ("dog",)))
        both = await uow.images.add(new_image(2, ("cat", "dog")))
        cat = await uow.images.add(new_image(3, ("cat",)))
        plain = await uow.images.add(new_image(4))
        await uow.commit()

    async def ids(query: ImageQuery, limit: int = 100) -> list[int]:
        async with unit_of_work() as uow:
            return [image.id for image in await uow.images.search(query, limit=limit)]

    assert await ids(ImageQuery()) == [plain.id, cat.id, both.id, dog.id]
    any_of = ObjectFilter(("dog", "cat"), Match.ANY)
    assert await ids(ImageQuery(objects=any_of)) == [cat.id, both.id, dog.id]
    all_of = ObjectFilter(("dog", "cat"), Match.ALL)
    assert await ids(ImageQuery(objects=all_of)) == [both.id]
    assert await ids(ImageQuery(objects=ObjectFilter(("zebra",)))) == []
    assert await ids(ImageQuery(before_id=cat.id), limit=2) == [both.id, dog.id]


async def test_api_key_names_are_unique_among_active_keys(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        await uow.api_keys.add(ApiKeyRecord("alice", "1" * 64, "itk_aaaa", T0))
        await uow.commit()
    with pytest.raises(KeyNameTaken):
        async with unit_of_work() as uow:
            await uow.api_keys.add(ApiKeyRecord("alice", "2" * 64, "itk_bbbb", T0))
    async with unit_of_work() as uow:
        assert await uow.api_keys.revoke("alice", T0)
        await uow.api_keys.add(ApiKeyRecord("alice", "3" * 64, "itk_cccc", T0))
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.api_keys.count_active() == 1
        assert await uow.api_keys.find_active_by_hash("1" * 64) is None
        active = await uow.api_keys.find_active_by_hash("3" * 64)
        assert active is not None
        assert active.name == "alice"
        assert not await uow.api_keys.revoke("nobody", T0)
        assert [key.active for key in await uow.api_keys.list()] == [False, True]


OBJECTS = ("cat", "dog", "bus", "person")


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    dataset=st.lists(st.sets(st.sampled_from(OBJECTS), max_size=3), min_size=0, max_size=12),
    names=st.sets(st.sampled_from(OBJECTS), min_size=1, max_size=3),
    match=st.sampled_from(Match),
    before=st.one_of(st.none(), st.integers(1, 14)),
    limit=st.integers(1, 13),
)
async def test_sql_search_equals_the_domain_predicate(
    unit_of_work: SqlUnitOfWorkFactory,
    dataset: list[set[str]],
    names: set[str],
    match: Match,
    before: int | None,
    limit: int,
) -> None:
    async with unit_of_work() as uow:
        stored = [
            await uow.images.add(new_image(n, tuple(sorted(objs))))
            for n, objs in enumerate(dataset, start=1)
        ]
        # Sequences do not roll back on PostgreSQL, so the cursor is relative to this dataset.
        first_id = stored[0].id if stored else 1
        query = ImageQuery(
            objects=ObjectFilter(tuple(sorted(names)), match),
            limit=limit,
            before_id=first_id + before if before is not None else None,
        )
        found = [image.id for image in await uow.images.search(query, limit=limit)]
        # Not committed: each example starts from the same empty database.
    expected = sorted(
        (image.id for image in stored if query.includes(image.id, image.objects)), reverse=True
    )[:limit]
    assert found == expected
