"""Migrated, empty databases for tests: SQLite files, and databases on a PostgreSQL server.

Shared by the conftests of tests/integration and tests/contract, which each declare their
own session fixture over ``postgres_server`` (fixtures are not imported across conftests).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from imagetag.adapters.sqla.engine import sqlite_url
from imagetag.adapters.sqla.migrate import upgrade_database
from tests.support.postgres import running_cluster

_database_numbers = itertools.count(1)


class _SharedServer:
    """One PostgreSQL server for the whole process, however many fixtures ask for it:
    started by the first, stopped when the last one is done."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._stack = contextlib.ExitStack()
        self._url: str | None = None

    @contextlib.contextmanager
    def use(self) -> Iterator[str]:
        with self._lock:
            if self._url is None:
                external = os.environ.get("IMAGETAG_TEST_POSTGRES_URL")
                self._url = external or self._stack.enter_context(running_cluster())
            self._users += 1
            url = self._url
        try:
            yield url
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._url = None
                    self._stack.close()


_server = _SharedServer()


def postgres_server() -> contextlib.AbstractContextManager[str]:
    """A real PostgreSQL server's admin URL: IMAGETAG_TEST_POSTGRES_URL, or a throwaway
    cluster started here and shared by everyone who asks while it runs."""
    return _server.use()


async def fresh_postgres_database(admin_url: str, *, template: str | None = None) -> str:
    """Create a database on the server (empty, or a copy of ``template``); return its URL."""
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
        copy_of = f' TEMPLATE "{template}"' if template else ""
        await connection.execute(f'CREATE DATABASE "{name}"{copy_of}')
    finally:
        await connection.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def migrated_database(backend: str, directory: Path, admin_url: str | None = None) -> str:
    """A database migrated to the head revision: an SQLite file in ``directory``, or a new
    database on the PostgreSQL server at ``admin_url``."""
    if backend == "sqlite":
        url = sqlite_url(directory / "imagetag.db")
    elif backend == "postgresql" and admin_url is not None:
        url = await fresh_postgres_database(admin_url)
    else:
        raise ValueError(f"no database for backend {backend!r} (admin URL: {admin_url!r})")
    await upgrade_database(url)
    return url


class MigratedTemplates:
    """Copies of one migrated database per backend: copying takes milliseconds, where
    migrating a new database takes most of a second on PostgreSQL."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._sqlite: Path | None = None
        self._postgres: dict[str, str] = {}

    async def sqlite(self, directory: Path) -> str:
        if self._sqlite is None:
            template = self._directory / "template.db"
            await upgrade_database(sqlite_url(template))
            self._sqlite = template
        target = directory / "imagetag.db"
        # The backup API copies a consistent database whatever state its WAL is in.
        with (
            contextlib.closing(sqlite3.connect(self._sqlite)) as source,
            contextlib.closing(sqlite3.connect(target)) as copy,
        ):
            source.backup(copy)
        return sqlite_url(target)

    async def postgresql(self, admin_url: str) -> str:
        template = self._postgres.get(admin_url)
        if template is None:
            migrated = await migrated_database("postgresql", self._directory, admin_url)
            template = make_url(migrated).database
            assert template is not None
            self._postgres[admin_url] = template
        return await fresh_postgres_database(admin_url, template=template)
