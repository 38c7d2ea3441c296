from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagetag.domain.errors import InvalidInput
from imagetag.domain.principals import (
    MAX_ACTOR_NAME_LENGTH,
    Actor,
    ApiKeyRecord,
    Principal,
    Role,
    check_key_name,
    parse_role,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ROLES_IN_ORDER = [Role.READER, Role.TAGGER, Role.ADMIN]


def key_record(**changes: Any) -> ApiKeyRecord:
    values: dict[str, Any] = {
        "name": "ci-bot",
        "key_hash": "0" * 64,
        "prefix": "abcdefgh",
        "created_at": NOW,
        "user": "alice",
        "client": "ci",
        "role": Role.TAGGER,
    }
    return ApiKeyRecord(**(values | changes))


def test_roles_are_ordered_reader_then_tagger_then_admin() -> None:
    assert list(Role) == ROLES_IN_ORDER


@given(st.sampled_from(Role), st.sampled_from(Role))
def test_a_role_allows_exactly_itself_and_the_roles_before_it(have: Role, needed: Role) -> None:
    assert have.allows(needed) == (ROLES_IN_ORDER.index(have) >= ROLES_IN_ORDER.index(needed))


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.READER, {Role.READER}),
        (Role.TAGGER, {Role.READER, Role.TAGGER}),
        (Role.ADMIN, {Role.READER, Role.TAGGER, Role.ADMIN}),
    ],
)
def test_a_principal_may_do_what_its_role_allows(role: Role, allowed: set[Role]) -> None:
    principal = Principal(Actor("alice", "labelling-ui"), role)

    assert {needed for needed in Role if principal.may(needed)} == allowed


@pytest.mark.parametrize(
    ("raw", "role"),
    [("reader", Role.READER), (" Tagger ", Role.TAGGER), ("ADMIN", Role.ADMIN)],
)
def test_parse_role_reads_a_role_name_in_any_case(raw: str, role: Role) -> None:
    assert parse_role(raw) is role


@pytest.mark.parametrize("raw", ["", "owner", "admins", "read er"])
def test_parse_role_refuses_an_unknown_role_naming_the_role_field(raw: str) -> None:
    with pytest.raises(InvalidInput, match="reader, tagger, admin") as raised:
        parse_role(raw)

    assert raised.value.field == "role"


def test_an_actor_reads_as_user_via_client() -> None:
    assert str(Actor("alice", "labelling-ui")) == "alice via labelling-ui"


@pytest.mark.parametrize(
    ("user", "client"),
    [
        ("", "ui"),
        ("alice", ""),
        ("x" * (MAX_ACTOR_NAME_LENGTH + 1), "ui"),
        ("alice", "ui\n"),
        ("al\x00ice", "ui"),
    ],
)
def test_an_actor_names_a_user_and_a_client_in_bounded_printable_text(
    user: str, client: str
) -> None:
    with pytest.raises(ValueError, match="printable"):
        Actor(user, client)


def test_an_actor_may_come_from_an_identity_provider_with_any_printable_name() -> None:
    actor = Actor("Zoë Müller <zoe@example.org>", "x" * MAX_ACTOR_NAME_LENGTH)

    assert actor.user == "Zoë Müller <zoe@example.org>"


def test_a_principal_is_its_actor_with_a_role() -> None:
    principal = Principal(Actor("alice", "labelling-ui"), Role.TAGGER)

    assert principal.user == "alice"


@pytest.mark.parametrize("name", ["ci-bot", "a", "alice@example.org", "v1.2_x", "x" * 64])
def test_key_names_are_short_and_shell_safe(name: str) -> None:
    assert check_key_name(name) == name


@pytest.mark.parametrize("name", ["", "-dash", ".dot", "has space", "x" * 65, "émoji", "a/b"])
def test_a_malformed_key_name_is_invalid_input_naming_the_field(name: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_key_name(name, field="client")

    assert raised.value.field == "client"
    assert "client" in str(raised.value)


def test_an_api_key_authenticates_as_its_user_through_its_client_with_its_role() -> None:
    record = key_record(user="alice", client="ci", role=Role.TAGGER)

    assert record.principal == Principal(Actor("alice", "ci"), Role.TAGGER)


def test_an_api_key_is_active_until_revoked() -> None:
    assert key_record().active
    assert not key_record(revoked_at=NOW).active


def test_an_api_key_needs_a_well_formed_name() -> None:
    with pytest.raises(InvalidInput):
        key_record(name="has space")


def test_an_api_key_needs_a_user_and_a_client() -> None:
    with pytest.raises(ValueError, match="user"):
        key_record(user="")
    with pytest.raises(ValueError, match="client"):
        key_record(client="")
