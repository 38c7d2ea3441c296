"""The typical searches the benchmark times: what people ask ``GET /images`` for.

Each is written as its query string and parsed with ``parse_search``, as the API does;
the names and time windows refer to ``dataset``'s catalogue, the same at every size.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataset import COCO_BY_FREQUENCY, HUMAN_TAG_NAMES, MODELS

from imagetag.domain.search import DEFAULT_PAGE_SIZE, SearchQuery, encode_cursor, parse_search

COMPARED_MODEL = MODELS[2]  # yolo11s.pt: a fifth of first runs and half of the re-runs


@dataclass(frozen=True)
class TypicalQuery:
    """A search as its query string; ``page`` 2 follows the first page's cursor."""

    params: tuple[tuple[str, str], ...]
    why: str
    page: int = 1

    @property
    def label(self) -> str:
        text = "&".join(f"{name}={value}" for name, value in self.params) or "(no filter)"
        return f"{text} p.{self.page}" if self.page > 1 else text

    def search_query(self, before_id: int | None = None) -> SearchQuery:
        """The query as the API parses it, with the default page size."""
        options = dict(self.params)
        untagged = options.pop("untagged", None)
        min_confidence = options.pop("min_confidence", None)
        return parse_search(
            **options,
            untagged=None if untagged is None else untagged == "true",
            min_confidence=None if min_confidence is None else float(min_confidence),
            limit=DEFAULT_PAGE_SIZE,
            cursor=encode_cursor(before_id) if before_id is not None else None,
        )


def _q(why: str, page: int = 1, **params: str) -> TypicalQuery:
    return TypicalQuery(tuple(params.items()), why, page)


TYPICAL_QUERIES = (
    _q("the first page of everything"),
    _q("the most frequent class (a quarter of model tags)", objects="person"),
    _q("the next page of it, through the cursor", page=2, objects="person"),
    _q("the rarest class (0.2 % of model tags)", objects=COCO_BY_FREQUENCY[-1]),
    _q("the rarest human tag (0.03 % of human tags)", tags=HUMAN_TAG_NAMES[-1]),
    _q("either of two mid classes", objects="dog,cat"),
    _q("two names, both required", tags="car,outdoor", match="all"),
    _q("a name without another", tags="car", exclude="street"),
    _q("one person's human tags", source="human", tagged_by="alice"),
    _q("a frequent class, confident only", objects="car", min_confidence="0.8"),
    _q("one model version's tags", model=f"{COMPARED_MODEL.model}@{COMPARED_MODEL.version}"),
    _q("tagged in one week, mid-year", tagged_after="2026-06-01", tagged_before="2026-06-08"),
    _q("stored in one month, early in the year", created_after="2026-03-01",
       created_before="2026-04-01"),
    _q("what people have not labelled yet", untagged="true", source="human"),
)  # fmt: skip
