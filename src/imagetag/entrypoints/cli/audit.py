"""imagetag audit: who changed what, and when."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from imagetag.domain.audit import parse_audit_query
from imagetag.domain.search import DEFAULT_PAGE_SIZE, encode_cursor
from imagetag.entrypoints.cli.runtime import (
    cli_principal,
    console,
    load_settings,
    open_container,
    run,
)
from imagetag.services.audit import AuditPage


def audit(
    user: str | None = typer.Option(None, help="Events by this user"),
    image: int | None = typer.Option(None, help="Events about this image id"),
    type: str | None = typer.Option(None, help="Event types, e.g. tag.added,tag.removed"),
    after: str | None = typer.Option(None, help="At or after this time (ISO 8601)"),
    before: str | None = typer.Option(None, help="Before this time (ISO 8601)"),
    limit: int = typer.Option(DEFAULT_PAGE_SIZE, help="At most this many events (1..1000)"),
    cursor: str | None = typer.Option(None, help="The cursor printed under the last page"),
) -> None:
    """Show the audit log, newest first; the options combine."""
    settings = load_settings()

    async def body() -> AuditPage:
        query = parse_audit_query(
            user=user,
            image_id=image,
            type=type,
            after=after,
            before=before,
            limit=limit,
            cursor=cursor,
        )
        async with open_container(settings) as container:
            return await container.audit().list(query, cli_principal())

    page = run(body)
    table = Table("id", "when", "event", "user", "client", "target", "details",
                  title=f"{len(page.events)} event(s)")  # fmt: skip
    for event in page.events:
        table.add_row(
            str(event.id),
            event.occurred_at.isoformat(timespec="seconds"),
            event.type.value,
            event.actor.user,
            event.actor.client,
            event.target,
            json.dumps(dict(event.payload), ensure_ascii=False),
        )
    console.print(table)
    if page.next_before_id is not None:
        console.print(f"more: --cursor {encode_cursor(page.next_before_id)}")
