"""Peak RSS of the server while it ingests one ~50 MB image against one ~1 MB image.

    .venv/bin/python bench/memory/run.py [--repeat 3] [--quick]

Each measurement is a fresh ``imagetag serve`` (its own data dir, loopback port) that first
ingests a tiny image (so that lazily imported code is loaded), then has its peak RSS reset
(``/proc/<pid>/clear_refs``), its RSS read (the baseline), one image uploaded, and its
``VmHWM`` (peak RSS since the reset) read. Images are noise, so their size is what we choose:
PNG (stored, not compressed: the file is the pixels) and JPEG at quality 95. See README.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from processes import (
    HOST,
    free_port,
    run_benchmark,
    stop_process_group,
    wait_until_answering,
)
from read.sample_data import bench_env, imagetag_cli

BIN = Path(sys.executable).parent
STARTUP_SECONDS = 90.0
RATIO_GOAL = 1.5
MIB = 1024 * 1024
# Noise RGB: a stored PNG is ~3 bytes a pixel, a quality-95 JPEG of noise ~1.12 (measured
# when the image is made; the printed sizes are the real ones).
TARGETS = {"1 MB": 1_000_000, "50 MB": 50_000_000}
BYTES_PER_PIXEL = {"PNG": 3.0, "JPEG": 1.12}


@dataclass(frozen=True)
class Sample:
    image: str
    fmt: str
    mode: str
    size: int
    baseline_kib: int
    peak_kib: int


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    repeat = 1 if args.quick else args.repeat
    print(f"load average before the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    images = {
        (name, fmt): _noise_image(target, fmt)
        for name, target in TARGETS.items()
        for fmt in ("PNG", "JPEG")
    }
    for (name, fmt), (data, width, height) in images.items():
        print(f"{name} {fmt}: {len(data) / MIB:.2f} MiB, {width}x{height} pixels")
    cases = [(fmt, "multipart", repeat) for fmt in ("PNG", "JPEG")]
    cases.append(("PNG", "json", 1 if args.quick else 2))
    samples: list[Sample] = []
    for fmt, mode, times in cases:
        for _ in range(times):
            # The two sizes alternate, so that drift on the machine hits both.
            for name in TARGETS:
                data = images[(name, fmt)][0]
                sample = _measure(name, fmt, mode, data)
                samples.append(sample)
                print(
                    f"{name:>5} {fmt:<4} {mode:<9}: baseline {sample.baseline_kib / 1024:6.1f} "
                    f"MiB, peak {sample.peak_kib / 1024:6.1f} MiB, +"
                    f"{(sample.peak_kib - sample.baseline_kib) / 1024:6.1f} MiB"
                )
    _report(samples)
    return 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="servers per size and format")
    parser.add_argument("--quick", action="store_true", help="one of each")
    return parser.parse_args(argv)


def _noise_image(target: int, fmt: str) -> tuple[bytes, int, int]:
    side = round((target / BYTES_PER_PIXEL[fmt]) ** 0.5)
    rng = random.Random(target)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    buffer = io.BytesIO()
    if fmt == "PNG":
        image.save(buffer, format="PNG", compress_level=0)
    else:
        image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue(), side, side


@contextlib.contextmanager
def _server() -> Iterator[tuple[subprocess.Popen[bytes], int, str]]:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as workdir:
        env = {
            **bench_env(Path(workdir) / "data"),
            "IMAGETAG_MAX_UPLOAD_BYTES": str(64 * MIB),
            "IMAGETAG_MAX_IMAGE_PIXELS": str(64_000_000),
        }
        key = imagetag_cli(env, "keys", "create", "memory", "--role", "tagger")
        key = key.strip().splitlines()[-1].strip()
        port = free_port()
        log = Path(workdir) / "server.log"
        command = [str(BIN / "imagetag"), "serve", "--host", HOST, "--port", str(port)]
        with log.open("wb") as output:
            process = subprocess.Popen(
                command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_until_answering(process, port, log, STARTUP_SECONDS)
            yield process, port, key
        finally:
            stop_process_group(process)


def _measure(name: str, fmt: str, mode: str, data: bytes) -> Sample:
    with (
        _server() as (process, port, key),
        httpx.Client(
            base_url=f"http://{HOST}:{port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=300,
        ) as client,
    ):
        warm_up, _, _ = _noise_image(3000, fmt)
        _upload(client, warm_up, fmt, mode)
        time.sleep(0.5)
        # "5" resets the peak RSS (VmHWM) to the current RSS.
        Path(f"/proc/{process.pid}/clear_refs").write_text("5")
        baseline = _status_kib(process.pid, "VmRSS")
        _upload(client, data, fmt, mode)
        peak = _status_kib(process.pid, "VmHWM")
    return Sample(name, fmt, mode, len(data), baseline, peak)


def _upload(client: httpx.Client, data: bytes, fmt: str, mode: str) -> None:
    media_type = "image/png" if fmt == "PNG" else "image/jpeg"
    if mode == "multipart":
        response = client.post("/images", files={"file": ("image", data, media_type)})
    else:
        response = client.post("/images", json={"image": base64.b64encode(data).decode()})
    if response.status_code != 200:
        raise SystemExit(f"upload answered {response.status_code}: {response.text[:500]}")


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/{pid}/status")


def _report(samples: list[Sample]) -> None:
    print("\nmedians per case (MiB); 'held' = peak increase over baseline / upload size")
    header = f"{'case':<20} {'size':>7} {'baseline':>9} {'peak':>7} {'increase':>9} {'held':>6}"
    print(header)
    print("-" * len(header))
    peaks: dict[tuple[str, str, str], float] = {}
    for fmt, mode in dict.fromkeys((s.fmt, s.mode) for s in samples):
        for name in TARGETS:
            group = [s for s in samples if (s.image, s.fmt, s.mode) == (name, fmt, mode)]
            baseline = statistics.median(s.baseline_kib for s in group) / 1024
            peak = statistics.median(s.peak_kib for s in group) / 1024
            size = group[0].size / MIB
            peaks[(name, fmt, mode)] = peak
            print(
                f"{name + ' ' + fmt + ' ' + mode:<20} {size:>7.1f} {baseline:>9.1f} {peak:>7.1f} "
                f"{peak - baseline:>9.1f} {(peak - baseline) / size:>6.1f}"
            )
    print()
    for fmt, mode in dict.fromkeys((s.fmt, s.mode) for s in samples):
        ratio = peaks[("50 MB", fmt, mode)] / peaks[("1 MB", fmt, mode)]
        verdict = "met" if ratio <= RATIO_GOAL else "MISSED"
        print(
            f"peak(50 MB)/peak(1 MB), {fmt} {mode}: {ratio:.2f} (goal <= {RATIO_GOAL}: {verdict})"
        )


if __name__ == "__main__":
    run_benchmark(main)
