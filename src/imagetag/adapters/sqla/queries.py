"""The read statements: images with their live tags, searches, and the audit log.

Every statement that returns images returns them joined with their live tags and each
tag's run (``mapping.images_from_rows`` reads that shape), so a page of images with all
their tags is one round trip.

Searches are the SQL form of ``SearchQuery.includes``, newest first on the primary key
(the keyset cursor), and built so that their cost follows the page size, not the table
size (``search_statement`` says how).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    bindparam,
    exists,
    func,
    literal_column,
    not_,
    or_,
    select,
)
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from imagetag.adapters.sqla.mapping import IMAGE_COLUMNS, RUN_COLUMNS, TAG_COLUMNS
from imagetag.adapters.sqla.tables import AuditEventRow, Base, DetectionRunRow, ImageRow, TagRow
from imagetag.domain.audit import AuditQuery
from imagetag.domain.search import Match, SearchQuery
from imagetag.domain.tags import TagSource

# Through the metadata, typed as Tables (``__table__`` is typed as any FromClause): the
# repositories insert into and update them too.
images = Base.metadata.tables[ImageRow.__tablename__]
tags = Base.metadata.tables[TagRow.__tablename__]
runs = Base.metadata.tables[DetectionRunRow.__tablename__]
audit_events = Base.metadata.tables[AuditEventRow.__tablename__]

LIVE_IMAGE = images.c.deleted_at.is_(None)

# The searches' other names for the tables, made once: an alias builds a proxy of every
# column of its table on first use, which would be most of the time spent building a
# search statement if each search made its own.
DRIVER = tags.alias("driver")
NEWEST_IMAGES = images.alias("newest_images")
CREATED_WINDOW = images.alias("created_window")
NEWEST_TAGS = tags.alias("newest_tags")
TAGGED_WINDOW = tags.alias("tagged_window")


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


def search_statement(query: SearchQuery, limit: int, dialect: str) -> Select[Any]:
    """Live images for which ``query.includes`` holds, newest first, with their tags, for
    the database ``dialect`` names (``sqlite`` or ``postgresql``).

    The first condition that asks for a tag is an inner join to the qualifying tags,
    grouped by image; the other tag conditions are (NOT) EXISTS probes. With the join,
    the database can walk the tags index of a rare name backwards and probe the images,
    instead of walking every image newer than the name's matches. A time window closed at
    both ends bounds the image id by the newest image it holds (``_window_bounds``), so
    the walk starts there, not at the newest image of all.
    """
    conditions = _tag_conditions(query)
    driver = next((condition for condition in conditions if not condition.negated), None)
    image_bound, tag_bound = _window_bounds(query, limit, has_driver=driver is not None)
    where: list[ColumnElement[bool]] = [LIVE_IMAGE, *_image_conditions(query)]
    where += [images.c.id <= bound for bound in (image_bound, tag_bound) if bound is not None]
    for condition in conditions:
        if condition is not driver:
            found = _some_qualifying_tag(query, condition)
            where.append(not_(found) if condition.negated else found)
    page = select(*(images.c[name] for name in IMAGE_COLUMNS)).where(*where)
    key = images.c.id
    if driver is not None:
        joined = DRIVER
        sqlite = dialect == "sqlite"
        # SQLite would pick the (added_at, image_id) index for a tag window's driver and
        # sort all of the window's tags; hidden from it, an index in image id order wins.
        added_at = _unindexed(joined.c.added_at) if sqlite else joined.c.added_at
        on = [joined.c.image_id == images.c.id, *_qualifying(query, joined, driver, added_at)]
        if tag_bound is not None:
            on.append(joined.c.image_id <= tag_bound)
        # SQLite reads the driving index in order and stops at the page only when grouped
        # and ordered by the tag's image id (by images.id it sorts every match first);
        # PostgreSQL must group by the primary key to select the image's columns, and
        # knows both are one value.
        key = joined.c.image_id if sqlite else images.c.id
        page = page.select_from(images.join(joined, and_(*on))).group_by(key)
    sub = page.order_by(key.desc()).limit(limit).subquery("page")
    return with_live_tags(sub).order_by(sub.c.id.desc(), tags.c.id)


@dataclass(frozen=True, slots=True)
class _TagCondition:
    """A qualifying tag the image must have (or, ``negated``, must not): with one of
    ``names`` when given, a model tag when ``model_only``."""

    names: tuple[str, ...] = ()
    model_only: bool = False
    negated: bool = False


def _tag_conditions(query: SearchQuery) -> list[_TagCondition]:
    """The tag conditions of ``query.includes``; the positive ones first."""
    conditions: list[_TagCondition] = []
    for names, model_only in ((query.objects, True), (query.tags, False)):
        if names and query.match is Match.ALL:
            # One condition per name: each is an index lookup on (name, image_id).
            conditions += [_TagCondition((name,), model_only) for name in names]
        elif names:
            conditions.append(_TagCondition(names, model_only))
    if query.wants_some_qualifying_tag and not (query.objects or query.tags):
        # With names asked for, their conditions already demand a qualifying tag.
        conditions.append(_TagCondition())
    if query.exclude:
        conditions.append(_TagCondition(query.exclude, negated=True))
    if query.untagged:
        conditions.append(_TagCondition(negated=True))
    return conditions


def _image_conditions(query: SearchQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.before_id is not None:
        conditions.append(images.c.id < query.before_id)
    if query.created_after is not None:
        conditions.append(images.c.created_at >= query.created_after)
    if query.created_before is not None:
        conditions.append(images.c.created_at < query.created_before)
    return conditions


def _window_bounds(
    query: SearchQuery, limit: int, *, has_driver: bool
) -> tuple[ColumnElement[Any] | None, ColumnElement[Any] | None]:
    """Upper bounds on the id of any image the query can return, from its time windows
    closed at both ends (a window open at one end may hold most of the table).

    Each bound is the window's newest image id, exact, found the cheaper of two ways: among
    the ``limit`` rows of highest image id (a window that reaches the newest images, such
    as the last week, has its bound there), else by one index range scan of the window
    (an older window), which grows with the rows in the window, not with the table. The
    scan runs only when the first way finds nothing (COALESCE evaluates lazily on both
    databases). ``+ 0`` keeps PostgreSQL from answering the scan's ``max`` by a backward
    walk of the primary key filtered on the window, the very walk the bound is there to
    shorten. The tag window bounds the images only when the query demands a qualifying
    tag (``has_driver``); ``untagged=true`` within a window may match any image.
    """
    image_bound = tag_bound = None
    if query.created_after is not None and query.created_before is not None:
        image_bound = _newest_image_id_in_window(
            NEWEST_IMAGES,
            CREATED_WINDOW,
            "id",
            "created_at",
            (query.created_after, query.created_before),
            limit,
            name="recent_images",
        )
    if has_driver and query.tagged_after is not None and query.tagged_before is not None:
        bound = _newest_image_id_in_window(
            NEWEST_TAGS,
            TAGGED_WINDOW,
            "image_id",
            "added_at",
            (query.tagged_after, query.tagged_before),
            limit,
            name="recent_tags",
            live_only=True,
        )
        # A CTE: the images and the joined tags both use it, computed once.
        newest_id = select(bound.label("image_id")).cte("tagged_window_bound")
        tag_bound = select(newest_id.c.image_id).scalar_subquery()
    return image_bound, tag_bound


def _newest_image_id_in_window(
    newest: FromClause,
    window: FromClause,
    image_id: str,
    at: str,
    between: tuple[datetime, datetime],
    limit: int,
    *,
    name: str,
    live_only: bool = False,
) -> ColumnElement[Any]:
    """The highest ``image_id`` of the rows whose ``at`` falls in ``between``: among the
    ``limit`` newest rows of ``newest``, else by a scan of ``window`` (two aliases of one
    table; ``_window_bounds`` says why). ``live_only`` keeps to tags not removed."""
    after, before = between

    def live(rows: FromClause) -> list[ColumnElement[bool]]:
        return [rows.c.removed_at.is_(None)] if live_only else []

    recent = (
        select(newest.c[image_id], newest.c[at])
        .where(*live(newest))
        .order_by(newest.c[image_id].desc())
        .limit(limit)
        .subquery(name)
    )
    return func.coalesce(
        select(func.max(recent.c[image_id]))
        .where(recent.c[at] >= after, recent.c[at] < before)
        .scalar_subquery(),
        select(func.max(window.c[image_id] + literal_column("0")))
        .where(*live(window), window.c[at] >= after, window.c[at] < before)
        .scalar_subquery(),
    )


def _some_qualifying_tag(query: SearchQuery, condition: _TagCondition) -> ColumnElement[bool]:
    """EXISTS a live tag on the image that passes ``query.qualifies`` and ``condition``."""
    return (
        exists()
        .where(tags.c.image_id == images.c.id, *_qualifying(query, tags, condition))
        .correlate(images)
    )


def _qualifying(
    query: SearchQuery,
    tag: FromClause,
    condition: _TagCondition,
    added_at: ColumnElement[datetime] | None = None,
) -> list[ColumnElement[bool]]:
    """``tag`` is live, passes ``query.qualifies`` and has ``condition``'s names and source;
    ``added_at`` stands for the tag's column of that name when given."""
    columns = tag.c
    added_at = columns.added_at if added_at is None else added_at
    # Spelled as the partial indexes' condition, so SQLite can use them.
    conditions: list[ColumnElement[bool]] = [columns.removed_at.is_(None)]
    if condition.names:
        conditions.append(columns.name.in_(condition.names))
    if condition.model_only:
        conditions.append(columns.source == TagSource.MODEL.value)
    if query.source is not None:
        conditions.append(columns.source == query.source.value)
    if query.model is not None:
        conditions.append(columns.model_name == query.model.name)
        if query.model.version is not None:
            conditions.append(columns.model_version == query.model.version)
    if query.min_confidence is not None:
        conditions.append(
            or_(
                columns.source == TagSource.HUMAN.value,
                columns.confidence >= query.min_confidence,
            )
        )
    if query.tagged_by is not None:
        conditions.append(columns.added_by_user == query.tagged_by)
    if query.tagged_after is not None:
        conditions.append(added_at >= query.tagged_after)
    if query.tagged_before is not None:
        conditions.append(added_at < query.tagged_before)
    return conditions


def _unindexed(column: ColumnElement[datetime]) -> ColumnElement[datetime]:
    """``column`` behind SQLite's unary ``+``: the same value, but conditions on it do not
    make SQLite choose an index."""
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)


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
