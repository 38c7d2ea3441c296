"""Making and checking API key secrets."""

from __future__ import annotations

from typing import Protocol


class KeyHasher(Protocol):
    def new_secret(self) -> str:
        """A fresh random key, shown to its owner once."""
        ...

    def hash(self, secret: str) -> str:
        """The only form of the key that is stored."""
        ...
