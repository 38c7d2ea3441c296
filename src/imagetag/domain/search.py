"""Which images a search by detected objects returns."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from imagetag.domain.errors import InvalidInput
from imagetag.domain.objects import parse_object_names

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


@dataclass(frozen=True, slots=True)
class ObjectFilter:
    """Images having any (or all) of a set of normalised object names."""

    names: tuple[str, ...]
    match: Match = Match.ANY

    def __post_init__(self) -> None:
        if not self.names:
            raise InvalidInput("objects must name at least one object, e.g. objects=dog,cat")

    @classmethod
    def parse(cls, raw: str | list[str], match: str | Match = Match.ANY) -> ObjectFilter:
        mode = parse_match(match)
        names = parse_object_names(raw)
        if not names:
            raise InvalidInput(
                "objects must name at least one object, e.g. objects=dog,cat", field="objects"
            )
        return cls(names, mode)

    def matches(self, image_objects: Iterable[str]) -> bool:
        present = set(image_objects)
        if self.match is Match.ALL:
            return all(name in present for name in self.names)
        return any(name in present for name in self.names)


@dataclass(frozen=True, slots=True)
class ImageQuery:
    """A page of images, newest first, optionally filtered by detected objects.

    ``before_id`` is the keyset cursor: only images with a smaller id are returned.
    """

    objects: ObjectFilter | None = None
    limit: int = DEFAULT_PAGE_SIZE
    before_id: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")
        if self.before_id is not None and not 0 < self.before_id <= MAX_IMAGE_ID:
            raise InvalidInput("cursor is not valid", field="cursor")

    def includes(self, image_id: int, image_objects: Iterable[str]) -> bool:
        """The pure predicate the storage adapters must agree with."""
        if self.before_id is not None and image_id >= self.before_id:
            return False
        return self.objects is None or self.objects.matches(image_objects)


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
