"""On SQLite an ingest's writes take one hop to the connection's thread (two when written
call by call), and write the very rows SQLAlchemy writes for the same image."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event

from imagetag.adapters.sqla.engine import (
    _connect_one_hop,
    create_engine,
    session_factory,
    sqlite_url,
)
from imagetag.adapters.sqla.migrate import upgrade_database
from imagetag.adapters.sqla.unit_of_work import SqlUnitOfWorkFactory
from imagetag.domain.audit import AuditEvent, AuditEventType
from imagetag.domain.images import DetectionRun, NewImage
from imagetag.ports.repository import AddedImage
from imagetag.services.images import ingest_events
from tests.contract.test_repository_contract import ALICE, failed_run, new_image, run_of

TABLES = ("images", "detection_runs", "tags", "audit_events")


async def ingest(
    database: Path, images: list[NewImage], *, one_hop: bool = True, in_one_call: bool = True
) -> None:
    """Record each image as the image service does: image and run, two events, commit; in
    one call to the unit of work (without an Idempotency-Key) or call by call (with one)."""
    url = sqlite_url(database)
    await upgrade_database(url)
    engine = create_engine(url)
    if not one_hop:
        # aiosqlite's own connections: everything goes through SQLAlchemy.
        event.remove(engine.sync_engine, "do_connect", _connect_one_hop)
    unit_of_work = SqlUnitOfWorkFactory(session_factory(engine))
    try:
        for image in images:
            async with unit_of_work() as uow:
                if in_one_call:
                    await uow.add_image_and_commit(image, partial(events_of, run=image.detection))
                    continue
                added = await uow.images.add(image)
                for item in ingest_events(added, image.detection, ALICE):
                    await uow.audit.append(item)
                await uow.commit()
    finally:
        await engine.dispose()


def events_of(added: AddedImage, run: DetectionRun | None) -> list[AuditEvent]:
    return ingest_events(added, run, ALICE)


def rows(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    with closing(sqlite3.connect(database)) as connection:
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
            for table in TABLES
        }


IMAGES = [
    new_image(1, run_of("bus", "person", ("person", 0.91))),
    new_image(2),
    new_image(3, failed_run()),
    new_image(4, run_of()),
]


async def test_the_rows_are_the_ones_sqlalchemy_writes(tmp_path: Path) -> None:
    await ingest(tmp_path / "one-hop.db", IMAGES)
    await ingest(tmp_path / "call-by-call.db", IMAGES, in_one_call=False)
    await ingest(tmp_path / "sqlalchemy.db", IMAGES, one_hop=False, in_one_call=False)

    written = rows(tmp_path / "one-hop.db")
    assert written == rows(tmp_path / "call-by-call.db")
    assert written == rows(tmp_path / "sqlalchemy.db")
    assert [len(written[table]) for table in TABLES] == [4, 3, 3, 7]


async def test_an_ingest_takes_one_hop_to_write_and_commit(
    tmp_path: Path, sqlite_hops: list[str]
) -> None:
    await ingest(tmp_path / "counted.db", IMAGES[:1])

    # Opening the connection and migrating come first, closing it last.
    ingest_hops = sqlite_hops[sqlite_hops.index("add_image_and_commit") :]
    assert ingest_hops == ["add_image_and_commit", "close"]


async def test_written_call_by_call_an_ingest_takes_one_hop_to_write_and_one_to_commit(
    tmp_path: Path, sqlite_hops: list[str]
) -> None:
    await ingest(tmp_path / "counted.db", IMAGES[:1], in_one_call=False)

    ingest_hops = sqlite_hops[sqlite_hops.index("insert_image") :]
    assert ingest_hops == ["insert_image", "append_audit_events_and_commit", "close"]


async def test_nothing_is_written_when_the_unit_of_work_is_not_committed(tmp_path: Path) -> None:
    database = tmp_path / "rolled-back.db"
    url = sqlite_url(database)
    await upgrade_database(url)
    engine = create_engine(url)
    try:
        async with SqlUnitOfWorkFactory(session_factory(engine))() as uow:
            await uow.images.add(IMAGES[0])
            await uow.audit.append(
                AuditEvent(AuditEventType.IMAGE_CREATED, ALICE, IMAGES[0].created_at, "image:1")
            )
    finally:
        await engine.dispose()

    assert rows(database) == {table: [] for table in TABLES}
