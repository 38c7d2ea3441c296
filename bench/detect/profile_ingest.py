"""Where an ingest with detection spends its time: each port of ``ImageService`` timed.

    .venv/bin/python bench/detect/profile_ingest.py [--images 40] [--concurrency 1|4]
        [--threads N] [--omp-passive] [--quiet-budget SECONDS]

Builds the real container (SQLite, blobs on disk, the YOLO adapter on a random YOLO11n
checkpoint) in a temporary data dir, wraps the inspector, blob store, detector and unit of
work in timing proxies (no change to imagetag), then ingests the bench images with
``detect=True``: one at a time as ``POST /images`` does (``--concurrency 1``), or through the
CLI's own ``_ingest_all`` with its four concurrent ingests (``--concurrency 4``, the default
of ``imagetag tag``). Prints start-up phases, each port's median and total, and what is
left for the service itself (hashing, labels, domain objects, the event loop).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from host_load import HostLoad

T = TypeVar("T")

Timings = defaultdict[str, list[float]]


class TimedInspector:
    def __init__(self, inner: Any, timings: Timings) -> None:
        self._inner, self._timings = inner, timings

    def inspect(self, source: Any) -> Any:
        return _stage(
            self._timings, "inspect (Pillow, worker thread)", lambda: self._inner.inspect(source)
        )

    def inspect_bounded(self, data: bytes) -> Any:
        return _stage(
            self._timings,
            "inspect_bounded (event loop)",
            lambda: self._inner.inspect_bounded(data),
        )

    def verify(self, source: Any) -> None:
        _stage(self._timings, "verify (Pillow, worker thread)", lambda: self._inner.verify(source))


class TimedBlobs:
    def __init__(self, inner: Any, timings: Timings) -> None:
        self._inner, self._timings = inner, timings

    async def put(self, sha256: str, source: Any) -> None:
        await _timed(
            self._timings, "blobs.put (write, fsync, rename)", self._inner.put(sha256, source)
        )

    async def stage(self, sha256: str, source: Any) -> Any:
        staged = await _timed(
            self._timings,
            "blobs.stage (write, fsync; beside the decode)",
            self._inner.stage(sha256, source),
        )
        return TimedStagedBlob(staged, self._timings)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TimedStagedBlob:
    def __init__(self, inner: Any, timings: Timings) -> None:
        self._inner, self._timings = inner, timings

    async def commit(self) -> None:
        await _timed(
            self._timings, "staged blob commit (rename; beside the model)", self._inner.commit()
        )

    async def discard(self) -> None:
        await self._inner.discard()


class TimedDetector:
    def __init__(self, inner: Any, timings: Timings) -> None:
        self._inner, self._timings = inner, timings

    async def decode(self, image: bytes, *, start_detecting: bool = False) -> Any:
        return await _timed(
            self._timings,
            "detector.decode (await)",
            self._inner.decode(image, start_detecting=start_detecting),
        )

    async def detect(self, image: Any, thresholds: Any = None) -> Any:
        return await _timed(
            self._timings, "detector.detect (await)", self._inner.detect(image, thresholds)
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TimedUnitOfWork:
    def __init__(self, inner: Any, timings: Timings) -> None:
        self._inner, self._timings = inner, timings

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        self.images = TimedRepository(self._inner.images, self._timings)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await _timed(self._timings, "unit of work close", self._inner.__aexit__(exc_type, exc, tb))

    async def commit(self) -> None:
        await _timed(self._timings, "commit (SQLite)", self._inner.commit())

    async def add_image_and_commit(self, image: Any, audit: Any) -> Any:
        return await _timed(
            self._timings,
            "add_image_and_commit (image, run, tags, audit, COMMIT)",
            self._inner.add_image_and_commit(image, audit),
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TimedRepository:
    def __init__(self, inner: Any, timings: Timings) -> None:
        self._inner, self._timings = inner, timings

    async def add(self, image: Any) -> Any:
        return await _timed(self._timings, "images.add (image, run, tags)", self._inner.add(image))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TimedUnitOfWorkFactory:
    def __init__(self, inner: Any, timings: Timings) -> None:
        self._inner, self._timings = inner, timings

    def __call__(self) -> TimedUnitOfWork:
        return TimedUnitOfWork(self._inner(), self._timings)


async def _timed(timings: Timings, name: str, awaitable: Awaitable[T]) -> T:
    began = time.perf_counter()
    try:
        return await awaitable
    finally:
        timings[name].append(time.perf_counter() - began)


def _stage(timings: Timings, name: str, function: Callable[[], T]) -> T:
    began = time.perf_counter()
    try:
        return function()
    finally:
        timings[name].append(time.perf_counter() - began)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--concurrency", type=int, choices=(1, 4), default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (every core)")
    parser.add_argument(
        "--omp-passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE before torch loads"
    )
    parser.add_argument(
        "--quiet-budget",
        type=float,
        default=60.0,
        help="seconds to wait for other processes to go quiet first (0: start at once)",
    )
    arguments = parser.parse_args(argv)
    if arguments.omp_passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    # Let SIGTERM unwind like Ctrl-C does, so the temporary directory goes too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    startup: Timings = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="profile-ingest-") as scratch:
        workdir = Path(scratch)
        cli = _stage(startup, "import the CLI", _import_cli)
        # After the timed import: run.py pulls in part of imagetag too.
        from run import build_checkpoint, prepare_images

        from imagetag.adapters.detectors.ultralytics_env import configure_ultralytics_offline

        configure_ultralytics_offline(workdir / "data" / "ultralytics")
        checkpoint = build_checkpoint(workdir / "model")
        images = prepare_images(workdir / "images", arguments.images)
        load = HostLoad(budget_seconds=arguments.quiet_budget)
        if arguments.quiet_budget > 0:
            load.wait_for_quiet()
        with load.measure() as block:
            timings, wall = asyncio.run(
                _ingest(workdir, checkpoint, images, arguments, startup, cli)
            )
    _report(arguments, startup, timings, wall, len(images), block.foreign_cores)
    return 0


def _import_cli() -> Any:
    from imagetag.entrypoints.cli import images as cli_images
    from imagetag.entrypoints.cli import runtime

    return cli_images, runtime


async def _ingest(
    workdir: Path,
    checkpoint: Path,
    images: list[Path],
    arguments: argparse.Namespace,
    startup: Timings,
    cli: Any,
) -> tuple[Timings, float]:
    from dependency_injector import providers

    from imagetag.adapters.detectors.yolo_torch import UltralyticsYoloDetector
    from imagetag.entrypoints.settings import Settings
    from imagetag.services.images import IngestRequest, UploadedBytes

    cli_images, runtime = cli
    settings = Settings.from_env(
        {
            "IMAGETAG_DATA_DIR": str(workdir / "data"),
            "IMAGETAG_DETECTOR": "yolo",
            "IMAGETAG_YOLO_MODEL": str(checkpoint),
            "IMAGETAG_LOG_LEVEL": "warning",
        }
    )
    timings: Timings = defaultdict(list)
    began = time.perf_counter()
    async with runtime.open_container(settings) as container:
        startup["migrate and build the container"].append(time.perf_counter() - began)
        detector = UltralyticsYoloDetector(
            checkpoint,
            config_dir=settings.ultralytics_config_dir,
            threads=arguments.threads,
        )
        container.detector.override(providers.Object(TimedDetector(detector, timings)))
        container.inspector.override(
            providers.Object(TimedInspector(container.inspector(), timings))
        )
        container.blobs.override(providers.Object(TimedBlobs(container.blobs(), timings)))
        container.unit_of_work.override(
            providers.Object(TimedUnitOfWorkFactory(container.unit_of_work(), timings))
        )
        service = container.images()
        began = time.perf_counter()
        # The CLI loads the model on its first image; timed apart here to show it.
        await detector.warm_up()
        startup["load and warm up the model"].append(time.perf_counter() - began)

        began = time.perf_counter()
        if arguments.concurrency == 1:
            principal = runtime.cli_principal()
            for path in images:
                data = path.read_bytes()
                await _timed(
                    timings,
                    "ingest, whole",
                    service.ingest(
                        IngestRequest(UploadedBytes(data, path.name), detect=True), principal
                    ),
                )
        else:
            outcome = await cli_images._ingest_all(
                service, container.tags(), images, label=None, detect=True, tags=()
            )
            if outcome.stored != len(images):
                raise SystemExit(f"stored {outcome.stored} of {len(images)} images")
        wall = time.perf_counter() - began
        detector.close()
    return timings, wall


def _report(
    arguments: argparse.Namespace,
    startup: Timings,
    timings: Timings,
    wall: float,
    count: int,
    foreign: float,
) -> None:
    print(
        f"\n{count} images, concurrency {arguments.concurrency}, torch threads "
        f"{arguments.threads or 'every core'}"
        f"{', OMP_WAIT_POLICY=PASSIVE' if arguments.omp_passive else ''}; "
        f"others used {foreign:.2f} cores meanwhile"
    )
    print(f"{'start-up':<48}{'seconds':>10}")
    for name, values in startup.items():
        print(f"{name:<48}{sum(values):>10.2f}")
    print(f"\n{'per image':<48}{'median ms':>10}{'total s':>10}{'calls':>7}")
    for name, values in timings.items():
        print(
            f"{name:<48}{statistics.median(values) * 1000:>10.1f}{sum(values):>10.2f}"
            f"{len(values):>7}"
        )
    detect = sum(timings["detector.detect (await)"])
    print(
        f"\nwall {wall:.2f} s for {count} images = {count / wall:.2f} images/s; "
        f"detect awaited {detect:.2f} s ({detect / wall:.0%} of wall)"
    )
    if arguments.concurrency == 1:
        rest = sum(timings["ingest, whole"]) - sum(
            sum(values) for name, values in timings.items() if name != "ingest, whole"
        )
        print(f"service code outside the timed ports: {rest:.2f} s ({rest / count * 1000:.1f} ms)")


if __name__ == "__main__":
    sys.exit(main())
