"""Response headers that make browsers treat API answers as data, never as a page.

A ``before_send`` hook rather than a middleware: it sees every response, including the
errors Litestar renders for exceptions raised in middleware (a 401 from the key check).
"""

from __future__ import annotations

from litestar.types import Message, Scope

# The docs pages (/schema) run the OpenAPI viewers' scripts; everything else is data.
DOCS_PREFIX = "/schema"
_ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
FOR_DATA = [
    *_ALWAYS,
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'; sandbox"),
    (b"x-frame-options", b"DENY"),
]


async def add_security_headers(message: Message, scope: Scope) -> None:
    """Append the headers, encoded once, to every response start."""
    if message["type"] != "http.response.start":
        return
    path = scope["path"]
    docs = path == DOCS_PREFIX or path.startswith(DOCS_PREFIX + "/")
    message["headers"] = [*message.get("headers", ()), *(_ALWAYS if docs else FOR_DATA)]
