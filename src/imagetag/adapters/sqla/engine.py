"""Engines for the two supported databases, with the settings each one needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Dialect, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from imagetag.adapters.sqla import sqlite_driver

SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
# SQLSTATEs of a server that is away rather than of a statement that is wrong: connection
# exceptions (class 08) and operator intervention (57P01 admin shutdown, 57P02 crash
# shutdown, 57P03 cannot connect now, 57P04 database dropped).
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P")


class DatabaseUnavailable(ConnectionError):
    """The database cannot be reached or is restarting; retrying later may succeed.

    An ``OSError``, like any other storage outage, so that callers (the HTTP layer: 503 with
    ``Retry-After``) treat it as passing rather than as a bug.
    """


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def normalise_database_url(url: str) -> str:
    """Accept the plain scheme names people paste and add our async driver."""
    parsed = make_url(url)
    driver = parsed.drivername
    if driver in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif driver in ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise ValueError(
            f"IMAGETAG_DATABASE_URL uses {driver!r}; use sqlite:///path or postgresql://..."
        )
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str) -> AsyncEngine:
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "do_connect", _connect_one_hop)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine
    engine = create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        # Statements are prepared; a generic plan chosen on average tag frequencies would
        # serve a rare tag as badly as a common one. Plan each execution for its values.
        connect_args={
            # JIT compiling costs more than it saves on these short, index-bound queries
            # (17 ms of a 25 ms year-wide tag window at 1M images, bench/search).
            "server_settings": {"plan_cache_mode": "force_custom_plan", "jit": "off"}
        },
    )
    event.listen(engine.sync_engine, "handle_error", _unavailable_as_connection_error)
    return engine


def _unavailable_as_connection_error(context: ExceptionContext) -> BaseException | None:
    """A restart or outage of the server becomes ``DatabaseUnavailable``, not a DBAPIError.

    Connections the restart closed are still invalidated (SQLAlchemy does that whatever the
    exception raised), and the pool's pre-ping replaces them on the next checkout.
    """
    if context.is_pre_ping:
        return None
    if context.is_disconnect or _server_unavailable(context.original_exception):
        unavailable = DatabaseUnavailable(
            f"the database is unavailable: {context.original_exception}"
        )
        unavailable.__cause__ = context.sqlalchemy_exception or context.original_exception
        return unavailable
    return None


def _server_unavailable(error: BaseException | None) -> bool:
    # The driver's own exception is the cause of the one SQLAlchemy's adapter raises.
    while error is not None:
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES):
            return True
        error = error.__cause__
    return False


def _connect_one_hop(
    _dialect: Dialect, _record: ConnectionPoolEntry, _args: list[Any], parameters: dict[str, Any]
) -> None:
    # SQLAlchemy's aiosqlite adapter opens the connection with this function instead of
    # aiosqlite.connect, with the same arguments: one thread hop per statement, not four.
    parameters["async_creator_fn"] = sqlite_driver.connect


def _configure_sqlite(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers run beside the one writer; the busy timeout queues writers
    # instead of failing them with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def sqlite_database_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(normalise_database_url(url))
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
