"""Who is calling: actors, roles, API keys and the principal they authenticate."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime

from imagetag.domain.errors import InvalidInput

_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
MAX_ACTOR_NAME_LENGTH = 200


def check_key_name(name: str, *, field: str = "name") -> str:
    """Key, user and client names chosen here: short, and safe in a shell and a URL."""
    if not _KEY_NAME.fullmatch(name):
        what = "key name" if field == "name" else field
        raise InvalidInput(
            f"a {what} is 1-64 letters, digits, '_', '.', '@' or '-', starting with a "
            "letter or digit",
            field=field,
        )
    return name


class Role(enum.StrEnum):
    """What a principal may do; each role includes the ones before it."""

    READER = "reader"
    TAGGER = "tagger"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(needed)


def parse_role(raw: str) -> Role:
    try:
        return Role(raw.strip().casefold())
    except ValueError:
        raise InvalidInput(
            f"role must be one of {', '.join(role.value for role in Role)}", field="role"
        ) from None


def _check_actor_part(name: str, value: str) -> None:
    if not value or len(value) > MAX_ACTOR_NAME_LENGTH or not value.isprintable():
        raise ValueError(f"an actor's {name} is 1-{MAX_ACTOR_NAME_LENGTH} printable characters")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something: a user, through a client (e.g. ``alice`` via ``labelling-ui``).

    Names come from API keys or identity-provider claims, so only their length and
    printability are checked here.
    """

    user: str
    client: str

    def __post_init__(self) -> None:
        _check_actor_part("user", self.user)
        _check_actor_part("client", self.client)

    def __str__(self) -> str:
        return f"{self.user} via {self.client}"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: who they are, through which client, and what they may do."""

    actor: Actor
    role: Role

    @property
    def user(self) -> str:
        return self.actor.user

    def may(self, needed: Role) -> bool:
        return self.role.allows(needed)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A stored API key. Only the hash of the secret is ever kept.

    A key belongs to a user and names the client that uses it.
    """

    name: str
    key_hash: str
    prefix: str
    created_at: datetime
    user: str
    client: str
    role: Role
    revoked_at: datetime | None = None

    def __post_init__(self) -> None:
        check_key_name(self.name)
        Actor(self.user, self.client)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def principal(self) -> Principal:
        return Principal(Actor(self.user, self.client), self.role)
