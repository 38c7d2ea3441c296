"""Idempotency keys and duplicate lookups on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from imagetag.adapters.sqla.engine import create_engine, session_factory
from imagetag.adapters.sqla.unit_of_work import SqlUnitOfWorkFactory
from imagetag.domain.errors import IdempotencyKeyTaken
from imagetag.domain.idempotency import IdempotencyRecord
from tests.integration.test_sql_repository import ALICE, BOB, T0, new_image


@pytest.fixture
async def unit_of_work(database_url: str) -> AsyncIterator[SqlUnitOfWorkFactory]:
    engine = create_engine(database_url)
    yield SqlUnitOfWorkFactory(session_factory(engine))
    await engine.dispose()


async def test_a_key_is_found_for_its_user_only(unit_of_work: SqlUnitOfWorkFactory) -> None:
    async with unit_of_work() as uow:
        image = await uow.images.add(new_image(1))
        record = IdempotencyRecord(ALICE.user, "k-1", "f" * 64, image.id, T0)
        await uow.idempotency.add(record)
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.idempotency.find(ALICE.user, "k-1") == record
        assert await uow.idempotency.find(BOB.user, "k-1") is None
        assert await uow.idempotency.find(ALICE.user, "k-2") is None


async def test_a_taken_key_is_refused_and_the_transaction_goes_on(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        first = await uow.images.add(new_image(1))
        await uow.idempotency.add(IdempotencyRecord(ALICE.user, "k-1", "a" * 64, first.id, T0))
        await uow.commit()
    async with unit_of_work() as uow:
        second = await uow.images.add(new_image(2))
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
        assert await uow.images.get(second.id) is not None


async def test_the_oldest_live_image_with_the_bytes_is_found(
    unit_of_work: SqlUnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        oldest = await uow.images.add(new_image(7))
        newer = await uow.images.add(new_image(7, by=BOB))
        await uow.images.add(new_image(8))
        await uow.commit()
    async with unit_of_work() as uow:
        found = await uow.images.find_by_sha256(oldest.sha256)
        assert found is not None
        assert found.id == oldest.id
        assert await uow.images.find_by_sha256("0" * 64) is None
        await uow.images.delete(oldest.id, ALICE, T0)
        after = await uow.images.find_by_sha256(oldest.sha256)
        assert after is not None
        assert after.id == newer.id
