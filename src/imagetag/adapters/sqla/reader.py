"""Point reads of one live image and its live tags in a single statement.

The write side goes through a unit of work; ``GET /images/{id}`` is the hot path, so it
is one SELECT (images LEFT JOIN live tags LEFT JOIN their runs) mapped straight to the
domain. On SQLite the statement runs on the stdlib driver in the calling thread: a
primary-key lookup in a local WAL database takes tens of microseconds, less than handing
it to aiosqlite's thread (several hops per statement), and WAL readers never wait for
writers.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from imagetag.adapters.sqla.engine import sqlite_database_path
from imagetag.adapters.sqla.mapping import images_from_rows
from imagetag.adapters.sqla.queries import GET_IMAGE
from imagetag.domain.images import Image

# Ids are positive 64-bit integers on both databases; the drivers refuse larger ones with an
# error rather than finding nothing, so such an id is answered here.
MAX_IMAGE_ID = 2**63 - 1


class SqlAlchemyImageReader:
    """One statement over the async engine; used for PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, image_id: int) -> Image | None:
        if not 0 < image_id <= MAX_IMAGE_ID:
            return None
        async with self._engine.connect() as connection:
            result = await connection.execute(GET_IMAGE, {"image_id": image_id})
            found = images_from_rows(result.all())
        return found[0] if found else None


_SQLITE_GET_IMAGE = str(GET_IMAGE.compile(dialect=sqlite.dialect()))


def _sqlite_datetime(value: str) -> datetime:
    # SQLAlchemy stores SQLite datetimes as naive UTC text (see tables.UtcDateTime). Parsing
    # it with the offset appended costs a seventh of parsing it and then .replace(tzinfo=).
    return datetime.fromisoformat(value + "+00:00")


def _sqlite_json(value: str | None) -> Any:
    return json.loads(value) if value else None


class SqliteImageReader:
    """Reads the SQLite file with the stdlib driver: one connection per thread, query-only."""

    def __init__(self, database: Path) -> None:
        self._database = database
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self._database, isolation_level=None)
            connection.execute("PRAGMA query_only=ON")
            connection.execute("PRAGMA busy_timeout=1000")
            self._local.connection = connection
        return connection

    async def get(self, image_id: int) -> Image | None:
        if not 0 < image_id <= MAX_IMAGE_ID:
            return None
        rows = self._connection().execute(_SQLITE_GET_IMAGE, (image_id,)).fetchall()
        found = images_from_rows(rows, decode_datetime=_sqlite_datetime, decode_json=_sqlite_json)
        return found[0] if found else None


def create_image_reader(
    database_url: str, engine: AsyncEngine
) -> SqliteImageReader | SqlAlchemyImageReader:
    """The fastest reader for the database: stdlib SQLite for a file, else the engine."""
    path = sqlite_database_path(database_url)
    return SqliteImageReader(path) if path is not None else SqlAlchemyImageReader(engine)
