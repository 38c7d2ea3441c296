"""A time limit on receiving a request's body, against clients that trickle it.

A client that sends a large body a few bytes at a time holds a connection, and the
request's memory, for as long as it likes: uvicorn bounds the wait between requests, not
the body. Here the whole body must arrive within ``seconds`` of the handler's start; past
that the answer is 408 and uvicorn closes the connection. Once the body is in, the limit
no longer applies (a handler may wait on ``receive`` for a disconnect).
"""

from __future__ import annotations

import asyncio

from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

# The app's state holds the limit (IMAGETAG_BODY_TIMEOUT_SECONDS) under this key.
BODY_TIMEOUT_STATE = "body_timeout_seconds"


class RequestBodyTimeout(HTTPException):
    status_code = 408


def limit_body_time(app: ASGIApp) -> ASGIApp:
    """Middleware for the handlers that read a body (declared on each, so that the hot
    reads carry no extra layer): 408 when the body takes longer than the app's limit."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        seconds: float = scope["app"].state[BODY_TIMEOUT_STATE]
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
