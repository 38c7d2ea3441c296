"""SQLite connections that run each statement in one hop to aiosqlite's thread behave, to
SQLAlchemy, like aiosqlite's own: rows, row counts, last row ids, errors, transactions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from imagetag.adapters.sqla import sqlite_driver
from imagetag.adapters.sqla.engine import create_engine, sqlite_url


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(sqlite_url(tmp_path / "driver.db"))
    async with engine.begin() as connection:
        await connection.execute(
            text("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)")
        )
    yield engine
    await engine.dispose()


async def test_the_engine_opens_sqlite_through_one_hop_connections(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.driver_connection, sqlite_driver.OneHopConnection)


async def test_each_statement_takes_one_hop_and_answers_rows_counts_and_ids(
    engine: AsyncEngine, sqlite_hops: list[str]
) -> None:
    async with engine.connect() as connection:
        sqlite_hops.clear()
        inserted = await connection.execute(
            text("INSERT INTO things (name) VALUES ('bus') RETURNING id")
        )
        assert inserted.scalar_one() == 1
        plain = await connection.execute(text("INSERT INTO things (name) VALUES ('car')"))
        assert plain.lastrowid == 2
        many = await connection.execute(
            text("INSERT INTO things (name) VALUES (:name)"), [{"name": "dog"}, {"name": "cat"}]
        )
        assert many.rowcount == 2
        updated = await connection.execute(
            text("UPDATE things SET name = name || '!' WHERE id > :id"), {"id": 1}
        )
        assert updated.rowcount == 3
        rows = await connection.execute(text("SELECT id, name FROM things ORDER BY id"))
        assert rows.all() == [(1, "bus"), (2, "car!"), (3, "dog!"), (4, "cat!")]
        assert sqlite_hops == ["_run_statement"] * 5
        await connection.commit()


async def test_a_streamed_result_reads_every_row(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO things (name) VALUES (:name)"),
            [{"name": f"thing {number}"} for number in range(150)],
        )
        streamed = await connection.stream(text("SELECT id FROM things ORDER BY id"))
        assert [row.id async for row in streamed] == list(range(1, 151))


async def test_rows_fetched_one_some_and_all_at_a_time_come_in_order_once(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO things (name) VALUES (:name)"),
            [{"name": f"thing {number}"} for number in range(10)],
        )
        result = await connection.execute(text("SELECT id FROM things ORDER BY id"))
        assert result.fetchone() == (1,)
        assert result.fetchmany(3) == [(2,), (3,), (4,)]
        assert result.fetchone() == (5,)
        assert result.fetchall() == [(n,) for n in range(6, 11)]
        assert result.fetchone() is None
        assert result.fetchall() == []


async def test_a_failing_statement_raises_the_usual_error_and_the_connection_goes_on(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("INSERT INTO things (name) VALUES ('bus')"))
        with pytest.raises(IntegrityError):
            await connection.execute(text("INSERT INTO things (name) VALUES ('bus')"))
        await connection.rollback()
        await connection.execute(text("INSERT INTO things (name) VALUES ('car')"))
        await connection.commit()
        names = await connection.execute(text("SELECT name FROM things"))
        assert names.scalars().all() == ["car"]


async def test_returning_a_committed_connection_to_the_pool_takes_no_hop(
    engine: AsyncEngine, sqlite_hops: list[str]
) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("INSERT INTO things (name) VALUES ('bus')"))
        await connection.commit()
        sqlite_hops.clear()
    # The pool rolls back every connection it gets back; with nothing open, nothing to send.
    assert sqlite_hops == []


async def test_work_not_committed_is_rolled_back_when_the_connection_returns(
    engine: AsyncEngine, sqlite_hops: list[str]
) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("INSERT INTO things (name) VALUES ('bus')"))
        sqlite_hops.clear()
    assert sqlite_hops == ["rollback"]
    async with engine.connect() as connection:
        count = await connection.execute(text("SELECT count(*) FROM things"))
        assert count.scalar_one() == 0
