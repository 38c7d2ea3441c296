"""The Alembic migrations: the schema they build, the data they carry, both directions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from imagetag.adapters.sqla.engine import create_engine, session_factory
from imagetag.adapters.sqla.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade_database,
)
from imagetag.adapters.sqla.schema_version import HEAD_REVISION
from imagetag.adapters.sqla.tables import Base, UtcDateTime
from imagetag.adapters.sqla.unit_of_work import SqlUnitOfWorkFactory
from imagetag.domain.audit import AuditEvent, AuditEventType
from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo
from imagetag.domain.images import DetectionRun, DetectionStatus, Image, ImageFacts
from imagetag.domain.principals import Actor, Role
from imagetag.domain.search import ModelRef, SearchQuery
from imagetag.domain.tags import Tag, TagSource
from tests.integration.conftest import fresh_postgres_database

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
YOLO = DetectorInfo(
    detector="yolo",
    model="yolo11n.pt",
    library_version="ultralytics 8.3",
    model_sha256="ab" * 32,
    confidence_threshold=0.25,
    iou_threshold=0.7,
    parameters=(("image_size", "640"), ("letterbox", "minimal")),
)
OPENCV = DetectorInfo(
    detector="opencv",
    model="haarcascades",
    library_version="opencv 4.10",
    parameters=(("max_side", "800"),),
)
CI = Actor("ci", "unknown")

# 0001's tables, as its code wrote them.
images_0001 = sa.table(
    "images",
    *map(sa.column, ("id", "label", "source", "sha256", "media_type", "width", "height")),
    *map(sa.column, ("size_bytes", "created_by", "detection_status", "detection_error")),
    sa.column("created_at", UtcDateTime()),
)
detections_0001 = sa.table(
    "detections",
    *map(sa.column, ("id", "image_id", "name", "confidence", "x_min", "y_min", "x_max")),
    *map(sa.column, ("y_max", "detector", "model")),
    sa.column("provenance", sa.JSON()),
)
api_keys_0001 = sa.table(
    "api_keys",
    *map(sa.column, ("name", "key_hash", "prefix")),
    sa.column("created_at", UtcDateTime()),
)


async def migrate(database_url: str, direction: str, revision: str) -> None:
    engine = create_engine(database_url)
    config = alembic_config(database_url)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        getattr(command, direction)(config, revision)

    try:
        async with engine.begin() as connection:
            await connection.run_sync(run)
    finally:
        await engine.dispose()


async def execute(database_url: str, *statements: sa.Executable) -> list[list[Any]]:
    """Run statements in one transaction; the rows each returned, if any."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            results = [await connection.execute(statement) for statement in statements]
            return [list(result.all()) if result.returns_rows else [] for result in results]
    finally:
        await engine.dispose()


async def schema_differences(database_url: str) -> list[Any]:
    def differences(connection: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(differences)
    finally:
        await engine.dispose()


def provenance_0001(info: DetectorInfo) -> dict[str, Any]:
    return {
        "library_version": info.library_version,
        "model_sha256": info.model_sha256,
        "confidence_threshold": info.confidence_threshold,
        "iou_threshold": info.iou_threshold,
        "parameters": dict(info.parameters),
    }


def image_0001(number: int, status: str, error: str | None = None) -> dict[str, Any]:
    return {
        "id": number,
        "label": f"image {number}",
        "source": None,
        "sha256": f"{number:064x}",
        "media_type": "image/jpeg",
        "width": 640,
        "height": 480,
        "size_bytes": 1000 + number,
        "created_by": "ci",
        "created_at": T0 + timedelta(minutes=number),
        "detection_status": status,
        "detection_error": error,
    }


def detection_0001(
    number: int, image_id: int, name: str, confidence: float, info: DetectorInfo, *, box: bool
) -> dict[str, Any]:
    corners = (0.1, 0.2, 0.3, 0.4) if box else (None,) * 4
    return {
        "id": number,
        "image_id": image_id,
        "name": name,
        "confidence": confidence,
        **dict(zip(("x_min", "y_min", "x_max", "y_max"), corners, strict=True)),
        "detector": info.detector,
        "model": info.model,
        "provenance": provenance_0001(info),
    }


async def seed_0001(database_url: str) -> None:
    """Images with detections from two detectors, a failed and a plain one, and two keys."""
    await migrate(database_url, "downgrade", "0001")
    await execute(
        database_url,
        images_0001.insert().values(
            [
                image_0001(1, "succeeded"),
                image_0001(2, "failed", "model crashed"),
                image_0001(3, "not_requested"),
                image_0001(4, "succeeded"),
            ]
        ),
        detections_0001.insert().values(
            [
                detection_0001(1, 1, "dog", 0.9, YOLO, box=True),
                detection_0001(2, 1, "person", 0.8, YOLO, box=False),
                detection_0001(3, 4, "face", 0.6, OPENCV, box=True),
            ]
        ),
        api_keys_0001.insert().values(
            [
                {"name": "admin", "key_hash": "1" * 64, "prefix": "itk_aaaa", "created_at": T0},
                {"name": "ci", "key_hash": "2" * 64, "prefix": "itk_bbbb", "created_at": T0},
            ]
        ),
    )


def expected_image(number: int, tags: tuple[Tag, ...], status: DetectionStatus) -> Image:
    return Image(
        id=number,
        label=f"image {number}",
        source=None,
        sha256=f"{number:064x}",
        facts=ImageFacts("image/jpeg", 640, 480),
        size_bytes=1000 + number,
        created_at=T0 + timedelta(minutes=number),
        created_by=CI,
        tags=tags,
        detection_status=status,
        detection_error="model crashed" if status is DetectionStatus.FAILED else None,
    )


def model_tag(
    name: str, confidence: float, info: DetectorInfo, run_id: int, image: int, *, box: bool
) -> Tag:
    return Tag(
        name=name,
        source=TagSource.MODEL,
        actor=CI,
        added_at=T0 + timedelta(minutes=image),
        confidence=confidence,
        box=BoundingBox(0.1, 0.2, 0.3, 0.4) if box else None,
        model=info,
        run_id=run_id,
    )


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    assert await schema_differences(database_url) == []
    assert await current_revision(database_url) == head_revision()


def normalised_predicate(predicate: object) -> str:
    """A partial index's condition without the casts and parentheses PostgreSQL adds."""
    text = str(predicate).replace("::text", "")
    return " ".join(re.sub(r"[()]", " ", text).split())


async def test_partial_indexes_cover_the_rows_the_models_say(database_url: str) -> None:
    dialect = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    expected = {
        str(index.name): normalised_predicate(index.dialect_options[dialect]["where"])
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if index.dialect_options[dialect]["where"] is not None
    }

    def read(connection: Connection) -> dict[str, str]:
        inspector = sa.inspect(connection)
        return {
            str(index["name"]): normalised_predicate(index["dialect_options"][f"{dialect}_where"])
            for table in inspector.get_table_names()
            for index in inspector.get_indexes(table)
            if f"{dialect}_where" in index.get("dialect_options", {})
        }

    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            found = await connection.run_sync(read)
    finally:
        await engine.dispose()
    assert len(expected) == 6
    assert found == expected


async def test_upgrading_0001_data_turns_detections_into_runs_and_tags_and_keys_get_roles(
    database_url: str,
) -> None:
    await seed_0001(database_url)
    await upgrade_database(database_url)

    runs = sa.table(
        "detection_runs",
        *map(sa.column, ("id", "image_id", "model_version", "status", "requested_by_user")),
        *map(sa.column, ("requested_by_client", "error")),
        sa.column("ran_at", UtcDateTime()),
    )
    [run_rows] = await execute(
        database_url,
        sa.select(
            runs.c.image_id,
            runs.c.id,
            runs.c.model_version,
            runs.c.status,
            runs.c.error,
            runs.c.requested_by_user,
            runs.c.requested_by_client,
            runs.c.ran_at,
        ).order_by(runs.c.image_id),
    )
    assert [row[:1] + row[2:] for row in run_rows] == [
        (1, "abababababab", "succeeded", None, "ci", "unknown", T0 + timedelta(minutes=1)),
        (4, "opencv 4.10", "succeeded", None, "ci", "unknown", T0 + timedelta(minutes=4)),
    ]
    run_ids = {row[0]: row[1] for row in run_rows}

    engine = create_engine(database_url)
    unit_of_work = SqlUnitOfWorkFactory(session_factory(engine))
    try:
        async with unit_of_work() as uow:
            loaded = [await uow.images.get(number) for number in (1, 2, 3, 4)]
            by_version = await uow.images.search(
                SearchQuery(model=ModelRef("yolo11n.pt", "abababababab")), limit=10
            )
            keys = await uow.api_keys.list()
    finally:
        await engine.dispose()
    assert loaded == [
        expected_image(
            1,
            (
                model_tag("dog", 0.9, YOLO, run_ids[1], 1, box=True),
                model_tag("person", 0.8, YOLO, run_ids[1], 1, box=False),
            ),
            DetectionStatus.SUCCEEDED,
        ),
        expected_image(2, (), DetectionStatus.FAILED),
        expected_image(3, (), DetectionStatus.NOT_REQUESTED),
        expected_image(
            4, (model_tag("face", 0.6, OPENCV, run_ids[4], 4, box=True),), DetectionStatus.SUCCEEDED
        ),
    ]
    assert [image.id for image in by_version] == [1]
    assert [(key.name, key.user, key.client, key.role) for key in keys] == [
        ("admin", "admin", "admin", Role.ADMIN),
        ("ci", "ci", "ci", Role.TAGGER),
    ]
    assert await schema_differences(database_url) == []


async def test_downgrading_keeps_live_model_tags_of_live_images_as_detections(
    database_url: str,
) -> None:
    await seed_0001(database_url)
    await upgrade_database(database_url)
    engine = create_engine(database_url)
    unit_of_work = SqlUnitOfWorkFactory(session_factory(engine))
    onnx = DetectorInfo("yolo-onnx", "yolo11n.onnx", "onnxruntime 1")
    rerun = DetectionRun(
        onnx,
        DetectionStatus.SUCCEEDED,
        Actor("alice", "labelling-ui"),
        T0,
        (Detection("face", 0.7, None, onnx),),
    )
    try:
        async with unit_of_work() as uow:
            await uow.tags.add_human(1, ["sofa"], CI, T0)
            await uow.tags.remove(1, "person", CI, T0)
            await uow.images.delete(3, CI, T0)
            await uow.images.add_detection_run(4, rerun)
            await uow.commit()
    finally:
        await engine.dispose()

    await migrate(database_url, "downgrade", "0001")

    [images, detections] = await execute(
        database_url,
        sa.select(images_0001.c.id, images_0001.c.detection_status).order_by(images_0001.c.id),
        sa.select(
            detections_0001.c.image_id,
            detections_0001.c.name,
            detections_0001.c.confidence,
            detections_0001.c.x_min,
            detections_0001.c.detector,
            detections_0001.c.model,
            detections_0001.c.provenance,
        ).order_by(detections_0001.c.id),
    )
    assert images == [(1, "succeeded"), (2, "failed"), (4, "succeeded")]
    assert detections == [
        (1, "dog", 0.9, 0.1, "yolo", "yolo11n.pt", provenance_0001(YOLO)),
        (4, "face", 0.6, 0.1, "opencv", "haarcascades", provenance_0001(OPENCV)),
        (4, "face", 0.7, None, "yolo-onnx", "yolo11n.onnx", provenance_0001(onnx)),
    ]
    assert await columns_by_table(database_url) == COLUMNS_0001

    await upgrade_database(database_url)
    assert await schema_differences(database_url) == []


COLUMNS_0001 = {
    "alembic_version": {"version_num"},
    "api_keys": {"id", "name", "key_hash", "prefix", "created_at", "revoked_at"},
    "images": {
        "id", "label", "source", "sha256", "media_type", "width", "height", "size_bytes",
        "created_at", "created_by", "detection_status", "detection_error",
    },
    "detections": {
        "id", "image_id", "name", "confidence", "x_min", "y_min", "x_max", "y_max",
        "detector", "model", "provenance",
    },
}  # fmt: skip


async def columns_by_table(database_url: str) -> dict[str, set[str]]:
    def read(connection: Connection) -> dict[str, set[str]]:
        inspector = sa.inspect(connection)
        return {
            table: {column["name"] for column in inspector.get_columns(table)}
            for table in inspector.get_table_names()
        }

    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_events SET target = 'key:other'", "DELETE FROM audit_events"],
)
async def test_the_audit_log_refuses_updates_and_deletes(database_url: str, statement: str) -> None:
    await _assert_audit_log_refuses(database_url, statement)


async def test_postgresql_refuses_truncating_the_audit_log(postgres_admin_url: str) -> None:
    # SQLite has no TRUNCATE: DELETE, refused above, is its only way to empty a table.
    database_url = await fresh_postgres_database(postgres_admin_url)
    await upgrade_database(database_url)
    await _assert_audit_log_refuses(database_url, "TRUNCATE audit_events")


async def _assert_audit_log_refuses(database_url: str, statement: str) -> None:
    engine = create_engine(database_url)
    unit_of_work = SqlUnitOfWorkFactory(session_factory(engine))
    try:
        async with unit_of_work() as uow:
            await uow.audit.append(
                AuditEvent(AuditEventType.KEY_CREATED, CI, T0, "key:ci", payload={"role": "admin"})
            )
            await uow.commit()
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as connection:
                await connection.execute(sa.text(statement))
    finally:
        await engine.dispose()


def test_the_head_revision_the_code_expects_is_alembics_head() -> None:
    assert head_revision() == HEAD_REVISION


def test_the_cli_does_not_load_alembic_for_a_database_already_at_head(tmp_path: Path) -> None:
    script = (
        "import sys; from imagetag.entrypoints.cli.main import app; "
        "sys.argv = ['imagetag', 'keys', 'list']\n"
        "try:\n    app()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print('alembic' in sys.modules)"
    )
    env = {**os.environ, "IMAGETAG_DATA_DIR": str(tmp_path / "data")}
    first = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert first.stdout.strip().endswith("True")  # a new database: migrated
    again = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert again.stdout.strip().endswith("False")
