"""``GET /images/{id}`` answered before Litestar routes the request: the API's hot read.

Under a real server (bench/read) a read through Litestar cost ~140 us of CPU, against
~55 us for the same work called in process: its router, middleware chain, ``before_send``
hook and response plumbing are a long code path, and under socket traffic every line of it
runs slower. The front answers only the plain success, straight from the ASGI scope:

- a ``GET`` of ``/images/<digits>`` with no ``Origin`` header (CORS stays Litestar's);
- a bearer credential that the app's authenticator accepts;
- an image that exists, read through ``ImageService.get``;
- a caller within the app's rate limit (the same ``RateLimiter`` the middleware uses).

Its answer is the route's: ``image_body`` encoded by msgspec, ``content-type``,
``content-length`` and the security headers. Anything else goes on to Litestar, which
answers it as every other request (401, 404, 429 with their problem bodies, errors, CORS).
The front takes a rate token only once it has an image to send, so a request it leaves
to Litestar is counted there, once; a limited caller costs one read more before the 429.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import msgspec
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import (
    HTTPScope,
    LifeSpanReceive,
    LifeSpanScope,
    LifeSpanSend,
    Receive,
    Scope,
    Send,
)

from imagetag.entrypoints.http.auth import bearer_secret
from imagetag.entrypoints.http.rate_limit import RateLimiter
from imagetag.entrypoints.http.schemas import image_body
from imagetag.entrypoints.http.security_headers import FOR_DATA
from imagetag.ports.identity import Authenticator
from imagetag.services.images import ImageService

_PREFIX = "/images/"
# Ids are positive 64-bit integers: at most 19 digits (and int() refuses 4,300 or more).
_MAX_ID_DIGITS = 19
_JSON_HEADER = (b"content-type", b"application/json")
_encode = msgspec.json.Encoder().encode


class HotRead:
    """The plain successful ``GET /images/{id}``, or None for Litestar to answer."""

    def __init__(
        self,
        *,
        authenticator: Callable[[], Authenticator],
        images: Callable[[], ImageService],
        limiter: RateLimiter | None,
    ) -> None:
        # Providers, called per request as Litestar's dependencies are: a container
        # override made after the app was built applies here too.
        self._authenticator = authenticator
        self._images = images
        self._limiter = limiter

    async def body(self, scope: Scope) -> bytes | None:
        path: str = scope["path"]
        digits = path[len(_PREFIX) :]
        if not (
            path.startswith(_PREFIX)
            and len(digits) <= _MAX_ID_DIGITS
            and digits.isascii()
            and digits.isdigit()
        ):
            return None
        authorization = None
        for name, value in scope["headers"]:
            name = name.lower()
            if name == b"origin":
                return None
            if name == b"authorization" and authorization is None:
                authorization = value
        secret = bearer_secret(authorization) if authorization else None
        if secret is None:
            return None
        try:
            principal = await self._authenticator().authenticate(secret)
            image = await self._images().get(int(digits))
        except Exception:
            # A refusal (401, 404) or a failure: Litestar meets it again and answers it as
            # it answers every request, with its problem body and its logging.
            return None
        if self._limiter is not None and self._limiter.acquire(principal.user) > 0:
            return None
        return _encode(image_body(image))


class ImagetagApp(Litestar):
    """Litestar with the hot read in front of its router."""

    hot_read: HotRead | None = None

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        if self.hot_read is not None and scope["type"] == ScopeType.HTTP:
            request = cast("HTTPScope", scope)
            body = await self.hot_read.body(request) if request["method"] == "GET" else None
            if body is not None:
                await _send_json(body, cast("Send", send))
                return
        await super().__call__(scope, receive, send)


async def _send_json(body: bytes, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                _JSON_HEADER,
                (b"content-length", str(len(body)).encode("latin-1")),
                *FOR_DATA,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
