"""The data both read benchmarks run on: ~50 images in a fresh data dir, a few detected,
all with human tags, and a reader key."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

BIN = Path(sys.executable).parent
COPIES = 48
DETECTED_COPIES = 4
# Human tags on every image, so that bodies carry tags of both sources.
HUMAN_TAGS = "street,sample,benchmark"
CLI_TIMEOUT_SECONDS = 300.0


def bench_env(data_dir: Path) -> dict[str, str]:
    """The environment of every imagetag process here: a fresh data dir, quiet, offline."""
    env = {
        **os.environ,
        "IMAGETAG_DATA_DIR": str(data_dir),
        "IMAGETAG_DETECTOR": "opencv",
        "IMAGETAG_LOG_LEVEL": "warning",
        # One key sends every request: a limit it never reaches, so the limiter still runs.
        "IMAGETAG_RATE_LIMIT_PER_MINUTE": str(10**9),
        "IMAGETAG_RATE_LIMIT_BURST": str(10**9),
    }
    env.pop("IMAGETAG_DATABASE_URL", None)
    return env


def sample_photos() -> list[Path]:
    """The two sample photos inside the installed ultralytics package."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("ultralytics is not installed: pip install 'imagetag[yolo]'")
    assets = Path(next(iter(spec.submodule_search_locations))) / "assets"
    return [assets / "bus.jpg", assets / "zidane.jpg"]


def ingest_sample_images(workdir: Path, env: dict[str, str]) -> None:
    """The two photos and re-encoded PNG copies (each of other bytes), some with detection,
    all with the ``HUMAN_TAGS``."""
    photos = sample_photos()
    detected, plain = workdir / "detected", workdir / "plain"
    detected.mkdir()
    plain.mkdir()
    for photo in photos:
        shutil.copy(photo, detected / photo.name)
    for index in range(COPIES):
        photo = photos[index % len(photos)]
        with Image.open(photo) as image:
            # A different scale per copy gives different bytes, so no two share a blob.
            scale = 0.25 + 0.01 * index
            copy = image.convert("RGB").resize(
                (round(image.width * scale), round(image.height * scale))
            )
        folder = detected if index < DETECTED_COPIES else plain
        copy.save(folder / f"{photo.stem}-{index:02d}.png", compress_level=1)
    imagetag_cli(env, "tag", str(detected), "--detect", "--tags", HUMAN_TAGS)
    imagetag_cli(env, "tag", str(plain), "--tags", HUMAN_TAGS)


def create_reader_key(env: dict[str, str], name: str = "bench") -> str:
    """A new key that may read (GET) and no more; the secret."""
    output = imagetag_cli(env, "keys", "create", name, "--role", "reader")
    return output.strip().splitlines()[-1].strip()


def imagetag_cli(env: dict[str, str], *args: str) -> str:
    """Run an ``imagetag`` command; its standard output, or exit with what it said."""
    completed = subprocess.run(
        [str(BIN / "imagetag"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(
            f"imagetag {' '.join(args)} failed ({completed.returncode}):\n"
            f"{completed.stdout}\n{completed.stderr}"
        )
    return completed.stdout
