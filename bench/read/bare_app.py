"""The near-limit reference for ``GET /images/{id}``: a bare ASGI app over stdlib sqlite3.

It answers with the same JSON body as the real server, built per request from one SQL
statement (the live image, its live tags and their detection runs) on the same database
file (opened read-only, named by ``BARE_DB_PATH``). It keeps nothing between requests but
the connection. The body mirrors the mapping in ``imagetag.entrypoints.http.schemas``;
run.py compares the two and stops when they drift apart. It insists that an
``Authorization: Bearer`` header is present but, unlike the real server, does not look
the key up.

    BARE_DB_PATH=/path/imagetag.db uvicorn --app-dir bench/read bare_app:app
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import msgspec

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# One statement: the live image, its live tags in the order they were added and each model
# tag's run (human tags have none); soft-deleted images are not found.
IMAGE_QUERY = """
SELECT i.id, i.label, i.source, i.sha256, i.media_type, i.width, i.height, i.size_bytes,
       i.created_at, i.created_by, i.created_client, i.detection_status, i.detection_error,
       t.id, t.name, t.source, t.confidence, t.x_min, t.y_min, t.x_max, t.y_max, t.run_id,
       t.added_by_user, t.added_by_client, t.added_at,
       r.detector, r.model, r.model_sha256, r.library_version, r.confidence_threshold,
       r.iou_threshold, r.parameters
FROM images AS i
LEFT JOIN tags AS t ON t.image_id = i.id AND t.removed_at IS NULL
LEFT JOIN detection_runs AS r ON r.id = t.run_id
WHERE i.id = ? AND i.deleted_at IS NULL
ORDER BY t.id
"""

_PREFIX = "/images/"
_JSON_HEADERS = [(b"content-type", b"application/json")]

_db = sqlite3.connect(
    f"file:{os.environ['BARE_DB_PATH']}?mode=ro", uri=True, check_same_thread=False
)


def _utc(text: str) -> datetime:
    # SQLAlchemy stores SQLite datetimes as naive UTC text; the API writes them as UTC.
    # Parsed as the real server's reader does (appending the offset is the cheap way).
    return datetime.fromisoformat(text + "+00:00")


def _tag(row: tuple[Any, ...]) -> dict[str, Any]:
    (name, source, confidence, x_min, y_min, x_max, y_max, run_id, user, client, added_at) = row[
        14:25
    ]
    detector, model, model_sha256, library_version, confidence_threshold, iou_threshold = row[25:31]
    tag: dict[str, Any] = {
        "name": name,
        "source": source,
        "added_by": {"user": user, "client": client},
        "added_at": _utc(added_at),
        "confidence": None,
        "box": None,
        "model": None,
        "run_id": None,
    }
    if source == "human":
        return tag
    tag["confidence"] = round(confidence, 4)
    if None not in (x_min, y_min, x_max, y_max):
        tag["box"] = {
            "x_min": round(x_min, 5),
            "y_min": round(y_min, 5),
            "x_max": round(x_max, 5),
            "y_max": round(y_max, 5),
        }
    parameters: dict[str, str] = json.loads(row[31]) if row[31] else {}
    tag["model"] = {
        "detector": detector,
        "model": model,
        "model_version": model_sha256[:12] if model_sha256 else library_version,
        "library_version": library_version,
        "model_sha256": model_sha256,
        "confidence_threshold": confidence_threshold,
        "iou_threshold": iou_threshold,
        "parameters": dict(sorted(parameters.items())),
    }
    tag["run_id"] = run_id
    return tag


def image_json(db: sqlite3.Connection, image_id: int) -> bytes | None:
    """The body of ``GET /images/{image_id}``, or None when there is no such live image."""
    rows = db.execute(IMAGE_QUERY, (image_id,)).fetchall()
    if not rows:
        return None
    first = rows[0]
    tags = [_tag(row) for row in rows if row[13] is not None]
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
            "created_at": _utc(first[8]),
            "created_by": {"user": first[9], "client": first[10]},
            "detection_enabled": first[11] != "not_requested",
            "detection_status": first[11],
            "detection_error": first[12],
            "objects": sorted({tag["name"] for tag in tags if tag["source"] == "model"}),
            "tags": tags,
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
