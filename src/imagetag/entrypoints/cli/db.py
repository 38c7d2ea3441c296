"""imagetag db: schema migrations."""

from __future__ import annotations

import typer

from imagetag.adapters.sqla.schema_version import HEAD_REVISION, current_revision
from imagetag.entrypoints.cli.runtime import console, load_settings, run

app = typer.Typer(help="Database schema management.")


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision")) -> None:
    """Migrate the database (IMAGETAG_DATABASE_URL) to the latest schema."""
    # Alembic is loaded by this command only, not by every command of the CLI.
    from imagetag.adapters.sqla.migrate import upgrade_database

    settings = load_settings()

    async def body() -> str | None:
        await upgrade_database(settings.database_url, revision)
        return await current_revision(settings.database_url)

    console.print(f"Database ({settings.database_backend}) is at revision {run(body)}.")


@app.command("current")
def current() -> None:
    """Show the database's schema revision and the latest one."""
    settings = load_settings()

    async def body() -> str | None:
        return await current_revision(settings.database_url)

    console.print(f"current: {run(body) or 'none'}; latest: {HEAD_REVISION}")
