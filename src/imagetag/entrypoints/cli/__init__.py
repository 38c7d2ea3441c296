"""The imagetag command line (Typer)."""
