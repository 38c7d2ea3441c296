"""What recording one ingest costs in the database, with everything else stubbed out.

    .venv/bin/python bench/detect/bench_write.py [--ingests 400] [--detections 5]
        [--database-url postgresql://...]

Runs ``ImageService.ingest(detect=True)`` over the real SQL unit of work (a fresh, migrated
SQLite file by default; ``--database-url`` for another database, which must be empty and
migrated) with an inspector, blob store and detector that answer at once, so the time is
the service's write block: the image with its detection run and the run's tags, the two
audit events, and the commit (on SQLite two hops to the connection's thread, see
``adapters/sqla/sqlite_writes.py``). Prints the median and p90 per ingest, in rounds so that
a burst of load elsewhere shows as one slow round rather than a shifted median.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from host_load import HostLoad
from sqlalchemy import event

from imagetag.adapters.sqla.engine import (
    _connect_one_hop,
    create_engine,
    session_factory,
    sqlite_url,
)
from imagetag.adapters.sqla.migrate import upgrade_database
from imagetag.adapters.sqla.reader import create_image_reader
from imagetag.adapters.sqla.unit_of_work import SqlUnitOfWorkFactory
from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo, Thresholds
from imagetag.domain.images import ImageFacts
from imagetag.domain.principals import Actor, Principal, Role
from imagetag.ports.detector import DecodedImage
from imagetag.ports.fetcher import FetchedContent
from imagetag.services.images import ImageService, IngestRequest, UploadedBytes

INFO = DetectorInfo(
    detector="yolo",
    model="yolo11n.pt",
    library_version="ultralytics 8; torch 2",
    model_sha256="ab" * 32,
    confidence_threshold=0.25,
    iou_threshold=0.7,
    parameters=(("image_size", "640"), ("letterbox", "minimal")),
)
NAMES = ("person", "bus", "tie", "car", "bicycle", "dog", "handbag", "chair")
PRINCIPAL = Principal(Actor("bench", "bench-write"), Role.TAGGER)


class InstantInspector:
    def inspect(self, source: IO[bytes]) -> ImageFacts:
        return ImageFacts("image/jpeg", 1280, 720)

    def inspect_bounded(self, data: bytes) -> ImageFacts | None:
        # As Pillow's inspector for a JPEG: the upload is accepted without a thread hop.
        return ImageFacts("image/jpeg", 1280, 720)

    def verify(self, source: IO[bytes]) -> None:
        return None


class NullStagedBlob:
    async def commit(self) -> None:
        return None

    async def discard(self) -> None:
        return None


class NullBlobStore:
    async def put(self, sha256: str, source: IO[bytes]) -> None:
        return None

    async def stage(self, sha256: str, source: IO[bytes]) -> NullStagedBlob:
        return NullStagedBlob()

    async def get(self, sha256: str) -> bytes:
        raise NotImplementedError

    async def open(self, sha256: str) -> AsyncIterator[bytes]:
        raise NotImplementedError

    async def exists(self, sha256: str) -> bool:
        return False


class NoFetcher:
    async def fetch(self, url: str) -> FetchedContent:
        raise NotImplementedError


class InstantDetector:
    def __init__(self, count: int) -> None:
        self._detections = [
            Detection(
                name=NAMES[index % len(NAMES)],
                confidence=0.5 + index / 100,
                box=BoundingBox(0.1, 0.2, 0.3 + index / 100, 0.4),
                detector=INFO,
            )
            for index in range(count)
        ]

    @property
    def info(self) -> DetectorInfo:
        return INFO

    async def decode(self, image: bytes, *, start_detecting: bool = False) -> DecodedImage:
        return DecodedImage(image, None, checked=False, decoded_by=self)

    async def detect(
        self, image: bytes | DecodedImage, thresholds: Thresholds | None = None
    ) -> list[Detection]:
        return self._detections


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def measure(
    url: str, ingests: int, rounds: int, detections: int, *, stock_cursors: bool
) -> list[list[float]]:
    engine = create_engine(url)
    if stock_cursors and event.contains(engine.sync_engine, "do_connect", _connect_one_hop):
        event.remove(engine.sync_engine, "do_connect", _connect_one_hop)
    try:
        service = ImageService(
            unit_of_work=SqlUnitOfWorkFactory(session_factory(engine)),
            reader=create_image_reader(url, engine),
            blobs=NullBlobStore(),
            inspector=InstantInspector(),
            fetcher=NoFetcher(),
            detector=InstantDetector(detections),
            clock=SystemClock(),
            max_image_bytes=1 << 20,
        )
        counter = 0

        async def ingest_one() -> float:
            nonlocal counter
            counter += 1
            data = hashlib.sha256(str(counter).encode()).digest()
            request = IngestRequest(UploadedBytes(data, f"{counter}.jpg"), detect=True)
            began = time.perf_counter()
            await service.ingest(request, PRINCIPAL)
            return (time.perf_counter() - began) * 1000

        for _ in range(20):
            await ingest_one()
        return [[await ingest_one() for _ in range(ingests // rounds)] for _ in range(rounds)]
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--ingests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--detections", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--stock-cursors",
        action="store_true",
        help="SQLite through aiosqlite's own cursors (four thread hops per statement)",
    )
    parser.add_argument("--quiet-budget", type=float, default=60.0)
    arguments = parser.parse_args(argv)
    load = HostLoad(budget_seconds=arguments.quiet_budget)
    with tempfile.TemporaryDirectory(prefix="bench-write-") as scratch:
        url = arguments.database_url or sqlite_url(Path(scratch) / "imagetag.db")
        if arguments.database_url is None:
            asyncio.run(upgrade_database(url))
        load.wait_for_quiet()
        with load.measure() as block:
            rounds = asyncio.run(
                measure(
                    url,
                    arguments.ingests,
                    arguments.rounds,
                    arguments.detections,
                    stock_cursors=arguments.stock_cursors,
                )
            )
    every = [ms for one in rounds for ms in one]
    print(
        f"{len(every)} ingests with {arguments.detections} detections each on "
        f"{url.split(':', 1)[0]}; others used {block.foreign_cores:.2f} cores meanwhile"
    )
    print("round medians ms: " + ", ".join(f"{statistics.median(one):.3f}" for one in rounds))
    print(
        f"ingest, median {statistics.median(every):.3f} ms, "
        f"p90 {sorted(every)[int(len(every) * 0.9)]:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
