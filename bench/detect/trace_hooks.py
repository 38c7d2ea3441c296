"""Timestamps of the stages of ``POST /images`` inside a real server (see ``trace_server.py``).

``trace_server.py`` puts this file on the server's ``PYTHONPATH`` as ``sitecustomize``, so
it runs at interpreter start. When ``imagetag.entrypoints.http.app`` is imported it wraps
the stages below (nothing in ``src/`` is changed), records ``(perf_counter, event)`` pairs in
memory and writes them as JSON to ``IMAGETAG_TRACE_FILE`` when the server exits. A stage
whose function has moved is skipped and named on stderr rather than failing the server.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from after_app_import import after_app_import

TRACE_FILE = os.environ.get("IMAGETAG_TRACE_FILE")

# (module, class or "" for a module function, function, event name, is it async?)
STAGES = (
    ("imagetag.entrypoints.http.routes_images", "", "_read_ingest_request", "form", True),
    ("imagetag.adapters.image_inspector_pillow", "PillowImageInspector", "inspect", "inspect",
     False),
    ("imagetag.adapters.image_inspector_pillow", "PillowImageInspector", "verify", "verify",
     False),
    ("imagetag.adapters.image_inspector_pillow", "PillowImageInspector", "inspect_bounded",
     "bounded", False),
    ("imagetag.adapters.blobs_fs", "FileSystemBlobStore", "_stage", "stage", False),
    ("imagetag.adapters.blobs_fs", "StagedFile", "commit_now", "blob", False),
    ("imagetag.adapters.detectors.yolo_torch", "", "decode_bgr", "decode", False),
    ("imagetag.adapters.detectors.yolo_torch", "UltralyticsYoloDetector", "_predict", "predict",
     False),
    ("imagetag.adapters.sqla.repository_images", "SqlImageRepository", "add", "add", True),
    ("imagetag.adapters.sqla.unit_of_work", "SqlUnitOfWork", "commit", "commit", True),
    ("imagetag.adapters.sqla.unit_of_work", "SqlUnitOfWork", "add_image_and_commit", "record",
     True),
)  # fmt: skip

_events: list[tuple[float, str]] = []


def _mark(name: str) -> None:
    _events.append((time.perf_counter(), name))  # list.append is atomic under the GIL


def _dump() -> None:
    if TRACE_FILE:
        with open(TRACE_FILE, "w") as output:
            json.dump(_events, output)


def _dump_and_exit(signal_number: int, _frame: object) -> None:
    # uvicorn shuts down gracefully on SIGTERM, then raises it again for the handler it
    # found: by default that ends the process without running atexit.
    _dump()
    os._exit(128 + signal_number)


def _wrapped(function: Callable[..., Any], name: str, is_async: bool) -> Callable[..., Any]:
    if is_async:

        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            _mark(name + "+")
            try:
                return await function(*args, **kwargs)
            finally:
                _mark(name + "-")

        return timed_async

    def timed(*args: Any, **kwargs: Any) -> Any:
        _mark(name + "+")
        try:
            return function(*args, **kwargs)
        finally:
            _mark(name + "-")

    return timed


def _install(stages: Sequence[tuple[str, str, str, str, bool]]) -> None:
    for module_name, class_name, function_name, name, is_async in stages:
        try:
            module = importlib.import_module(module_name)
            owner: Any = getattr(module, class_name) if class_name else module
            setattr(owner, function_name, _wrapped(getattr(owner, function_name), name, is_async))
        except (ImportError, AttributeError) as error:
            print(f"trace_hooks: not tracing {name}: {error}", file=sys.stderr)
    from litestar import Litestar

    handle = Litestar.__call__

    async def traced_call(self: Litestar, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await handle(self, scope, receive, send)

        async def traced_send(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                _mark("send")
            await send(message)

        _mark("request")
        await handle(self, scope, receive, traced_send)
        return None

    Litestar.__call__ = traced_call  # type: ignore[method-assign]
    signal.signal(signal.SIGTERM, _dump_and_exit)


if TRACE_FILE:
    atexit.register(_dump)
    after_app_import(lambda: _install(STAGES))
