"""``python -m imagetag`` runs the CLI."""

from imagetag.entrypoints.cli.main import app

app()
