"""The read statements: images with their live tags, searches, and the audit log.

Every statement that returns images returns them joined with their live tags and each
tag's run (``mapping.images_from_rows`` reads that shape), so a page of images with all
their tags is one round trip.

Searches are the SQL form of ``SearchQuery.includes``. They walk images newest first on
the primary key (the keyset cursor) and test tag conditions with EXISTS probes on the
partial indexes over live tags, so their cost follows the page size, not the table size.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    bindparam,
    exists,
    not_,
    or_,
    select,
)

from imagetag.adapters.sqla.mapping import IMAGE_COLUMNS, RUN_COLUMNS, TAG_COLUMNS
from imagetag.adapters.sqla.tables import AuditEventRow, DetectionRunRow, ImageRow, TagRow
from imagetag.domain.audit import AuditQuery
from imagetag.domain.search import Match, SearchQuery
from imagetag.domain.tags import TagSource

images = ImageRow.__table__
tags = TagRow.__table__
runs = DetectionRunRow.__table__
audit_events = AuditEventRow.__table__

LIVE_IMAGE = images.c.deleted_at.is_(None)


def with_live_tags(page: FromClause) -> Select[Any]:
    """``page`` (rows with the image columns) joined with live tags and their runs, in
    ``IMAGE_COLUMNS + TAG_COLUMNS + RUN_COLUMNS`` order, one row per tag."""
    joined = page.outerjoin(
        tags, and_(tags.c.image_id == page.c.id, tags.c.removed_at.is_(None))
    ).outerjoin(runs, runs.c.id == tags.c.run_id)
    return select(
        *(page.c[name] for name in IMAGE_COLUMNS),
        *(tags.c[name].label(f"tag_{name}") for name in TAG_COLUMNS),
        *(runs.c[name].label(f"run_{name}") for name in RUN_COLUMNS),
    ).select_from(joined)


GET_IMAGE = (
    with_live_tags(images)
    .where(images.c.id == bindparam("image_id"), LIVE_IMAGE)
    .order_by(tags.c.id)
)


def search_statement(query: SearchQuery, limit: int) -> Select[Any]:
    """Live images for which ``query.includes`` holds, newest first, with their tags."""
    page = (
        select(*(images.c[name] for name in IMAGE_COLUMNS))
        .where(LIVE_IMAGE, *_image_conditions(query))
        .order_by(images.c.id.desc())
        .limit(limit)
        .subquery("page")
    )
    return with_live_tags(page).order_by(page.c.id.desc(), tags.c.id)


def _image_conditions(query: SearchQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.before_id is not None:
        conditions.append(images.c.id < query.before_id)
    if query.created_after is not None:
        conditions.append(images.c.created_at >= query.created_after)
    if query.created_before is not None:
        conditions.append(images.c.created_at < query.created_before)
    model_tag = tags.c.source == TagSource.MODEL.value
    conditions += _names_present(query, query.objects, model_tag)
    conditions += _names_present(query, query.tags)
    if query.exclude:
        conditions.append(not_(_some_qualifying_tag(query, tags.c.name.in_(query.exclude))))
    if query.untagged:
        conditions.append(not_(_some_qualifying_tag(query)))
    elif query.wants_some_qualifying_tag and not (query.objects or query.tags):
        # With names asked for, their own EXISTS already demands a qualifying tag.
        conditions.append(_some_qualifying_tag(query))
    return conditions


def _names_present(
    query: SearchQuery, names: tuple[str, ...], *extra: ColumnElement[bool]
) -> list[ColumnElement[bool]]:
    if not names:
        return []
    if query.match is Match.ALL:
        # One probe per name: each is an index lookup on (name, image_id).
        return [_some_qualifying_tag(query, tags.c.name == name, *extra) for name in names]
    return [_some_qualifying_tag(query, tags.c.name.in_(names), *extra)]


def _some_qualifying_tag(query: SearchQuery, *extra: ColumnElement[bool]) -> ColumnElement[bool]:
    """EXISTS a live tag on the image that passes ``query.qualifies`` and ``extra``."""
    conditions: list[ColumnElement[bool]] = [
        tags.c.image_id == images.c.id,
        # Spelled as the partial indexes' condition, so SQLite can use them.
        tags.c.removed_at.is_(None),
        *extra,
    ]
    if query.source is not None:
        conditions.append(tags.c.source == query.source.value)
    if query.model is not None:
        conditions.append(tags.c.model_name == query.model.name)
        if query.model.version is not None:
            conditions.append(tags.c.model_version == query.model.version)
    if query.min_confidence is not None:
        conditions.append(
            or_(
                tags.c.source == TagSource.HUMAN.value,
                tags.c.confidence >= query.min_confidence,
            )
        )
    if query.tagged_by is not None:
        conditions.append(tags.c.added_by_user == query.tagged_by)
    if query.tagged_after is not None:
        conditions.append(tags.c.added_at >= query.tagged_after)
    if query.tagged_before is not None:
        conditions.append(tags.c.added_at < query.tagged_before)
    return exists().where(*conditions).correlate(images)


def audit_statement(query: AuditQuery, limit: int) -> Select[Any]:
    """Events for which ``query.includes`` holds, newest first."""
    columns = audit_events.c
    conditions: list[ColumnElement[bool]] = []
    if query.before_id is not None:
        conditions.append(columns.id < query.before_id)
    if query.user is not None:
        conditions.append(columns.actor_user == query.user)
    if query.image_id is not None:
        conditions.append(columns.image_id == query.image_id)
    if query.types:
        conditions.append(columns.type.in_([kind.value for kind in query.types]))
    if query.after is not None:
        conditions.append(columns.occurred_at >= query.after)
    if query.before is not None:
        conditions.append(columns.occurred_at < query.before)
    return select(audit_events).where(*conditions).order_by(columns.id.desc()).limit(limit)
