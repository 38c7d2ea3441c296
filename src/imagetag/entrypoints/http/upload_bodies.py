"""Reading upload bodies so that an image is never held whole more than once.

A JSON body is read once into one buffer (Litestar's ``request.body()`` joins a list of
chunks, twice the body for a moment), its ``image`` string is taken as a view of that
buffer (``msgspec.Raw``) and base64-decoded a window at a time into a spooled temporary
file, which rolls to disk past ``SPOOL_BYTES``. See bench/memory.
"""

from __future__ import annotations

import binascii
import tempfile
from typing import IO, Any

import msgspec
from litestar import Request

from imagetag.domain.errors import InvalidInput

SPOOL_BYTES = 1024 * 1024
# Base64 text decoded at a time: a multiple of 4 characters, so windows split no quantum.
_WINDOW = 4 * 256 * 1024


async def read_body(request: Request[Any, Any, Any]) -> memoryview:
    """The whole request body in one buffer; Litestar's size limit applies as it streams."""
    chunks = request.stream()
    # The first step checks the announced length against the limit before reading.
    first = await anext(chunks)
    announced = request.content_length
    if announced is None:
        buffer = bytearray(first)
        async for chunk in chunks:
            buffer += chunk
        return memoryview(buffer)
    buffer = bytearray(max(announced, len(first)))
    buffer[: len(first)] = first
    filled = len(first)
    async for chunk in chunks:
        if filled + len(chunk) > len(buffer):
            raise InvalidInput("the request body is longer than its Content-Length")
        buffer[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    return memoryview(buffer)[:filled]


def json_value_given(raw: msgspec.Raw) -> bool:
    """Whether a ``msgspec.Raw`` field was sent with a value other than null."""
    text = memoryview(raw)
    return len(text) > 0 and not (len(text) == 4 and bytes(text) == b"null")


def decode_base64_field(raw: msgspec.Raw, field: str) -> IO[bytes]:
    """The bytes a JSON string of base64 holds, in a spooled temporary file that the
    caller closes. A blocking call, for a worker thread when the text is large.
    """
    text = memoryview(raw)
    if len(text) < 2 or text[0] != ord('"'):
        raise InvalidInput(f"'{field}' must be a string of base64", field=field)
    encoded = text[1:-1]
    decoded = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (returned)
    try:
        for start in range(0, len(encoded), _WINDOW):
            window = bytes(encoded[start : start + _WINDOW])
            if b"\\" in window:
                # JSON escapes (e.g. "\/" for "/"): rare enough to decode the plain way.
                decoded.seek(0)
                decoded.truncate()
                decoded.write(_b64decode(msgspec.json.decode(raw, type=str).encode(), field))
                break
            # Padding may end only the last window.
            if start + _WINDOW < len(encoded) and b"=" in window:
                raise InvalidInput(f"'{field}' is not valid base64", field=field)
            # Surplus padding after a whole quantum, alone in the last window: the
            # whole-string decoder accepts it, so this does too.
            if start and not window.strip(b"="):
                break
            decoded.write(_b64decode(window, field))
    except BaseException:
        decoded.close()
        raise
    decoded.seek(0)
    return decoded


def _b64decode(text: bytes | memoryview, field: str) -> bytes:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        raise InvalidInput(f"'{field}' is not valid base64", field=field) from None
