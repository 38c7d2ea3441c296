"""Per-image latency of YOLO11n on PyTorch (ultralytics) against the same network on ONNX Runtime.

    python bench/detect/bench_model.py [--repeats 20] [--threads N]

The network is built from ``yolo11n.yaml`` with random weights, so nothing is downloaded;
inference costs the same as with trained weights (same layers, same input size). It is
saved as a ``.pt`` in a temporary directory and exported to ONNX there. Each detector
then runs the two ultralytics sample photos ``repeats`` times each after a warm-up,
through ``detect()`` as the app calls it: decoding, letterbox, inference and NMS included.
Both runtimes get the same number of intra-op threads (default: every available core).
Import ``measure_model_paths`` to reuse the measurement in a larger benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imagetag.adapters.detectors._executor import ThreadedDetector
from imagetag.adapters.detectors.ultralytics_env import configure_ultralytics_offline
from imagetag.adapters.detectors.yolo_onnx import OnnxYoloDetector
from imagetag.adapters.detectors.yolo_torch import UltralyticsYoloDetector


def sample_images() -> list[Path]:
    """The sample photos inside the installed ultralytics package."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("ultralytics is not installed: pip install 'imagetag[yolo]'")
    assets = Path(next(iter(spec.submodule_search_locations))) / "assets"
    return [assets / "bus.jpg", assets / "zidane.jpg"]


def build_model_files(
    workdir: Path, *, model_yaml: str, image_size: int, checkpoint: Path | None = None
) -> tuple[Path, Path]:
    """A randomly initialised network saved as ``.pt`` and exported to ``.onnx`` in ``workdir``.

    Given a ``checkpoint``, that one is exported instead (next to it) and nothing is built.
    """
    configure_ultralytics_offline(workdir / "ultralytics")
    from ultralytics.models import YOLO

    if checkpoint is None:
        checkpoint = workdir / f"{Path(model_yaml).stem}.pt"
        YOLO(model_yaml).save(checkpoint)
    exported = Path(YOLO(str(checkpoint)).export(format="onnx", imgsz=image_size))
    return checkpoint, exported


async def time_detector(
    detector: ThreadedDetector[Any, Any], images: Sequence[Path], repeats: int
) -> dict[str, float]:
    """Median milliseconds per image, for each image and over all of them."""
    await detector.warm_up()
    encoded = {path.name: path.read_bytes() for path in images}
    for data in encoded.values():
        await detector.detect(data)
    medians: dict[str, float] = {}
    every: list[float] = []
    for name, data in encoded.items():
        latencies = []
        for _ in range(repeats):
            started = time.perf_counter()
            await detector.detect(data)
            latencies.append((time.perf_counter() - started) * 1000)
        medians[name] = statistics.median(latencies)
        every.extend(latencies)
    medians["all"] = statistics.median(every)
    return medians


def measure_model_paths(
    *,
    repeats: int = 20,
    images: Sequence[Path] | None = None,
    model_yaml: str = "yolo11n.yaml",
    image_size: int = 640,
    threads: int | None = None,
    workdir: Path | None = None,
    checkpoint: Path | None = None,
) -> dict[str, Any]:
    """Time UltralyticsYoloDetector and OnnxYoloDetector on one network; milliseconds.

    ``checkpoint`` times that ``.pt`` (and its ONNX export) rather than a newly built one.

    Returns ``{"torch": {...}, "onnx": {...}, "onnx_over_torch": float, ...}`` where each
    detector maps image names (and ``"all"``) to median latencies.
    """
    images = list(images or sample_images())
    threads = threads or (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    with tempfile.TemporaryDirectory(prefix="imagetag-bench-") as scratch:
        directory = workdir or Path(scratch)
        checkpoint, exported = build_model_files(
            directory, model_yaml=model_yaml, image_size=image_size, checkpoint=checkpoint
        )
        # The square letterbox: the same input as the fixed-shape ONNX model, like for like.
        torch_detector = UltralyticsYoloDetector(
            checkpoint,
            config_dir=directory / "ultralytics",
            image_size=image_size,
            threads=threads,
            square_letterbox=True,
        )
        onnx_detector = OnnxYoloDetector(exported, threads=threads)
        try:
            # One after the other, so the two never compete for cores.
            on_torch = asyncio.run(time_detector(torch_detector, images, repeats))
            on_onnx = asyncio.run(time_detector(onnx_detector, images, repeats))
        finally:
            torch_detector.close()
            onnx_detector.close()

    return {
        "model": checkpoint.stem,
        "image_size": image_size,
        "repeats": repeats,
        "images": [path.name for path in images],
        "torch": on_torch,
        "onnx": on_onnx,
        "onnx_over_torch": on_onnx["all"] / on_torch["all"],
        "threads": threads,
        "torch_library": torch_detector.info.library_version,
        "onnx_library": onnx_detector.info.library_version,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=20, help="runs per image (default 20)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (all cores)")
    parser.add_argument("--image-size", type=int, default=640)
    arguments = parser.parse_args(argv)

    result = measure_model_paths(
        repeats=arguments.repeats,
        image_size=arguments.image_size,
        threads=arguments.threads,
    )
    print(
        f"{result['model']} at {result['image_size']}px, {result['threads']} threads, median of "
        f"{result['repeats']} runs per image after warm-up "
        f"({result['torch_library']}; {result['onnx_library']})"
    )
    print(f"{'image':<12}{'torch ms':>10}{'onnx ms':>10}")
    for name in [*result["images"], "all"]:
        print(f"{name:<12}{result['torch'][name]:>10.1f}{result['onnx'][name]:>10.1f}")
    print(f"onnx/torch, both on the square input: {result['onnx_over_torch']:.2f}")


if __name__ == "__main__":
    main()
