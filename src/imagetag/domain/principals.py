"""Who is calling: API keys and the principal they authenticate."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from imagetag.domain.errors import InvalidInput

_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


def check_key_name(name: str) -> str:
    if not _KEY_NAME.fullmatch(name):
        raise InvalidInput(
            "a key name is 1-64 letters, digits, '_', '.', '@' or '-', starting with a letter "
            "or digit",
            field="name",
        )
    return name


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller; ``name`` is what gets recorded as the actor."""

    name: str


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A stored API key. Only the hash of the secret is ever kept."""

    name: str
    key_hash: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None

    def __post_init__(self) -> None:
        check_key_name(self.name)

    @property
    def active(self) -> bool:
        return self.revoked_at is None
