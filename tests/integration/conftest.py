"""Fixtures for tests on real parts: SQLite files, a PostgreSQL server, HTTP servers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from imagetag.adapters.sqla import sqlite_driver
from tests.support.databases import fresh_postgres_database, migrated_database, postgres_server

# Re-exported: test modules import it from here.
__all__ = ["fresh_postgres_database"]


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A real PostgreSQL server: IMAGETAG_TEST_POSTGRES_URL, or a cluster started here."""
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on each supported backend."""
    if request.param == "sqlite":
        return await migrated_database("sqlite", tmp_path)
    return await migrated_database(
        "postgresql", tmp_path, request.getfixturevalue("postgres_admin_url")
    )


@pytest.fixture
def sqlite_hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function sent to a SQLite connection's thread, in order."""
    sent: list[str] = []
    original = sqlite_driver.OneHopConnection._execute

    def counting(
        self: sqlite_driver.OneHopConnection,
        function: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> Awaitable[Any]:
        sent.append(getattr(function, "__name__", repr(function)))
        return original(self, function, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(sqlite_driver.OneHopConnection, "_execute", counting)
    return sent
