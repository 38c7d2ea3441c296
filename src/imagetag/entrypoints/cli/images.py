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
from imagetag.domain.search import DEFAULT_PAGE_SIZE, encode_cursor, parse_search
from imagetag.domain.tags import TagSource, check_tag_names
from imagetag.entrypoints.cli.runtime import (
    cli_principal,
    console,
    errors,
    load_settings,
    open_container,
    run,
)
from imagetag.services.images import ImagePage, ImageService, IngestRequest, UploadedFile
from imagetag.services.tags import TagService

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
    tags: str | None = typer.Option(
        None, help="Human tags for every image, comma-separated, e.g. cat,indoor"
    ),
) -> None:
    """Ingest image files and folders, with a progress bar; tag them as you (the local user)."""
    settings = load_settings()
    names = check_tag_names(tags.split(",")) if tags is not None else ()
    files = list(image_files(paths))
    if not files:
        errors.print("no image files found in the given paths")
        raise typer.Exit(1)

    async def body() -> TagOutcome:
        async with open_container(settings, warm_detector=detect) as container:
            return await _ingest_all(
                container.images(), container.tags(), files, label=label, detect=detect, tags=names
            )

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
    images: ImageService,
    tagging: TagService,
    files: list[Path],
    *,
    label: str | None,
    detect: bool,
    tags: tuple[str, ...],
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
                    image_id: int | None
                    try:
                        # Read in chunks by the service (whole only for the detector).
                        with path.open("rb") as file:
                            image = await images.ingest(
                                IngestRequest(
                                    UploadedFile(file, path.name), label=label, detect=detect
                                ),
                                principal,
                            )
                        image_id = image.id
                    except DetectionFailed as error:
                        outcome.detection_failed += 1
                        progress.console.print(f"[yellow]{path}[/yellow]: stored, but {error}")
                        image_id = error.image_id
                    outcome.stored += 1
                    if tags and image_id is not None:
                        await tagging.add(image_id, tags, principal)
                except (ImagetagError, OSError) as error:
                    outcome.refused += 1
                    progress.console.print(f"[red]{path}[/red]: {error}")
                finally:
                    progress.advance(task)

        await asyncio.gather(*(ingest(path) for path in files))
    return outcome


def search(
    objects: str | None = typer.Option(None, help="Detected objects, e.g. dog,cat"),
    tags: str | None = typer.Option(None, help="Tags of either source, e.g. cat,indoor"),
    match: str = typer.Option("any", help="'any' or 'all' of the names"),
    exclude: str | None = typer.Option(None, help="No qualifying tag with these names"),
    untagged: bool | None = typer.Option(
        None, "--untagged/--tagged", help="Without any qualifying tag / with at least one"
    ),
    min_confidence: float | None = typer.Option(None, help="Model tags at least this sure"),
    source: str | None = typer.Option(None, help="'human' or 'model' tags only"),
    model: str | None = typer.Option(None, help="Tags of model NAME or NAME@VERSION"),
    tagged_by: str | None = typer.Option(None, help="Tags added by this user"),
    tagged_after: str | None = typer.Option(None, help="Tags added at/after (ISO 8601)"),
    tagged_before: str | None = typer.Option(None, help="Tags added before (ISO 8601)"),
    created_after: str | None = typer.Option(None, help="Images created at/after (ISO 8601)"),
    created_before: str | None = typer.Option(None, help="Images created before (ISO 8601)"),
    limit: int = typer.Option(DEFAULT_PAGE_SIZE, help="At most this many images (1..1000)"),
    cursor: str | None = typer.Option(None, help="The cursor printed under the last page"),
) -> None:
    """Find images by tags, objects, provenance and dates; newest first. The options
    combine; they mean what the same parameters of GET /images mean."""
    settings = load_settings()

    async def body() -> ImagePage:
        query = parse_search(
            objects=objects,
            tags=tags,
            match=match,
            exclude=exclude,
            untagged=untagged,
            min_confidence=min_confidence,
            source=source,
            model=model,
            tagged_by=tagged_by,
            tagged_after=tagged_after,
            tagged_before=tagged_before,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            cursor=cursor,
        )
        async with open_container(settings) as container:
            return await container.images().search(query)

    page = run(body)
    table = Table(
        "id", "label", "objects", "human tags", "size", "created", "by",
        title=f"{len(page.images)} image(s)",
    )  # fmt: skip
    for image in page.images:
        human = sorted({tag.name for tag in image.tags if tag.source is TagSource.HUMAN})
        table.add_row(
            str(image.id),
            image.label,
            ", ".join(image.objects) or "-",
            ", ".join(human) or "-",
            f"{image.facts.width}x{image.facts.height}",
            image.created_at.isoformat(timespec="seconds"),
            str(image.created_by),
        )
    console.print(table)
    if page.next_before_id is not None:
        console.print(f"more: --cursor {encode_cursor(page.next_before_id)}")
