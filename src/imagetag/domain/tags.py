"""Tags: a normalised name on an image, and who or what put it there.

Detected objects are tags too (``source=model``), so every label on an image has one
shape whatever produced it: a human through some client, or a detector run.
"""

from __future__ import annotations

import enum
import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo
from imagetag.domain.errors import InvalidInput
from imagetag.domain.objects import MAX_OBJECT_NAME_LENGTH, normalise_object_name
from imagetag.domain.principals import Actor

MAX_TAG_NAME_LENGTH = MAX_OBJECT_NAME_LENGTH
MAX_TAGS_PER_REQUEST = 100
# Commas separate names in queries; other punctuation beyond these reads as noise.
_TAG_PUNCTUATION = frozenset(" -.'&+/:()#")


class TagSource(enum.StrEnum):
    HUMAN = "human"
    MODEL = "model"


def parse_tag_source(raw: str) -> TagSource:
    try:
        return TagSource(raw.strip().casefold())
    except ValueError:
        raise InvalidInput("source must be 'human' or 'model'", field="source") from None


def _allowed(char: str) -> bool:
    return char in _TAG_PUNCTUATION or unicodedata.category(char)[0] in "LMN"


def check_tag_name(raw: str, *, field: str = "tags") -> str:
    """The normalised form of a tag name a person typed, or ``InvalidInput`` saying why not.

    Normalised like object names (trimmed, case-folded, Unicode NFC, ``_`` and runs of
    blanks read as one space); then 1-64 characters of letters, marks, digits, spaces and
    ``- . ' & + / : ( ) #``.
    """
    name = normalise_object_name(raw)
    if not name:
        raise InvalidInput("a tag name cannot be empty", field=field)
    if len(name) > MAX_TAG_NAME_LENGTH:
        raise InvalidInput(
            f"tag {name[:20]!r}... is longer than {MAX_TAG_NAME_LENGTH} characters", field=field
        )
    bad = sorted({char for char in name if not _allowed(char)})
    if bad:
        raise InvalidInput(
            f"tag {name!r} contains {''.join(bad)!r}; use letters, digits, spaces and "
            "- . ' & + / : ( ) #",
            field=field,
        )
    return name


def check_tag_names(raw: Iterable[str], *, field: str = "tags") -> tuple[str, ...]:
    """Several tag names: each checked, duplicates dropped, order kept."""
    names = tuple(dict.fromkeys(check_tag_name(name, field=field) for name in raw))
    if not names:
        raise InvalidInput("name at least one tag", field=field)
    if len(names) > MAX_TAGS_PER_REQUEST:
        raise InvalidInput(f"at most {MAX_TAGS_PER_REQUEST} tags at a time", field=field)
    return names


# Names seen to be normalised: every tag read back is checked, and a collection has few
# distinct names, so the check is a set lookup after the first time (bench/read).
_NORMALISED_NAMES: set[str] = set()
_MAX_REMEMBERED_NAMES = 50_000


def _is_normalised(name: str) -> bool:
    if name in _NORMALISED_NAMES:
        return True
    if not name or name != normalise_object_name(name):
        return False
    if len(_NORMALISED_NAMES) >= _MAX_REMEMBERED_NAMES:
        _NORMALISED_NAMES.clear()
    _NORMALISED_NAMES.add(name)
    return True


@dataclass(frozen=True, slots=True)
class Tag:
    """A tag on an image with its provenance.

    A ``human`` tag carries who added it (user and client) and when. A ``model`` tag also
    carries the detector and model that produced it, its confidence, its box when the
    detector gives one, and ``run_id``: the detection run it came from; its ``actor`` is
    whoever asked for that run.
    """

    name: str
    source: TagSource
    actor: Actor
    added_at: datetime
    confidence: float | None = None
    box: BoundingBox | None = None
    model: DetectorInfo | None = None
    run_id: int | None = None

    def __post_init__(self) -> None:
        if not _is_normalised(self.name):
            raise ValueError(f"tag names are stored normalised, got {self.name!r}")
        if self.added_at.tzinfo is None:
            raise ValueError("added_at must be timezone-aware")
        if self.source is TagSource.HUMAN:
            if self.confidence is not None or self.box or self.model or self.run_id:
                raise ValueError("a human tag has no confidence, box, model or run")
        elif self.confidence is None or self.model is None:
            raise ValueError("a model tag has a confidence and a model")
        elif not (math.isfinite(self.confidence) and 0.0 <= self.confidence <= 1.0):
            raise ValueError(f"confidence must be within 0..1, got {self.confidence!r}")

    @classmethod
    def by_human(cls, name: str, actor: Actor, added_at: datetime) -> Tag:
        return cls(name=name, source=TagSource.HUMAN, actor=actor, added_at=added_at)

    @classmethod
    def from_detection(
        cls, detection: Detection, actor: Actor, added_at: datetime, run_id: int | None = None
    ) -> Tag:
        return cls(
            name=detection.name,
            source=TagSource.MODEL,
            actor=actor,
            added_at=added_at,
            confidence=detection.confidence,
            box=detection.box,
            model=detection.detector,
            run_id=run_id,
        )


@dataclass(frozen=True, slots=True)
class TagCount:
    """How many live images carry a tag name: in all, and by provenance.

    An image tagged ``cat`` by a person and by a model counts once in ``images`` and once
    in each of ``human`` and ``model``.
    """

    name: str
    images: int
    human: int
    model: int
