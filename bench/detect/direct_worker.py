"""One direct way of running the model, in a process of its own, timed on request.

    python direct_worker.py predict|adapter CHECKPOINT THREADS CONFIG_DIR

``run.py`` starts one worker per kind so each direct path runs as the server does: one
model and one inference thread team per process. Two models in one process (each with its
own OpenMP team) slow each other by 15-25% on two cores, which would flatter the server.

Reads one JSON object per line on stdin, ``{"paths": [...]}``, runs each
image once and answers one JSON line, ``{"ms": [...], "detections": [...]}``. Loading
and warm-up happen before the first answer, ``{"ready": true}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import numpy.typing as npt

from imagetag.adapters.detectors.ultralytics_env import configure_ultralytics_offline

if TYPE_CHECKING:
    from ultralytics.engine.results import Results

IMAGE_SIZE = 640
CONFIDENCE = 0.25
IOU = 0.7


def main(argv: list[str]) -> int:
    kind, checkpoint, threads, config_dir = argv[0], Path(argv[1]), int(argv[2]), Path(argv[3])
    with asyncio.Runner() as runner:
        if kind == "predict":
            configure_ultralytics_offline(config_dir)
            detect = _predict(checkpoint, threads)
        elif kind == "adapter":
            # The adapter imports ultralytics and torch itself, as in the server: what it sets
            # up before they load (offline mode, libgomp's spin) must take effect here too.
            detect = _adapter(checkpoint, threads, config_dir, runner)
        else:
            raise SystemExit(f"unknown kind {kind!r}: predict or adapter")
        _answer({"ready": True})
        for line in sys.stdin:
            request = json.loads(line)
            timings, found = [], []
            for path in request["paths"]:
                began = time.perf_counter()
                found.append(detect(Path(path)))
                timings.append((time.perf_counter() - began) * 1000)
            _answer({"ms": timings, "detections": found})
    return 0


def _predict(checkpoint: Path, threads: int) -> Callable[[Path], int]:
    """``YOLO.predict`` on the file path, with the arguments the adapter passes."""
    import torch
    from ultralytics.models import YOLO

    model = YOLO(str(checkpoint))

    def run(source: str | npt.NDArray[np.uint8]) -> int:
        results = model.predict(
            source,
            imgsz=IMAGE_SIZE,
            conf=CONFIDENCE,
            iou=IOU,
            # ultralytics' default padding, as the adapter uses by default.
            rect=True,
            verbose=False,
            save=False,
        )
        (result,) = cast("list[Results]", results)
        return 0 if result.boxes is None else len(result.boxes)

    run(np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8))
    # That first predict set torch to cpu_count - 1 threads (ultralytics' default); the
    # adapter in the server uses every core, so this must too, to do the same work.
    torch.set_num_threads(threads)
    return lambda path: run(str(path))


def _adapter(
    checkpoint: Path, threads: int, config_dir: Path, runner: asyncio.Runner
) -> Callable[[Path], int]:
    """imagetag's ``UltralyticsYoloDetector.detect`` on the file's bytes, as the server calls it."""
    from imagetag.adapters.detectors.yolo_torch import UltralyticsYoloDetector

    detector = UltralyticsYoloDetector(
        checkpoint,
        config_dir=config_dir,
        confidence=CONFIDENCE,
        iou=IOU,
        image_size=IMAGE_SIZE,
        threads=threads,
    )
    # Loaded on its inference thread, as the server's lifespan does.
    runner.run(detector.warm_up())

    def detect(path: Path) -> int:
        return len(runner.run(detector.detect(path.read_bytes())))

    return detect


def _answer(message: object) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
