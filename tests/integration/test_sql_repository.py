"""The SQL unit of work and repositories, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from imagetag.adapters.sqla.engine import create_engine, session_factory
from imagetag.adapters.sqla.reader import create_image_reader
from imagetag.adapters.sqla.tables import TagRow
from imagetag.adapters.sqla.unit_of_work import SqlUnitOfWorkFactory
from imagetag.domain.audit import AuditEvent, AuditEventType, AuditQuery
from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo
from imagetag.domain.errors import ImageNotFound, KeyNameTaken
from imagetag.domain.images import DetectionRun, DetectionStatus, ImageFacts, NewImage
from imagetag.domain.principals import Actor, ApiKeyRecord, Role
from imagetag.domain.search import Match, ModelRef, SearchQuery
from imagetag.domain.tags import Tag, TagCount, TagSource

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
ONNX = DetectorInfo(detector="yolo-onnx", model="yolo11n.onnx", library_version="onnxruntime 1")


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


def failed_run(by: Actor = ALICE, at: datetime = T0) -> DetectionRun:
    return DetectionRun(YOLO, DetectionStatus.FAILED, by, at, error="model crashed")


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


async def test_an_added_image_reads_back_equal_with_its_tags_and_their_provenance(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        stored = await uow.images.add(new_image(1, run_of("bus", "person")))
        await uow.commit()
    async with unit_of_work() as uow:
        loaded = await uow.images.get(stored.id)
    assert loaded == stored
    assert loaded.created_at.tzinfo is not None
    assert loaded.created_by == ALICE
    assert loaded.objects == ("bus", "person")
    assert loaded.detection_status is DetectionStatus.SUCCEEDED
    first, second = loaded.tags
    assert first.model == YOLO
    assert first.run_id is not None
    assert first.run_id == second.run_id
    assert first.box == BoundingBox(0.1, 0.2, 0.3, 0.4)
    assert second.box is None


async def test_the_point_reader_sees_committed_live_images_with_their_live_tags(
    unit_of_work: SqlUnitOfWorkFactory, database_url: str
) -> None:
    engine = create_engine(database_url)
    reader = create_image_reader(database_url, engine)
    async with unit_of_work() as uow:
        tagged = await uow.images.add(new_image(1, run_of("bus", "person", "person")))
        plain = await uow.images.add(new_image(2))
        deleted = await uow.images.add(new_image(3))
        await uow.tags.add_human(tagged.id, ["red bus", "street"], BOB, T0)
        await uow.tags.remove(tagged.id, "person", BOB, T0)
        await uow.images.delete(deleted.id, BOB, T0)
        await uow.commit()
    async with unit_of_work() as uow:
        uncommitted = await uow.images.add(new_image(4, run_of("dog")))
        assert await reader.get(uncommitted.id) is None
        expected = await uow.images.get(tagged.id)
    try:
        assert expected is not None
        assert [(tag.name, tag.source) for tag in expected.tags] == [
            ("bus", TagSource.MODEL),
            ("red bus", TagSource.HUMAN),
            ("street", TagSource.HUMAN),
        ]
        assert await reader.get(tagged.id) == expected
        assert await reader.get(plain.id) == plain
        assert await reader.get(deleted.id) is None
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
        stored = await uow.images.add(new_image(1, run_of("cat")))
        await uow.audit.append(event(AuditEventType.IMAGE_CREATED, image_id=stored.id))
    async with unit_of_work() as uow:
        assert await uow.images.get(stored.id) is None
        assert await uow.audit.list(AuditQuery(), limit=10) == []


async def test_a_failed_detection_is_stored_with_its_reason(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        stored = await uow.images.add(new_image(1, failed_run()))
        await uow.commit()
    async with unit_of_work() as uow:
        loaded = await uow.images.get(stored.id)
    assert loaded == stored
    assert loaded.detection_status is DetectionStatus.FAILED
    assert loaded.detection_error == "model crashed"
    assert loaded.tags == ()


async def test_a_new_detection_run_adds_its_tags_and_becomes_the_latest(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    later = T0 + timedelta(hours=1)
    async with unit_of_work() as uow:
        image = await uow.images.add(new_image(1, run_of("cat")))
        second = await uow.images.add_detection_run(
            image.id, run_of(("cat", 0.8), ("dog", 0.6), detector=ONNX, by=BOB, at=later)
        )
        await uow.commit()
    async with unit_of_work() as uow:
        loaded = await uow.images.get(image.id)
        assert loaded is not None
        assert [(tag.name, tag.model, tag.run_id) for tag in loaded.tags] == [
            ("cat", YOLO, image.tags[0].run_id),
            ("cat", ONNX, second),
            ("dog", ONNX, second),
        ]
        assert loaded.tags[2] == Tag("dog", TagSource.MODEL, BOB, later, 0.6, None, ONNX, second)
        await uow.images.add_detection_run(image.id, failed_run(at=later))
        failed = await uow.images.get(image.id)
    assert failed is not None
    assert failed.detection_status is DetectionStatus.FAILED
    assert failed.tags == loaded.tags


async def test_relabel_delete_and_detection_runs_act_on_live_images_only(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        image = await uow.images.add(new_image(1, run_of("cat")))
        assert await uow.images.relabel(image.id, "renamed")
        assert await uow.images.delete(image.id, BOB, T0)
        assert not await uow.images.delete(image.id, BOB, T0)
        assert not await uow.images.relabel(image.id, "again")
        assert not await uow.images.relabel(999_999, "missing")
        with pytest.raises(ImageNotFound):
            await uow.images.add_detection_run(image.id, run_of("dog"))
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.images.get(image.id) is None
        assert await uow.images.search(SearchQuery(), limit=10) == []
        assert await uow.tags.add_human(image.id, ["cat"], BOB, T0) == ()
        assert await uow.tags.remove(image.id, "cat", BOB, T0) == 0
        assert await uow.tags.counts() == []


async def test_adding_human_tags_skips_names_the_same_user_already_put_on_the_image(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        image = await uow.images.add(new_image(1, run_of("cat")))
        assert await uow.tags.add_human(image.id, ["cat", "tabby"], ALICE, T0) == (
            "cat",
            "tabby",
        )
        assert await uow.tags.add_human(image.id, ["tabby", "sofa", "cat"], ALICE, T0) == ("sofa",)
        # Another person's tags of the same names are theirs, and are kept beside.
        assert await uow.tags.add_human(image.id, ["cat"], BOB, T0) == ("cat",)
        assert await uow.tags.remove(image.id, "tabby", BOB, T0) == 1
        assert await uow.tags.add_human(image.id, ["tabby"], ALICE, T0) == ("tabby",)
        loaded = await uow.images.get(image.id)
    assert loaded is not None
    assert [(tag.name, tag.source, tag.actor) for tag in loaded.tags] == [
        ("cat", TagSource.MODEL, ALICE),
        ("cat", TagSource.HUMAN, ALICE),
        ("sofa", TagSource.HUMAN, ALICE),
        ("cat", TagSource.HUMAN, BOB),
        ("tabby", TagSource.HUMAN, ALICE),
    ]


async def test_two_transactions_of_one_user_adding_the_same_tag_store_it_once(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        image = await uow.images.add(new_image(1))
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
        image = await uow.images.add(new_image(1, run_of("cat", "cat", "dog")))
        other = await uow.images.add(new_image(2, run_of("cat")))
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


async def test_tag_counts_count_images_per_live_name_in_all_and_by_source(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        both = await uow.images.add(new_image(1, run_of("cat", "cat")))
        await uow.tags.add_human(both.id, ["cat", "sofa"], ALICE, T0)
        human = await uow.images.add(new_image(2))
        await uow.tags.add_human(human.id, ["cat", "zebra"], BOB, T0)
        model = await uow.images.add(new_image(3, run_of("dog", "zebra")))
        await uow.tags.remove(model.id, "zebra", BOB, T0)
        deleted = await uow.images.add(new_image(4, run_of("cat", "dog", "owl")))
        await uow.images.delete(deleted.id, BOB, T0)
        counts = await uow.tags.counts()
    assert counts == [
        TagCount("cat", images=2, human=2, model=1),
        TagCount("dog", images=1, human=0, model=1),
        TagCount("sofa", images=1, human=1, model=0),
        TagCount("zebra", images=1, human=1, model=0),
    ]


def event(
    kind: AuditEventType,
    *,
    actor: Actor = ALICE,
    at: datetime = T0,
    image_id: int | None = None,
) -> AuditEvent:
    return AuditEvent(
        type=kind,
        actor=actor,
        occurred_at=at,
        target=f"image:{image_id}" if image_id else "key:ci",
        image_id=image_id,
        payload={"name": "cat", "removed": 2, "score": 0.5, "sure": True, "note": None},
    )


async def test_the_audit_log_lists_what_was_appended_newest_first_with_filters(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    appended = [
        event(AuditEventType.KEY_CREATED),
        event(AuditEventType.TAG_ADDED, actor=BOB, image_id=7, at=T0 + timedelta(hours=1)),
        event(AuditEventType.TAG_REMOVED, image_id=7, at=T0 + timedelta(hours=2)),
    ]
    async with unit_of_work() as uow:
        for item in appended:
            await uow.audit.append(item)
        await uow.commit()
    async with unit_of_work() as uow:
        listed = await uow.audit.list(AuditQuery(), limit=10)
        assert [dataclasses.replace(item, id=None) for item in listed] == appended[::-1]
        ids = [item.id for item in listed if item.id is not None]
        assert len(ids) == len(listed)
        assert ids == sorted(ids, reverse=True)

        async def found(query: AuditQuery, limit: int = 10) -> list[int | None]:
            return [item.id for item in await uow.audit.list(query, limit=limit)]

        assert await found(AuditQuery(user="bob")) == [ids[1]]
        assert await found(AuditQuery(image_id=7)) == ids[:2]
        assert await found(AuditQuery(types=(AuditEventType.KEY_CREATED,))) == [ids[2]]
        assert await found(AuditQuery(after=T0 + timedelta(hours=1))) == ids[:2]
        assert await found(AuditQuery(before=T0 + timedelta(hours=1))) == [ids[2]]
        assert await found(AuditQuery(before_id=ids[0]), limit=1) == [ids[1]]


def key(name: str, key_hash: str, *, role: Role = Role.TAGGER) -> ApiKeyRecord:
    return ApiKeyRecord(name, key_hash, f"itk_{name[:4]}", T0, "alice", "labelling-ui", role)


async def test_api_keys_keep_their_user_client_and_role_and_names_are_unique_among_active(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        await uow.api_keys.add(key("alice", "1" * 64, role=Role.ADMIN))
        await uow.commit()
    with pytest.raises(KeyNameTaken):
        async with unit_of_work() as uow:
            await uow.api_keys.add(key("alice", "2" * 64))
    async with unit_of_work() as uow:
        assert await uow.api_keys.revoke("alice", T0)
        await uow.api_keys.add(key("alice", "3" * 64, role=Role.READER))
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.api_keys.count_active() == 1
        assert await uow.api_keys.find_active_by_hash("1" * 64) is None
        assert await uow.api_keys.find_active_by_hash("3" * 64) == key(
            "alice", "3" * 64, role=Role.READER
        )
        assert not await uow.api_keys.revoke("nobody", T0)
        listed = await uow.api_keys.list()
    assert [(item.active, item.role) for item in listed] == [
        (False, Role.ADMIN),
        (True, Role.READER),
    ]
    assert listed[0].principal.actor == Actor("alice", "labelling-ui")


async def test_search_examples_read_as_the_query_language(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    later = T0 + timedelta(days=1)
    async with unit_of_work() as uow:
        dog = await uow.images.add(new_image(1, run_of(("dog", 0.9))))
        both = await uow.images.add(new_image(2, run_of(("cat", 0.4), ("dog", 0.7))))
        cat = await uow.images.add(new_image(3, run_of(("cat", 0.8), detector=ONNX)))
        plain = await uow.images.add(new_image(4))
        tagged = await uow.images.add(new_image(5))
        await uow.tags.add_human(tagged.id, ["cat"], BOB, later)
        gone = await uow.images.add(new_image(6, run_of("dog")))
        await uow.images.delete(gone.id, BOB, T0)

        async def ids(limit: int = 100, **filters: object) -> list[int]:
            query = SearchQuery(**filters)  # type: ignore[arg-type]
            return [image.id for image in await uow.images.search(query, limit=limit)]

        assert await ids() == [tagged.id, plain.id, cat.id, both.id, dog.id]
        assert await ids(objects=("cat", "dog")) == [cat.id, both.id, dog.id]
        assert await ids(objects=("cat", "dog"), match=Match.ALL) == [both.id]
        assert await ids(tags=("cat",)) == [tagged.id, cat.id, both.id]
        assert await ids(tags=("cat",), source=TagSource.HUMAN) == [tagged.id]
        assert await ids(exclude=("dog",), untagged=False) == [tagged.id, cat.id]
        assert await ids(untagged=True) == [plain.id]
        assert await ids(objects=("cat",), min_confidence=0.5) == [cat.id]
        assert await ids(tags=("cat",), min_confidence=0.5) == [tagged.id, cat.id]
        assert await ids(model=ModelRef("yolo11n.onnx")) == [cat.id]
        assert await ids(model=ModelRef("yolo11n.pt", YOLO.model_version)) == [both.id, dog.id]
        assert await ids(model=ModelRef("yolo11n.pt", "other")) == []
        assert await ids(tagged_by="bob") == [tagged.id]
        assert await ids(tagged_after=later) == [tagged.id]
        assert await ids(created_before=T0 + timedelta(minutes=2)) == [dog.id]
        assert await ids(before_id=cat.id, limit=1) == [both.id]
