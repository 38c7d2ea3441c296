"""An ingest's writes on SQLite in one hop to the connection's thread instead of six.

Through SQLAlchemy each statement is a hop to aiosqlite's thread and back, plus building
and processing its parameters on the event loop: recording an ingest with detection (the
image, its run, the run's tags, two audit events, the commit) took ~1.5 ms that way, as
much as the rest of the request's overhead. Here the image, its run and its tags are
inserted in one call on that thread, and the audit events with the COMMIT in another
(~0.75 ms, bench/detect/bench_write.py), or all of it in one call when the caller makes
its audit events from the stored image there (``add_image_and_commit``).

The statements are SQLAlchemy's own, compiled once for SQLite from the tables, and each
value goes through its column type's bind processor (UTC datetimes, JSON), so the rows
are the ones SQLAlchemy would write; the contract tests read them back through it. The
calls run on the same sqlite3 connection, inside the transaction the session holds, so
its rollback and commit cover them. PostgreSQL keeps the SQLAlchemy path.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from imagetag.adapters.sqla.mapping import (
    Values,
    audit_values,
    image_values,
    model_tag_values,
    run_values,
)
from imagetag.adapters.sqla.queries import audit_events, images, runs, tags
from imagetag.adapters.sqla.sqlite_driver import OneHopConnection
from imagetag.domain.audit import AuditEvent
from imagetag.domain.images import Image, NewImage
from imagetag.ports.repository import AddedImage

# Named parameters: the rows are the mapping's dictionaries, bound by column name.
_DIALECT = sqlite.dialect(paramstyle="named")

Processor = Callable[[Any], Any]


class _CompiledInsert:
    """An INSERT into ``table`` of the columns a row names, compiled for SQLite once per
    set of columns, with the bind processors of the columns that have one."""

    def __init__(self, table: Table, *, returning_id: bool = False) -> None:
        self._statement = insert(table).returning(table.c.id) if returning_id else insert(table)
        self._table = table
        self._compiled: dict[tuple[str, ...], tuple[str, tuple[tuple[str, Processor], ...]]] = {}

    def sql(self, columns: tuple[str, ...]) -> str:
        return self._lookup(columns)[0]

    def bind(self, values: Values) -> Values:
        """``values`` as the driver takes them: each through its column's processor."""
        _, processors = self._lookup(tuple(values))
        bound = dict(values)
        for column, process in processors:
            bound[column] = process(bound[column])
        return bound

    def _lookup(self, columns: tuple[str, ...]) -> tuple[str, tuple[tuple[str, Processor], ...]]:
        found = self._compiled.get(columns)
        if found is None:
            sql = str(self._statement.compile(dialect=_DIALECT, column_keys=list(columns)))
            processors = tuple(
                (column, process)
                for column in columns
                if (process := self._processor(column)) is not None
            )
            found = self._compiled[columns] = (sql, processors)
        return found

    def _processor(self, column: str) -> Processor | None:
        column_type = self._table.c[column].type
        process: Processor | None = column_type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
        return process


_INSERT_IMAGE = _CompiledInsert(images, returning_id=True)
_INSERT_RUN = _CompiledInsert(runs, returning_id=True)
_INSERT_TAGS = _CompiledInsert(tags)
_INSERT_AUDIT_EVENTS = _CompiledInsert(audit_events)


async def one_hop_connection(session: AsyncSession) -> OneHopConnection | None:
    """The session's SQLite connection when it is a ``OneHopConnection``; None for other
    databases. Begins the session's transaction, as its first statement would."""
    if session.get_bind().dialect.name != "sqlite":
        return None
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    return driver if isinstance(driver, OneHopConnection) else None


def insert_image(connection: sqlite3.Connection, image: NewImage) -> tuple[int, int | None]:
    """Insert the image, its detection run and the run's tags; the image and run ids.

    Runs on the connection's thread (``OneHopConnection.call``)."""
    image_id: int = _insert_returning_id(connection, _INSERT_IMAGE, image_values(image))
    run = image.detection
    if run is None:
        return image_id, None
    run_id: int = _insert_returning_id(connection, _INSERT_RUN, run_values(image_id, run))
    tag_rows = [_INSERT_TAGS.bind(row) for row in model_tag_values(image_id, run_id, run)]
    if tag_rows:
        # Every row has the same columns; inserted in order, so tag ids follow the detector's.
        connection.executemany(_INSERT_TAGS.sql(tuple(tag_rows[0])), tag_rows)
    return image_id, run_id


def add_image_and_commit(
    connection: sqlite3.Connection,
    image: NewImage,
    audit: Callable[[AddedImage], Sequence[AuditEvent]],
    pending: Sequence[Values],
) -> AddedImage:
    """``insert_image``, then the rows of the audit events appended before (``pending``)
    and of those ``audit`` makes of the stored image, then the commit. Runs on the
    connection's thread."""
    image_id, run_id = insert_image(connection, image)
    added = AddedImage(Image.stored(image, image_id, run_id), run_id)
    events = [*pending, *(audit_values(event) for event in audit(added))]
    append_audit_events_and_commit(connection, events)
    return added


def append_audit_events_and_commit(
    connection: sqlite3.Connection, events: Sequence[Values]
) -> None:
    """Insert the audit events' rows, then commit the transaction; nothing is committed if
    the insert fails. Runs on the connection's thread."""
    if events:
        rows = [_INSERT_AUDIT_EVENTS.bind(event) for event in events]
        connection.executemany(_INSERT_AUDIT_EVENTS.sql(tuple(rows[0])), rows)
    connection.commit()


def _insert_returning_id(
    connection: sqlite3.Connection, statement: _CompiledInsert, values: Values
) -> int:
    row = connection.execute(statement.sql(tuple(values)), statement.bind(values)).fetchone()
    assert row is not None
    row_id: int = row[0]
    return row_id
