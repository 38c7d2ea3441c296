"""The near-limit reference for ``GET /images/{id}``: a bare ASGI app over stdlib sqlite3.

It answers with the same JSON body as the real server, built per request from one SQL
statement on the same database file (opened read-only, named by ``BARE_DB_PATH``). It keeps
nothing between requests but the connection. The body mirrors the mapping in
``imagetag.entrypoints.http.schemas``; run.py compares the two and stops when they drift
apart. It insists that an ``Authorization: Bearer`` header is present but, unlike the real
server, does not look the key up.

    BARE_DB_PATH=/path/imagetag.db uvicorn --app-dir bench/read bare_app:app
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# One statement: the image and its detections (if any) in detection order.
IMAGE_QUERY = """
SELECT i.id, i.label, i.source, i.sha256, i.media_type, i.width, i.height, i.size_bytes,
       i.created_at, i.created_by, i.detection_status, i.detection_error,
       d.name, d.confidence, d.x_min, d.y_min, d.x_max, d.y_max, d.detector, d.model,
       d.provenance
FROM images AS i LEFT JOIN detections AS d ON d.image_id = i.id
WHERE i.id = ?
ORDER BY d.id
"""

_PREFIX = "/images/"
_JSON_HEADERS = [(b"content-type", b"application/json")]

_db = sqlite3.connect(
    f"file:{os.environ['BARE_DB_PATH']}?mode=ro", uri=True, check_same_thread=False
)


def _detection(row: tuple[Any, ...]) -> dict[str, Any]:
    name, confidence, x_min, y_min, x_max, y_max, detector, model, provenance = row[12:]
    extra: dict[str, Any] = json.loads(provenance) if provenance else {}
    has_box = None not in (x_min, y_min, x_max, y_max)
    return {
        "name": name,
        "confidence": round(confidence, 4),
        "box": {
            "x_min": round(x_min, 5),
            "y_min": round(y_min, 5),
            "x_max": round(x_max, 5),
            "y_max": round(y_max, 5),
        }
        if has_box
        else None,
        "model": {
            "detector": detector,
            "model": model,
            "library_version": extra.get("library_version", ""),
            "model_sha256": extra.get("model_sha256"),
            "confidence_threshold": extra.get("confidence_threshold"),
            "iou_threshold": extra.get("iou_threshold"),
        },
    }


def image_json(db: sqlite3.Connection, image_id: int) -> bytes | None:
    """The body of ``GET /images/{image_id}``, or None when there is no such image."""
    rows = db.execute(IMAGE_QUERY, (image_id,)).fetchall()
    if not rows:
        return None
    first = rows[0]
    detections = [_detection(row) for row in rows if row[12] is not None]
    return msgspec.json.encode(
        {
            "id": first[0],
            "label": first[1],
            "source": first[2],
            "sha256": first[3],
            "media_type": first[4],
            "width": first[5],
            "height": first[6],
            "size_bytes": first[7],
            # SQLAlchemy stores naive UTC text on SQLite; the API writes it as UTC.
            "created_at": datetime.fromisoformat(first[8]).replace(tzinfo=UTC),
            "created_by": first[9],
            "detection_enabled": first[10] != "not_requested",
            "detection_status": first[10],
            "detection_error": first[11],
            "objects": sorted({detection["name"] for detection in detections}),
            "detections": detections,
            "content_url": f"/images/{first[0]}/content",
        }
    )


def _has_bearer(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, secret = value.partition(b" ")
            return scheme.lower() == b"bearer" and bool(secret.strip())
    return False


async def _respond(send: Send, status: int, body: bytes) -> None:
    # A Content-Length, as Litestar sends, rather than chunked encoding.
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                _db.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    path: str = scope["path"]
    image_id = path[len(_PREFIX) :]
    if scope["method"] != "GET" or not path.startswith(_PREFIX) or not image_id.isdigit():
        await _respond(send, 404, b'{"status":404}')
        return
    if not _has_bearer(scope):
        await _respond(send, 401, b'{"status":401}')
        return
    body = image_json(_db, int(image_id))
    if body is None:
        await _respond(send, 404, b'{"status":404}')
        return
    await _respond(send, 200, body)
