"""What every command needs: settings, a container, and a migrated database."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import typer
from rich.console import Console

from imagetag.adapters.sqla.schema_version import HEAD_REVISION, current_revision
from imagetag.domain.errors import ImagetagError
from imagetag.domain.principals import Actor, Principal, Role
from imagetag.entrypoints.container import (
    Container,
    build_container,
    close_container,
    warm_up_detector,
)
from imagetag.entrypoints.settings import Settings, SettingsError

T = TypeVar("T")

console = Console()
errors = Console(stderr=True)


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings.from_env(None, **overrides)
    except SettingsError as error:
        errors.print(f"[red]configuration error:[/red] {error}")
        raise typer.Exit(2) from None


async def prepare_database(settings: Settings) -> None:
    """Migrate the embedded default database; insist on an explicit upgrade elsewhere."""
    current = await current_revision(settings.database_url)
    if current == HEAD_REVISION:
        return
    if settings.uses_default_database:
        # Alembic is loaded only when there is something to migrate.
        from imagetag.adapters.sqla.migrate import upgrade_database

        await upgrade_database(settings.database_url)
        return
    raise ImagetagError(
        f"the database schema is at {current or 'nothing'}, not {HEAD_REVISION}; "
        "run 'imagetag db upgrade' first"
    )


@asynccontextmanager
async def open_container(
    settings: Settings, *, warm_detector: bool = False
) -> AsyncIterator[Container]:
    """The container over a migrated database; with ``warm_detector`` the model starts
    loading at once, on its own thread, while the database is checked and the first files
    are read (a command that detects would otherwise wait for it at its first image)."""
    container = build_container(settings)
    warming = asyncio.create_task(warm_up_detector(container)) if warm_detector else None
    try:
        await prepare_database(settings)
        yield container
    finally:
        if warming is not None:
            warming.cancel()
        await close_container(container)


def run(coroutine: Callable[[], Awaitable[T]]) -> T:
    """Run one command's async body, turning our errors into a message and exit code 1."""
    try:
        return asyncio.run(_call(coroutine))
    except ImagetagError as error:
        errors.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    except OSError as error:
        errors.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None


async def _call(coroutine: Callable[[], Awaitable[T]]) -> T:
    return await coroutine()


def cli_principal() -> Principal:
    """The CLI acts as the local operating-system user, as an admin: whoever can run it
    here can open the database directly anyway."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Principal(Actor(user, "imagetag-cli"), Role.ADMIN)
