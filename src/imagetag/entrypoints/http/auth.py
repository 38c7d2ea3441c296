"""Bearer API-key authentication for every route but health and docs."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from imagetag.domain.errors import AuthenticationFailed
from imagetag.services.keys import KeyService

PUBLIC_PATHS = ("^/health$", "^/schema")


class ApiKeyAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        # Scanning the raw header list skips building a Headers object on the hot path.
        header = next(
            (
                value.decode("latin-1")
                for name, value in connection.scope["headers"]
                if name.lower() == b"authorization"
            ),
            None,
        )
        if not header:
            raise NotAuthorizedException(
                "this endpoint needs an API key: send 'Authorization: Bearer <key>'"
            )
        scheme, _, secret = header.partition(" ")
        secret = secret.strip()
        if scheme.casefold() != "bearer" or not secret:
            raise NotAuthorizedException("the Authorization header must read 'Bearer <key>'")
        keys: KeyService = connection.app.state.container.keys()
        try:
            principal = await keys.authenticate(secret)
        except AuthenticationFailed as error:
            raise NotAuthorizedException(str(error)) from None
        return AuthenticationResult(user=principal, auth=None)
