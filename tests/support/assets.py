"""Real images for tests: the sample photos shipped inside the ultralytics package."""

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
