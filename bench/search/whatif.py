"""What-ifs: other shapes of the search statement, timed beside the adapter's own.

Nothing here changes ``src/``: each shape is built in this file from the adapter's tables
and its ``with_live_tags`` (the same outer join to live tags and runs), run on the same
databases, and must return the same images in the same order as the adapter before its
times count. The shapes:

- ``drive``: the first positive tag condition (``objects``/``tags`` with ``match=any``,
  the first name with ``match=all``, or "some qualifying tag" for provenance filters
  alone) becomes an inner JOIN to the qualifying tags with ``GROUP BY images.id``
  instead of an ``EXISTS``. PostgreSQL plans the ``EXISTS`` as a semi-join that walks
  ``pk_images`` backwards from the newest image (here for every query, rare names too):
  its semi-join paths never read the tags index in order to drive the walk. With a join
  it can also walk ``ix_tags_name_image_id`` backwards for the name and probe
  ``pk_images``, which is what a rare name needs, and it picks by cost. The other
  conditions stay as the adapter writes them.
- ``bounds``: ``drive``, plus an upper bound on the image id for time windows (both ends
  given): ``images.id <= (SELECT max(id + 0) FROM images WHERE created_at in window)``
  and, for a tag window, ``<= (SELECT max(image_id + 0) FROM tags WHERE added_at in
  window AND live)`` on both images and the joined tags. The bound is exact (every
  answer is at or under it), costs one index range scan of the window, and lets the
  backward walk start at the window's newest image instead of the newest image of all.
  ``+ 0`` keeps PostgreSQL from turning ``max`` into the same backward walk, filtered.
- ``bounds+index``: ``bounds`` with a what-if index on ``images (created_at, id)``, so
  the created window's bound is an index-only scan.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import plans
from sqlalchemy import ColumnElement, FromClause, Select, and_, exists, func, not_, or_, select
from workload import TypicalQuery

from imagetag.adapters.sqla.mapping import IMAGE_COLUMNS, images_from_rows
from imagetag.adapters.sqla.queries import with_live_tags
from imagetag.adapters.sqla.tables import ImageRow, TagRow
from imagetag.domain.search import Match, SearchQuery
from imagetag.domain.tags import TagSource

if TYPE_CHECKING:
    from run import Database, Timing

    from imagetag.domain.images import Image

images = ImageRow.__table__
tags = TagRow.__table__
WHAT_IF_INDEX = "whatif_images_created_at_id"


@dataclass(frozen=True)
class TagCondition:
    """One EXISTS of the adapter's search: a live qualifying tag (with one of ``names``, of
    ``source`` when given); ``negated`` for NOT EXISTS."""

    names: tuple[str, ...] = ()
    model_only: bool = False
    negated: bool = False


def tag_conditions(query: SearchQuery) -> list[TagCondition]:
    """The tag conditions of ``SearchQuery.includes``, as the adapter writes them."""
    conditions: list[TagCondition] = []
    for names, model_only in ((query.objects, True), (query.tags, False)):
        if not names:
            continue
        if query.match is Match.ALL:
            conditions += [TagCondition((name,), model_only) for name in names]
        else:
            conditions.append(TagCondition(names, model_only))
    if query.exclude:
        conditions.append(TagCondition(query.exclude, negated=True))
    if query.untagged:
        conditions.append(TagCondition(negated=True))
    elif query.wants_some_qualifying_tag and not (query.objects or query.tags):
        conditions.append(TagCondition())
    return conditions


def qualifying(query: SearchQuery, tag: FromClause, condition: TagCondition) -> list[Any]:
    """A live tag passing ``query.qualifies`` (and the condition's names and source)."""
    columns = tag.c
    where: list[Any] = [columns.removed_at.is_(None)]
    if condition.names:
        where.append(columns.name.in_(condition.names))
    if condition.model_only:
        where.append(columns.source == TagSource.MODEL.value)
    if query.source is not None:
        where.append(columns.source == query.source.value)
    if query.model is not None:
        where.append(columns.model_name == query.model.name)
        if query.model.version is not None:
            where.append(columns.model_version == query.model.version)
    if query.min_confidence is not None:
        where.append(
            or_(columns.source == TagSource.HUMAN.value, columns.confidence >= query.min_confidence)
        )
    if query.tagged_by is not None:
        where.append(columns.added_by_user == query.tagged_by)
    if query.tagged_after is not None:
        where.append(columns.added_at >= query.tagged_after)
    if query.tagged_before is not None:
        where.append(columns.added_at < query.tagged_before)
    return where


def has_window(query: SearchQuery) -> bool:
    created = query.created_after is not None and query.created_before is not None
    tagged = query.tagged_after is not None and query.tagged_before is not None
    return created or tagged


def driven_statement(query: SearchQuery, limit: int, *, bounds: bool) -> Select[Any]:
    """The search with its first positive tag condition as a join (when it has one) and,
    with ``bounds``, its time windows bounding the image id. ``GROUP BY images.id`` folds
    the join's repeats and works on both databases (``DISTINCT ON`` is PostgreSQL's only;
    it gave the same plans)."""
    conditions = tag_conditions(query)
    driver = next((c for c in conditions if not c.negated), None)
    image_where: list[ColumnElement[bool]] = [images.c.deleted_at.is_(None)]
    if query.before_id is not None:
        image_where.append(images.c.id < query.before_id)
    if query.created_after is not None:
        image_where.append(images.c.created_at >= query.created_after)
    if query.created_before is not None:
        image_where.append(images.c.created_at < query.created_before)
    tag_bound = None
    if bounds and query.created_after is not None and query.created_before is not None:
        window = images.alias("window_images")
        image_where.append(
            images.c.id
            <= select(func.max(window.c.id + 0))
            .where(
                window.c.created_at >= query.created_after,
                window.c.created_at < query.created_before,
            )
            .scalar_subquery()
        )
    if bounds and query.tagged_after is not None and query.tagged_before is not None:
        window_tags = tags.alias("window_tags")
        # A CTE, so that the two references below compute the bound once.
        bound = (
            select(func.max(window_tags.c.image_id + 0).label("image_id"))
            .where(
                window_tags.c.removed_at.is_(None),
                window_tags.c.added_at >= query.tagged_after,
                window_tags.c.added_at < query.tagged_before,
            )
            .cte("tag_window")
        )
        tag_bound = select(bound.c.image_id).scalar_subquery()
        image_where.append(images.c.id <= tag_bound)
    for condition in conditions:
        if condition is driver:
            continue
        probe = tags.alias()
        found = (
            exists()
            .where(probe.c.image_id == images.c.id, *qualifying(query, probe, condition))
            .correlate(images)
        )
        image_where.append(not_(found) if condition.negated else found)
    source: Any = images
    page = select(*(images.c[name] for name in IMAGE_COLUMNS))
    if driver is not None:
        joined = tags.alias("driver")
        on = [joined.c.image_id == images.c.id, *qualifying(query, joined, driver)]
        if tag_bound is not None:
            on.append(joined.c.image_id <= tag_bound)
        source = images.join(joined, and_(*on))
        page = page.group_by(images.c.id)
    page_sub = (
        page.select_from(source)
        .where(*image_where)
        .order_by(images.c.id.desc())
        .limit(limit)
        .subquery("page")
    )
    return with_live_tags(page_sub).order_by(page_sub.c.id.desc(), tags.c.id)


@dataclass(frozen=True)
class Shape:
    """A what-if: which typical queries it changes, and how their statement is built."""

    name: str
    applies: Callable[[SearchQuery], bool]
    build: Callable[[SearchQuery, int], Select[Any]]
    index: bool = False


def _driven(bounds: bool) -> Callable[[SearchQuery, int], Select[Any]]:
    return lambda query, limit: driven_statement(query, limit, bounds=bounds)


def _has_positive_tag_condition(query: SearchQuery) -> bool:
    return any(not condition.negated for condition in tag_conditions(query))


def _created_window(query: SearchQuery) -> bool:
    return query.created_after is not None and query.created_before is not None


SHAPES = (
    Shape("drive", _has_positive_tag_condition, _driven(False)),
    Shape("bounds", has_window, _driven(True)),
    Shape("bounds+index", _created_window, _driven(True), index=True),
)


@dataclass
class Trial:
    """One typical query under one what-if, against the adapter, per database label."""

    query: TypicalQuery
    shape: Shape
    searches: dict[str, SearchQuery] = field(default_factory=dict)
    statements: dict[str, Select[Any]] = field(default_factory=dict)
    before: dict[str, list[float]] = field(default_factory=dict)
    after: dict[str, list[float]] = field(default_factory=dict)
    plans_before: dict[str, plans.PlanSummary] = field(default_factory=dict)
    plans_after: dict[str, plans.PlanSummary] = field(default_factory=dict)
    text_after: list[str] = field(default_factory=list)

    async def run_before(self, db: Database) -> list[Image]:
        return await db.search(self.searches[db.label])

    async def run_after(self, db: Database) -> list[Image]:
        """The shaped statement as the repository runs its own: one session, rows mapped."""
        async with db.sessions() as session:
            result = await session.execute(self.statements[db.label])
            return images_from_rows(result.all())


async def run_all(
    databases: list[Database], timings: list[Timing], args: argparse.Namespace
) -> None:
    from run import percentile, resolve  # run imports this module

    small, large = databases[0].label, databases[-1].label
    for shape in SHAPES:
        trials: list[Trial] = []
        for timing in timings:
            if not shape.applies(timing.query.search_query()):
                continue
            trial = Trial(timing.query, shape)
            for db in databases:
                query = trial.searches[db.label] = await resolve(db, timing.query)
                trial.statements[db.label] = shape.build(query, query.limit + 1)
            trials.append(trial)
        if shape.index:
            for db in databases:
                await db.raw.execute(f"CREATE INDEX {WHAT_IF_INDEX} ON images (created_at, id)")
                await db.raw.execute("ANALYZE images")
        try:
            trials = await _same_images(databases, trials)
            await _time(databases, trials, timings, args)
        finally:
            if shape.index:
                for db in databases:
                    await db.raw.execute(f"DROP INDEX {WHAT_IF_INDEX}")
                    await db.raw.execute("ANALYZE images")
        if not trials:
            continue
        print(
            f"\nwhat-if '{shape.name}': ms before (the adapter) -> after (the what-if), in the "
            f"same rounds; blocks touched by each plan"
        )
        header = (
            f"{'query':<50} | {'p50 ' + small:>14} {'p95 ' + small:>14} | "
            f"{'p50 ' + large:>14} {'p95 ' + large:>14} | {'p95 ratio':>10} | "
            f"{'blocks ' + large:>16}"
        )
        print(header + "\n" + "-" * len(header))
        for trial in trials:

            def cells(pct: int, label: str, t: Trial = trial) -> tuple[float, float]:
                return percentile(t.before[label], pct), percentile(t.after[label], pct)

            p50_small, p95_small = cells(50, small), cells(95, small)
            p50_large, p95_large = cells(50, large), cells(95, large)
            print(
                f"{trial.query.label[:50]:<50} | "
                + " ".join(f"{b:>6.1f}->{a:<6.1f}" for b, a in (p50_small, p95_small))
                + " | "
                + " ".join(f"{b:>6.1f}->{a:<6.1f}" for b, a in (p50_large, p95_large))
                + f" | {p95_large[0] / p95_small[0]:>4.1f}->{p95_large[1] / p95_small[1]:<4.1f} | "
                f"{trial.plans_before[large].buffers:>7}->{trial.plans_after[large].buffers:<7}"
            )
        ratios = [percentile(t.after[large], 95) / percentile(t.after[small], 95) for t in trials]
        print(
            f"with '{shape.name}': worst p95 ratio of these queries {max(ratios):.2f}, "
            f"median {statistics.median(ratios):.2f}"
        )
        if not args.no_plans:
            for trial in trials:
                summary = trial.plans_after[large]
                scans = f"; SEQ SCAN on {', '.join(summary.seq_scans)}" if summary.seq_scans else ""
                print(
                    f"\n--- '{shape.name}' {trial.query.label} at {large}: "
                    f"indexes {', '.join(summary.indexes)}{scans}"
                )
                print("\n".join(trial.text_after))


async def _same_images(databases: list[Database], trials: list[Trial]) -> list[Trial]:
    """The trials whose what-if returns the adapter's images, in its order, on every size."""
    agreeing = []
    for trial in trials:
        for db in databases:
            expected = [image.id for image in await db.search(trial.searches[db.label])]
            got = [image.id for image in await trial.run_after(db)]
            if got != expected:
                print(
                    f"what-if '{trial.shape.name}' skips {trial.query.label}: on {db.label} it "
                    f"returns other images than the adapter ({got[:4]}... vs {expected[:4]}...)"
                )
                break
        else:
            agreeing.append(trial)
    return agreeing


async def _time(
    databases: list[Database],
    trials: list[Trial],
    timings: list[Timing],
    args: argparse.Namespace,
) -> None:
    for trial in trials:
        for db in databases:
            trial.before[db.label], trial.after[db.label] = [], []
            for _ in range(args.warmup):
                await trial.run_before(db)
                await trial.run_after(db)
    for _ in range(args.repeat):
        for trial in trials:
            for db in databases:
                started = time.perf_counter()
                await trial.run_before(db)
                middle = time.perf_counter()
                await trial.run_after(db)
                trial.before[db.label].append((middle - started) * 1000)
                trial.after[db.label].append((time.perf_counter() - middle) * 1000)
    by_label = {timing.query.label: timing for timing in timings}
    for trial in trials:
        for db in databases:
            if trial.shape.index:
                adapter = await plans.capture_select(
                    db.engine, lambda t=trial, d=db: t.run_before(d)
                )
                trial.plans_before[db.label] = await plans.summarise(db.engine, adapter)
            else:
                trial.plans_before[db.label] = by_label[trial.query.label].plan[db.label]
            shaped = await plans.capture_select(db.engine, lambda t=trial, d=db: t.run_after(d))
            trial.plans_after[db.label] = await plans.summarise(db.engine, shaped)
            if db is databases[-1]:
                explained = await plans.explain(db.engine, shaped, "ANALYZE, BUFFERS")
                trial.text_after = [str(line) for line in explained]
