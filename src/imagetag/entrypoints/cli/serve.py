"""imagetag serve: run the HTTP API."""

from __future__ import annotations

import logging

import typer

from imagetag.entrypoints.cli.runtime import console, load_settings, prepare_database, run
from imagetag.entrypoints.container import build_container, close_container


def serve(
    host: str | None = typer.Option(None, help="Interface to bind (IMAGETAG_HOST)"),
    port: int | None = typer.Option(None, help="TCP port (IMAGETAG_PORT)"),
) -> None:
    """Run the API. Migrates the default database and creates an admin key on first start."""
    settings = load_settings(host=host, port=port)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)

    container = build_container(settings)

    async def prepare() -> str | None:
        await prepare_database(settings)
        try:
            container.detector()  # a missing model or bad detector setting fails here
            issued = await container.keys().ensure_bootstrap_key()
            return issued.secret if issued else None
        finally:
            # The pool belongs to this event loop; the server's loop opens its own.
            await close_container(container)

    secret = run(prepare)
    if secret:
        console.print(
            "\n[bold]No API keys existed, so an 'admin' key was created. It is shown only "
            "this once:[/bold]\n"
        )
        print(f"    {secret}\n", flush=True)
        print(
            f"Try: curl -H 'Authorization: Bearer {secret}' "
            f"http://{settings.host}:{settings.port}/images\n",
            flush=True,
        )
    # Imported here so that the other commands do not pay for the web stack.
    import uvicorn

    from imagetag.entrypoints.http.app import create_app

    app = create_app(container)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # uvicorn builds each access line's arguments (quoting the path: ~1.7 us a request)
        # before its logger drops the line; above info none would be printed.
        access_log=settings.log_level in ("info", "debug"),
        proxy_headers=False,
        server_header=False,
    )
