"""Which images a search returns: the rules every store must agree with."""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from imagetag.domain.detections import DetectorInfo
from imagetag.domain.errors import InvalidInput
from imagetag.domain.objects import parse_object_names
from imagetag.domain.tags import Tag, TagSource, parse_tag_source

if TYPE_CHECKING:
    from imagetag.domain.images import Image

DEFAULT_PAGE_SIZE = 100
# Ids are 64-bit signed integers in every store.
MAX_IMAGE_ID = 2**63 - 1
MAX_PAGE_SIZE = 1000


class Match(enum.StrEnum):
    ANY = "any"
    ALL = "all"


def parse_match(raw: str | Match) -> Match:
    """``any`` or ``all``, in any case and with surrounding blanks."""
    try:
        return Match(raw.strip().casefold() if isinstance(raw, str) else raw)
    except ValueError:
        raise InvalidInput("match must be 'any' or 'all'", field="match") from None


def parse_names(raw: str | list[str], field: str) -> tuple[str, ...]:
    """The names of an ``objects=``, ``tags=`` or ``exclude=`` parameter; at least one."""
    names = parse_object_names(raw)
    if not names:
        raise InvalidInput(f"{field} must name at least one, e.g. {field}=dog,cat", field=field)
    return names


@dataclass(frozen=True, slots=True)
class ModelRef:
    """``model=NAME[@VERSION]``: tags from a model of that name, optionally that version
    (``DetectorInfo.model_version``: the weights' sha256 prefix, or the library version)."""

    name: str
    version: str | None = None

    @classmethod
    def parse(cls, raw: str) -> ModelRef:
        name, at, version = raw.strip().rpartition("@") if "@" in raw else (raw.strip(), "", "")
        name, version = name.strip(), version.strip()
        if not name or (at and not version):
            raise InvalidInput(
                "model must read NAME or NAME@VERSION, e.g. yolo11n.pt@3b2c1f0e9d8a", field="model"
            )
        return cls(name, version or None)

    def matches(self, info: DetectorInfo) -> bool:
        return info.model == self.name and (
            self.version is None or info.model_version == self.version
        )


def parse_time_bound(raw: str, field: str) -> datetime:
    """An ISO 8601 date or datetime as an instant. A date means its midnight, UTC; a
    datetime without an offset is read as UTC."""
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{field} must be an ISO 8601 date or datetime, e.g. 2026-11-25 or "
            "2026-11-25T14:30:00Z",
            field=field,
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _names_match(wanted: tuple[str, ...], present: set[str], match: Match) -> bool:
    if match is Match.ALL:
        return all(name in present for name in wanted)
    return any(name in present for name in wanted)


def check_range(after: datetime | None, before: datetime | None, prefix: str = "") -> None:
    """A half-open time range, its fields named ``{prefix}after`` and ``{prefix}before``."""
    for name, value in ((f"{prefix}after", after), (f"{prefix}before", before)):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware")
    if after is not None and before is not None and after >= before:
        raise InvalidInput(
            f"{prefix}after must be earlier than {prefix}before", field=f"{prefix}after"
        )


def check_page(limit: int, before_id: int | None) -> None:
    """A page size and a keyset cursor, as every listing takes them."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")
    if before_id is not None and not 0 < before_id <= MAX_IMAGE_ID:
        raise InvalidInput("cursor is not valid", field="cursor")


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Which images a search returns: a page, newest (highest id) first.

    The tag conditions look only at *qualifying* tags: live tags that pass every
    provenance filter given (``source``, ``model``, ``min_confidence`` — which human tags
    always pass —, ``tagged_by``, ``tagged_after``/``tagged_before``). Then:

    - ``objects``: qualifying model tags with any (``match=any``) or all of the names;
    - ``tags``: qualifying tags of either source with any or all of the names;
    - ``exclude``: no qualifying tag has any of the names;
    - ``untagged=True``: no qualifying tag; ``False``: at least one. With no ``objects``,
      ``tags`` or ``untagged`` given, a provenance filter asks for at least one.

    Time ranges are half-open: ``after <= t < before``. ``before_id`` is the keyset cursor.
    """

    objects: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    match: Match = Match.ANY
    exclude: tuple[str, ...] = ()
    untagged: bool | None = None
    min_confidence: float | None = None
    source: TagSource | None = None
    model: ModelRef | None = None
    tagged_by: str | None = None
    tagged_after: datetime | None = None
    tagged_before: datetime | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = DEFAULT_PAGE_SIZE
    before_id: int | None = None

    def __post_init__(self) -> None:
        check_page(self.limit, self.before_id)
        if self.min_confidence is not None and not (
            math.isfinite(self.min_confidence) and 0.0 <= self.min_confidence <= 1.0
        ):
            raise InvalidInput("min_confidence must be within 0..1", field="min_confidence")
        if self.untagged and (self.objects or self.tags):
            raise InvalidInput(
                "untagged=true finds images without tags; drop tags= and objects=",
                field="untagged",
            )
        if self.source is TagSource.HUMAN and (self.objects or self.model is not None):
            field = "objects" if self.objects else "model"
            raise InvalidInput(
                f"{field}= selects model tags, which source=human excludes", field=field
            )
        clash = sorted(set(self.exclude) & (set(self.tags) | set(self.objects)))
        if clash:
            raise InvalidInput(
                f"{', '.join(clash)} is both asked for and excluded", field="exclude"
            )
        if self.tagged_by is not None and not self.tagged_by:
            raise InvalidInput("tagged_by must name a user", field="tagged_by")
        check_range(self.tagged_after, self.tagged_before, "tagged_")
        check_range(self.created_after, self.created_before, "created_")

    @property
    def filters_provenance(self) -> bool:
        return (
            self.source is not None
            or self.model is not None
            or self.min_confidence is not None
            or self.tagged_by is not None
            or self.tagged_after is not None
            or self.tagged_before is not None
        )

    @property
    def wants_some_qualifying_tag(self) -> bool:
        """Whether an image needs a qualifying tag for no other reason than the filters."""
        if self.untagged is not None:
            return not self.untagged
        return self.filters_provenance and not self.objects and not self.tags

    def qualifies(self, tag: Tag) -> bool:
        """Whether a live tag passes the provenance filters."""
        if self.source is not None and tag.source is not self.source:
            return False
        if self.model is not None and (tag.model is None or not self.model.matches(tag.model)):
            return False
        if (
            self.min_confidence is not None
            and tag.confidence is not None
            and tag.confidence < self.min_confidence
        ):
            return False
        if self.tagged_by is not None and tag.actor.user != self.tagged_by:
            return False
        if self.tagged_after is not None and tag.added_at < self.tagged_after:
            return False
        return self.tagged_before is None or tag.added_at < self.tagged_before

    def includes(self, image: Image) -> bool:
        """The pure predicate the storage adapters must agree with."""
        if self.before_id is not None and image.id >= self.before_id:
            return False
        if self.created_after is not None and image.created_at < self.created_after:
            return False
        if self.created_before is not None and image.created_at >= self.created_before:
            return False
        qualifying = [tag for tag in image.tags if self.qualifies(tag)]
        names = {tag.name for tag in qualifying}
        if self.objects:
            found = {tag.name for tag in qualifying if tag.source is TagSource.MODEL}
            if not _names_match(self.objects, found, self.match):
                return False
        if self.tags and not _names_match(self.tags, names, self.match):
            return False
        if names & set(self.exclude):
            return False
        if self.untagged and qualifying:
            return False
        return not (self.wants_some_qualifying_tag and not qualifying)


_CURSOR_PREFIX = "i"
_CURSOR = re.compile(_CURSOR_PREFIX + "[1-9a-f][0-9a-f]{0,15}")


def encode_cursor(before_id: int) -> str:
    """An opaque cursor for the page after the image with id ``before_id``."""
    return f"{_CURSOR_PREFIX}{before_id:x}"


def decode_cursor(cursor: str) -> int:
    """The id an ``encode_cursor`` cursor holds; anything else is invalid input."""
    if not _CURSOR.fullmatch(cursor):
        raise InvalidInput(
            "cursor is not valid; pass the next_cursor of a previous page", field="cursor"
        )
    value = int(cursor[len(_CURSOR_PREFIX) :], 16)
    if value > MAX_IMAGE_ID:
        raise InvalidInput(
            "cursor is not valid; pass the next_cursor of a previous page", field="cursor"
        )
    return value


def parse_search(
    *,
    objects: str | None = None,
    tags: str | None = None,
    match: str = "any",
    exclude: str | None = None,
    untagged: bool | None = None,
    min_confidence: float | None = None,
    source: str | None = None,
    model: str | None = None,
    tagged_by: str | None = None,
    tagged_after: str | None = None,
    tagged_before: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> SearchQuery:
    """A ``SearchQuery`` from the text of query parameters or command-line options, named
    alike; each refusal is ``InvalidInput`` naming the parameter."""

    def bound(raw: str | None, field: str) -> datetime | None:
        return parse_time_bound(raw, field) if raw is not None else None

    return SearchQuery(
        objects=parse_names(objects, "objects") if objects is not None else (),
        tags=parse_names(tags, "tags") if tags is not None else (),
        match=parse_match(match),
        exclude=parse_names(exclude, "exclude") if exclude is not None else (),
        untagged=untagged,
        min_confidence=min_confidence,
        source=parse_tag_source(source) if source is not None else None,
        model=ModelRef.parse(model) if model is not None else None,
        tagged_by=tagged_by.strip() if tagged_by is not None else None,
        tagged_after=bound(tagged_after, "tagged_after"),
        tagged_before=bound(tagged_before, "tagged_before"),
        created_after=bound(created_after, "created_after"),
        created_before=bound(created_before, "created_before"),
        limit=limit,
        before_id=decode_cursor(cursor) if cursor is not None else None,
    )
