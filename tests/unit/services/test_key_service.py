import dataclasses
from datetime import timedelta

import pytest

from imagetag.domain.errors import AuthenticationFailed, InvalidInput, KeyNameTaken, KeyNotFound
from imagetag.domain.principals import Principal
from imagetag.services.keys import BOOTSTRAP_KEY_NAME, KEY_PREFIX_LENGTH, KeyService
from tests.fakes import EPOCH, FakeKeyHasher, FakeUnitOfWorkFactory, FixedClock, TickingClock


@pytest.fixture
def unit_of_work() -> FakeUnitOfWorkFactory:
    return FakeUnitOfWorkFactory()


@pytest.fixture
def hasher() -> FakeKeyHasher:
    return FakeKeyHasher()


@pytest.fixture
def keys(unit_of_work: FakeUnitOfWorkFactory, hasher: FakeKeyHasher) -> KeyService:
    return KeyService(unit_of_work=unit_of_work, hasher=hasher, clock=TickingClock())


async def test_creating_a_key_returns_its_secret_and_stores_only_its_hash(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory, hasher: FakeKeyHasher
) -> None:
    issued = await keys.create("ci-bot")

    assert unit_of_work.committed_api_keys == [issued.record]
    assert issued.record.key_hash == hasher.hash(issued.secret)
    assert issued.record.prefix == issued.secret[:KEY_PREFIX_LENGTH]
    assert issued.record.created_at == EPOCH
    assert issued.record.active
    stored_text = [str(value) for value in dataclasses.astuple(issued.record)]
    assert all(issued.secret not in text for text in stored_text)


async def test_listing_keys_never_reveals_a_secret(keys: KeyService) -> None:
    first = await keys.create("first")
    second = await keys.create("second")

    listed = await keys.list()

    assert list(listed) == [first.record, second.record]
    assert not hasattr(listed[0], "secret")


async def test_each_key_gets_a_different_secret(keys: KeyService) -> None:
    first = await keys.create("first")
    second = await keys.create("second")

    assert first.secret != second.secret
    assert first.record.key_hash != second.record.key_hash


async def test_authenticating_with_an_active_key_gives_its_principal(keys: KeyService) -> None:
    issued = await keys.create("ci-bot")

    assert await keys.authenticate(issued.secret) == Principal("ci-bot")


async def test_authenticating_with_an_unknown_key_fails(keys: KeyService) -> None:
    await keys.create("ci-bot")

    with pytest.raises(AuthenticationFailed):
        await keys.authenticate("not-a-key")


async def test_authenticating_with_the_hash_instead_of_the_secret_fails(keys: KeyService) -> None:
    issued = await keys.create("ci-bot")

    with pytest.raises(AuthenticationFailed):
        await keys.authenticate(issued.record.key_hash)


async def test_authenticating_with_a_revoked_key_fails(keys: KeyService) -> None:
    issued = await keys.create("ci-bot")
    await keys.revoke("ci-bot")

    with pytest.raises(AuthenticationFailed):
        await keys.authenticate(issued.secret)


async def test_revoking_a_key_records_when_and_keeps_it_listed(keys: KeyService) -> None:
    issued = await keys.create("ci-bot")

    await keys.revoke("ci-bot")

    [revoked] = await keys.list()
    assert revoked.name == "ci-bot"
    assert revoked.revoked_at == issued.record.created_at + timedelta(seconds=1)
    assert not revoked.active


async def test_creating_a_key_with_the_name_of_an_active_key_is_refused(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    first = await keys.create("ci-bot")

    with pytest.raises(KeyNameTaken) as raised:
        await keys.create("ci-bot")

    assert raised.value.name == "ci-bot"
    assert unit_of_work.committed_api_keys == [first.record]


async def test_the_name_of_a_revoked_key_can_be_used_again(keys: KeyService) -> None:
    await keys.create("ci-bot")
    await keys.revoke("ci-bot")

    renewed = await keys.create("ci-bot")

    assert await keys.authenticate(renewed.secret) == Principal("ci-bot")


@pytest.mark.parametrize("name", ["", "-leading-dash", "has space", "x" * 65, "émoji"])
async def test_creating_a_key_with_a_malformed_name_is_invalid(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory, name: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await keys.create(name)

    assert raised.value.field == "name"
    assert unit_of_work.committed_api_keys == []


async def test_revoking_an_unknown_key_is_not_found(keys: KeyService) -> None:
    with pytest.raises(KeyNotFound) as raised:
        await keys.revoke("nobody")

    assert raised.value.name == "nobody"


async def test_revoking_an_already_revoked_key_is_not_found_and_changes_nothing(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    await keys.create("ci-bot")
    await keys.revoke("ci-bot")
    before = unit_of_work.committed_api_keys

    with pytest.raises(KeyNotFound):
        await keys.revoke("ci-bot")

    assert unit_of_work.committed_api_keys == before


async def test_bootstrap_creates_the_admin_key_when_there_is_no_key(keys: KeyService) -> None:
    issued = await keys.ensure_bootstrap_key()

    assert issued is not None
    assert issued.record.name == BOOTSTRAP_KEY_NAME
    assert await keys.authenticate(issued.secret) == Principal(BOOTSTRAP_KEY_NAME)


async def test_bootstrap_does_nothing_while_an_active_key_exists(
    keys: KeyService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    existing = await keys.create("ci-bot")

    assert await keys.ensure_bootstrap_key() is None
    assert unit_of_work.committed_api_keys == [existing.record]


async def test_bootstrap_runs_once(keys: KeyService) -> None:
    assert await keys.ensure_bootstrap_key() is not None
    assert await keys.ensure_bootstrap_key() is None
    assert len(await keys.list()) == 1


async def test_bootstrap_creates_a_new_admin_key_when_every_key_was_revoked(
    keys: KeyService,
) -> None:
    first = await keys.ensure_bootstrap_key()
    assert first is not None
    await keys.revoke(BOOTSTRAP_KEY_NAME)

    second = await keys.ensure_bootstrap_key()

    assert second is not None
    assert second.secret != first.secret
    assert await keys.authenticate(second.secret) == Principal(BOOTSTRAP_KEY_NAME)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def caching_keys(unit_of_work: FakeUnitOfWorkFactory, clock: FixedClock) -> KeyService:
    return KeyService(
        unit_of_work=unit_of_work,
        hasher=FakeKeyHasher(),
        clock=clock,
        cache_ttl=timedelta(seconds=10),
    )


async def test_a_remembered_key_is_not_looked_up_again_within_the_cache_ttl(
    caching_keys: KeyService, unit_of_work: FakeUnitOfWorkFactory
) -> None:
    issued = await caching_keys.create("alice")
    await caching_keys.authenticate(issued.secret)
    lookups = len(unit_of_work.units)

    assert await caching_keys.authenticate(issued.secret) == Principal("alice")
    assert len(unit_of_work.units) == lookups


async def test_a_key_revoked_elsewhere_stops_working_once_the_cache_ttl_has_passed(
    caching_keys: KeyService, unit_of_work: FakeUnitOfWorkFactory, clock: FixedClock
) -> None:
    issued = await caching_keys.create("alice")
    await caching_keys.authenticate(issued.secret)
    other_process = KeyService(unit_of_work=unit_of_work, hasher=FakeKeyHasher(), clock=clock)
    await other_process.revoke("alice")

    assert await caching_keys.authenticate(issued.secret) == Principal("alice")
    clock.at += timedelta(seconds=10)
    with pytest.raises(AuthenticationFailed):
        await caching_keys.authenticate(issued.secret)


async def test_a_key_revoked_through_the_same_service_stops_working_at_once(
    caching_keys: KeyService,
) -> None:
    issued = await caching_keys.create("alice")
    await caching_keys.authenticate(issued.secret)
    await caching_keys.revoke("alice")

    with pytest.raises(AuthenticationFailed):
        await caching_keys.authenticate(issued.secret)
