"""A time limit on receiving a request's body, against clients that trickle it.

A client that sends a large body a few bytes at a time holds a connection, and the
request's memory, for as long as it likes: uvicorn bounds the wait between requests, not
the body. Here the whole body must arrive within ``seconds`` of the request's start; past
that the answer is 408 and uvicorn closes the connection. Once the body is in, the limit
no longer applies (a handler may wait on ``receive`` for a disconnect).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


class RequestBodyTimeout(HTTPException):
    status_code = 408


def body_deadline(seconds: float) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware: 408 when a request's body takes longer than ``seconds`` to arrive."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            # No handler reads a GET's body: the hot reads skip the wrapper.
            if scope["type"] != ScopeType.HTTP or scope["method"] in _BODILESS:
                await app(scope, receive, send)
                return
            deadline = asyncio.get_running_loop().time() + seconds
            body_done = False

            async def receive_in_time() -> ReceiveMessage:
                nonlocal body_done
                if body_done:
                    return await receive()
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    raise RequestBodyTimeout(
                        f"the request body did not arrive within {seconds:g} s; send it "
                        "faster, or a smaller image"
                    ) from None
                body_done = message["type"] != "http.request" or not message.get("more_body")
                return message

            await app(scope, receive_in_time, send)

        return guarded

    return middleware
