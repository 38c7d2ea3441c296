"""imagetag keys: create, list and revoke API keys."""

from __future__ import annotations

import typer
from rich.table import Table

from imagetag.domain.principals import parse_role
from imagetag.entrypoints.cli.runtime import (
    cli_principal,
    console,
    load_settings,
    open_container,
    run,
)
from imagetag.services.keys import IssuedKey

app = typer.Typer(help="Manage API keys. A key's secret is shown once, at creation.")


@app.command("create")
def create(
    name: str = typer.Argument(..., help="A name for the key, e.g. alice-laptop"),
    user: str | None = typer.Option(None, help="The user the key belongs to [default: NAME]"),
    client: str | None = typer.Option(
        None, help="The client that uses it, e.g. labelling-ui [default: NAME]"
    ),
    role: str = typer.Option("reader", help="reader (GET only), tagger (write), or admin"),
) -> None:
    """Create a key and print it; the last line of output is the key alone."""
    settings = load_settings()

    async def body() -> IssuedKey:
        async with open_container(settings) as container:
            return await container.keys().create(
                name, cli_principal(), user=user, client=client, role=parse_role(role)
            )

    issued = run(body)
    record = issued.record
    console.print(
        f"Created API key [bold]{name}[/bold] for {record.user} via {record.client}, role "
        f"{record.role}. Store it now; it is not shown again."
    )
    print(issued.secret)


@app.command("list")
def list_keys() -> None:
    """List keys (never their secrets)."""
    settings = load_settings()

    async def body() -> list[tuple[str, ...]]:
        async with open_container(settings) as container:
            records = await container.keys().list(cli_principal())
            return [
                (
                    record.name,
                    record.user,
                    record.client,
                    record.role.value,
                    record.prefix + "…",
                    record.created_at.isoformat(timespec="seconds"),
                    record.revoked_at.isoformat(timespec="seconds") if record.revoked_at else "",
                )
                for record in records
            ]

    table = Table("name", "user", "client", "role", "starts with", "created", "revoked")
    for row in run(body):
        table.add_row(*row)
    console.print(table)


@app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The name of the key to revoke")) -> None:
    """Revoke a key; requests with it get 401 from then on."""
    settings = load_settings()

    async def body() -> None:
        async with open_container(settings) as container:
            await container.keys().revoke(name, cli_principal())

    run(body)
    console.print(f"Revoked API key [bold]{name}[/bold].")
