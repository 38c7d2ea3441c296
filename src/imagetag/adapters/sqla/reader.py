"""Point reads of one image and its detections in a single statement.

The write side goes through the ORM and a unit of work; ``GET /images/{id}`` is the hot
path, so it is one SELECT (images LEFT JOIN detections) mapped straight to the domain.
On SQLite the statement runs on the stdlib driver in the calling thread: a primary-key
lookup in a local WAL database takes tens of microseconds, less than handing it to
aiosqlite's thread (several hops per statement), and WAL readers never wait for writers.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from imagetag.adapters.sqla.engine import sqlite_database_path
from imagetag.adapters.sqla.mapping import IMAGE_COLUMNS, detection_from_values, image_from_values
from imagetag.adapters.sqla.tables import DetectionRow, ImageRow
from imagetag.domain.images import Image

_images = ImageRow.__table__
_detections = DetectionRow.__table__

DETECTION_COLUMNS = (
    "id", "name", "confidence", "x_min", "y_min", "x_max", "y_max", "detector", "model",
    "provenance",
)  # fmt: skip

GET_IMAGE = (
    select(
        *(_images.c[name] for name in IMAGE_COLUMNS),
        *(_detections.c[name].label(f"detection_{name}") for name in DETECTION_COLUMNS),
    )
    .select_from(_images.outerjoin(_detections, _detections.c.image_id == _images.c.id))
    .where(_images.c.id == bindparam("image_id"))
    .order_by(_detections.c.id)
)

Decoder = Callable[[Any], Any]


def image_from_rows(
    rows: Sequence[Sequence[Any]],
    *,
    decode_datetime: Decoder = lambda value: value,
    decode_json: Decoder = lambda value: value,
) -> Image | None:
    """Build the image from its joined rows (one per detection, or one with NULLs)."""
    if not rows:
        return None
    first = dict(zip(IMAGE_COLUMNS, rows[0][: len(IMAGE_COLUMNS)], strict=True))
    detections = []
    for row in rows:
        found = dict(zip(DETECTION_COLUMNS, row[len(IMAGE_COLUMNS) :], strict=True))
        if found["id"] is not None:
            detections.append(
                detection_from_values(
                    name=found["name"],
                    confidence=found["confidence"],
                    corners=(found["x_min"], found["y_min"], found["x_max"], found["y_max"]),
                    detector=found["detector"],
                    model=found["model"],
                    provenance=decode_json(found["provenance"]) or {},
                )
            )
    first["created_at"] = decode_datetime(first["created_at"])
    return image_from_values(first, tuple(detections))


class SqlAlchemyImageReader:
    """One statement over the async engine; used for PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, image_id: int) -> Image | None:
        async with self._engine.connect() as connection:
            result = await connection.execute(GET_IMAGE, {"image_id": image_id})
            return image_from_rows(result.all())


_SQLITE_GET_IMAGE = str(GET_IMAGE.compile(dialect=sqlite.dialect()))


def _sqlite_datetime(value: str) -> datetime:
    # SQLAlchemy stores SQLite datetimes as naive UTC text (see tables.UtcDateTime).
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


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
        rows = self._connection().execute(_SQLITE_GET_IMAGE, (image_id,)).fetchall()
        return image_from_rows(rows, decode_datetime=_sqlite_datetime, decode_json=_sqlite_json)


def create_image_reader(
    database_url: str, engine: AsyncEngine
) -> SqliteImageReader | SqlAlchemyImageReader:
    """The fastest reader for the database: stdlib SQLite for a file, else the engine."""
    path = sqlite_database_path(database_url)
    return SqliteImageReader(path) if path is not None else SqlAlchemyImageReader(engine)
