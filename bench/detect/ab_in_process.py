"""Two variants of the server's code inside the same server processes, request by request.

    .venv/bin/python bench/detect/ab_in_process.py [VARIANT_FILE] [--servers 3] [--rounds 8]

Identical server processes differ by up to ~10% in the model's steady speed, so an A/B
of two builds needs many servers per side and still cannot see a change of 1%. Here each
server runs both: ``ab_hooks.py`` (its ``sitecustomize``) sends an upload whose file name
starts with ``B_`` through variant B, which ``VARIANT_FILE`` installs by patching
imagetag (``ab_variant_*.py`` are examples). Each photo goes as a pair, A and B in random
order back to back, one request at a time as ``run.py`` sends them; the figure is the
median of the pairs' B / A latency ratios, per photo and over both. Without a file both
variants run the same code: an A/A run shows the method's own spread (~0.3%).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from ab_hooks import B_PREFIX
from host_load import HostLoad
from run import NOISY_CORES, _photo, _serving, build_checkpoint, offline_env, prepare_images

from imagetag.adapters.detectors.ultralytics_env import configure_ultralytics_offline

HERE = Path(__file__).resolve().parent
PHOTOS = 20
WARM_UP = 10


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("variant", nargs="?", type=Path, help="patches for variant B")
    parser.add_argument("--servers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=8, help="pairs per photo per server")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args(argv)
    order = random.Random(arguments.seed)
    load = HostLoad(threshold=NOISY_CORES, budget_seconds=60)
    ratios: defaultdict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="ab-in-process-") as scratch:
        workdir = Path(scratch)
        configure_ultralytics_offline(workdir / "ultralytics-bench")
        checkpoint = build_checkpoint(workdir / "model")
        photos = prepare_images(workdir / "images", PHOTOS)
        # Each photo twice, A_ and B_: the same bytes under the name that picks the variant.
        images = [_renamed(photo, prefix) for photo in photos for prefix in ("A_", B_PREFIX)]
        hooks = workdir / "hooks"
        hooks.mkdir()
        shutil.copy(HERE / "ab_hooks.py", hooks / "sitecustomize.py")
        env = offline_env(workdir)
        python_path = os.pathsep.join(filter(None, (str(hooks), str(HERE), env.get("PYTHONPATH"))))
        variant = str(arguments.variant.resolve()) if arguments.variant else ""
        env |= {"PYTHONPATH": python_path, "IMAGETAG_AB_VARIANT_FILE": variant}
        for number in range(arguments.servers):
            with _serving(number, workdir, env, checkpoint, images, load) as run_images:
                run_images(list(range(WARM_UP)))
                load.wait_for_quiet()
                with load.measure() as block:
                    for _ in range(arguments.rounds):
                        for index, photo in enumerate(photos):
                            pair = [2 * index, 2 * index + 1]  # A, then B
                            order.shuffle(pair)
                            first, second = run_images(pair)[0]
                            a, b = (first, second) if pair[0] % 2 == 0 else (second, first)
                            ratios[_photo(photo)].append(b / a)
                print(
                    f"server {number + 1}/{arguments.servers}: others used "
                    f"{block.foreign_cores:.2f} cores",
                    flush=True,
                )
    print(f"\nB: {arguments.variant or 'the same code (A/A)'}")
    for name, found in sorted(ratios.items()):
        print(f"{name}: median B / A {statistics.median(found):.4f} over {len(found)} pairs")
    every = [ratio for found in ratios.values() for ratio in found]
    print(f"both: median B / A {statistics.median(every):.4f}, mean {statistics.fmean(every):.4f}")
    return 0


def _renamed(photo: Path, prefix: str) -> Path:
    copy = photo.with_name(prefix + photo.name)
    shutil.copy(photo, copy)
    return copy


if __name__ == "__main__":
    sys.exit(main())
