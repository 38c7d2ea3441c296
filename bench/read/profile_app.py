"""Where the real server spends its time on ``GET /images/{id}``, in process, without HTTP.

    .venv/bin/python bench/read/profile_app.py [--requests 2000] [--concurrency 16]

Ingests the same images as ``run.py`` into a fresh data dir, builds the app as ``imagetag
serve`` does and calls it as an ASGI app (no socket, no HTTP parsing). It prints:

1. microseconds per call of each layer alone, one call at a time;
2. the SQL statements of one request, by kind, and where they ran;
3. under ``--concurrency`` callers: calls/s and main-thread CPU per call of the whole request,
   of its parts and of the floors it is measured against (Litestar returning a ready body;
   the bare app's lookup and JSON);
4. a cProfile of whole requests, own time summed by package.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
from litestar import Litestar, get
from sqlalchemy import event

from imagetag.adapters.sqla.mapping import images_from_rows
from imagetag.adapters.sqla.reader import SqliteImageReader
from imagetag.domain.images import Image
from imagetag.entrypoints.container import Container, build_container
from imagetag.entrypoints.http.app import create_app
from imagetag.entrypoints.http.schemas import ImageBody, image_body
from imagetag.entrypoints.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sample_data import bench_env, create_reader_key, ingest_sample_images

Message = dict[str, Any]
Call = Callable[[int], Awaitable[object]]


async def asgi_get(app: Any, target: str, key: str | None) -> tuple[int, bytes]:
    """One GET through the ASGI interface, as uvicorn would make it."""
    path, _, query = target.partition("?")
    headers = [(b"host", b"127.0.0.1:8000")]
    if key is not None:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    status = 0
    chunks: list[bytes] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


@dataclass(frozen=True)
class Load:
    calls_per_second: float
    main_thread_cpu_us: float
    process_cpu_us: float


async def run_concurrently(call: Call, calls: int, concurrency: int) -> Load:
    """``concurrency`` callers sharing ``calls`` calls, after a short warm-up."""
    for index in range(min(100, calls)):
        await call(index)
    counter = iter(range(calls))

    async def worker() -> None:
        for index in counter:
            await call(index)

    started = time.perf_counter(), time.thread_time(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    ended = time.perf_counter(), time.thread_time(), time.process_time()
    wall, main_cpu, all_cpu = (end - start for end, start in zip(ended, started, strict=True))
    return Load(calls / wall, main_cpu / calls * 1e6, all_cpu / calls * 1e6)


def trivial_litestar(body: ImageBody) -> Litestar:
    """The framework floor: the same route returning a ready body, no auth, no database."""

    @get("/images/{image_id:int}")
    async def get_image(image_id: int) -> ImageBody:
        return body

    return Litestar(route_handlers=[get_image], debug=False)


@dataclass(frozen=True)
class Rig:
    app: Litestar
    container: Container
    key: str
    ids: list[int]
    tagged_id: int
    data_dir: Path
    bare_app: ModuleType

    def pick(self, index: int) -> int:
        return self.ids[index % len(self.ids)]


async def parts(rig: Rig, reader: sqlite3.Connection) -> list[tuple[str, Call]]:
    """The whole request, its parts alone and the floors, each as a call on the i-th id."""
    images, keys = rig.container.images(), rig.container.keys()
    image_reader = rig.container.reader()
    stored = {image_id: await images.get(image_id) for image_id in rig.ids}
    floor = trivial_litestar(image_body(stored[rig.tagged_id]))
    query = rig.bare_app.IMAGE_QUERY
    # The bare app's statement selects the reader's columns in the reader's order.
    rows = {image_id: reader.execute(query, (image_id,)).fetchall() for image_id in rig.ids}
    return [
        (
            "whole request (auth, Litestar, get, body, encode)",
            lambda i: asgi_get(rig.app, f"/images/{rig.pick(i)}", rig.key),
        ),
        ("  KeyService.authenticate (remembered key)", lambda _: keys.authenticate(rig.key)),
        ("  ImageService.get", lambda i: images.get(rig.pick(i))),
        ("    the reader's get", lambda i: image_reader.get(rig.pick(i))),
        (
            "    its statement alone (execute + fetchall)",
            lambda i: _sync(lambda: reader.execute(query, (rig.pick(i),)).fetchall()),
        ),
        (
            "    rows to a domain Image (images_from_rows)",
            lambda i: _sync(_image_from_sqlite_rows, rows[rig.pick(i)]),
        ),
        ("  image_body()", lambda i: _sync(image_body, stored[rig.pick(i)])),
        (
            "  image_body() + msgspec encode",
            lambda i: _sync(_encode, stored[rig.pick(i)]),
        ),
        (
            "floor: Litestar returning a ready body (no auth, no DB)",
            lambda i: asgi_get(floor, f"/images/{rig.pick(i)}", None),
        ),
        (
            "floor: bare app's sqlite3 lookup + JSON",
            lambda i: _sync(rig.bare_app.image_json, reader, rig.pick(i)),
        ),
    ]


async def _sync(function: Callable[..., object], *args: Any) -> object:
    return function(*args)


def _encode(image: Image) -> bytes:
    return msgspec.json.encode(image_body(image))


def _image_from_sqlite_rows(rows: list[tuple[Any, ...]]) -> object:
    return images_from_rows(
        rows,
        decode_datetime=lambda value: datetime.fromisoformat(value).replace(tzinfo=UTC),
        decode_json=lambda value: json.loads(value) if value else None,
    )


async def one_at_a_time(rows: list[tuple[str, Call]]) -> None:
    print("\n1. microseconds per call, one call at a time (wall clock)")
    for label, call in rows:
        started = time.perf_counter()
        await run_concurrently(call, 2000, 1)
        print(f"  {(time.perf_counter() - started) / 2100 * 1e6:8.1f} us  {label}")


async def statements(rig: Rig) -> None:
    """SQL per request: on the reader's own stdlib connection and through the engine."""
    reader = rig.container.reader()
    traced = Counter[str]()
    through_engine = Counter[str]()
    sample = 100
    if isinstance(reader, SqliteImageReader):
        # The reader keeps one connection per thread; this one is the event loop's.
        connection = reader._connection()
        connection.set_trace_callback(lambda sql: traced.update([" ".join(sql.split()[:2])]))
    engine = rig.container.engine().sync_engine

    def on_engine(*args: Any) -> None:
        through_engine[" ".join(args[2].split()[:2])] += 1

    event.listen(engine, "before_cursor_execute", on_engine)
    try:
        for index in range(sample):
            await asgi_get(rig.app, f"/images/{rig.pick(index)}", rig.key)
    finally:
        event.remove(engine, "before_cursor_execute", on_engine)
        if isinstance(reader, SqliteImageReader):
            connection.set_trace_callback(None)
    print(f"\n2. per request, over {sample} requests")
    for where, counts in (("reader's connection", traced), ("engine", through_engine)):
        listed = ", ".join(f"{n / sample:g} x {sql}…" for sql, n in counts.items()) or "none"
        print(f"  SQL on the {where}: {listed}")


async def under_load(rows: list[tuple[str, Call]], calls: int, concurrency: int) -> None:
    print(f"\n3. {concurrency} callers at a time, {calls} calls each; CPU per call in us")
    print(f"  {'calls/s':>8} {'loop thread':>11} {'all threads':>11}")
    for label, call in rows:
        load = await run_concurrently(call, calls, concurrency)
        print(
            f"  {load.calls_per_second:8,.0f} {load.main_thread_cpu_us:11,.1f} "
            f"{load.process_cpu_us:11,.1f}  {label}"
        )


def _package(filename: str) -> str:
    for marker in ("site-packages/", "src/"):
        if marker in filename:
            return filename.split(marker, 1)[1].split("/", 1)[0]
    if filename.startswith(("~", "<")):
        return "C functions (sqlite3, msgspec, builtins)"
    return "stdlib " + Path(filename).stem


async def cprofile(rig: Rig, calls: int, concurrency: int) -> None:
    async def whole(index: int) -> object:
        return await asgi_get(rig.app, f"/images/{rig.pick(index)}", rig.key)

    profiler = cProfile.Profile()
    profiler.enable()
    await run_concurrently(whole, calls, concurrency)
    profiler.disable()
    stats = pstats.Stats(profiler)
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in entries.values())
    by_package = Counter[str]()
    for (filename, _, _), entry in entries.items():
        by_package[_package(filename)] += entry[2]
    print(f"\n4. cProfile of {calls} whole requests, own time by package (main thread)")
    for package, seconds in by_package.most_common(12):
        print(f"  {seconds / total:6.1%}  {package}")
    print("\n  top functions by own time:")
    stats.sort_stats("tottime").print_stats(25)


async def profile(data_dir: Path, key: str, calls: int, concurrency: int) -> None:
    os.environ.update(bench_env(data_dir))
    os.environ["BARE_DB_PATH"] = str(data_dir / "imagetag.db")
    import bare_app  # opens BARE_DB_PATH on import

    container = build_container(Settings.from_env())
    app = create_app(container)
    async with app.lifespan():
        status, listing = await asgi_get(app, "/images?limit=1000", key)
        assert status == 200, listing
        listed = msgspec.json.decode(listing)["images"]
        rig = Rig(
            app=app,
            container=container,
            key=key,
            ids=sorted(image["id"] for image in listed),
            tagged_id=next(
                image["id"]
                for image in listed
                if any(tag["source"] == "model" for tag in image["tags"])
            ),
            data_dir=data_dir,
            bare_app=bare_app,
        )
        reader = sqlite3.connect(f"file:{data_dir / 'imagetag.db'}?mode=ro", uri=True)
        rows = await parts(rig, reader)
        await one_at_a_time(rows)
        await statements(rig)
        await under_load(rows, calls, concurrency)
        await cprofile(rig, calls, concurrency)
        reader.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="calls per measurement")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-read-profile-") as workdir:
        env = bench_env(Path(workdir) / "data")
        ingest_sample_images(Path(workdir), env)
        key = create_reader_key(env)
        asyncio.run(profile(Path(workdir) / "data", key, args.requests, args.concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
