"""The storage ports: the unit of work, its repositories and the point reader.

What the services rely on, stated once and run on every store: the fake, SQLite and
PostgreSQL. Where they disagree, one of them has a bug.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from imagetag.domain.audit import AuditEvent, AuditEventType, AuditQuery
from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo
from imagetag.domain.errors import (
    IdempotencyKeyTaken,
    ImageNotFound,
    InvalidInput,
    KeyNameTaken,
)
from imagetag.domain.idempotency import IdempotencyRecord
from imagetag.domain.images import DetectionRun, DetectionStatus, Image, ImageFacts, NewImage
from imagetag.domain.principals import Actor, ApiKeyRecord, Role
from imagetag.domain.search import Match, ModelRef, SearchQuery
from imagetag.domain.tags import Tag, TagCount, TagSource
from imagetag.ports.repository import AddedImage, ImageReader, UnitOfWork, UnitOfWorkFactory

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
BOX = BoundingBox(0.1, 0.2, 0.3, 0.4)


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
            box=BOX if index % 2 == 0 else None,
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


def key(name: str, key_hash: str, *, role: Role = Role.TAGGER) -> ApiKeyRecord:
    return ApiKeyRecord(name, key_hash, f"itk_{name[:4]}", T0, "alice", "labelling-ui", role)


async def add_image(uow: UnitOfWork, image: NewImage) -> Image:
    return (await uow.images.add(image)).image


async def ids_of(uow: UnitOfWork, limit: int = 100, **filters: object) -> list[int]:
    query = SearchQuery(**filters)  # type: ignore[arg-type]
    return [image.id for image in await uow.images.search(query, limit=limit)]


# --- Images ------------------------------------------------------------------------------


async def test_an_added_image_reads_back_equal_with_its_tags_and_their_provenance(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        stored = await add_image(uow, new_image(1, run_of("bus", "person")))
        await uow.commit()
    async with unit_of_work() as uow:
        loaded = await uow.images.get(stored.id)

    assert loaded == stored
    assert loaded.created_at.tzinfo is not None
    assert loaded.created_by == ALICE
    assert loaded.objects == ("bus", "person")
    assert loaded.detection_status is DetectionStatus.SUCCEEDED
    first, second = loaded.tags
    assert (first.source, first.model, first.actor) == (TagSource.MODEL, YOLO, ALICE)
    assert (first.added_at, first.confidence) == (T0, 0.5)
    assert first.run_id is not None
    assert first.run_id == second.run_id
    assert (first.box, second.box) == (BOX, None)


async def test_adding_an_image_returns_the_id_of_the_run_it_came_with(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        detected = await uow.images.add(new_image(1, run_of("bus", "person")))
        failed = await uow.images.add(new_image(2, failed_run()))
        plain = await uow.images.add(new_image(3))
        later = await uow.images.add_detection_run(detected.image.id, run_of("dog"))

    assert detected.run_id is not None
    assert {tag.run_id for tag in detected.image.tags} == {detected.run_id}
    assert failed.run_id is not None
    assert len({detected.run_id, failed.run_id, later}) == 3
    assert plain.run_id is None


async def test_a_failed_detection_is_stored_with_its_reason_and_no_tags(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        stored = await add_image(uow, new_image(1, failed_run()))
        plain = await add_image(uow, new_image(2))
        await uow.commit()
    async with unit_of_work() as uow:
        loaded = await uow.images.get(stored.id)
        loaded_plain = await uow.images.get(plain.id)

    assert loaded == stored
    assert (loaded.detection_status, loaded.detection_error) == (
        DetectionStatus.FAILED,
        "model crashed",
    )
    assert loaded.tags == ()
    assert loaded_plain == plain
    assert loaded_plain.detection_status is DetectionStatus.NOT_REQUESTED


async def test_ids_come_from_the_store_and_increase(unit_of_work: UnitOfWorkFactory) -> None:
    async with unit_of_work() as uow:
        first = await add_image(uow, new_image(1))
        second = await add_image(uow, new_image(2))
        await uow.commit()
    async with unit_of_work() as uow:
        third = await add_image(uow, new_image(3))
        await uow.commit()

    assert 0 < first.id < second.id < third.id


async def test_unknown_ids_read_as_nothing(unit_of_work: UnitOfWorkFactory) -> None:
    async with unit_of_work() as uow:
        assert await uow.images.get(999_999) is None
        assert await uow.images.find_by_sha256("0" * 64) is None
        assert await uow.images.search(SearchQuery(), limit=10) == []
        assert await uow.tags.counts() == []


async def test_a_deleted_image_leaves_get_search_find_by_sha256_and_counts(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        kept = await add_image(uow, new_image(1, run_of("dog")))
        gone = await add_image(uow, new_image(2, run_of("cat")))
        await uow.tags.add_human(gone.id, ["sofa"], ALICE, T0)
        assert await uow.images.delete(gone.id, BOB, T0)
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.images.get(gone.id) is None
        assert await uow.images.find_by_sha256(gone.sha256) is None
        assert await ids_of(uow) == [kept.id]
        assert await ids_of(uow, tags=("cat",)) == []
        assert await uow.tags.counts() == [TagCount("dog", images=1, human=0, model=1)]


async def test_relabel_and_delete_act_on_live_images_only(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        image = await add_image(uow, new_image(1, run_of("cat")))
        assert await uow.images.relabel(image.id, "renamed")
        await uow.commit()
    async with unit_of_work() as uow:
        renamed = await uow.images.get(image.id)
        assert renamed == dataclasses.replace(image, label="renamed")
        assert await uow.images.delete(image.id, BOB, T0)
        assert not await uow.images.delete(image.id, BOB, T0)
        assert not await uow.images.relabel(image.id, "again")
        assert not await uow.images.relabel(999_999, "missing")
        assert not await uow.images.delete(999_999, BOB, T0)


@pytest.mark.parametrize("which", ["deleted", "unknown"])
async def test_a_detection_run_on_an_image_that_is_not_live_raises_image_not_found(
    unit_of_work: UnitOfWorkFactory, which: str
) -> None:
    async with unit_of_work() as uow:
        image = await add_image(uow, new_image(1))
        await uow.images.delete(image.id, BOB, T0)
        image_id = image.id if which == "deleted" else 999_999

        with pytest.raises(ImageNotFound):
            await uow.images.add_detection_run(image_id, run_of("dog"))


async def test_a_new_detection_run_adds_its_tags_and_becomes_the_latest(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    later = T0 + timedelta(hours=1)
    async with unit_of_work() as uow:
        image = await add_image(uow, new_image(1, run_of("cat")))
        second = await uow.images.add_detection_run(
            image.id, run_of(("cat", 0.8), ("dog", 0.6), detector=ONNX, by=BOB, at=later)
        )
        await uow.commit()
    async with unit_of_work() as uow:
        loaded = await uow.images.get(image.id)
        assert loaded is not None
        assert second != image.tags[0].run_id
        assert [(tag.name, tag.model, tag.run_id) for tag in loaded.tags] == [
            ("cat", YOLO, image.tags[0].run_id),
            ("cat", ONNX, second),
            ("dog", ONNX, second),
        ]
        assert loaded.tags[2] == Tag("dog", TagSource.MODEL, BOB, later, 0.6, None, ONNX, second)

        await uow.images.add_detection_run(image.id, failed_run(at=later))
        failed = await uow.images.get(image.id)
    assert failed is not None
    assert (failed.detection_status, failed.detection_error) == (
        DetectionStatus.FAILED,
        "model crashed",
    )
    assert failed.tags == loaded.tags


async def test_the_oldest_live_image_with_the_bytes_is_found(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        oldest = await add_image(uow, new_image(7))
        newer = await add_image(uow, new_image(7, by=BOB))
        await add_image(uow, new_image(8))
        await uow.commit()
    async with unit_of_work() as uow:
        found = await uow.images.find_by_sha256(oldest.sha256)
        assert found == oldest
        await uow.images.delete(oldest.id, ALICE, T0)
        assert await uow.images.find_by_sha256(oldest.sha256) == newer


# --- Tags --------------------------------------------------------------------------------


async def test_adding_human_tags_skips_names_the_same_user_already_put_on_the_image(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        image = await add_image(uow, new_image(1, run_of("cat")))
        assert await uow.tags.add_human(image.id, ["cat", "tabby"], ALICE, T0) == ("cat", "tabby")
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
    assert loaded.tags[1] == Tag.by_human("cat", ALICE, T0)


async def test_a_name_given_twice_in_one_call_is_added_once(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        image = await add_image(uow, new_image(1))
        assert await uow.tags.add_human(image.id, ["cat", "dog", "cat"], ALICE, T0) == (
            "cat",
            "dog",
        )
        loaded = await uow.images.get(image.id)

    assert loaded is not None
    assert [tag.name for tag in loaded.tags] == ["cat", "dog"]


@pytest.mark.parametrize("which", ["deleted", "unknown"])
async def test_tags_of_an_image_that_is_not_live_are_neither_added_nor_removed(
    unit_of_work: UnitOfWorkFactory, which: str
) -> None:
    async with unit_of_work() as uow:
        image = await add_image(uow, new_image(1, run_of("cat")))
        await uow.images.delete(image.id, BOB, T0)
        image_id = image.id if which == "deleted" else 999_999

        assert await uow.tags.add_human(image_id, ["cat", "sofa"], ALICE, T0) == ()
        assert await uow.tags.remove(image_id, "cat", ALICE, T0) == 0


async def test_removing_a_tag_takes_off_every_live_tag_of_that_name_from_both_sources(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        image = await add_image(uow, new_image(1, run_of("cat", "cat", "dog")))
        other = await add_image(uow, new_image(2, run_of("cat")))
        await uow.tags.add_human(image.id, ["cat"], ALICE, T0)
        await uow.tags.add_human(image.id, ["cat"], BOB, T0)
        assert await uow.tags.remove(image.id, "cat", BOB, T0) == 4
        assert await uow.tags.remove(image.id, "cat", BOB, T0) == 0
        assert await uow.tags.remove(image.id, "zebra", BOB, T0) == 0
        await uow.commit()
    async with unit_of_work() as uow:
        loaded = await uow.images.get(image.id)
        untouched = await uow.images.get(other.id)

    assert loaded is not None
    assert loaded.tag_names == ("dog",)
    assert untouched == other


async def test_tag_counts_count_images_per_live_name_in_all_and_by_source(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        both = await add_image(uow, new_image(1, run_of("cat", "cat")))
        await uow.tags.add_human(both.id, ["cat", "sofa"], ALICE, T0)
        human = await add_image(uow, new_image(2))
        await uow.tags.add_human(human.id, ["cat", "zebra"], BOB, T0)
        model = await add_image(uow, new_image(3, run_of("dog", "zebra")))
        await uow.tags.remove(model.id, "zebra", BOB, T0)
        deleted = await add_image(uow, new_image(4, run_of("cat", "dog", "owl")))
        await uow.images.delete(deleted.id, BOB, T0)
        counts = await uow.tags.counts()

    assert counts == [
        TagCount("cat", images=2, human=2, model=1),
        TagCount("dog", images=1, human=0, model=1),
        TagCount("sofa", images=1, human=1, model=0),
        TagCount("zebra", images=1, human=1, model=0),
    ]


# --- Search ------------------------------------------------------------------------------


async def test_search_lists_newest_first_and_pages_with_limit_and_before_id(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        first, second, third, fourth = [await add_image(uow, new_image(n)) for n in range(1, 5)]

        assert await ids_of(uow) == [fourth.id, third.id, second.id, first.id]
        assert await ids_of(uow, limit=2) == [fourth.id, third.id]
        assert await ids_of(uow, limit=2, before_id=third.id) == [second.id, first.id]
        assert await ids_of(uow, before_id=first.id) == []
        found = await uow.images.search(SearchQuery(), limit=1)
        assert found == [fourth]


async def test_search_examples_read_as_the_query_language(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    later = T0 + timedelta(days=1)
    async with unit_of_work() as uow:
        dog = await add_image(uow, new_image(1, run_of(("dog", 0.9))))
        both = await add_image(uow, new_image(2, run_of(("cat", 0.4), ("dog", 0.7))))
        cat = await add_image(uow, new_image(3, run_of(("cat", 0.8), detector=ONNX)))
        plain = await add_image(uow, new_image(4))
        tagged = await add_image(uow, new_image(5))
        await uow.tags.add_human(tagged.id, ["cat"], BOB, later)
        gone = await add_image(uow, new_image(6, run_of("dog")))
        await uow.images.delete(gone.id, BOB, T0)

        async def ids(limit: int = 100, **filters: object) -> list[int]:
            return await ids_of(uow, limit, **filters)

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


# A small world, so that every filter both keeps and drops something.
NAMES = ("cat", "dog", "red bus")
ACTORS = (ALICE, BOB)
INSTANTS = (T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2))
DETECTORS = (YOLO, ONNX)
name_lists = st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True).map(tuple)


@st.composite
def detection_runs(draw: st.DrawFn) -> DetectionRun:
    detector, actor, at = draw(st.sampled_from(DETECTORS)), ALICE, draw(st.sampled_from(INSTANTS))
    if draw(st.integers(0, 4)) == 0:
        return DetectionRun(detector, DetectionStatus.FAILED, actor, at, error="crashed")
    found = st.tuples(st.sampled_from(NAMES), st.sampled_from((0.3, 0.6, 0.9)))
    detections = tuple(
        Detection(name, confidence, BOX, detector)
        for name, confidence in draw(st.lists(found, max_size=2))
    )
    return DetectionRun(detector, DetectionStatus.SUCCEEDED, actor, at, detections)


@dataclasses.dataclass(frozen=True)
class Plan:
    """An image, the human tags people add, the tag then removed, and whether it is deleted."""

    image: NewImage
    human: tuple[tuple[Actor, tuple[str, ...]], ...]
    removed: str | None
    deleted: bool


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    number = draw(st.integers(1, 2**32))
    image = NewImage(
        label=f"image {number}",
        source=None,
        sha256=f"{number:064x}",
        facts=ImageFacts("image/png", 10, 10),
        size_bytes=number,
        created_at=draw(st.sampled_from(INSTANTS)),
        created_by=draw(st.sampled_from(ACTORS)),
        detection=draw(st.none() | detection_runs()),
    )
    human = draw(st.lists(st.tuples(st.sampled_from(ACTORS), name_lists), max_size=2))
    removed = draw(st.none() | st.sampled_from(NAMES))
    return Plan(image, tuple(human), removed, draw(st.integers(0, 4)) == 0)


@st.composite
def queries(draw: st.DrawFn) -> tuple[SearchQuery, int | None]:
    """A query, and its cursor as an offset from the first stored image's id."""
    untagged = draw(st.sampled_from((None, None, True, False)))
    source = draw(st.sampled_from((None, None, TagSource.HUMAN, TagSource.MODEL)))
    some_names = st.just(()) | name_lists
    try:
        query = SearchQuery(
            objects=draw(some_names) if not untagged and source is not TagSource.HUMAN else (),
            tags=draw(some_names) if not untagged else (),
            match=draw(st.sampled_from(Match)),
            exclude=draw(st.just(()) | name_lists),
            untagged=untagged,
            min_confidence=draw(st.sampled_from((None, None, 0.5, 0.9))),
            source=source,
            tagged_by=draw(st.sampled_from((None, None, "alice", "bob"))),
            tagged_after=draw(st.sampled_from((None, None, INSTANTS[1]))),
            limit=draw(st.integers(1, 5)),
        )
    except InvalidInput:
        reject()
    return query, draw(st.none() | st.integers(1, 8))


async def store(uow: UnitOfWork, planned: list[Plan]) -> list[Image]:
    """Carry out the plans; return the live images, newest first, as the store reads them."""
    live = []
    for plan in planned:
        image = await add_image(uow, plan.image)
        for actor, names in plan.human:
            await uow.tags.add_human(image.id, names, actor, T0)
        if plan.removed is not None:
            await uow.tags.remove(image.id, plan.removed, BOB, T0)
        if plan.deleted:
            await uow.images.delete(image.id, BOB, T0)
        else:
            live.append(image.id)
    found = [await uow.images.get(image_id) for image_id in reversed(live)]
    assert None not in found
    return [image for image in found if image is not None]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(planned=st.lists(plans(), max_size=6), asked=st.lists(queries(), min_size=1, max_size=4))
async def test_search_returns_exactly_the_live_images_the_query_includes_newest_first(
    unit_of_work: UnitOfWorkFactory,
    planned: list[Plan],
    asked: list[tuple[SearchQuery, int | None]],
) -> None:
    async with unit_of_work() as uow:
        newest_first = await store(uow, planned)
        # Ids are not reused after a rollback: cursors are relative to this example's images.
        first_id = newest_first[-1].id if newest_first else 1
        for query, offset in asked:
            if offset is not None:
                query = dataclasses.replace(query, before_id=first_id + offset - 1)
            expected = [image for image in newest_first if query.includes(image)][: query.limit]
            assert await uow.images.search(query, limit=query.limit) == expected, query
        # Not committed: every example starts from the same empty store.


# --- The audit log -----------------------------------------------------------------------


async def test_the_audit_log_lists_what_was_appended_newest_first_with_filters(
    unit_of_work: UnitOfWorkFactory,
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
            listed = await uow.audit.list(query, limit=limit)
            assert all(query.includes(item) for item in listed)
            return [item.id for item in listed]

        assert await found(AuditQuery(), limit=2) == ids[:2]
        assert await found(AuditQuery(user="bob")) == [ids[1]]
        assert await found(AuditQuery(image_id=7)) == ids[:2]
        assert await found(AuditQuery(types=(AuditEventType.KEY_CREATED,))) == [ids[2]]
        assert await found(AuditQuery(after=T0 + timedelta(hours=1))) == ids[:2]
        assert await found(AuditQuery(before=T0 + timedelta(hours=1))) == [ids[2]]
        assert await found(AuditQuery(before_id=ids[0]), limit=1) == [ids[1]]


# --- Idempotency keys --------------------------------------------------------------------


async def test_an_idempotency_key_is_found_for_its_user_only(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        image = await add_image(uow, new_image(1))
        record = IdempotencyRecord(ALICE.user, "k-1", "f" * 64, image.id, T0)
        await uow.idempotency.add(record)
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.idempotency.find(ALICE.user, "k-1") == record
        assert await uow.idempotency.find(BOB.user, "k-1") is None
        assert await uow.idempotency.find(ALICE.user, "k-2") is None


async def test_a_taken_idempotency_key_is_refused_and_the_transaction_goes_on(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        first = await add_image(uow, new_image(1))
        await uow.idempotency.add(IdempotencyRecord(ALICE.user, "k-1", "a" * 64, first.id, T0))
        await uow.commit()
    async with unit_of_work() as uow:
        second = await add_image(uow, new_image(2))
        with pytest.raises(IdempotencyKeyTaken):
            await uow.idempotency.add(IdempotencyRecord(ALICE.user, "k-1", "b" * 64, second.id, T0))
        await uow.idempotency.add(IdempotencyRecord(BOB.user, "k-1", "b" * 64, second.id, T0))
        await uow.commit()
    async with unit_of_work() as uow:
        alices = await uow.idempotency.find(ALICE.user, "k-1")
        bobs = await uow.idempotency.find(BOB.user, "k-1")
        assert alices is not None
        assert bobs is not None
        assert (alices.image_id, bobs.image_id) == (first.id, second.id)
        assert await uow.images.get(second.id) == second


# --- API keys ----------------------------------------------------------------------------


async def test_api_keys_are_found_by_hash_while_active_and_names_are_unique_among_active(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        await uow.api_keys.add(key("alice", "1" * 64, role=Role.ADMIN))
        await uow.api_keys.add(key("bob", "2" * 64))
        await uow.commit()
    with pytest.raises(KeyNameTaken):
        async with unit_of_work() as uow:
            await uow.api_keys.add(key("alice", "3" * 64))
    async with unit_of_work() as uow:
        assert await uow.api_keys.count_active() == 2
        assert await uow.api_keys.revoke("alice", T0)
        assert not await uow.api_keys.revoke("alice", T0)
        assert not await uow.api_keys.revoke("nobody", T0)
        await uow.api_keys.add(key("alice", "4" * 64, role=Role.READER))
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.api_keys.count_active() == 2
        assert await uow.api_keys.find_active_by_hash("1" * 64) is None
        assert await uow.api_keys.find_active_by_hash("4" * 64) == key(
            "alice", "4" * 64, role=Role.READER
        )
        assert await uow.api_keys.find_active_by_hash("5" * 64) is None
        listed = list(await uow.api_keys.list())

    assert listed == [
        dataclasses.replace(key("alice", "1" * 64, role=Role.ADMIN), revoked_at=T0),
        key("bob", "2" * 64),
        key("alice", "4" * 64, role=Role.READER),
    ]


async def test_the_audit_log_lists_events_appended_earlier_in_the_same_unit_of_work(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        await uow.audit.append(event(AuditEventType.KEY_CREATED))
        await uow.audit.append(event(AuditEventType.TAG_ADDED, image_id=7))
        listed = await uow.audit.list(AuditQuery(), limit=10)
        assert [item.type for item in listed] == [
            AuditEventType.TAG_ADDED,
            AuditEventType.KEY_CREATED,
        ]
        await uow.audit.append(event(AuditEventType.TAG_REMOVED, image_id=7))
        await uow.commit()
    async with unit_of_work() as uow:
        listed = await uow.audit.list(AuditQuery(), limit=10)
    assert [item.type for item in listed] == [
        AuditEventType.TAG_REMOVED,
        AuditEventType.TAG_ADDED,
        AuditEventType.KEY_CREATED,
    ]


async def test_audit_events_appended_before_a_rollback_are_not_written(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        await uow.audit.append(event(AuditEventType.KEY_CREATED))
        await uow.rollback()
        await uow.audit.append(event(AuditEventType.TAG_ADDED, image_id=7))
        await uow.commit()
    async with unit_of_work() as uow:
        listed = await uow.audit.list(AuditQuery(), limit=10)
    assert [item.type for item in listed] == [AuditEventType.TAG_ADDED]


async def test_an_image_added_and_committed_in_one_reads_back_with_its_audit_events(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    made_of: list[AddedImage] = []

    def events(added: AddedImage) -> list[AuditEvent]:
        made_of.append(added)
        return [
            event(AuditEventType.IMAGE_CREATED, image_id=added.image.id),
            event(AuditEventType.DETECTION_RUN, image_id=added.image.id),
        ]

    async with unit_of_work() as uow:
        await uow.audit.append(event(AuditEventType.KEY_CREATED))
        added = await uow.add_image_and_commit(new_image(1, run_of("bus", "person")), events)
    async with unit_of_work() as uow:
        loaded = await uow.images.get(added.image.id)
        listed = await uow.audit.list(AuditQuery(), limit=10)

    assert made_of == [added]
    assert loaded == added.image
    assert added.run_id is not None
    assert {tag.run_id for tag in added.image.tags} == {added.run_id}
    assert [(item.type, item.image_id) for item in listed] == [
        (AuditEventType.DETECTION_RUN, added.image.id),
        (AuditEventType.IMAGE_CREATED, added.image.id),
        (AuditEventType.KEY_CREATED, None),
    ]


async def test_an_image_whose_audit_events_fail_is_not_stored(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    seen: list[int] = []

    def failing(added: AddedImage) -> list[AuditEvent]:
        seen.append(added.image.id)
        raise RuntimeError("no events for this one")

    async with unit_of_work() as uow:
        with pytest.raises(RuntimeError, match="no events"):
            await uow.add_image_and_commit(new_image(1), failing)
    async with unit_of_work() as uow:
        assert await uow.images.get(seen[0]) is None
        assert await uow.audit.list(AuditQuery(), limit=10) == []


# --- Transactions and the point reader ---------------------------------------------------


async def test_work_that_is_not_committed_is_seen_by_no_other_unit_of_work(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        committed = await add_image(uow, new_image(1))
        await uow.commit()
    async with unit_of_work() as uow:
        image = await add_image(uow, new_image(2, run_of("cat")))
        await uow.tags.add_human(committed.id, ["sofa"], ALICE, T0)
        await uow.images.relabel(committed.id, "renamed")
        await uow.audit.append(event(AuditEventType.IMAGE_CREATED, image_id=image.id))
        await uow.api_keys.add(key("alice", "1" * 64))
        await uow.idempotency.add(IdempotencyRecord(ALICE.user, "k", "a" * 64, image.id, T0))
        async with unit_of_work() as other:
            assert await other.images.get(image.id) is None
            assert await other.images.get(committed.id) == committed
    async with unit_of_work() as uow:
        assert await uow.images.get(image.id) is None
        assert await uow.images.get(committed.id) == committed
        assert await uow.audit.list(AuditQuery(), limit=10) == []
        assert list(await uow.api_keys.list()) == []
        assert await uow.idempotency.find(ALICE.user, "k") is None
        assert await uow.tags.counts() == []


async def test_rollback_discards_the_work_so_far_and_the_unit_goes_on(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        dropped = await add_image(uow, new_image(1))
        await uow.rollback()
        assert await uow.images.get(dropped.id) is None
        kept = await add_image(uow, new_image(2))
        await uow.commit()
    async with unit_of_work() as uow:
        assert await ids_of(uow) == [kept.id]


async def test_an_error_inside_a_unit_of_work_leaves_nothing_behind(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    added: list[Image] = []

    async def add_then_fail() -> None:
        async with unit_of_work() as uow:
            added.append(await add_image(uow, new_image(1)))
            raise RuntimeError("the service gave up")

    with pytest.raises(RuntimeError):
        await add_then_fail()
    async with unit_of_work() as uow:
        assert await uow.images.get(added[0].id) is None


async def test_the_point_reader_sees_committed_live_images_with_their_live_tags(
    unit_of_work: UnitOfWorkFactory, image_reader: ImageReader
) -> None:
    async with unit_of_work() as uow:
        tagged = await add_image(uow, new_image(1, run_of("bus", "person", "person")))
        plain = await add_image(uow, new_image(2))
        deleted = await add_image(uow, new_image(3))
        await uow.tags.add_human(tagged.id, ["red bus", "street"], BOB, T0)
        await uow.tags.remove(tagged.id, "person", BOB, T0)
        await uow.images.delete(deleted.id, BOB, T0)
        await uow.commit()
    async with unit_of_work() as uow:
        uncommitted = await add_image(uow, new_image(4, run_of("dog")))
        assert await image_reader.get(uncommitted.id) is None
        expected = await uow.images.get(tagged.id)

    assert expected is not None
    assert [(tag.name, tag.source) for tag in expected.tags] == [
        ("bus", TagSource.MODEL),
        ("red bus", TagSource.HUMAN),
        ("street", TagSource.HUMAN),
    ]
    assert await image_reader.get(tagged.id) == expected
    assert await image_reader.get(plain.id) == plain
    assert await image_reader.get(deleted.id) is None
    assert await image_reader.get(999_999) is None
