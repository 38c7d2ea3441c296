"""Response headers that make browsers treat API answers as data, never as a page."""

from __future__ import annotations

from collections.abc import Callable

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

# The docs pages (/schema) run the OpenAPI viewers' scripts; everything else is data.
DOCS_PREFIX = "/schema"
_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_DATA_ONLY = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
    "X-Frame-Options": "DENY",
}


def security_headers() -> Callable[[ASGIApp], ASGIApp]:
    def middleware(app: ASGIApp) -> ASGIApp:
        async def add_headers(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            docs = scope["path"] == DOCS_PREFIX or scope["path"].startswith(DOCS_PREFIX + "/")
            extra = _ALWAYS if docs else {**_ALWAYS, **_DATA_ONLY}

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = MutableScopeHeaders.from_message(message)
                    for name, value in extra.items():
                        if name not in headers:
                            headers[name] = value
                await send(message)

            await app(scope, receive, send_with_headers)

        return add_headers

    return middleware
