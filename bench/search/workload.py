"""The typical searches the benchmark times: what people ask ``GET /images`` for.

Each is written as its query string and parsed with ``parse_search``, as the API does;
the names and time windows refer to ``dataset``'s catalogue, the same at every size.

Except for rare names: a fixed rare name returns a few images at 10k and a full page at
1M, and comparing those compares different work. So the "rarest" queries pick their name
on each database: the rarest one that still fills a page (``rarest_full_page``). At 10k
that is a name on about 1 % of the images, at 1M a far sparser one (the human tag: 0.01
%), so a plan that walks the images instead of the name's index entries still shows as a
large ratio.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dataset import COCO_BY_FREQUENCY, HUMAN_TAG_NAMES, MODELS
from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from imagetag.adapters.sqla.tables import ImageRow, TagRow
from imagetag.domain.search import DEFAULT_PAGE_SIZE, SearchQuery, encode_cursor, parse_search
from imagetag.domain.tags import TagSource

COMPARED_MODEL = MODELS[2]  # yolo11s.pt: a fifth of first runs and half of the re-runs


@dataclass(frozen=True)
class TypicalQuery:
    """A search as its query string; ``page`` 2 follows the first page's cursor.

    ``rarest`` (``objects`` or ``tags``) names the parameter whose value each database
    picks (``rarest_full_page``); ``search_query`` takes the picks.
    """

    params: tuple[tuple[str, str], ...]
    why: str
    page: int = 1
    rarest: str | None = None

    @property
    def label(self) -> str:
        params = self.params
        if self.rarest is not None:
            params = ((self.rarest, "<rarest full page>"), *params)
        text = "&".join(f"{name}={value}" for name, value in params) or "(no filter)"
        return f"{text} p.{self.page}" if self.page > 1 else text

    def search_query(
        self, before_id: int | None = None, picks: Mapping[str, str] | None = None
    ) -> SearchQuery:
        """The query as the API parses it, with the default page size; ``picks`` holds the
        database's ``rarest_full_page`` names by parameter."""
        options = dict(self.params)
        if self.rarest is not None:
            if picks is None or self.rarest not in picks:
                raise ValueError(f"{self.label}: pick its name on the database first")
            options[self.rarest] = picks[self.rarest]
        untagged = options.pop("untagged", None)
        min_confidence = options.pop("min_confidence", None)
        return parse_search(
            **options,
            untagged=None if untagged is None else untagged == "true",
            min_confidence=None if min_confidence is None else float(min_confidence),
            limit=DEFAULT_PAGE_SIZE,
            cursor=encode_cursor(before_id) if before_id is not None else None,
        )


def _q(why: str, page: int = 1, rarest: str | None = None, **params: str) -> TypicalQuery:
    return TypicalQuery(tuple(params.items()), why, page, rarest)


TYPICAL_QUERIES = (
    _q("the first page of everything"),
    _q("the most frequent class (a quarter of model tags)", objects="person"),
    _q("the next page of it, through the cursor", page=2, objects="person"),
    _q("the rarest class with a full page (1M: hair drier)", rarest="objects"),
    _q("the rarest human tag with a full page", rarest="tags"),
    _q("either of two mid classes", objects="dog,cat"),
    _q("two names, both required", tags="car,outdoor", match="all"),
    _q("a name without another", tags="car", exclude="street"),
    _q("one person's human tags", source="human", tagged_by="alice"),
    _q("a frequent class, confident only", objects="car", min_confidence="0.8"),
    _q("one model version's tags", model=f"{COMPARED_MODEL.model}@{COMPARED_MODEL.version}"),
    _q("tagged in one week, mid-year", tagged_after="2026-06-01", tagged_before="2026-06-08"),
    _q("stored in one month, early in the year", created_after="2026-03-01",
       created_before="2026-04-01"),
    _q("tagged in the last week: a window that reaches the newest tags",
       tagged_after="2026-12-25", tagged_before="2027-01-01"),
    _q("stored in the last month", created_after="2026-12-01", created_before="2027-01-01"),
    _q("what people have not labelled yet", untagged="true", source="human"),
)  # fmt: skip


async def rarest_full_page(engine: AsyncEngine, parameter: str) -> str:
    """The rarest name for ``parameter`` (``objects``: COCO classes as model tags,
    ``tags``: the human tag names, as tags of either source) that is on at least
    ``DEFAULT_PAGE_SIZE + 1`` live images: a search for it fills a page and finds the
    next one, as every other typical query does. Ties go to the name that sorts first."""
    images, tags = ImageRow.__table__, TagRow.__table__
    names, sources = (
        (COCO_BY_FREQUENCY, [TagSource.MODEL.value])
        if parameter == "objects"
        else (HUMAN_TAG_NAMES, [source.value for source in TagSource])
    )
    carrying = func.count(distinct(tags.c.image_id))
    statement = (
        select(tags.c.name)
        .select_from(tags.join(images, images.c.id == tags.c.image_id))
        .where(
            tags.c.removed_at.is_(None),
            images.c.deleted_at.is_(None),
            tags.c.name.in_(names),
            tags.c.source.in_(sources),
        )
        .group_by(tags.c.name)
        .having(carrying > DEFAULT_PAGE_SIZE)
        .order_by(carrying, tags.c.name)
        .limit(1)
    )
    async with engine.connect() as connection:
        name = await connection.scalar(statement)
    if name is None:
        raise SystemExit(f"no {parameter} name fills a page of {DEFAULT_PAGE_SIZE + 1} images")
    return str(name)
