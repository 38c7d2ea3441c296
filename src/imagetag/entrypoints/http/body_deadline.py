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
        body_done = False

        async def receive_until_done() -> ReceiveMessage:
            nonlocal body_done
            message = await receive()
            if not body_done and (
                message["type"] != "http.request" or not message.get("more_body")
            ):
                body_done = True
                deadline.reschedule(None)
            return message

        # One timer for the whole body, not one per message (~7 us each, 800 for 50 MB);
        # once the body is in, it is switched off.
        try:
            async with asyncio.timeout(seconds) as deadline:
                await app(scope, receive_until_done, send)
        except TimeoutError:
            if not deadline.expired():
                raise  # the handler's own time limit, not the body's
            raise RequestBodyTimeout(
                f"the request body did not arrive within {seconds:g} s; send it "
                "faster, or a smaller image"
            ) from None

    return guarded
