"""Which schema revision a database is at, read without loading Alembic.

Alembic takes ~0.3 s to import; every command and every server start asks this, and
almost always the answer is "the latest", so only an upgrade loads Alembic
(``migrate.py``). ``HEAD_REVISION`` is checked against Alembic's scripts by a test.
"""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from imagetag.adapters.sqla.engine import create_engine

HEAD_REVISION = "0004"
_VERSION_TABLE = "alembic_version"


async def current_revision(database_url: str) -> str | None:
    """The revision the database's schema is at; None for a database never migrated."""
    engine = create_engine(database_url)

    def read(connection: Connection) -> str | None:
        if not inspect(connection).has_table(_VERSION_TABLE):
            return None
        row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
        return str(row[0]) if row is not None else None

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await engine.dispose()
