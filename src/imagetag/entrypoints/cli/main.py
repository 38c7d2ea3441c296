"""The ``imagetag`` command."""

from __future__ import annotations

import typer

from imagetag.adapters.garbage_collection import collector_paused

# Every command's modules load at start: a process-lifetime set of objects the
# collector need not keep walking (collector_paused says what it saves).
with collector_paused():
    from imagetag.entrypoints.cli import audit, db, images, keys, serve

app = typer.Typer(
    name="imagetag",
    help="Ingest images, detect the objects in them, tag them and find them again.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.command("tag")(images.tag)
app.command("search")(images.search)
app.command("audit")(audit.audit)
app.add_typer(keys.app, name="keys")
app.add_typer(db.app, name="db")
