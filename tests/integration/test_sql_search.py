"""The SQL searches return exactly what the domain's pure predicates accept.

Each example stores a random dataset in one transaction, reads it back, runs several
random queries against it and rolls back, so the examples share one empty database.
The dataset draws from small pools of names, people, models, confidences and instants,
so that every filter both keeps and drops something.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from imagetag.adapters.sqla.engine import create_engine, session_factory
from imagetag.adapters.sqla.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory
from imagetag.domain.audit import AuditEvent, AuditEventType, AuditQuery
from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo
from imagetag.domain.errors import InvalidInput
from imagetag.domain.images import DetectionRun, DetectionStatus, Image, ImageFacts, NewImage
from imagetag.domain.principals import Actor
from imagetag.domain.search import Match, ModelRef, SearchQuery
from imagetag.domain.tags import Tag, TagSource

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
INSTANTS = tuple(T0 + timedelta(hours=hours) for hours in range(4))
NAMES = ("cat", "dog", "red bus", "person")
ACTORS = (Actor("alice", "labelling-ui"), Actor("bob", "notebook"), Actor("carol", "cli"))
USERS = (*(actor.user for actor in ACTORS), "nobody")
CONFIDENCES = (0.3, 0.5, 0.7, 0.9)
DETECTORS = (
    DetectorInfo("yolo", "yolo11n.pt", "ultralytics 8", model_sha256="ab" * 32),
    DetectorInfo("yolo", "yolo11n.pt", "ultralytics 8"),
    DetectorInfo("yolo-onnx", "yolo11n.onnx", "onnxruntime 1", parameters=(("size", "640"),)),
)
MODEL_REFS = (
    *(ModelRef(info.model) for info in DETECTORS),
    *(ModelRef(info.model, info.model_version) for info in DETECTORS),
    ModelRef("yolo11n.pt", "onnxruntime 1"),
    ModelRef("unknown.pt"),
)

T = TypeVar("T")
EXAMPLES = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
async def unit_of_work(database_url: str) -> AsyncIterator[SqlUnitOfWorkFactory]:
    engine = create_engine(database_url)
    yield SqlUnitOfWorkFactory(session_factory(engine))
    await engine.dispose()


@dataclass(frozen=True)
class AddHuman:
    names: tuple[str, ...]
    actor: Actor
    at: datetime


@dataclass(frozen=True)
class Remove:
    name: str
    actor: Actor
    at: datetime


@dataclass(frozen=True)
class ImagePlan:
    """An image and what happens to it after it is stored, in order."""

    image: NewImage
    changes: tuple[AddHuman | DetectionRun | Remove, ...]
    deleted: bool


actors = st.sampled_from(ACTORS)
instants = st.sampled_from(INSTANTS)
name_lists = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True).map(tuple)


@st.composite
def detection_runs(draw: st.DrawFn) -> DetectionRun:
    detector = draw(st.sampled_from(DETECTORS))
    actor, at = draw(actors), draw(instants)
    if draw(st.integers(0, 5)) == 0:
        return DetectionRun(detector, DetectionStatus.FAILED, actor, at, error="crashed")
    found = draw(
        st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(CONFIDENCES)), max_size=3)
    )
    detections = tuple(
        Detection(name, confidence, BoundingBox(0.1, 0.1, 0.5, 0.5), detector)
        for name, confidence in found
    )
    return DetectionRun(detector, DetectionStatus.SUCCEEDED, actor, at, detections)


changes = st.one_of(
    st.builds(AddHuman, name_lists, actors, instants),
    detection_runs(),
    st.builds(Remove, st.sampled_from(NAMES), actors, instants),
)


@st.composite
def image_plans(draw: st.DrawFn) -> ImagePlan:
    number = draw(st.integers(1, 2**32))
    image = NewImage(
        label=f"image {number}",
        source=None,
        sha256=f"{number:064x}",
        facts=ImageFacts("image/png", 10, 10),
        size_bytes=number,
        created_at=draw(instants),
        created_by=draw(actors),
        detection=draw(st.none() | detection_runs()),
    )
    return ImagePlan(
        image, tuple(draw(st.lists(changes, max_size=4))), draw(st.integers(0, 5)) == 0
    )


@st.composite
def time_ranges(draw: st.DrawFn) -> tuple[datetime | None, datetime | None]:
    bounds = st.none() | instants | st.sampled_from(INSTANTS).map(lambda at: at + timedelta(1))
    after, before = draw(bounds), draw(bounds)
    if after is not None and before is not None and after >= before:
        return before, None
    return after, before


def sometimes(strategy: st.SearchStrategy[T], default: T) -> st.SearchStrategy[T]:
    """``strategy`` one time in four, else ``default``: a query with every filter set
    finds nothing, and nothing cannot tell a right answer from a wrong one."""
    return st.integers(0, 3).flatmap(lambda pick: strategy if pick == 0 else st.just(default))


@st.composite
def search_queries(draw: st.DrawFn) -> tuple[SearchQuery, int | None]:
    """A valid query, and its cursor as an offset from the dataset's first image id."""
    untagged = draw(sometimes(st.booleans(), None))
    source = draw(sometimes(st.sampled_from(TagSource), None))
    models_allowed = source is not TagSource.HUMAN
    objects = draw(sometimes(name_lists, ())) if not untagged and models_allowed else ()
    tags = draw(sometimes(name_lists, ())) if not untagged else ()
    exclude = tuple(
        name for name in draw(sometimes(name_lists, ())) if name not in (*objects, *tags)
    )
    tagged_after, tagged_before = draw(sometimes(time_ranges(), (None, None)))
    created_after, created_before = draw(sometimes(time_ranges(), (None, None)))
    try:
        query = SearchQuery(
            objects=objects,
            tags=tags,
            match=draw(st.sampled_from(Match)),
            exclude=exclude,
            untagged=untagged,
            min_confidence=draw(sometimes(st.sampled_from((0.0, 0.5, 0.6, 0.9, 1.0)), None)),
            source=source,
            model=draw(sometimes(st.sampled_from(MODEL_REFS), None)) if models_allowed else None,
            tagged_by=draw(sometimes(st.sampled_from(USERS), None)),
            tagged_after=tagged_after,
            tagged_before=tagged_before,
            created_after=created_after,
            created_before=created_before,
            limit=draw(st.integers(1, 8)),
        )
    except InvalidInput:
        reject()
    return query, draw(sometimes(st.integers(1, 10), None))


async def store(uow: SqlUnitOfWork, plans: list[ImagePlan]) -> list[Image]:
    """Apply the plans and return the live images as the domain says they must be."""
    live: list[Image] = []
    for plan in plans:
        image = (await uow.images.add(plan.image)).image
        tags = list(image.tags)
        for change in plan.changes:
            if isinstance(change, AddHuman):
                present = {
                    tag.name
                    for tag in tags
                    if tag.source is TagSource.HUMAN and tag.actor.user == change.actor.user
                }
                expected = tuple(name for name in change.names if name not in present)
                added = await uow.tags.add_human(image.id, change.names, change.actor, change.at)
                assert added == expected
                tags += [Tag.by_human(name, change.actor, change.at) for name in added]
            elif isinstance(change, Remove):
                kept = [tag for tag in tags if tag.name != change.name]
                removed = await uow.tags.remove(image.id, change.name, change.actor, change.at)
                assert removed == len(tags) - len(kept)
                tags = kept
            else:
                run_id = await uow.images.add_detection_run(image.id, change)
                tags += change.tags(run_id)
                image = dataclasses.replace(
                    image, detection_status=change.status, detection_error=change.error
                )
        image = dataclasses.replace(image, tags=tuple(tags))
        if plan.deleted:
            assert await uow.images.delete(image.id, plan.image.created_by, T0)
        else:
            live.append(image)
    return live[::-1]


@EXAMPLES
@given(
    plans=st.lists(image_plans(), min_size=1, max_size=10),
    queries=st.lists(search_queries(), min_size=1, max_size=8),
)
async def test_sql_search_returns_exactly_the_images_the_query_includes(
    unit_of_work: SqlUnitOfWorkFactory,
    plans: list[ImagePlan],
    queries: list[tuple[SearchQuery, int | None]],
) -> None:
    async with unit_of_work() as uow:
        newest_first = await store(uow, plans)
        # Reads agree with the model of the data before searches are compared with it.
        for image in newest_first:
            assert await uow.images.get(image.id) == image
        # Sequences do not roll back on PostgreSQL: cursors are relative to this dataset.
        first_id = newest_first[-1].id if newest_first else 1
        for query, offset in queries:
            if offset is not None:
                query = dataclasses.replace(query, before_id=first_id + offset - 1)
            limit = query.limit
            expected = [image for image in newest_first if query.includes(image)][:limit]
            assert await uow.images.search(query, limit=limit) == expected, query
        # Not committed: the next example starts from the same empty database.


def stored_at(
    number: int, created: int, *changes: AddHuman | DetectionRun, deleted: bool = False
) -> ImagePlan:
    """Image ``number``, created ``created`` hours after T0, then ``changes``."""
    image = NewImage(
        label=f"image {number}",
        source=None,
        sha256=f"{number:064x}",
        facts=ImageFacts("image/png", 10, 10),
        size_bytes=number,
        created_at=T0 + timedelta(hours=created),
        created_by=ACTORS[0],
    )
    return ImagePlan(image, changes, deleted)


def at(hour: int) -> datetime:
    return T0 + timedelta(hours=hour)


async def test_search_within_time_windows_finds_old_images_and_untagged_ones_exactly(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    # Windows closed at both ends bound the image id by the newest image in them, found
    # among the page's worth of newest rows or else by a scan of the window. Here ids and
    # creation times disagree, old images get tags late, the newest image of a window is
    # deleted, one image has a name twice, and untagged=true asks for images that no tag
    # in the window bounds.
    alice, bob = ACTORS[:2]
    detector = DETECTORS[0]
    cat_twice = DetectionRun(
        detector,
        DetectionStatus.SUCCEEDED,
        alice,
        at(1),
        (Detection("cat", 0.5, None, detector), Detection("cat", 0.9, None, detector)),
    )
    plans = [
        stored_at(1, 2, AddHuman(("cat",), alice, at(0))),
        stored_at(2, 0, AddHuman(("dog",), bob, at(3))),
        stored_at(3, 1, cat_twice),
        stored_at(4, 3),
        stored_at(5, 1, AddHuman(("dog",), alice, at(1)), deleted=True),
        stored_at(6, 3, AddHuman(("person",), bob, at(3))),
    ]
    cases = [
        # (query, the images' numbers, newest first)
        (SearchQuery(created_after=at(2), created_before=at(3)), [1]),
        (SearchQuery(created_after=at(1), created_before=at(2)), [3]),
        (SearchQuery(created_after=at(0), created_before=at(2)), [3, 2]),
        (SearchQuery(created_after=at(9), created_before=at(10)), []),
        (SearchQuery(tags=("cat", "dog"), created_after=at(0), created_before=at(2)), [3, 2]),
        (SearchQuery(tags=("dog",), tagged_after=at(3), tagged_before=at(4)), [2]),
        (SearchQuery(untagged=False, tagged_after=at(0), tagged_before=at(2)), [3, 1]),
        (SearchQuery(untagged=False, tagged_after=at(9), tagged_before=at(10)), []),
        (SearchQuery(exclude=("cat",), tagged_after=at(0), tagged_before=at(2)), []),
        (SearchQuery(untagged=True, tagged_after=at(3), tagged_before=at(4)), [4, 3, 1]),
        (SearchQuery(untagged=True, tagged_after=at(9), tagged_before=at(10)), [6, 4, 3, 2, 1]),
        (SearchQuery(objects=("cat",), min_confidence=0.8), [3]),
    ]
    async with unit_of_work() as uow:
        newest_first = await store(uow, plans)
        number = {image.id: int(image.label.split()[1]) for image in newest_first}
        # A page of 1 makes the bounds look past the newest row for most windows.
        for (query, expected), limit in itertools.product(cases, (1, 10)):
            found = await uow.images.search(query, limit=limit)
            included = [image for image in newest_first if query.includes(image)]
            assert found == included[:limit], (query, limit)
            assert [number[image.id] for image in found] == expected[:limit], (query, limit)


@st.composite
def audit_events(draw: st.DrawFn) -> AuditEvent:
    image_id = draw(st.none() | st.integers(1, 3))
    return AuditEvent(
        type=draw(st.sampled_from(AuditEventType)),
        actor=draw(actors),
        occurred_at=draw(instants),
        target=f"image:{image_id}" if image_id else "key:ci",
        image_id=image_id,
        payload=draw(
            st.dictionaries(
                st.sampled_from(("name", "count", "score", "sure")),
                st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5),
                max_size=3,
            )
        ),
    )


@st.composite
def audit_queries(draw: st.DrawFn) -> tuple[AuditQuery, int | None]:
    after, before = draw(time_ranges())
    query = AuditQuery(
        user=draw(st.none() | st.sampled_from(USERS)),
        image_id=draw(st.none() | st.integers(1, 4)),
        types=tuple(draw(st.lists(st.sampled_from(AuditEventType), max_size=3, unique=True))),
        after=after,
        before=before,
        limit=draw(st.integers(1, 8)),
    )
    return query, draw(st.none() | st.integers(1, 12))


@settings(EXAMPLES, max_examples=30)
@given(
    appended=st.lists(audit_events(), max_size=10),
    queries=st.lists(audit_queries(), min_size=1, max_size=8),
)
async def test_sql_audit_log_lists_exactly_the_events_the_query_includes(
    unit_of_work: SqlUnitOfWorkFactory,
    appended: list[AuditEvent],
    queries: list[tuple[AuditQuery, int | None]],
) -> None:
    async with unit_of_work() as uow:
        for item in appended:
            await uow.audit.append(item)
        newest_first = await uow.audit.list(AuditQuery(limit=1000), limit=1000)
        assert [dataclasses.replace(item, id=None) for item in newest_first] == appended[::-1]
        ids = [item.id for item in newest_first if item.id is not None]
        assert len(ids) == len(newest_first)
        assert ids == sorted(ids, reverse=True)
        first_id = newest_first[-1].id if newest_first else 1
        assert first_id is not None
        for query, offset in queries:
            if offset is not None:
                query = dataclasses.replace(query, before_id=first_id + offset - 1)
            expected = [item for item in newest_first if query.includes(item)][: query.limit]
            assert await uow.audit.list(query, limit=query.limit) == expected, query
