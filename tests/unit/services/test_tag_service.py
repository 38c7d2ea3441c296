from collections.abc import Sequence
from datetime import timedelta

import pytest

from imagetag.domain.audit import AuditEventType
from imagetag.domain.errors import ImageNotFound, InvalidInput, PermissionDenied
from imagetag.domain.images import Image
from imagetag.domain.tags import Tag, TagCount, TagSource
from imagetag.services.images import ImageService, IngestRequest, UploadedBytes
from imagetag.services.tags import TagService
from tests.fakes import (
    ADMIN,
    ALICE,
    BOB,
    EPOCH,
    READER,
    FakeDetector,
    FakeUnitOfWorkFactory,
    TickingClock,
    detection,
)
from tests.unit.services.inputs import PNG

SECOND = timedelta(seconds=1)


@pytest.fixture
def tags(unit_of_work: FakeUnitOfWorkFactory, clock: TickingClock) -> TagService:
    return TagService(unit_of_work=unit_of_work, clock=clock)


async def stored_image(images: ImageService, n: int = 0, *, detect: bool = False) -> Image:
    return await images.ingest(IngestRequest(UploadedBytes(PNG + bytes([n])), detect=detect), ALICE)


def commits(unit_of_work: FakeUnitOfWorkFactory) -> int:
    return sum(unit.committed for unit in unit_of_work.units)


def tag_events(unit_of_work: FakeUnitOfWorkFactory) -> list[tuple[AuditEventType, str]]:
    return [
        (event.type, event.target)
        for event in unit_of_work.committed_audit
        if event.type in (AuditEventType.TAG_ADDED, AuditEventType.TAG_REMOVED)
    ]


def human_tags(found: Sequence[Tag]) -> list[tuple[str, str]]:
    return [(tag.name, tag.actor.user) for tag in found if tag.source is TagSource.HUMAN]


# Adding.


async def test_adding_tags_stores_them_as_human_tags_by_the_caller_now(
    images: ImageService, tags: TagService
) -> None:
    image = await stored_image(images)

    live = await tags.add(image.id, ["cat", "sofa"], ALICE)

    assert live == (
        Tag.by_human("cat", ALICE.actor, EPOCH + SECOND),
        Tag.by_human("sofa", ALICE.actor, EPOCH + SECOND),
    )
    assert await tags.tags_of(image.id) == live
    assert (await images.get(image.id)).tag_names == ("cat", "sofa")


async def test_adding_tags_writes_one_tag_added_event_per_name_in_the_same_commit(
    images: ImageService, tags: TagService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await stored_image(images)

    await tags.add(image.id, ["cat", "sofa"], ALICE)

    added = unit_of_work.committed_audit[1:]
    assert [(e.type, e.target, e.image_id, e.actor) for e in added] == [
        (AuditEventType.TAG_ADDED, "tag:cat", image.id, ALICE.actor),
        (AuditEventType.TAG_ADDED, "tag:sofa", image.id, ALICE.actor),
    ]
    assert [event.payload for event in added] == [
        {"name": "cat", "source": "human"},
        {"name": "sofa", "source": "human"},
    ]
    assert {event.occurred_at for event in added} == {EPOCH + SECOND}
    assert commits(unit_of_work) == 2


async def test_tag_names_are_normalised_and_each_added_once(
    images: ImageService, tags: TagService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await stored_image(images)

    live = await tags.add(
        image.id, [" Golden_Retriever ", "golden  retriever", "GOLDEN retriever"], ALICE
    )

    assert human_tags(live) == [("golden retriever", "alice")]
    assert tag_events(unit_of_work) == [(AuditEventType.TAG_ADDED, "tag:golden retriever")]


async def test_two_people_tagging_an_image_alike_each_keep_their_own_tag_and_time(
    images: ImageService, tags: TagService
) -> None:
    image = await stored_image(images)

    await tags.add(image.id, ["cat"], ALICE)
    live = await tags.add(image.id, ["cat"], BOB)

    assert [(tag.name, tag.actor, tag.added_at) for tag in live] == [
        ("cat", ALICE.actor, EPOCH + SECOND),
        ("cat", BOB.actor, EPOCH + 2 * SECOND),
    ]


async def test_adding_a_tag_the_caller_already_added_changes_nothing_and_is_not_audited_again(
    images: ImageService, tags: TagService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await stored_image(images)
    first = await tags.add(image.id, ["cat"], ALICE)

    again = await tags.add(image.id, ["Cat"], ALICE)

    assert again == first
    assert tag_events(unit_of_work) == [(AuditEventType.TAG_ADDED, "tag:cat")]


async def test_repeating_a_request_with_one_new_name_adds_and_audits_only_that_name(
    images: ImageService, tags: TagService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await stored_image(images)
    await tags.add(image.id, ["cat"], ALICE)

    live = await tags.add(image.id, ["cat", "sofa"], ALICE)

    assert human_tags(live) == [("cat", "alice"), ("sofa", "alice")]
    assert tag_events(unit_of_work) == [
        (AuditEventType.TAG_ADDED, "tag:cat"),
        (AuditEventType.TAG_ADDED, "tag:sofa"),
    ]


async def test_a_model_tag_of_the_same_name_does_not_block_a_human_tag(
    images: ImageService, tags: TagService, detector: FakeDetector
) -> None:
    detector.detections = [detection("cat")]
    image = await stored_image(images, detect=True)

    live = await tags.add(image.id, ["cat"], ALICE)

    assert sorted((tag.name, tag.source) for tag in live) == [
        ("cat", TagSource.HUMAN),
        ("cat", TagSource.MODEL),
    ]


@pytest.mark.parametrize("names", [[], [""], ["cat", "dog,bird"], ["x" * 65], ["ok", "bell\x07"]])
async def test_invalid_tag_names_are_refused_and_nothing_is_stored(
    images: ImageService,
    tags: TagService,
    unit_of_work: FakeUnitOfWorkFactory,
    names: list[str],
) -> None:
    image = await stored_image(images)

    with pytest.raises(InvalidInput) as raised:
        await tags.add(image.id, names, ALICE)

    assert raised.value.field == "tags"
    assert await tags.tags_of(image.id) == ()
    assert commits(unit_of_work) == 1


async def test_tagging_an_unknown_image_is_not_found(
    tags: TagService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    with pytest.raises(ImageNotFound) as raised:
        await tags.add(42, ["cat"], ALICE)

    assert raised.value.image_id == 42
    assert unit_of_work.committed_audit == []


async def test_tagging_a_deleted_image_is_not_found(images: ImageService, tags: TagService) -> None:
    image = await stored_image(images)
    await images.delete(image.id, ALICE)

    with pytest.raises(ImageNotFound):
        await tags.add(image.id, ["cat"], ALICE)


# Removing.


async def test_removing_a_tag_takes_off_every_live_tag_of_that_name_whatever_its_source(
    images: ImageService, tags: TagService, detector: FakeDetector
) -> None:
    detector.detections = [detection("cat", 0.9), detection("cat", 0.3), detection("sofa")]
    image = await stored_image(images, detect=True)
    await tags.add(image.id, ["cat"], ALICE)
    await tags.add(image.id, ["cat"], BOB)

    removed = await tags.remove(image.id, "Cat", BOB)

    assert removed == 4
    assert [tag.name for tag in await tags.tags_of(image.id)] == ["sofa"]


async def test_removing_a_tag_writes_one_tag_removed_event_with_the_count(
    images: ImageService,
    tags: TagService,
    detector: FakeDetector,
    unit_of_work: FakeUnitOfWorkFactory,
) -> None:
    detector.detections = [detection("cat")]
    image = await stored_image(images, detect=True)
    await tags.add(image.id, ["cat"], ALICE)
    commits_before = commits(unit_of_work)

    await tags.remove(image.id, "cat", BOB)

    event = unit_of_work.committed_audit[-1]
    assert event.type is AuditEventType.TAG_REMOVED
    assert (event.actor, event.target, event.image_id) == (BOB.actor, "tag:cat", image.id)
    assert event.payload == {"name": "cat", "removed": 2}
    assert tag_events(unit_of_work).count((AuditEventType.TAG_REMOVED, "tag:cat")) == 1
    assert commits(unit_of_work) == commits_before + 1


async def test_removed_tags_stay_in_the_store_with_who_removed_them_and_when(
    images: ImageService, tags: TagService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await stored_image(images)
    await tags.add(image.id, ["cat"], ALICE)

    await tags.remove(image.id, "cat", BOB)

    [row] = unit_of_work.storage.state.tags
    assert row.tag == Tag.by_human("cat", ALICE.actor, EPOCH + SECOND)
    assert (row.removed_by, row.removed_at) == (BOB.actor, EPOCH + 2 * SECOND)


async def test_a_removed_tag_can_be_added_again(images: ImageService, tags: TagService) -> None:
    image = await stored_image(images)
    await tags.add(image.id, ["cat"], ALICE)
    await tags.remove(image.id, "cat", ALICE)

    live = await tags.add(image.id, ["cat"], ALICE)

    assert live == (Tag.by_human("cat", ALICE.actor, EPOCH + 3 * SECOND),)


@pytest.mark.parametrize("name", ["dog", "  ", "dog,cat"])
async def test_removing_a_tag_the_image_does_not_carry_returns_zero_and_commits_nothing(
    images: ImageService,
    tags: TagService,
    unit_of_work: FakeUnitOfWorkFactory,
    name: str,
) -> None:
    image = await stored_image(images)
    await tags.add(image.id, ["cat"], ALICE)
    commits_before, audit_before = commits(unit_of_work), unit_of_work.committed_audit

    assert await tags.remove(image.id, name, ALICE) == 0

    assert commits(unit_of_work) == commits_before
    assert unit_of_work.committed_audit == audit_before
    assert human_tags(await tags.tags_of(image.id)) == [("cat", "alice")]


async def test_a_model_tag_whose_name_a_person_could_not_type_can_still_be_removed(
    images: ImageService, tags: TagService, detector: FakeDetector
) -> None:
    detector.detections = [detection("tabby, tabby cat")]
    image = await stored_image(images, detect=True)

    assert await tags.remove(image.id, "tabby, tabby cat", ALICE) == 1
    assert await tags.tags_of(image.id) == ()


async def test_removing_a_tag_from_an_unknown_image_is_not_found(tags: TagService) -> None:
    with pytest.raises(ImageNotFound):
        await tags.remove(42, "cat", ALICE)


# Roles.


async def test_a_reader_may_list_tags(images: ImageService, tags: TagService) -> None:
    image = await stored_image(images)
    await tags.add(image.id, ["cat"], ALICE)

    assert human_tags(await tags.tags_of(image.id)) == [("cat", "alice")]


async def test_a_reader_may_not_add_tags_and_nothing_is_stored(
    images: ImageService, tags: TagService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await stored_image(images)

    with pytest.raises(PermissionDenied) as raised:
        await tags.add(image.id, ["cat"], READER)

    assert (raised.value.role, raised.value.needed) == ("reader", "tagger")
    assert await tags.tags_of(image.id) == ()
    assert commits(unit_of_work) == 1


async def test_a_reader_may_not_remove_tags_and_nothing_changes(
    images: ImageService, tags: TagService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    image = await stored_image(images)
    await tags.add(image.id, ["cat"], ALICE)
    audit_before = unit_of_work.committed_audit

    with pytest.raises(PermissionDenied):
        await tags.remove(image.id, "cat", READER)

    assert human_tags(await tags.tags_of(image.id)) == [("cat", "alice")]
    assert unit_of_work.committed_audit == audit_before


async def test_an_admin_may_tag_too(images: ImageService, tags: TagService) -> None:
    image = await stored_image(images)

    assert human_tags(await tags.add(image.id, ["cat"], ADMIN)) == [("cat", "ada")]


async def test_listing_the_tags_of_an_unknown_image_is_not_found(tags: TagService) -> None:
    with pytest.raises(ImageNotFound):
        await tags.tags_of(42)


# Counting.


async def test_counts_give_images_per_tag_name_in_all_and_by_source_most_used_first(
    images: ImageService, tags: TagService, detector: FakeDetector
) -> None:
    detector.detections = [detection("cat"), detection("cat", 0.3)]
    first = await stored_image(images, 1, detect=True)
    await tags.add(first.id, ["cat"], ALICE)
    await tags.add(first.id, ["cat"], BOB)
    second = await stored_image(images, 2)
    await tags.add(second.id, ["cat", "sofa"], BOB)
    third = await stored_image(images, 3)
    await tags.add(third.id, ["bed"], ALICE)

    assert list(await tags.counts()) == [
        TagCount("cat", images=2, human=2, model=1),
        TagCount("bed", images=1, human=1, model=0),
        TagCount("sofa", images=1, human=1, model=0),
    ]


async def test_counts_leave_out_removed_tags_and_deleted_images(
    images: ImageService, tags: TagService
) -> None:
    kept = await stored_image(images, 1)
    await tags.add(kept.id, ["cat", "sofa"], ALICE)
    await tags.remove(kept.id, "sofa", ALICE)
    deleted = await stored_image(images, 2)
    await tags.add(deleted.id, ["cat", "bed"], ALICE)
    await images.delete(deleted.id, ALICE)

    assert list(await tags.counts()) == [TagCount("cat", images=1, human=1, model=0)]


async def test_counts_of_an_untagged_store_are_empty(
    images: ImageService, tags: TagService
) -> None:
    await stored_image(images)

    assert list(await tags.counts()) == []
