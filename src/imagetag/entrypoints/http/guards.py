"""Role guards: a caller without the role gets 403 before the request body is read.

The services check roles too; the guard only makes the refusal cheap and early. Guards are
coroutines: Litestar runs a plain function guard in a worker thread, a hop (~0.2 ms) on
every request, in the pool that hashes and stores uploads.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from imagetag.domain.principals import Principal, Role
from imagetag.services.authorization import require


def requires(role: Role) -> Guard:
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = connection.scope.get("user")
        assert isinstance(principal, Principal), "the auth middleware runs first"
        require(principal, role)

    return guard


TAGGER_ONLY = [requires(Role.TAGGER)]
ADMIN_ONLY = [requires(Role.ADMIN)]
