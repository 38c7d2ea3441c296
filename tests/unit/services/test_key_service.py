import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from imagetag.domain.audit import AuditEventType
from imagetag.domain.errors import (
    AuthenticationFailed,
    InvalidInput,
    KeyNameTaken,
    KeyNotFound,
    PermissionDenied,
)
from imagetag.domain.principals import Actor, Principal, Role
from imagetag.services.keys import (
    BOOTSTRAP_KEY_NAME,
    KEY_PREFIX_LENGTH,
    SYSTEM,
    KeyService,
)
from tests.fakes import (
    ADMIN,
    ALICE,
    EPOCH,
    READER,
    FakeKeyHasher,
    FakeUnitOfWorkFactory,
    FixedClock,
    TickingClock,
)


@pytest.fixture
def hasher() -> FakeKeyHasher:
    return FakeKeyHasher()


@pytest.fixture
def keys(unit_of_work: FakeUnitOfWorkFactory, hasher: FakeKeyHasher) -> KeyService:
    return KeyService(unit_of_work=unit_of_work, hasher=hasher, clock=TickingClock())


def commits(unit_of_work: FakeUnitOfWorkFactory) -> int:
    return sum(unit.committed for unit in unit_of_work.units)


# Creating.


async def test_creating_a_key_returns_its_secret_and_stores_only_its_hash(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory, hasher: FakeKeyHasher
) -> None:
    issued = await keys.create("ci-bot", ADMIN)

    assert unit_of_work.committed_api_keys == [issued.record]
    assert issued.record.key_hash == hasher.hash(issued.secret)
    assert issued.record.prefix == issued.secret[:KEY_PREFIX_LENGTH]
    assert issued.record.created_at == EPOCH
    assert issued.record.active
    stored_text = [str(value) for value in dataclasses.astuple(issued.record)]
    assert all(issued.secret not in text for text in stored_text)


async def test_a_key_is_for_its_own_name_as_user_and_client_with_the_reader_role_by_default(
    keys: KeyService,
) -> None:
    issued = await keys.create("ci-bot", ADMIN)

    assert (issued.record.user, issued.record.client, issued.record.role) == (
        "ci-bot",
        "ci-bot",
        Role.READER,
    )


async def test_a_key_may_name_its_user_client_and_role(keys: KeyService) -> None:
    issued = await keys.create(
        "alice-ui", ADMIN, user="alice", client="labelling-ui", role=Role.TAGGER
    )

    assert (issued.record.user, issued.record.client, issued.record.role) == (
        "alice",
        "labelling-ui",
        Role.TAGGER,
    )


async def test_creating_a_key_writes_a_key_created_event_in_the_same_commit(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    issued = await keys.create("alice-ui", ADMIN, user="alice", client="ui", role=Role.TAGGER)

    [event] = unit_of_work.committed_audit
    assert event.type is AuditEventType.KEY_CREATED
    assert event.actor == ADMIN.actor
    assert event.occurred_at == issued.record.created_at
    assert (event.target, event.image_id) == ("key:alice-ui", None)
    assert event.payload == {"user": "alice", "client": "ui", "role": "tagger"}
    assert commits(unit_of_work) == 1


async def test_the_audit_event_never_holds_the_secret(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    issued = await keys.create("ci-bot", ADMIN)

    [event] = unit_of_work.committed_audit
    assert issued.secret not in repr(event)
    assert issued.record.key_hash not in repr(event)


@pytest.mark.parametrize("principal", [READER, ALICE], ids=["reader", "tagger"])
async def test_only_an_admin_may_create_a_key(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory, principal: Principal
) -> None:
    with pytest.raises(PermissionDenied) as raised:
        await keys.create("sneaky", principal, role=Role.ADMIN)

    assert raised.value.needed == "admin"
    assert unit_of_work.committed_api_keys == []
    assert unit_of_work.committed_audit == []


async def test_listing_keys_never_reveals_a_secret(keys: KeyService) -> None:
    first = await keys.create("first", ADMIN)
    second = await keys.create("second", ADMIN)

    listed = await keys.list(ADMIN)

    assert list(listed) == [first.record, second.record]
    assert not hasattr(listed[0], "secret")


@pytest.mark.parametrize("principal", [READER, ALICE], ids=["reader", "tagger"])
async def test_only_an_admin_may_list_keys(keys: KeyService, principal: Principal) -> None:
    with pytest.raises(PermissionDenied):
        await keys.list(principal)


async def test_each_key_gets_a_different_secret(keys: KeyService) -> None:
    first = await keys.create("first", ADMIN)
    second = await keys.create("second", ADMIN)

    assert first.secret != second.secret
    assert first.record.key_hash != second.record.key_hash


async def test_creating_a_key_with_the_name_of_an_active_key_is_refused(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    first = await keys.create("ci-bot", ADMIN)

    with pytest.raises(KeyNameTaken) as raised:
        await keys.create("ci-bot", ADMIN)

    assert raised.value.name == "ci-bot"
    assert unit_of_work.committed_api_keys == [first.record]
    assert len(unit_of_work.committed_audit) == 1


@pytest.mark.parametrize("name", ["", "-leading-dash", "has space", "x" * 65, "émoji"])
async def test_creating_a_key_with_a_malformed_name_is_invalid(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory, name: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await keys.create(name, ADMIN)

    assert raised.value.field == "name"
    assert unit_of_work.committed_api_keys == []


@pytest.mark.parametrize("field", ["user", "client"])
async def test_creating_a_key_with_a_malformed_user_or_client_is_invalid_naming_it(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory, field: str
) -> None:
    malformed: dict[str, Any] = {field: "has space"}

    with pytest.raises(InvalidInput) as raised:
        await keys.create("ci-bot", ADMIN, **malformed)

    assert raised.value.field == field
    assert field in str(raised.value)
    assert unit_of_work.committed_api_keys == []


# Authenticating.


async def test_authenticating_gives_the_keys_principal_with_its_role(keys: KeyService) -> None:
    issued = await keys.create(
        "alice-ui", ADMIN, user="alice", client="labelling-ui", role=Role.TAGGER
    )

    assert await keys.authenticate(issued.secret) == Principal(
        Actor("alice", "labelling-ui"), Role.TAGGER
    )


async def test_a_default_key_authenticates_as_a_reader_named_after_the_key(
    keys: KeyService,
) -> None:
    issued = await keys.create("dashboard", ADMIN)

    assert await keys.authenticate(issued.secret) == Principal(
        Actor("dashboard", "dashboard"), Role.READER
    )


async def test_authenticating_with_an_unknown_key_fails(keys: KeyService) -> None:
    await keys.create("ci-bot", ADMIN)

    with pytest.raises(AuthenticationFailed):
        await keys.authenticate("not-a-key")


async def test_authenticating_with_the_hash_instead_of_the_secret_fails(keys: KeyService) -> None:
    issued = await keys.create("ci-bot", ADMIN)

    with pytest.raises(AuthenticationFailed):
        await keys.authenticate(issued.record.key_hash)


# Revoking.


async def test_authenticating_with_a_revoked_key_fails(keys: KeyService) -> None:
    issued = await keys.create("ci-bot", ADMIN)
    await keys.revoke("ci-bot", ADMIN)

    with pytest.raises(AuthenticationFailed):
        await keys.authenticate(issued.secret)


async def test_revoking_a_key_records_when_and_keeps_it_listed(keys: KeyService) -> None:
    issued = await keys.create("ci-bot", ADMIN)

    await keys.revoke("ci-bot", ADMIN)

    [revoked] = await keys.list(ADMIN)
    assert revoked.name == "ci-bot"
    assert revoked.revoked_at == issued.record.created_at + timedelta(seconds=1)
    assert not revoked.active


async def test_revoking_a_key_writes_a_key_revoked_event_in_the_same_commit(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    await keys.create("ci-bot", ADMIN)

    await keys.revoke("ci-bot", ADMIN)

    [_, event] = unit_of_work.committed_audit
    assert event.type is AuditEventType.KEY_REVOKED
    assert event.actor == ADMIN.actor
    assert event.target == "key:ci-bot"
    assert event.occurred_at == unit_of_work.committed_api_keys[0].revoked_at
    assert commits(unit_of_work) == 2


@pytest.mark.parametrize("principal", [READER, ALICE], ids=["reader", "tagger"])
async def test_only_an_admin_may_revoke_a_key(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory, principal: Principal
) -> None:
    issued = await keys.create("ci-bot", ADMIN)

    with pytest.raises(PermissionDenied):
        await keys.revoke("ci-bot", principal)

    assert unit_of_work.committed_api_keys == [issued.record]
    assert await keys.authenticate(issued.secret) == issued.record.principal


async def test_the_name_of_a_revoked_key_can_be_used_again(keys: KeyService) -> None:
    await keys.create("ci-bot", ADMIN)
    await keys.revoke("ci-bot", ADMIN)

    renewed = await keys.create("ci-bot", ADMIN, role=Role.TAGGER)

    assert await keys.authenticate(renewed.secret) == Principal(
        Actor("ci-bot", "ci-bot"), Role.TAGGER
    )


async def test_revoking_an_unknown_key_is_not_found_and_audits_nothing(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    with pytest.raises(KeyNotFound) as raised:
        await keys.revoke("nobody", ADMIN)

    assert raised.value.name == "nobody"
    assert unit_of_work.committed_audit == []


async def test_revoking_an_already_revoked_key_is_not_found_and_changes_nothing(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    await keys.create("ci-bot", ADMIN)
    await keys.revoke("ci-bot", ADMIN)
    before = (unit_of_work.committed_api_keys, unit_of_work.committed_audit)

    with pytest.raises(KeyNotFound):
        await keys.revoke("ci-bot", ADMIN)

    assert (unit_of_work.committed_api_keys, unit_of_work.committed_audit) == before


# Bootstrapping.


async def test_bootstrap_creates_an_admin_key_when_there_is_no_key(keys: KeyService) -> None:
    issued = await keys.ensure_bootstrap_key()

    assert issued is not None
    assert issued.record.name == BOOTSTRAP_KEY_NAME
    assert await keys.authenticate(issued.secret) == Principal(
        Actor(BOOTSTRAP_KEY_NAME, "imagetag-serve"), Role.ADMIN
    )


async def test_bootstrap_is_audited_as_done_by_the_system(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    await keys.ensure_bootstrap_key()

    [event] = unit_of_work.committed_audit
    assert event.type is AuditEventType.KEY_CREATED
    assert event.actor == SYSTEM.actor
    assert event.target == f"key:{BOOTSTRAP_KEY_NAME}"
    assert event.payload["role"] == "admin"


async def test_the_bootstrap_key_may_issue_the_next_keys(keys: KeyService) -> None:
    bootstrap = await keys.ensure_bootstrap_key()
    assert bootstrap is not None
    admin = await keys.authenticate(bootstrap.secret)

    issued = await keys.create("alice", admin, role=Role.TAGGER)

    assert issued.record.role is Role.TAGGER


async def test_bootstrap_does_nothing_while_an_active_key_exists(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    existing = await keys.create("ci-bot", ADMIN)

    assert await keys.ensure_bootstrap_key() is None
    assert unit_of_work.committed_api_keys == [existing.record]


async def test_bootstrap_runs_once(keys: KeyService) -> None:
    assert await keys.ensure_bootstrap_key() is not None
    assert await keys.ensure_bootstrap_key() is None
    assert len(await keys.list(ADMIN)) == 1


async def test_bootstrap_creates_a_new_admin_key_when_every_key_was_revoked(
    keys: KeyService,
) -> None:
    first = await keys.ensure_bootstrap_key()
    assert first is not None
    await keys.revoke(BOOTSTRAP_KEY_NAME, ADMIN)

    second = await keys.ensure_bootstrap_key()

    assert second is not None
    assert second.secret != first.secret
    assert (await keys.authenticate(second.secret)).role is Role.ADMIN


# Remembering authentications.


@pytest.fixture
def fixed_clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def caching_keys(unit_of_work: FakeUnitOfWorkFactory, fixed_clock: FixedClock) -> KeyService:
    return KeyService(
        unit_of_work=unit_of_work,
        hasher=FakeKeyHasher(),
        clock=fixed_clock,
        cache_ttl=timedelta(seconds=10),
    )


async def test_a_remembered_key_is_not_looked_up_again_within_the_cache_ttl(
    caching_keys: KeyService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    issued = await caching_keys.create("alice", ADMIN, role=Role.TAGGER)
    principal = await caching_keys.authenticate(issued.secret)
    lookups = len(unit_of_work.units)

    assert await caching_keys.authenticate(issued.secret) == principal
    assert principal.role is Role.TAGGER
    assert len(unit_of_work.units) == lookups


async def test_a_key_revoked_elsewhere_stops_working_once_the_cache_ttl_has_passed(
    caching_keys: KeyService, unit_of_work: FakeUnitOfWorkFactory, fixed_clock: FixedClock
) -> None:
    issued = await caching_keys.create("alice", ADMIN)
    principal = await caching_keys.authenticate(issued.secret)
    other_process = KeyService(unit_of_work=unit_of_work, hasher=FakeKeyHasher(), clock=fixed_clock)
    await other_process.revoke("alice", ADMIN)

    assert await caching_keys.authenticate(issued.secret) == principal
    fixed_clock.at += timedelta(seconds=10)
    with pytest.raises(AuthenticationFailed):
        await caching_keys.authenticate(issued.secret)


async def test_a_key_revoked_through_the_same_service_stops_working_at_once(
    caching_keys: KeyService,
) -> None:
    issued = await caching_keys.create("alice", ADMIN)
    await caching_keys.authenticate(issued.secret)
    await caching_keys.revoke("alice", ADMIN)

    with pytest.raises(AuthenticationFailed):
        await caching_keys.authenticate(issued.secret)


async def test_revoking_one_key_keeps_other_remembered_keys_working(
    caching_keys: KeyService,
) -> None:
    alice = await caching_keys.create("alice", ADMIN)
    bob = await caching_keys.create("bob", ADMIN)
    await caching_keys.authenticate(alice.secret)
    await caching_keys.authenticate(bob.secret)

    await caching_keys.revoke("alice", ADMIN)

    assert (await caching_keys.authenticate(bob.secret)).user == "bob"
