"""imagetag keys: create, list and revoke API keys."""

from __future__ import annotations

import typer
from rich.table import Table

from imagetag.entrypoints.cli.runtime import console, load_settings, open_container, run

app = typer.Typer(help="Manage API keys. A key's secret is shown once, at creation.")


@app.command("create")
def create(name: str = typer.Argument(..., help="A name for the key, e.g. alice-laptop")) -> None:
    """Create a key and print it; the last line of output is the key alone."""
    settings = load_settings()

    async def body() -> str:
        async with open_container(settings) as container:
            issued = await container.keys().create(name)
            return issued.secret

    secret = run(body)
    console.print(f"Created API key [bold]{name}[/bold]. Store it now; it is not shown again.")
    print(secret)


@app.command("list")
def list_keys() -> None:
    """List keys (never their secrets)."""
    settings = load_settings()

    async def body() -> list[tuple[str, str, str, str]]:
        async with open_container(settings) as container:
            records = await container.keys().list()
            return [
                (
                    record.name,
                    record.prefix + "…",
                    record.created_at.isoformat(timespec="seconds"),
                    record.revoked_at.isoformat(timespec="seconds") if record.revoked_at else "",
                )
                for record in records
            ]

    table = Table("name", "starts with", "created", "revoked")
    for row in run(body):
        table.add_row(*row)
    console.print(table)


@app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The name of the key to revoke")) -> None:
    """Revoke a key; requests with it get 401 from then on."""
    settings = load_settings()

    async def body() -> None:
        async with open_container(settings) as container:
            await container.keys().revoke(name)

    run(body)
    console.print(f"Revoked API key [bold]{name}[/bold].")
