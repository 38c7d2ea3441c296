"""aiosqlite connections that run each statement in one hop to their thread.

SQLAlchemy's aiosqlite adapter creates, executes, fetches and closes a cursor as four
separate calls, each queued to the connection's thread and answered back to the event
loop: an INSERT ... RETURNING costs four thread hops (~0.1-0.2 ms each on a small host,
more while a model's threads hold the cores), and recording one ingest took ~23 of them.
Here the cursor does all of a statement's work in one call on that thread and keeps the
rows, its description, row count and last row id; what SQLAlchemy then reads from it is
already in memory.

Rows are fetched whole, so a server-side cursor (``stream()``) buffers its result too;
imagetag reads bounded pages only. ``call`` sends work of several statements in one hop
(``sqlite_writes``). Everything else (the thread, the queue, commit, rollback, close) is
aiosqlite's own. The hop uses ``Connection._execute``, the one
function aiosqlite itself runs every call through: internal, but present in every
aiosqlite release SQLAlchemy supports, and SQLAlchemy's adapter already relies on the
connection's internals (``_conn``, ``_tx``, ``_thread``) in the same way.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar, cast

import aiosqlite

Row = Any
Description = tuple[tuple[Any, ...], ...] | None
Outcome = tuple[Description, int, int | None, list[Row]]
P = ParamSpec("P")
T = TypeVar("T")


class OneHopConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors take one thread hop per statement."""

    def cursor(self) -> OneHopCursor:  # type: ignore[override]
        # SQLAlchemy enters the cursor with ``await cursor.__aenter__()``: no hop needed,
        # the sqlite3 cursor is made on the thread with each statement.
        return OneHopCursor(self)

    async def commit(self) -> None:
        # Both skip the hop when no transaction is open: the pool rolls back every
        # connection it gets back, after a commit too, and a session that only read
        # commits nothing.
        if self._in_transaction():
            await super().commit()

    async def rollback(self) -> None:
        if self._in_transaction():
            await super().rollback()

    def _in_transaction(self) -> bool:
        # sqlite3_get_autocommit: a flag read, safe beside the connection's thread, which
        # is idle while SQLAlchemy holds the connection and awaits this.
        connection = self._connection
        return connection is None or connection.in_transaction

    async def run_statement(
        self, sql: str, parameters: Any = None, *, many: bool = False
    ) -> Outcome:
        """Run one statement (or one ``executemany``) on the connection's thread."""
        return await self.call(_run_statement, sql, parameters, many)

    async def call(
        self,
        function: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``function(connection, *args, **kwargs)`` on the connection's thread, in one hop:
        for work of several statements (see ``sqlite_writes``)."""
        result: T = await self._execute(  # type: ignore[no-untyped-call]
            function, self._conn, *args, **kwargs
        )
        return result


def _run_statement(
    connection: sqlite3.Connection, sql: str, parameters: Any, many: bool
) -> Outcome:
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        elif parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneHopCursor:
    """What SQLAlchemy's asyncio adapter asks of a driver cursor, answered from memory
    once the statement has run."""

    arraysize = 1

    def __init__(self, connection: OneHopConnection) -> None:
        self._connection = connection
        self.description: Description = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Row] = []
        # Rows before this index were fetched: reading one costs no copy of the rest.
        self._next = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = None) -> Self:
        return await self._run(sql, parameters, many=False)

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Self:
        return await self._run(sql, parameters, many=True)

    async def _run(self, sql: str, parameters: Any, *, many: bool) -> Self:
        (
            self.description,
            self.rowcount,
            self.lastrowid,
            rows,
        ) = await self._connection.run_statement(sql, parameters, many=many)
        self._rows, self._next = rows, 0
        return self

    async def fetchone(self) -> Row | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def fetchmany(self, size: int | None = None) -> Sequence[Row]:
        count = self.arraysize if size is None else size
        taken = self._rows[self._next : self._next + count]
        self._next += len(taken)
        return taken

    async def fetchall(self) -> Sequence[Row]:
        taken = self._rows[self._next :] if self._next else self._rows
        self._rows, self._next = [], 0
        return taken

    async def close(self) -> None:
        self._rows, self._next = [], 0


def connect(database: str, **kwargs: Any) -> OneHopConnection:
    """What ``aiosqlite.connect`` does, making a ``OneHopConnection``; SQLAlchemy awaits it."""
    iter_chunk_size = kwargs.pop("iter_chunk_size", 64)
    connection = OneHopConnection(
        lambda: sqlite3.connect(database, **kwargs), iter_chunk_size=iter_chunk_size
    )
    # As SQLAlchemy does for the connections it opens: a pooled connection never closed
    # must not keep the interpreter from exiting.
    # (Before aiosqlite 0.22 the connection was itself the thread.)
    thread = cast("threading.Thread", getattr(connection, "_thread", connection))
    thread.daemon = True
    return connection
