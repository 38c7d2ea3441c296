"""Label rule: keep the caller's label, otherwise generate a readable one."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from imagetag.domain.errors import InvalidInput
from imagetag.domain.images import MAX_LABEL_LENGTH

_SEPARATORS = re.compile(r"[\s_\-.+]+")
_KNOWN_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")


def clean_label(raw: str) -> str:
    """Validate a label given by a caller: trimmed, non-empty, bounded."""
    label = " ".join(raw.split())
    if not label:
        raise InvalidInput("label must not be blank; omit it to have one generated", field="label")
    if len(label) > MAX_LABEL_LENGTH:
        raise InvalidInput(f"label must be at most {MAX_LABEL_LENGTH} characters", field="label")
    return label


def name_from_source(source: str | None) -> str:
    """A readable name from a file name or URL path: stem with separators as spaces."""
    if not source:
        return ""
    path = urlsplit(source).path if "://" in source else source
    last = unquote(path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1])
    stem = _KNOWN_EXTENSION.sub("", last)
    return " ".join(_SEPARATORS.sub(" ", stem).split())


def generate_label(
    *, given: str | None, objects: tuple[str, ...], source: str | None, sha256: str
) -> str:
    """Choose the image label.

    In order: the given label (trimmed); the detected object names ("bus, person");
    the source's file name stem; ``image <first 8 hex of sha256>``. Never empty.
    """
    if given is not None:
        return clean_label(given)
    names = [" ".join(name.split()) for name in objects]
    candidates = (", ".join(name for name in names if name), name_from_source(source))
    for candidate in candidates:
        if candidate:
            return _truncate(candidate)
    return f"image {sha256[:8]}"


def _truncate(text: str) -> str:
    if len(text) <= MAX_LABEL_LENGTH:
        return text
    return text[: MAX_LABEL_LENGTH - 1].rstrip() + "\u2026"
