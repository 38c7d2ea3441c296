"""Where the real server spends its time on ``GET /images/{id}``, in process, without HTTP.

    .venv/bin/python bench/read/profile_app.py [--requests 2000] [--concurrency 16]

Ingests the same images as ``run.py`` into a fresh data dir, builds the app as ``imagetag
serve`` does and calls it as an ASGI app (no socket, no HTTP parsing). It prints:

1. microseconds per call of each layer alone, one call at a time;
2. the SQL statements and aiosqlite thread hops of one request, by kind;
3. under ``--concurrency`` callers: calls/s and main-thread CPU per call of the whole request,
   of its parts, and of alternative ways to read the same image (what-ifs built here from
   the app's own engine, tables and mapping; nothing in ``src/`` is changed);
4. a cProfile of whole requests, own time summed by package.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest.mock import patch

import aiosqlite
import msgspec
from dependency_injector import providers
from litestar import Litestar, get
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, joinedload, selectinload

from imagetag.adapters.sqla.engine import session_factory
from imagetag.adapters.sqla.mapping import to_image
from imagetag.adapters.sqla.tables import ImageRow
from imagetag.domain.errors import ImageNotFound
from imagetag.domain.images import Image
from imagetag.domain.principals import Principal
from imagetag.entrypoints.container import Container, build_container
from imagetag.entrypoints.http.app import create_app
from imagetag.entrypoints.http.schemas import ImageBody, image_body
from imagetag.entrypoints.settings import Settings
from imagetag.services.keys import KeyService

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sample_data import bench_env, imagetag_cli, ingest_sample_images

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
    detected_id: int
    data_dir: Path
    bare_app: ModuleType


async def layers(rig: Rig) -> None:
    images, keys = rig.container.images(), rig.container.keys()
    one = rig.detected_id
    image = await images.get(one)
    floor = trivial_litestar(image_body(image))
    reader = sqlite3.connect(f"file:{rig.data_dir / 'imagetag.db'}?mode=ro", uri=True)
    async with aiosqlite.connect(rig.data_dir / "imagetag.db") as raw_async:
        rows: list[tuple[str, Call]] = [
            ("bare: sqlite3 lookup + JSON", lambda _: _sync(rig.bare_app.image_json, reader, one)),
            ("one aiosqlite hop (execute 'SELECT 1')", lambda _: raw_async.execute("SELECT 1")),
            ("image_body() + msgspec encode", lambda _: _sync(_encode, image)),
            ("KeyService.authenticate", lambda _: keys.authenticate(rig.key)),
            ("ImageService.get", lambda _: images.get(one)),
            (
                "Litestar alone (ready body, no auth/DB)",
                lambda _: asgi_get(floor, f"/images/{one}", None),
            ),
            ("whole request", lambda _: asgi_get(rig.app, f"/images/{one}", rig.key)),
        ]
        print("\n1. microseconds per call, one call at a time (an image with detections)")
        for label, call in rows:
            started = time.perf_counter()
            await run_concurrently(call, 2000, 1)
            print(f"  {(time.perf_counter() - started) / 2100 * 1e6:8.0f} us  {label}")
    reader.close()


async def _sync(function: Callable[..., object], *args: Any) -> object:
    return function(*args)


def _encode(image: Image) -> bytes:
    return msgspec.json.encode(image_body(image))


async def hops(rig: Rig) -> None:
    """Count SQL statements and aiosqlite calls (each a round trip to its thread)."""
    statements = Counter[str]()
    calls = Counter[str]()
    # aiosqlite's private _execute is the one place every call crosses to its thread.
    original: Callable[..., Awaitable[Any]] = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls[getattr(fn, "__qualname__", repr(fn))] += 1
        return await original(self, fn, *args, **kwargs)

    def statement(*args: Any) -> None:
        statements[" ".join(args[2].split()[:2])] += 1

    engine = rig.container.engine().sync_engine
    event.listen(engine, "before_cursor_execute", statement)
    sample = 100
    try:
        with patch.object(aiosqlite.Connection, "_execute", counting):
            for index in range(sample):
                await asgi_get(rig.app, f"/images/{rig.ids[index % len(rig.ids)]}", rig.key)
    finally:
        event.remove(engine, "before_cursor_execute", statement)
    print("\n2. per request")
    print(f"  SQL: {', '.join(f'{n / sample:g} x {sql}…' for sql, n in statements.items())}")
    print(
        f"  aiosqlite hops: {sum(calls.values()) / sample:g} = "
        + ", ".join(f"{n / sample:g} {name}" for name, n in calls.most_common())
    )


async def _get_image(
    sessions: async_sessionmaker[AsyncSession], image_id: int, *, joined: bool, rollback: bool
) -> Image:
    """ImageService.get's read, with the loading strategy and the explicit rollback as knobs."""
    loader = joinedload if joined else selectinload
    statement = select(ImageRow).where(ImageRow.id == image_id).options(loader(ImageRow.detections))
    session = sessions()
    try:
        row = (await session.scalars(statement)).unique().one()
        return to_image(row)
    finally:
        if rollback:
            await session.rollback()
        await session.close()


async def _core_rows(engine: AsyncEngine, query: str, image_id: int) -> object:
    async with engine.connect() as connection:
        return (await connection.execute(text(query), {"id": image_id})).all()


class SyncOrmReader:
    """What-if: the same ORM read on the sync pysqlite driver, one thread hop per call."""

    def __init__(self, database: Path) -> None:
        self.engine = create_engine(f"sqlite:///{database}")
        self._thread = ThreadPoolExecutor(max_workers=1)

    async def get(self, image_id: int) -> Image:
        loop = asyncio.get_running_loop()
        image = await loop.run_in_executor(self._thread, self._get, image_id)
        if image is None:
            raise ImageNotFound(image_id)
        return image

    def _get(self, image_id: int) -> Image | None:
        statement = (
            select(ImageRow).where(ImageRow.id == image_id).options(joinedload(ImageRow.detections))
        )
        with Session(self.engine) as session:
            row = session.scalars(statement).unique().one_or_none()
            return to_image(row) if row is not None else None

    async def rows(self, query: str, image_id: int) -> object:
        """What-if: the one-JOIN statement through SQLAlchemy Core, sync, one thread hop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._rows, query, image_id)

    def _rows(self, query: str, image_id: int) -> object:
        with self.engine.connect() as connection:
            return connection.execute(text(query), {"id": image_id}).all()

    def close(self) -> None:
        self._thread.shutdown()
        self.engine.dispose()


class CachedKeys:
    """What-if: principals of recently seen keys kept in memory for ``ttl`` seconds."""

    def __init__(self, keys: KeyService, ttl: float = 10.0) -> None:
        self._keys = keys
        self._ttl = ttl
        self._seen: dict[str, tuple[float, Principal]] = {}

    async def authenticate(self, secret: str) -> Principal:
        now = time.monotonic()
        seen = self._seen.get(secret)
        if seen is not None and now - seen[0] < self._ttl:
            return seen[1]
        principal = await self._keys.authenticate(secret)
        self._seen[secret] = (now, principal)
        return principal


async def under_load(rig: Rig, calls: int, concurrency: int) -> None:
    images, keys = rig.container.images(), rig.container.keys()
    engine = rig.container.engine()
    sessions = session_factory(engine)
    ids = rig.ids
    join_query = rig.bare_app.IMAGE_QUERY.replace("?", ":id")
    reader = sqlite3.connect(
        f"file:{rig.data_dir / 'imagetag.db'}?mode=ro", uri=True, check_same_thread=False
    )
    one_thread = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()
    sync_orm = SyncOrmReader(rig.data_dir / "imagetag.db")

    def pick(index: int) -> int:
        return ids[index % len(ids)]

    rows: list[tuple[str, Call]] = [
        (
            "whole request (auth + get + Litestar + encode)",
            lambda i: asgi_get(rig.app, f"/images/{pick(i)}", rig.key),
        ),
        ("  KeyService.authenticate alone", lambda i: keys.authenticate(rig.key)),
        ("  ImageService.get alone (selectinload, rollback+close)", lambda i: images.get(pick(i))),
        (
            "what-if get: selectinload, close() only",
            lambda i: _get_image(sessions, pick(i), joined=False, rollback=False),
        ),
        (
            "what-if get: joinedload (1 SELECT), rollback+close",
            lambda i: _get_image(sessions, pick(i), joined=True, rollback=True),
        ),
        (
            "what-if get: joinedload, close() only",
            lambda i: _get_image(sessions, pick(i), joined=True, rollback=False),
        ),
        (
            "what-if get: SQLAlchemy Core, 1 JOIN, AsyncConnection",
            lambda i: _core_rows(engine, join_query, pick(i)),
        ),
        (
            "what-if get: sync ORM (pysqlite), joinedload, 1 thread hop",
            lambda i: sync_orm.get(pick(i)),
        ),
        (
            "what-if get: sync Core (pysqlite), 1 JOIN, 1 thread hop",
            lambda i: sync_orm.rows(join_query, pick(i)),
        ),
        (
            "what-if get: sqlite3 lookup+JSON in 1 thread hop",
            lambda i: loop.run_in_executor(one_thread, rig.bare_app.image_json, reader, pick(i)),
        ),
        (
            "bare: sqlite3 lookup + JSON inline",
            lambda i: _sync(rig.bare_app.image_json, reader, pick(i)),
        ),
    ]
    print(f"\n3. {concurrency} callers at a time, {calls} calls each; CPU per call in us")
    print(f"  {'calls/s':>8} {'loop thread':>11} {'all threads':>11}")
    for label, call in rows:
        _print_load(await run_concurrently(call, calls, concurrency), label)
    with rig.container.keys.override(providers.Object(CachedKeys(keys))):
        load = await run_concurrently(rows[0][1], calls, concurrency)
        _print_load(load, "what-if whole request: auth cached 10 s")
        with rig.container.images.override(providers.Object(sync_orm)):
            load = await run_concurrently(rows[0][1], calls, concurrency)
            _print_load(load, "what-if whole request: auth cached + sync ORM get, 1 hop")
    sync_orm.close()
    one_thread.shutdown()
    reader.close()


def _print_load(load: Load, label: str) -> None:
    print(
        f"  {load.calls_per_second:8,.0f} {load.main_thread_cpu_us:11,.0f} "
        f"{load.process_cpu_us:11,.0f}  {label}"
    )


def _package(filename: str) -> str:
    for marker in ("site-packages/", "src/"):
        if marker in filename:
            return filename.split(marker, 1)[1].split("/", 1)[0]
    if filename.startswith(("~", "<")):
        return "C functions (sockets, queues, sqlite3, greenlet switch)"
    return "stdlib " + Path(filename).stem


async def cprofile(rig: Rig, calls: int, concurrency: int) -> None:
    async def whole(index: int) -> object:
        return await asgi_get(rig.app, f"/images/{rig.ids[index % len(rig.ids)]}", rig.key)

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
    stats.sort_stats("tottime").print_stats(20)


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
            detected_id=next(image["id"] for image in listed if image["detections"]),
            data_dir=data_dir,
            bare_app=bare_app,
        )
        await layers(rig)
        await hops(rig)
        await under_load(rig, calls, concurrency)
        await cprofile(rig, calls, concurrency)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="calls per measurement")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-read-profile-") as workdir:
        env = bench_env(Path(workdir) / "data")
        ingest_sample_images(Path(workdir), env)
        key = imagetag_cli(env, "keys", "create", "bench").strip().splitlines()[-1].strip()
        asyncio.run(profile(Path(workdir) / "data", key, args.requests, args.concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
