"""Where a multipart upload's bytes are held: tracemalloc inside the app, in process.

    .venv/bin/python bench/memory/copies.py [--mb 50] [--format PNG|JPEG] [--json]

Builds the app as ``imagetag serve`` does, sends it one ``POST /images`` as uvicorn would
(the body in 64 KiB ``http.request`` messages) and, at the moment the blob store is handed
the bytes, lists the Python allocations of 1 MiB or more that are alive and where they were
made. tracemalloc sees Python's allocator only: Pillow's pixel buffers (a JPEG decoded at
1/8 scale in ``PillowImageInspector.inspect``, freed before the blob is written) are not in
it; the RSS figures of ``run.py`` include them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import tempfile
import tracemalloc
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import MIB, _noise_image

from read.sample_data import bench_env, imagetag_cli

CHUNK = 64 * 1024


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=50.0)
    parser.add_argument("--format", default="PNG", choices=("PNG", "JPEG"))
    parser.add_argument("--json", action="store_true", help="JSON base64 instead of multipart")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-copies-") as workdir:
        env = {
            **bench_env(Path(workdir) / "data"),
            "IMAGETAG_MAX_UPLOAD_BYTES": str(64 * MIB),
        }
        key = imagetag_cli(env, "keys", "create", "copies", "--role", "tagger")
        os.environ.update(env)
        asyncio.run(_probe(key.strip().splitlines()[-1].strip(), args))
    return 0


async def _probe(key: str, args: argparse.Namespace) -> None:
    from imagetag.adapters.blobs_fs import FileSystemBlobStore
    from imagetag.entrypoints.cli.runtime import load_settings
    from imagetag.entrypoints.container import build_container
    from imagetag.entrypoints.http.app import create_app

    data, width, height = _noise_image(int(args.mb * 1_000_000), args.format)
    if args.json:
        body = json.dumps({"image": base64.b64encode(data).decode()}).encode()
        content_type = b"application/json"
    else:
        boundary = uuid.uuid4().hex
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n'
            f"Content-Type: image/{args.format.lower()}\r\n\r\n"
        ).encode()
        body += data + f"\r\n--{boundary}--\r\n".encode()
        content_type = f"multipart/form-data; boundary={boundary}".encode()
    print(
        f"{args.format} {len(data) / MIB:.1f} MiB ({width}x{height}), "
        f"{'JSON base64' if args.json else 'multipart'} body {len(body) / MIB:.1f} MiB"
    )
    app = create_app(build_container(load_settings()))
    held: list[tracemalloc.Snapshot] = []
    put = FileSystemBlobStore._put

    def snapshot_then_put(self: FileSystemBlobStore, sha256: str, source: IO[bytes]) -> None:
        held.append(tracemalloc.take_snapshot())
        put(self, sha256, source)

    FileSystemBlobStore._put = snapshot_then_put  # type: ignore[method-assign]
    messages = [body[start : start + CHUNK] for start in range(0, len(body), CHUNK)]
    length = str(len(body)).encode()
    del body
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = messages.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(messages)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/images",
        "raw_path": b"/images",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", content_type),
            (b"content-length", length),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    tracemalloc.start(12)
    await app(scope, receive, send)  # type: ignore[arg-type]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    status = next(message["status"] for message in sent if message["type"] == "http.response.start")
    print(f"status {status}; tracemalloc peak during the request {peak / MIB:.1f} MiB")
    if not held:
        print("the blob store was not called")
        return
    print("alive when the blob store is handed the bytes (allocations >= 1 MiB):")
    for stat in held[0].statistics("traceback"):
        if stat.size < MIB:
            break
        frames = [
            f"{Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.lineno}"
            for frame in stat.traceback
        ][-6:][::-1]
        print(f"  {stat.size / MIB:6.1f} MiB in {stat.count} blocks: {' <- '.join(frames)}")


if __name__ == "__main__":
    sys.exit(main())
