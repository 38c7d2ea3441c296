"""Object names: how detector class names and query terms are normalised."""

from __future__ import annotations

import unicodedata

MAX_OBJECT_NAME_LENGTH = 64
_QUOTES = "\"'`\u2018\u2019\u201c\u201d"


def normalise_object_name(raw: str) -> str:
    """Return the canonical form of an object name, or "" if nothing is left.

    Trims whitespace and surrounding quotes, folds case, applies Unicode NFC and
    collapses inner runs of whitespace or underscores to one space, so that
    ``"Traffic_Light"``, ``' traffic  light '`` and ``traffic light`` are one name.
    """
    if raw.isascii():
        # The common case, and a hot one (every stored tag is checked when read): ASCII is
        # NFC already, and folds to lower case.
        text = " ".join(raw.replace("_", " ").lower().split())
    else:
        # NFC again after folding: folding some composed letters (e.g. "ǰ") decomposes them.
        folded = unicodedata.normalize("NFC", raw).replace("_", " ").casefold()
        text = " ".join(unicodedata.normalize("NFC", folded).split())
    # Stripping quotes can expose blanks and blanks can hide quotes: repeat until stable,
    # so that normalising twice changes nothing.
    while (stripped := text.strip(_QUOTES).strip()) != text:
        text = stripped
    return text


def parse_object_names(raw: str | list[str]) -> tuple[str, ...]:
    """Split a comma-separated query (or several) into unique normalised names, in order.

    The whole value may itself be quoted, as in the spec's ``objects="dog,cat"``.
    """
    parts = [raw] if isinstance(raw, str) else list(raw)
    names: list[str] = []
    for part in parts:
        for piece in part.strip().strip(_QUOTES).split(","):
            name = normalise_object_name(piece)
            if name and name not in names:
                names.append(name)
    return tuple(names)
