"""Role guards: a caller without the role gets 403 before the request body is read.

The services check roles too; the guard only makes the refusal cheap and early. Guards are
coroutines: Litestar runs a plain function guard in a worker thread, a hop (~0.2 ms) on
every request, in the pool that hashes and stores uploads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from imagetag.domain.principals import Principal, Role
from imagetag.services.authorization import require

# Litestar's ``Guard`` may be sync or async; these are always coroutines (see above).
AsyncGuard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def requires(role: Role) -> AsyncGuard:
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = connection.scope.get("user")
        assert isinstance(principal, Principal), "the auth middleware runs first"
        require(principal, role)

    return guard


TAGGER_ONLY = [requires(Role.TAGGER)]
ADMIN_ONLY = [requires(Role.ADMIN)]
