"""``YOLO.predict`` on a server's own model, for ``run.py``; loaded as the server's
``sitecustomize``.

Identical processes run the same model up to ~10% apart in steady speed, which between
a server and a separate ``YOLO.predict`` process is as large as what the server adds.
So ``run.py`` also asks each server for direct calls, timed inside it: once
``imagetag.entrypoints.http.app`` is imported, this wraps ``create_app`` to keep its
container, and serves a Unix socket (``IMAGETAG_BENCH_DIRECT_SOCKET``) on a thread of its
own, idle in ``accept``/``recv`` between asks. Each line asked, ``{"path": ...}``, runs
``YOLO.predict(path)`` with the adapter's arguments on the detector's own model and
inference thread (so with the same process, weights, torch threads and libgomp settings
as the server's requests), timed there, and answers ``{"ms": ..., "detections": ...}``.
Nothing in ``src/`` changes; without the variable this module does nothing.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from after_app_import import after_app_import

SOCKET_VARIABLE = "IMAGETAG_BENCH_DIRECT_SOCKET"
SOCKET_PATH = os.environ.get(SOCKET_VARIABLE)


def _install() -> None:
    from imagetag.entrypoints.http import app as app_module

    create_app = app_module.create_app

    def create_app_serving_direct_calls(container: Any = None) -> Any:
        app = create_app(container)
        # The container the app was built over: ``serve`` always passes its own.
        threading.Thread(target=_serve, args=(container,), name="bench-direct", daemon=True).start()
        return app

    app_module.create_app = create_app_serving_direct_calls
    # ``serve`` imports create_app from the module after this hook ran: it gets the wrapper.


def _serve(container: Any) -> None:
    assert SOCKET_PATH is not None
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    Path(SOCKET_PATH).unlink(missing_ok=True)
    listener.bind(SOCKET_PATH)
    listener.listen(1)
    while True:
        connection, _ = listener.accept()
        with connection, connection.makefile("rwb") as stream:
            for line in stream:
                answer = _timed_predict(container, json.loads(line)["path"])
                stream.write(json.dumps(answer).encode() + b"\n")
                stream.flush()


def _timed_predict(container: Any, path: str) -> dict[str, Any]:
    """``YOLO.predict`` of ``path`` on the detector's inference thread, timed there."""
    detector = container.detector()
    info = detector.info

    def predict() -> dict[str, Any]:
        model = detector._loaded_model()
        began = time.perf_counter()
        (result,) = model.predict(
            path,
            imgsz=int(dict(info.parameters)["image_size"]),
            conf=info.confidence_threshold,
            iou=info.iou_threshold,
            rect=True,
            verbose=False,
            save=False,
        )
        ms = (time.perf_counter() - began) * 1000
        return {"ms": ms, "detections": 0 if result.boxes is None else len(result.boxes)}

    answer: dict[str, Any] = detector._executor.submit(predict).result()
    return answer


if SOCKET_PATH:
    after_app_import(_install)
