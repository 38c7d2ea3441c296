"""Fixtures for tests on real parts: SQLite files, a PostgreSQL server, HTTP servers."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from imagetag.adapters.sqla.migrate import upgrade_database
from tests.support.postgres import running_cluster

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A real PostgreSQL server: IMAGETAG_TEST_POSTGRES_URL, or a cluster started here."""
    external = os.environ.get("IMAGETAG_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    with running_cluster() as url:
        yield url


async def fresh_postgres_database(admin_url: str) -> str:
    """Create an empty database on the server and return its URL."""
    url = make_url(admin_url)
    name = f"imagetag_test_{os.getpid()}_{next(_database_numbers)}"
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database or "postgres",
    )
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty database on each supported backend."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'imagetag.db'}"
    else:
        admin_url = request.getfixturevalue("postgres_admin_url")
        url = await fresh_postgres_database(admin_url)
    await upgrade_database(url)
    return url
