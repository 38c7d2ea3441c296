"""A stand-in for Imagga's v2 API on loopback: real HTTP, Imagga's documented contract.

It checks HTTP Basic credentials, takes multipart uploads, answers ``/v2/tags`` for an
upload id (or an ``image_url``) honouring ``threshold`` and ``limit`` and refusing bytes
that are no image with 400, deletes uploads, and wraps every answer as Imagga does:
``{"result": ..., "status": {"type": ..., "text": ...}}``.

Faults are switched on per test: a rejected image, error statuses (with ``Retry-After``),
slow answers and dropped connections, each for the next N requests to a path.
"""

from __future__ import annotations

import base64
import contextlib
import email.parser
import email.policy
import http.server
import io
import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image as PillowImage

UNAUTHORISED_TEXT = "You are not authorized to access this resource."


def _decodes(data: bytes) -> bool:
    """Whether the bytes are a whole image, as Imagga's own decoder would find."""
    try:
        with PillowImage.open(io.BytesIO(data)) as image:
            image.load()
    except (OSError, SyntaxError, ValueError):
        return False
    return True


DEFAULT_TAGS = (("bus", 61.4), ("Street_Sign", 45.0), ("vehicle", 33.3), ("road", 12.0))


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, str]
    at: float
    authorised: bool


@dataclass(slots=True)
class _Fault:
    kind: str  # "status", "slow" or "drop"
    remaining: int
    path: str | None
    status: int = 500
    text: str = "Internal server error"
    retry_after: str | None = None
    seconds: float = 0.0


@dataclass
class FakeImagga:
    """Imagga's behaviour and what it received; the test changes it between requests."""

    api_key: str = "acc_test_key"
    api_secret: str = "imagga-test-secret-0123456789"
    tags: tuple[tuple[str, float], ...] = DEFAULT_TAGS
    rejection: str | None = None
    received: list[Received] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    _faults: list[_Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: threading.Event = field(default_factory=threading.Event)
    base_url: str = ""

    def reject_images(self, text: str = "Unsupported image format.") -> None:
        """``/v2/tags`` refuses every image with 400 and ``text``, as for a corrupt file."""
        self.rejection = text

    def fail_next(
        self,
        count: int,
        status: int = 500,
        *,
        path: str | None = None,
        text: str = "Internal server error",
        retry_after: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests (to ``path``, or any) with an error body."""
        self._faults.append(_Fault("status", count, path, status, text, retry_after))

    def slow_next(self, count: int, seconds: float, *, path: str | None = None) -> None:
        """Wait ``seconds`` before answering the next ``count`` requests."""
        self._faults.append(_Fault("slow", count, path, seconds=seconds))

    def drop_next(self, count: int, *, path: str | None = None) -> None:
        """Close the connection of the next ``count`` requests without answering."""
        self._faults.append(_Fault("drop", count, path))

    def calls(self, method: str, path: str) -> list[Received]:
        return [seen for seen in self.received if (seen.method, seen.path) == (method, path)]

    def reset(self) -> None:
        with self._lock:
            self.rejection = None
            self.received.clear()
            self.uploads.clear()
            self.deleted.clear()
            self._faults.clear()

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.path in (None, path):
                    fault.remaining -= 1
                    return fault
        return None

    def _authorised(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()
        return header == f"Basic {expected}"


class _Handler(http.server.BaseHTTPRequestHandler):
    fake: FakeImagga

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.fake
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        authorised = fake._authorised(self.headers.get("Authorization"))
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        with fake._lock:
            fake.received.append(
                Received(self.command, url.path, query, time.monotonic(), authorised)
            )
        fault = fake._take_fault(url.path)
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.kind == "slow":
            fake._closing.wait(fault.seconds)
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._error(fault.status, fault.text, headers)
            return
        if not authorised:
            self._error(401, UNAUTHORISED_TEXT, {"WWW-Authenticate": 'Basic realm="imagga"'})
            return
        if self.command == "POST" and url.path == "/v2/uploads":
            self._upload(body)
        elif self.command == "GET" and url.path == "/v2/tags":
            self._tags(query)
        elif self.command == "DELETE" and url.path.startswith("/v2/uploads/"):
            upload_id = url.path.removeprefix("/v2/uploads/")
            with fake._lock:
                found = fake.uploads.pop(upload_id, None) is not None
                if found:
                    fake.deleted.append(upload_id)
            if found:
                self._success({})
            else:
                self._error(404, "Upload not found.")
        else:
            self._error(404, "Resource not found.")

    def _upload(self, body: bytes) -> None:
        image = _multipart_field(self.headers.get("Content-Type", ""), body, "image")
        if not image:
            self._error(400, "No image was sent in the 'image' field.")
            return
        upload_id = "i" + uuid.uuid4().hex
        with self.fake._lock:
            self.fake.uploads[upload_id] = image
        self._success({"upload_id": upload_id})

    def _tags(self, query: dict[str, str]) -> None:
        upload_id = query.get("image_upload_id")
        if upload_id is None and "image_url" not in query:
            self._error(400, "Either image_url or image_upload_id is required.")
            return
        if upload_id is not None and upload_id not in self.fake.uploads:
            self._error(400, "There is no upload with this id.")
            return
        if self.fake.rejection is not None:
            self._error(400, self.fake.rejection)
            return
        if upload_id is not None and not _decodes(self.fake.uploads[upload_id]):
            self._error(400, "The file is not a valid image.")
            return
        try:
            threshold = float(query.get("threshold", "0"))
            limit = int(query.get("limit", "-1"))
        except ValueError:
            self._error(400, "Invalid threshold or limit.")
            return
        ranked = sorted(self.fake.tags, key=lambda tag: -tag[1])
        kept = [(name, score) for name, score in ranked if score >= threshold]
        if limit >= 0:
            kept = kept[:limit]
        self._success(
            {"tags": [{"confidence": score, "tag": {"en": name}} for name, score in kept]}
        )

    def _success(self, result: dict[str, Any]) -> None:
        self._json(200, {"result": result, "status": {"type": "success", "text": ""}})

    def _error(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"status": {"type": "error", "text": text}}, headers)

    def _json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _multipart_field(content_type: str, body: bytes, name: str) -> bytes | None:
    if not content_type.startswith("multipart/form-data"):
        return None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == name:
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else None
    return None


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out is gone before a slow answer is written: expected here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def running_fake_imagga(fake: FakeImagga | None = None) -> Iterator[FakeImagga]:
    """Serve ``fake`` (a new one by default) on loopback; ``fake.base_url`` is its address."""
    fake = fake or FakeImagga()
    handler = type("FakeImaggaHandler", (_Handler,), {"fake": fake})
    server = _Server(("127.0.0.1", 0), handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll interval: shutdown() waits up to one interval, once per test.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake._closing.set()
        server.shutdown()
        server.server_close()
