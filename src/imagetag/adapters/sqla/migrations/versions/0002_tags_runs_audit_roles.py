"""tags with provenance, detection runs, soft delete, audit log, key roles

Revision ID: 0002
Revises: 0001

Upgrade, and what happens to existing rows:

- ``images`` gains ``created_client`` ('unknown' for existing rows: 0001 did not record
  it), a wider ``created_by`` (200, as actor names are), soft-delete columns and an index
  on ``created_at``.
- ``detections`` becomes ``detection_runs`` and ``tags``. Per image with detections: one
  succeeded run with the provenance of its first detection, requested by the image's
  creator via client 'unknown' at the image's creation time; and one model tag per
  detection, in detection order. An image whose detection failed keeps its status and
  error on ``images`` but gets no run: 0001 did not record which detector failed.
- ``api_keys`` gains ``user_name`` and ``client`` (both the key's name) and ``role``:
  ``admin`` for the key named 'admin' (the bootstrap key), else ``tagger``, because every
  key could add images before roles existed and keeps that right.
- ``audit_events`` is new and append-only: triggers refuse UPDATE and DELETE (and, on
  PostgreSQL, TRUNCATE).

On SQLite, changing a column's type or nullability rebuilds the table (batch mode), and
dropping the old ``images`` with foreign keys enforced would cascade into
``detections``. So detections are first copied to a staging table without constraints,
``images`` is rebuilt while nothing references it, and the new tables are filled after.

Downgrade restores 0001's shape. Live model tags of live images become detections again,
with their run's provenance. Lost: human tags, removed tags, runs' requesters and failed
runs' provenance, soft-deleted images (deleted for good: 0001 has no soft delete), the
audit log, and keys' users, clients and roles.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LIVE_TAG = "removed_at IS NULL"
LIVE_HUMAN_TAG = "source = 'human' AND removed_at IS NULL"
UNKNOWN_CLIENT = "unknown"


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _detections_columns() -> list[sa.Column[Any]]:
    """0001's ``detections`` columns; also the staging table's, without constraints."""
    return [
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("image_id", _id(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("x_min", sa.Float(), nullable=True),
        sa.Column("y_min", sa.Float(), nullable=True),
        sa.Column("x_max", sa.Float(), nullable=True),
        sa.Column("y_max", sa.Float(), nullable=True),
        sa.Column("detector", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
    ]


def _copy(source: sa.TableClause, target: sa.Table) -> None:
    columns = [column.name for column in source.columns]
    op.execute(
        target.insert().from_select(columns, sa.select(*source.columns).order_by(source.c.id))
    )


def upgrade() -> None:
    staging = op.create_table("_detections_0001", *_detections_columns())
    _copy(sa.table("detections", *(sa.column(c.name) for c in staging.columns)), staging)
    op.drop_index("ix_detections_name_image_id", table_name="detections")
    op.drop_index("ix_detections_image_id", table_name="detections")
    op.drop_table("detections")

    _upgrade_images()
    runs, tags = _create_runs_and_tags()
    _migrate_detections(staging, runs, tags)
    op.drop_table("_detections_0001")
    _create_audit_events()
    _upgrade_api_keys()


def _upgrade_images() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("created_client", sa.String(length=200), nullable=True))
    op.execute(
        sa.table("images", sa.column("created_client"))
        .update()
        .values(created_client=UNKNOWN_CLIENT)
    )
    with op.batch_alter_table("images") as batch:
        batch.alter_column("created_client", existing_type=sa.String(length=200), nullable=False)
        batch.alter_column(
            "created_by",
            existing_type=sa.String(length=64),
            type_=sa.String(length=200),
            existing_nullable=False,
        )
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deleted_by_user", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("deleted_by_client", sa.String(length=200), nullable=True))
        batch.create_index("ix_images_created_at", ["created_at"], unique=False)


def _create_runs_and_tags() -> tuple[sa.Table, sa.Table]:
    runs = op.create_table(
        "detection_runs",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("image_id", _id(), nullable=False),
        sa.Column("detector", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("model_sha256", sa.String(length=64), nullable=True),
        sa.Column("library_version", sa.String(length=64), nullable=False),
        sa.Column("confidence_threshold", sa.Float(), nullable=True),
        sa.Column("iou_threshold", sa.Float(), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_by_user", sa.String(length=200), nullable=False),
        sa.Column("requested_by_client", sa.String(length=200), nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name="fk_detection_runs_image_id_images"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_detection_runs"),
    )
    op.create_index("ix_detection_runs_image_id", "detection_runs", ["image_id"], unique=False)

    tags = op.create_table(
        "tags",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("image_id", _id(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("x_min", sa.Float(), nullable=True),
        sa.Column("y_min", sa.Float(), nullable=True),
        sa.Column("x_max", sa.Float(), nullable=True),
        sa.Column("y_max", sa.Float(), nullable=True),
        sa.Column("run_id", _id(), nullable=True),
        sa.Column("model_name", sa.String(length=200), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("added_by_user", sa.String(length=200), nullable=False),
        sa.Column("added_by_client", sa.String(length=200), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by_user", sa.String(length=200), nullable=True),
        sa.Column("removed_by_client", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name="fk_tags_image_id_images"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["detection_runs.id"], name="fk_tags_run_id_detection_runs"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tags"),
    )
    for name, columns in (
        ("ix_tags_name_image_id", ["name", "image_id"]),
        ("ix_tags_image_id", ["image_id"]),
        ("ix_tags_added_at_image_id", ["added_at", "image_id"]),
        ("ix_tags_added_by_user_image_id", ["added_by_user", "image_id"]),
    ):
        _partial_index(name, "tags", columns, LIVE_TAG)
    _partial_index(
        "uq_tags_human_image_id_name_added_by_user",
        "tags",
        ["image_id", "name", "added_by_user"],
        LIVE_HUMAN_TAG,
        unique=True,
    )
    return runs, tags


def _partial_index(
    name: str, table: str, columns: list[str], where: str, *, unique: bool = False
) -> None:
    op.create_index(
        name,
        table,
        columns,
        unique=unique,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def _migrate_detections(staging: sa.Table, runs: sa.Table, tags: sa.Table) -> None:
    images = sa.table("images", sa.column("id"), sa.column("created_by"), sa.column("created_at"))
    provenance = staging.c.provenance
    # 0001 always wrote every provenance key, so none is missing.
    sha256 = provenance["model_sha256"].as_string()
    library_version = provenance["library_version"].as_string()
    run_values: dict[str, sa.ColumnElement[Any]] = {
        "image_id": staging.c.image_id,
        "detector": staging.c.detector,
        "model": staging.c.model,
        # DetectorInfo.model_version: the weights' sha256 prefix, else the library version.
        "model_version": sa.case(
            (sa.func.coalesce(sha256, "") != "", sa.func.substr(sha256, 1, 12)),
            else_=library_version,
        ),
        "model_sha256": sha256,
        "library_version": library_version,
        "confidence_threshold": provenance["confidence_threshold"].as_float(),
        "iou_threshold": provenance["iou_threshold"].as_float(),
        "parameters": provenance["parameters"],
        "status": sa.literal_column("'succeeded'"),
        "error": sa.null(),
        "requested_by_user": images.c.created_by,
        "requested_by_client": sa.literal_column(f"'{UNKNOWN_CLIENT}'"),
        "ran_at": images.c.created_at,
    }
    first_detections = sa.select(sa.func.min(staging.c.id)).group_by(staging.c.image_id)
    op.execute(
        runs.insert().from_select(
            list(run_values),
            sa.select(*run_values.values())
            .join(images, images.c.id == staging.c.image_id)
            .where(staging.c.id.in_(first_detections))
            .order_by(staging.c.image_id),
        )
    )
    tag_values: dict[str, sa.ColumnElement[Any]] = {
        "image_id": staging.c.image_id,
        "name": staging.c.name,
        "source": sa.literal_column("'model'"),
        "confidence": staging.c.confidence,
        "x_min": staging.c.x_min,
        "y_min": staging.c.y_min,
        "x_max": staging.c.x_max,
        "y_max": staging.c.y_max,
        "run_id": runs.c.id,
        "model_name": runs.c.model,
        "model_version": runs.c.model_version,
        "added_by_user": images.c.created_by,
        "added_by_client": sa.literal_column(f"'{UNKNOWN_CLIENT}'"),
        "added_at": images.c.created_at,
    }
    # Each image has at most one run so far, so joining on image_id finds it.
    op.execute(
        tags.insert().from_select(
            list(tag_values),
            sa.select(*tag_values.values())
            .join(runs, runs.c.image_id == staging.c.image_id)
            .join(images, images.c.id == staging.c.image_id)
            .order_by(staging.c.id),
        )
    )


def _create_audit_events() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("actor_user", sa.String(length=200), nullable=False),
        sa.Column("actor_client", sa.String(length=200), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("image_id", _id(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_image_id_id", "audit_events", ["image_id", "id"])
    op.create_index("ix_audit_events_actor_user_id", "audit_events", ["actor_user", "id"])
    op.create_index("ix_audit_events_type_id", "audit_events", ["type", "id"])
    op.create_index("ix_audit_events_occurred_at", "audit_events", ["occurred_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION audit_events_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP;
            END
            $$
            """
        )
        # Statement-level, so that it also covers TRUNCATE and fires whatever rows match.
        op.execute(
            "CREATE TRIGGER audit_events_append_only "
            "BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{action.lower()} BEFORE {action} "
                "ON audit_events BEGIN "
                f"SELECT RAISE(ABORT, 'audit_events is append-only: {action} is not allowed'); "
                "END"
            )


def _upgrade_api_keys() -> None:
    with op.batch_alter_table("api_keys") as batch:
        for name, length in (("user_name", 200), ("client", 200), ("role", 16)):
            batch.add_column(sa.Column(name, sa.String(length=length), nullable=True))
    op.execute(
        "UPDATE api_keys SET user_name = name, client = name, "
        "role = CASE WHEN name = 'admin' THEN 'admin' ELSE 'tagger' END"
    )
    with op.batch_alter_table("api_keys") as batch:
        for name, length in (("user_name", 200), ("client", 200), ("role", 16)):
            batch.alter_column(name, existing_type=sa.String(length=length), nullable=False)


def downgrade() -> None:
    staging = op.create_table("_detections_0002", *_detections_columns())
    _stage_model_tags(staging)

    op.drop_table("audit_events")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_events_append_only()")
    op.drop_table("tags")
    op.drop_table("detection_runs")

    op.execute("DELETE FROM images WHERE deleted_at IS NOT NULL")
    op.execute("UPDATE images SET created_by = substr(created_by, 1, 64)")
    with op.batch_alter_table("images") as batch:
        batch.drop_index("ix_images_created_at")
        for name in ("deleted_by_client", "deleted_by_user", "deleted_at", "created_client"):
            batch.drop_column(name)
        batch.alter_column(
            "created_by",
            existing_type=sa.String(length=200),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
    with op.batch_alter_table("api_keys") as batch:
        for name in ("role", "client", "user_name"):
            batch.drop_column(name)

    detections = op.create_table(
        "detections",
        *_detections_columns(),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name="fk_detections_image_id_images", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_detections"),
    )
    op.create_index("ix_detections_image_id", "detections", ["image_id"], unique=False)
    op.create_index("ix_detections_name_image_id", "detections", ["name", "image_id"])
    _copy(staging, detections)
    op.drop_table("_detections_0002")


def _stage_model_tags(staging: sa.Table) -> None:
    """Copy live model tags of live images, with their run's provenance as 0001 kept it."""
    tags = sa.table("tags", *map(sa.column, _STAGED_TAG_COLUMNS))
    runs = sa.table("detection_runs", *map(sa.column, _STAGED_RUN_COLUMNS))
    images = sa.table("images", sa.column("id"), sa.column("deleted_at"))
    parameters: sa.ColumnElement[Any]
    if op.get_bind().dialect.name == "postgresql":
        build_object, parameters = sa.func.json_build_object, runs.c.parameters
    else:
        # json() keeps the stored parameters an object rather than a quoted string.
        build_object, parameters = sa.func.json_object, sa.func.json(runs.c.parameters)
    provenance = build_object(
        *(
            part
            for key, value in (
                ("library_version", runs.c.library_version),
                ("model_sha256", runs.c.model_sha256),
                ("confidence_threshold", runs.c.confidence_threshold),
                ("iou_threshold", runs.c.iou_threshold),
                ("parameters", parameters),
            )
            for part in (sa.literal_column(f"'{key}'"), value)
        )
    )
    detection_values = {
        **{name: tags.c[name] for name in _STAGED_TAG_COLUMNS if name in staging.c},
        "detector": runs.c.detector,
        "model": runs.c.model,
        "provenance": provenance,
    }
    op.execute(
        staging.insert().from_select(
            list(detection_values),
            sa.select(*detection_values.values())
            .join(runs, runs.c.id == tags.c.run_id)
            .join(images, images.c.id == tags.c.image_id)
            .where(
                tags.c.source == "model",
                tags.c.removed_at.is_(None),
                images.c.deleted_at.is_(None),
            )
            .order_by(tags.c.id),
        )
    )


_STAGED_TAG_COLUMNS = (
    "id", "image_id", "name", "confidence", "x_min", "y_min", "x_max", "y_max", "source",
    "run_id", "removed_at",
)  # fmt: skip
_STAGED_RUN_COLUMNS = (
    "id", "detector", "model", "model_sha256", "library_version", "confidence_threshold",
    "iou_threshold", "parameters",
)  # fmt: skip
