from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagetag.domain.audit import AuditEvent, AuditEventType, AuditQuery, parse_event_types
from imagetag.domain.errors import InvalidInput
from imagetag.domain.principals import Actor
from imagetag.domain.search import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ALICE = Actor("alice", "labelling-ui")
BOB = Actor("bob", "notebook")
HOUR = timedelta(hours=1)


def event(**changes: Any) -> AuditEvent:
    values: dict[str, Any] = {
        "type": AuditEventType.TAG_ADDED,
        "actor": ALICE,
        "occurred_at": NOW,
        "target": "tag:cat",
        "image_id": 7,
        "payload": {"name": "cat", "source": "human"},
        "id": 10,
    }
    return AuditEvent(**(values | changes))


def test_the_event_types_are_the_changes_the_log_records() -> None:
    assert {kind.value for kind in AuditEventType} == {
        "image.created",
        "image.updated",
        "image.deleted",
        "tag.added",
        "tag.removed",
        "detection.run",
        "key.created",
        "key.revoked",
    }


@pytest.mark.parametrize(
    ("raw", "types"),
    [
        ("tag.added", (AuditEventType.TAG_ADDED,)),
        (
            " tag.added , TAG.REMOVED ",
            (AuditEventType.TAG_ADDED, AuditEventType.TAG_REMOVED),
        ),
        ("key.revoked,,key.created", (AuditEventType.KEY_REVOKED, AuditEventType.KEY_CREATED)),
        ("image.deleted,image.deleted", (AuditEventType.IMAGE_DELETED,)),
    ],
)
def test_parse_event_types_reads_comma_separated_types_in_order_once_each(
    raw: str, types: tuple[AuditEventType, ...]
) -> None:
    assert parse_event_types(raw) == types


@pytest.mark.parametrize("raw", ["", " ", ",", " , "])
def test_parse_event_types_needs_at_least_one_type(raw: str) -> None:
    with pytest.raises(InvalidInput, match="at least one") as raised:
        parse_event_types(raw)

    assert raised.value.field == "type"


def test_an_unknown_event_type_is_invalid_input_listing_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match=r"'tag\.renamed'") as raised:
        parse_event_types("tag.added,tag.renamed")

    assert raised.value.field == "type"
    assert all(kind.value in str(raised.value) for kind in AuditEventType)


def test_an_event_time_is_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone"):
        event(occurred_at=datetime(2024, 5, 1, 12, 0))


def test_an_event_names_its_target() -> None:
    with pytest.raises(ValueError, match="target"):
        event(target="")


def test_an_audit_query_defaults_to_a_default_page_of_everything() -> None:
    query = AuditQuery()

    assert query.limit == DEFAULT_PAGE_SIZE
    assert query.includes(event())


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE_SIZE + 1])
def test_an_audit_query_limit_outside_one_to_the_maximum_is_invalid(limit: int) -> None:
    with pytest.raises(InvalidInput) as raised:
        AuditQuery(limit=limit)

    assert raised.value.field == "limit"


@pytest.mark.parametrize("before_id", [0, -1, 2**63])
def test_an_audit_query_before_an_impossible_id_is_an_invalid_cursor(before_id: int) -> None:
    with pytest.raises(InvalidInput) as raised:
        AuditQuery(before_id=before_id)

    assert raised.value.field == "cursor"


@pytest.mark.parametrize("before", [NOW, NOW - HOUR])
def test_an_audit_query_after_must_be_earlier_than_before(before: datetime) -> None:
    with pytest.raises(InvalidInput) as raised:
        AuditQuery(after=NOW, before=before)

    assert raised.value.field == "after"


@pytest.mark.parametrize("bound", ["after", "before"])
def test_an_audit_query_time_bound_is_timezone_aware(bound: str) -> None:
    naive: dict[str, Any] = {bound: datetime(2024, 5, 1)}

    with pytest.raises(ValueError, match="timezone"):
        AuditQuery(**naive)


def test_an_audit_query_by_user_keeps_only_that_users_events_whatever_the_client() -> None:
    query = AuditQuery(user="alice")

    assert query.includes(event(actor=Actor("alice", "cli")))
    assert not query.includes(event(actor=BOB))


def test_an_audit_query_by_image_keeps_only_events_about_that_image() -> None:
    query = AuditQuery(image_id=7)

    assert query.includes(event(image_id=7))
    assert not query.includes(event(image_id=8))
    assert not query.includes(event(type=AuditEventType.KEY_CREATED, image_id=None))


def test_an_audit_query_by_type_keeps_only_events_of_those_types() -> None:
    query = AuditQuery(types=(AuditEventType.TAG_ADDED, AuditEventType.TAG_REMOVED))

    assert query.includes(event(type=AuditEventType.TAG_REMOVED))
    assert not query.includes(event(type=AuditEventType.IMAGE_CREATED))


def test_an_audit_query_time_range_is_half_open() -> None:
    query = AuditQuery(after=NOW, before=NOW + HOUR)

    assert query.includes(event(occurred_at=NOW))
    assert query.includes(event(occurred_at=NOW + HOUR - timedelta(microseconds=1)))
    assert not query.includes(event(occurred_at=NOW + HOUR))
    assert not query.includes(event(occurred_at=NOW - timedelta(microseconds=1)))


def test_an_audit_query_before_an_id_keeps_only_older_events() -> None:
    query = AuditQuery(before_id=10)

    assert query.includes(event(id=9))
    assert not query.includes(event(id=10))


@given(
    st.integers(min_value=1, max_value=50),
    st.sampled_from(AuditEventType),
    st.sampled_from([ALICE, BOB]),
    st.none() | st.integers(min_value=1, max_value=3),
    st.integers(min_value=-3, max_value=3),
    st.none() | st.sampled_from(["alice", "bob"]),
    st.lists(st.sampled_from(AuditEventType), unique=True, max_size=3).map(tuple),
    st.none() | st.integers(min_value=1, max_value=3),
    st.none() | st.integers(min_value=1, max_value=50),
)
def test_an_audit_query_includes_an_event_exactly_when_every_filter_given_holds(
    event_id: int,
    kind: AuditEventType,
    actor: Actor,
    image_id: int | None,
    hours: int,
    user: str | None,
    types: tuple[AuditEventType, ...],
    wanted_image: int | None,
    before_id: int | None,
) -> None:
    candidate = event(
        id=event_id, type=kind, actor=actor, image_id=image_id, occurred_at=NOW + hours * HOUR
    )
    query = AuditQuery(
        user=user, image_id=wanted_image, types=types, after=NOW - HOUR, before_id=before_id
    )

    expected = (
        (user is None or actor.user == user)
        and (wanted_image is None or image_id == wanted_image)
        and (not types or kind in types)
        and hours >= -1
        and (before_id is None or event_id < before_id)
    )
    assert query.includes(candidate) == expected
