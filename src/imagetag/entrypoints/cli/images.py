"""imagetag tag / search: ingest folders of images and find them by object."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from imagetag.domain.errors import DetectionFailed, ImagetagError
from imagetag.domain.images import Image
from imagetag.domain.search import ImageQuery, ObjectFilter
from imagetag.entrypoints.cli.runtime import (
    cli_principal,
    console,
    errors,
    load_settings,
    open_container,
    run,
)
from imagetag.services.images import ImageService, IngestRequest, UploadedBytes

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
# Reading and decoding overlap with inference; the detector itself runs one image at a time.
CONCURRENT_INGESTS = 2


def image_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files given directly, and image files found (recursively, sorted) in folders."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                child
                for child in path.rglob("*")
                if child.is_file() and child.suffix.casefold() in IMAGE_SUFFIXES
            )
        else:
            yield path


@dataclass
class TagOutcome:
    stored: int = 0
    detection_failed: int = 0
    refused: int = 0


def tag(
    paths: Annotated[
        list[Path], typer.Argument(help="Image files or folders (searched recursively)")
    ],
    label: str | None = typer.Option(None, help="Label for every image; generated when missing"),
    detect: bool = typer.Option(False, "--detect", help="Run object detection on each image"),
) -> None:
    """Ingest image files and folders, with a progress bar."""
    settings = load_settings()
    files = list(image_files(paths))
    if not files:
        errors.print("no image files found in the given paths")
        raise typer.Exit(1)

    async def body() -> TagOutcome:
        async with open_container(settings) as container:
            return await _ingest_all(container.images(), files, label=label, detect=detect)

    outcome = run(body)
    # The process ends here: freezing the heap spares the final garbage collection a walk
    # through the model's millions of objects (about a second with torch loaded).
    gc.freeze()
    console.print(
        f"stored {outcome.stored} image(s)"
        + (f", detection failed on {outcome.detection_failed}" if outcome.detection_failed else "")
        + (f", refused {outcome.refused}" if outcome.refused else "")
    )
    if outcome.refused or outcome.detection_failed:
        raise typer.Exit(1)


async def _ingest_all(
    images: ImageService, files: list[Path], *, label: str | None, detect: bool
) -> TagOutcome:
    outcome = TagOutcome()
    principal = cli_principal()
    gate = asyncio.Semaphore(CONCURRENT_INGESTS)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("tagging", total=len(files))

        async def ingest(path: Path) -> None:
            async with gate:
                try:
                    data = await asyncio.to_thread(path.read_bytes)
                    await images.ingest(
                        IngestRequest(UploadedBytes(data, path.name), label=label, detect=detect),
                        principal,
                    )
                    outcome.stored += 1
                except DetectionFailed as error:
                    outcome.stored += 1
                    outcome.detection_failed += 1
                    progress.console.print(f"[yellow]{path}[/yellow]: stored, but {error}")
                except (ImagetagError, OSError) as error:
                    outcome.refused += 1
                    progress.console.print(f"[red]{path}[/red]: {error}")
                finally:
                    progress.advance(task)

        await asyncio.gather(*(ingest(path) for path in files))
    return outcome


def search(
    objects: str | None = typer.Option(None, help="Comma-separated object names, e.g. dog,cat"),
    match: str = typer.Option("any", help="'any' or 'all' of the objects"),
    limit: int = typer.Option(100, help="At most this many images (1..1000)"),
) -> None:
    """Find images by detected objects (all images, newest first, without --objects)."""
    settings = load_settings()

    async def body() -> list[Image]:
        query = ImageQuery(
            objects=ObjectFilter.parse(objects, match) if objects is not None else None,
            limit=limit,
        )
        async with open_container(settings) as container:
            page = await container.images().search(query)
            return list(page.images)

    found = run(body)
    table = Table("id", "label", "objects", "size", "created", "by", title=f"{len(found)} image(s)")
    for image in found:
        table.add_row(
            str(image.id),
            image.label,
            ", ".join(image.objects) or "-",
            f"{image.facts.width}x{image.facts.height}",
            image.created_at.isoformat(timespec="seconds"),
            image.created_by,
        )
    console.print(table)
