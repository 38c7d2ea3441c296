"""Schema migrations with Alembic, callable from the CLI, the server and tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from imagetag.adapters.sqla.engine import create_engine, normalise_database_url
from imagetag.adapters.sqla.schema_version import current_revision

__all__ = ["alembic_config", "current_revision", "head_revision", "upgrade_database"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalise_database_url(database_url))
    return config


async def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to run on every start."""
    engine = create_engine(database_url)
    config = alembic_config(database_url)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    try:
        async with engine.begin() as connection:
            await connection.run_sync(run)
    finally:
        await engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def upgrade_database_sync(database_url: str) -> None:
    asyncio.run(upgrade_database(database_url))
