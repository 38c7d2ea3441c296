from datetime import timedelta

import pytest

from imagetag.domain.audit import AuditEvent, AuditEventType, AuditQuery
from imagetag.domain.errors import PermissionDenied
from imagetag.domain.principals import Principal
from imagetag.services.audit import AuditService
from imagetag.services.images import ImageService, IngestRequest, UploadedBytes
from imagetag.services.tags import TagService
from tests.fakes import (
    ADMIN,
    ALICE,
    BOB,
    EPOCH,
    READER,
    FakeUnitOfWorkFactory,
    TickingClock,
)
from tests.unit.services.inputs import PNG

SECOND = timedelta(seconds=1)


@pytest.fixture
def audit(unit_of_work: FakeUnitOfWorkFactory) -> AuditService:
    return AuditService(unit_of_work=unit_of_work)


@pytest.fixture
async def history(
    images: ImageService, unit_of_work: FakeUnitOfWorkFactory, clock: TickingClock
) -> list[AuditEvent]:
    """Six events, one a second from EPOCH: alice stores two images, bob tags the first,
    alice tags the second, bob removes his tag, alice deletes the second image."""
    tags = TagService(unit_of_work=unit_of_work, clock=clock)
    first = await images.ingest(IngestRequest(UploadedBytes(PNG + b"1")), ALICE)
    second = await images.ingest(IngestRequest(UploadedBytes(PNG + b"2")), ALICE)
    await tags.add(first.id, ["cat"], BOB)
    await tags.add(second.id, ["dog"], ALICE)
    await tags.remove(first.id, "cat", BOB)
    await images.delete(second.id, ALICE)
    return unit_of_work.committed_audit


async def test_the_history_fixture_holds_one_event_a_second(history: list[AuditEvent]) -> None:
    assert [(event.id, event.occurred_at) for event in history] == [
        (n + 1, EPOCH + n * SECOND) for n in range(6)
    ]


async def test_an_admin_reads_the_log_newest_first(
    audit: AuditService, history: list[AuditEvent]
) -> None:
    page = await audit.list(AuditQuery(), ADMIN)

    assert list(page.events) == history[::-1]
    assert page.next_before_id is None


@pytest.mark.parametrize("principal", [READER, ALICE], ids=["reader", "tagger"])
async def test_only_an_admin_may_read_the_log(
    audit: AuditService, history: list[AuditEvent], principal: Principal
) -> None:
    with pytest.raises(PermissionDenied) as raised:
        await audit.list(AuditQuery(), principal)

    assert raised.value.needed == "admin"


async def test_the_log_pages_with_next_before_id_until_the_oldest_event(
    audit: AuditService, history: list[AuditEvent]
) -> None:
    first = await audit.list(AuditQuery(limit=4), ADMIN)
    second = await audit.list(AuditQuery(limit=4, before_id=first.next_before_id), ADMIN)

    assert [event.id for event in first.events] == [6, 5, 4, 3]
    assert first.next_before_id == 3
    assert [event.id for event in second.events] == [2, 1]
    assert second.next_before_id is None


async def test_a_last_full_page_has_no_cursor_to_an_empty_page(
    audit: AuditService, history: list[AuditEvent]
) -> None:
    first = await audit.list(AuditQuery(limit=3), ADMIN)
    second = await audit.list(AuditQuery(limit=3, before_id=first.next_before_id), ADMIN)

    assert [event.id for event in second.events] == [3, 2, 1]
    assert second.next_before_id is None


async def test_an_empty_log_is_one_empty_page(audit: AuditService) -> None:
    page = await audit.list(AuditQuery(), ADMIN)

    assert list(page.events) == []
    assert page.next_before_id is None


async def test_the_log_filtered_by_user_shows_only_what_that_user_did(
    audit: AuditService, history: list[AuditEvent]
) -> None:
    page = await audit.list(AuditQuery(user="bob"), ADMIN)

    assert [(event.type, event.target) for event in page.events] == [
        (AuditEventType.TAG_REMOVED, "tag:cat"),
        (AuditEventType.TAG_ADDED, "tag:cat"),
    ]


async def test_the_log_filtered_by_image_shows_its_whole_story_even_once_deleted(
    audit: AuditService, history: list[AuditEvent]
) -> None:
    deleted_image = history[-1].image_id

    page = await audit.list(AuditQuery(image_id=deleted_image), ADMIN)

    assert [event.type for event in page.events] == [
        AuditEventType.IMAGE_DELETED,
        AuditEventType.TAG_ADDED,
        AuditEventType.IMAGE_CREATED,
    ]


async def test_the_log_filtered_by_type_shows_only_those_types(
    audit: AuditService, history: list[AuditEvent]
) -> None:
    query = AuditQuery(types=(AuditEventType.TAG_ADDED, AuditEventType.TAG_REMOVED))

    page = await audit.list(query, ADMIN)

    assert [event.id for event in page.events] == [5, 4, 3]


async def test_the_log_filtered_by_time_is_half_open(
    audit: AuditService, history: list[AuditEvent]
) -> None:
    query = AuditQuery(after=EPOCH + 2 * SECOND, before=EPOCH + 4 * SECOND)

    page = await audit.list(query, ADMIN)

    assert [event.id for event in page.events] == [4, 3]


async def test_filters_and_paging_combine(audit: AuditService, history: list[AuditEvent]) -> None:
    first = await audit.list(AuditQuery(user="alice", limit=2), ADMIN)
    second = await audit.list(
        AuditQuery(user="alice", limit=2, before_id=first.next_before_id), ADMIN
    )

    assert [event.id for event in first.events] == [6, 4]
    assert [event.id for event in second.events] == [2, 1]
    assert second.next_before_id is None
