"""Who is calling: checking a bearer credential, and making and checking API key secrets."""

from __future__ import annotations

from typing import Protocol

from imagetag.domain.principals import Principal


class Authenticator(Protocol):
    """Turns the credential of an ``Authorization: Bearer`` header into a principal.

    API keys (``KeyService``) and identity-provider tokens (OIDC) both satisfy it.
    """

    async def authenticate(self, bearer: str, /) -> Principal:
        """The caller the credential stands for; raises ``AuthenticationFailed``, whose
        message never repeats the credential, when it is not accepted."""
        ...


class KeyHasher(Protocol):
    def new_secret(self) -> str:
        """A fresh random key, shown to its owner once."""
        ...

    def hash(self, secret: str) -> str:
        """The only form of the key that is stored."""
        ...
