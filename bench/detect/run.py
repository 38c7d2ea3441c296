"""What imagetag adds around one YOLO model: its API and its CLI against ultralytics alone.

    .venv/bin/python bench/detect/run.py [--quick] [--quiet-budget SECONDS]

One run, one randomly initialised YOLO11n checkpoint (built from ``yolo11n.yaml``, nothing
downloaded), one folder of re-encoded copies of the ultralytics sample photos:

1. typical latency (each photo's median, averaged) of ``POST /images`` (multipart,
   ``detect=true``) on a real ``imagetag serve``, one request at a time, against
   ``YOLO.predict`` on the same image run on that server's own model and inference thread
   (``direct_hooks.py``), the two back to back for every image: the goal's ratio, free of
   the ~10% by which identical processes differ in the model's speed. As a cross-check,
   direct calls (no HTTP) of ``YOLO.predict`` and of imagetag's
   ``UltralyticsYoloDetector.detect``, each in a lean process of its own like the server
   (``direct_worker.py``); the ways take turns, in rounds, never running at the same time;
2. images per second of ``imagetag tag --detect DIR`` against ``yolo predict source=DIR``,
   both whole processes timed wall-clock, interleaved;
3. onnxruntime against torch per image (``bench_model.measure_model_paths``).

Every block waits (within a budget) for other processes to leave the CPU and reports the
CPU they took while it ran. Everything runs on loopback, offline, in a temporary directory
removed at the end; every subprocess is stopped on any exit. See README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import http.client
import importlib.util
import json
import os
import platform
import random
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_model import measure_model_paths
from direct_hooks import SOCKET_VARIABLE
from host_load import Block, HostLoad
from PIL import Image

from imagetag.adapters.detectors.ultralytics_env import configure_ultralytics_offline
from processes import free_port, stop_process_group, wait_until_answering

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
MODEL_YAML = "yolo11n.yaml"
IMAGE_SIZE = 640
CONFIDENCE = 0.25
IOU = 0.7
SERVER_GOAL = 1.10
CLI_GOAL = 1.0
NOISY_CORES = 0.25
STARTUP_SECONDS = 120.0
REQUEST_TIMEOUT_SECONDS = 60.0
CLI_TIMEOUT_SECONDS = 600.0

TAG = "imagetag tag --detect"
TAG_PLAIN = "imagetag tag (no detect)"
YOLO_SQUARE = "yolo predict rect=False"
YOLO_DEFAULT = "yolo predict"


@dataclass(frozen=True)
class Plan:
    """How much to measure; ``--quick`` shrinks every count."""

    name: str
    images: int
    rounds: int
    per_round: int
    warm_up: int
    processes: int
    generations: int
    cli_runs: int
    model_repeats: int
    quiet_budget: float


# ``rounds`` per generation of processes.
FULL = Plan("full", images=40, rounds=3, per_round=10, warm_up=5, processes=4, generations=2,
            cli_runs=3, model_repeats=2, quiet_budget=240.0)  # fmt: skip
QUICK = Plan("quick", images=20, rounds=2, per_round=10, warm_up=2, processes=1, generations=1,
             cli_runs=1, model_repeats=1, quiet_budget=30.0)  # fmt: skip


@dataclass(frozen=True)
class Call:
    """One timed call: in which round, by which process of its way, on which photo."""

    round: int
    process: int
    photo: str
    image: str
    ms: float


@dataclass
class Latencies:
    """Milliseconds per call of one way of detecting, with each measured block's host load.

    The image set holds two photos whose latencies lie apart (``bus.jpg`` decodes and
    predicts ~8 ms slower than ``zidane.jpg``), so the median of all calls pooled falls in
    the gap between the two and is set by one photo's slowest calls and the other's
    fastest: a handful of outliers, not the typical call. ``typical`` takes each photo's
    median and averages those.
    """

    calls: list[Call] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)

    def typical(self, *, in_round: int | None = None, in_process: int | None = None) -> float:
        """Each photo's median latency, averaged over the photos (in one round or process)."""
        by_photo: dict[str, list[float]] = {}
        for call in self.calls:
            if (in_round is None or call.round == in_round) and (
                in_process is None or call.process == in_process
            ):
                by_photo.setdefault(call.photo, []).append(call.ms)
        return statistics.fmean(statistics.median(values) for values in by_photo.values())

    def photo_median(self, photo: str) -> float:
        return statistics.median(call.ms for call in self.calls if call.photo == photo)

    @property
    def photos(self) -> list[str]:
        return sorted({call.photo for call in self.calls})

    @property
    def pooled_median(self) -> float:
        """The median of every call, both photos pooled (the headline until 2026-11-26)."""
        return statistics.median(call.ms for call in self.calls)

    @property
    def rounds(self) -> int:
        return len({call.round for call in self.calls})

    def process_typicals(self) -> str:
        processes = sorted({call.process for call in self.calls})
        return " / ".join(f"{self.typical(in_process=number):.1f}" for number in processes)

    def as_json(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(call) for call in self.calls]


@dataclass(frozen=True)
class CliRun:
    seconds: float
    images: int
    block: Block

    @property
    def rate(self) -> float:
        return self.images / self.seconds


@dataclass(frozen=True)
class Part1:
    server: Latencies
    in_server: Latencies  # YOLO.predict inside the servers, beside their uploads
    predict: Latencies
    adapter: Latencies
    agreement: str

    def as_json(self) -> dict[str, list[dict[str, Any]]]:
        ways = {
            "server": self.server,
            "YOLO.predict in the server": self.in_server,
            "YOLO.predict": self.predict,
            "adapter": self.adapter,
        }
        return {name: latencies.as_json() for name, latencies in ways.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and repetitions")
    parser.add_argument(
        "--quiet-budget",
        type=float,
        default=None,
        help="total seconds to spend waiting for other processes to go quiet (full 240, quick 30)",
    )
    parser.add_argument(
        "--save-timings",
        type=Path,
        default=None,
        metavar="FILE",
        help="write part 1's every timed call (way, round, process, photo, ms) as JSON",
    )
    arguments = parser.parse_args(argv)
    plan = QUICK if arguments.quick else FULL
    budget = plan.quiet_budget if arguments.quiet_budget is None else arguments.quiet_budget
    load = HostLoad(threshold=NOISY_CORES, budget_seconds=budget)
    # Let SIGTERM unwind like Ctrl-C does, so every subprocess is stopped either way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as scratch:
        workdir = Path(scratch)
        configure_ultralytics_offline(workdir / "ultralytics-bench")
        cores = _available_cores()
        checkpoint = build_checkpoint(workdir / "model")
        images = prepare_images(workdir / "images", plan.images)
        print(
            f"{checkpoint.name} (random weights from {MODEL_YAML}), {len(images)} distinct JPEGs, "
            f"{cores} cores; {platform.python_implementation()} {platform.python_version()}, "
            f"{_versions()}\n{_provenance()}"
        )
        env = offline_env(workdir)

        print("\n1. POST /images with detect=true against direct calls of the same model")
        part1 = _measure_server_and_direct(workdir, env, checkpoint, images, plan, cores, load)
        print(f"   detections on {images[0].name}: {part1.agreement}")
        if arguments.save_timings is not None:
            arguments.save_timings.write_text(json.dumps(part1.as_json(), indent=1))

        print("\n2. imagetag tag against yolo predict, whole processes, wall-clock")
        cli = _measure_cli(workdir, env, checkpoint, images, plan, load)

        print("\n3. onnxruntime against torch per image (bench_model.measure_model_paths)")
        load.wait_for_quiet()
        with load.measure() as model_block:
            model_paths = measure_model_paths(
                repeats=plan.model_repeats,
                images=images,
                model_yaml=MODEL_YAML,
                image_size=IMAGE_SIZE,
                threads=cores,
                workdir=workdir / "model",
                checkpoint=checkpoint,
            )
        print(
            f"   torch {model_paths['torch']['all']:.1f} ms, onnx {model_paths['onnx']['all']:.1f} "
            f"ms per image, median over {len(images)} images x {plan.model_repeats} "
            f"(others used {model_block.foreign_cores:.2f} cores meanwhile)"
        )

    _summary(plan, part1, cli, model_paths, model_block, cores, load)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0


# --- inputs ---------------------------------------------------------------------------------


def _sample_photos() -> list[Path]:
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("ultralytics is not installed: pip install 'imagetag[yolo]'")
    assets = Path(next(iter(spec.submodule_search_locations))) / "assets"
    return [assets / "bus.jpg", assets / "zidane.jpg"]


def prepare_images(folder: Path, count: int) -> list[Path]:
    """``count`` JPEGs alternating the two photos, each at its own quality so no two match."""
    folder.mkdir(parents=True)
    photos = _sample_photos()
    paths = []
    for index in range(count):
        photo = photos[index % len(photos)]
        path = folder / f"{photo.stem}-{index:03d}.jpg"
        with Image.open(photo) as opened:
            opened.convert("RGB").save(path, "JPEG", quality=95 - index // len(photos))
        paths.append(path)
    digests = {hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}
    if len(digests) != count:
        raise SystemExit(f"expected {count} distinct images, made {len(digests)}")
    return paths


def _photo(image: Path) -> str:
    """Which sample photo an image of ``prepare_images`` was made from."""
    return image.stem.rsplit("-", 1)[0]


def build_checkpoint(folder: Path) -> Path:
    from ultralytics.models import YOLO

    folder.mkdir(parents=True)
    checkpoint = folder / f"{Path(MODEL_YAML).stem}.pt"
    YOLO(MODEL_YAML).save(checkpoint)
    return checkpoint


def _with_comment(jpeg: bytes, text: str) -> bytes:
    """The same JPEG with a COM segment: new bytes (so a new blob to store), same pixels."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    payload = text.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def offline_env(workdir: Path) -> dict[str, str]:
    """The environment of every subprocess: no IMAGETAG_* leaking in, ultralytics offline."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMAGETAG_")}
    config = workdir / "ultralytics-subprocess"
    config.mkdir()
    env.update(
        YOLO_OFFLINE="1",
        YOLO_AUTOINSTALL="0",
        YOLO_CONFIG_DIR=str(config),
        YOLO_VERBOSE="False",
        MPLCONFIGDIR=str(config / "matplotlib"),
        ORT_DISABLE_TELEMETRY="1",
    )
    return env


def _imagetag_env(env: dict[str, str], data_dir: Path, checkpoint: Path) -> dict[str, str]:
    return {
        **env,
        "IMAGETAG_DATA_DIR": str(data_dir),
        "IMAGETAG_DETECTOR": "yolo",
        "IMAGETAG_YOLO_MODEL": str(checkpoint),
        "IMAGETAG_DETECT_CONFIDENCE": str(CONFIDENCE),
        "IMAGETAG_DETECT_IOU": str(IOU),
        "IMAGETAG_LOG_LEVEL": "warning",
        # One key sends every request: a limit it never reaches, so the limiter still runs.
        "IMAGETAG_RATE_LIMIT_PER_MINUTE": str(10**9),
        "IMAGETAG_RATE_LIMIT_BURST": str(10**9),
    }


# --- part 1: the server against direct calls ------------------------------------------------


RunImages = Callable[[list[int]], tuple[list[float], list[int]]]
"""Runs the images at these indices one at a time: milliseconds and detections of each."""


@dataclass(frozen=True)
class Way:
    """One process of one way of detecting, and how to ask it for a turn of images."""

    name: str
    latencies: Latencies
    number: int
    run: RunImages
    # A server, and where its own YOLO.predict's timings go: asked inside it, image by
    # image beside the uploads.
    direct: tuple[ServerClient, Latencies] | None = None


def _measure_server_and_direct(
    workdir: Path,
    env: dict[str, str],
    checkpoint: Path,
    images: list[Path],
    plan: Plan,
    cores: int,
    load: HostLoad,
) -> Part1:
    server, in_server = Latencies(), Latencies()
    predict, adapter = Latencies(), Latencies()
    found: dict[str, int] = {}
    total_rounds = plan.generations * plan.rounds
    for generation in range(plan.generations):
        # Several processes per way, and fresh ones each generation: each process keeps its
        # own steady speed (up to ~10% apart between identical ones), which would otherwise
        # pass for a difference of ways. More at a time would slow them all (every turn
        # starts colder), so more processes come as generations, one after the other.
        first = generation * plan.processes
        with contextlib.ExitStack() as stack:
            ways: list[Way] = []
            for number in range(first, first + plan.processes):
                serving = _serving(
                    number, workdir, env, checkpoint, images, load, direct_calls=True
                )
                client = stack.enter_context(serving)
                ways.append(Way("server", server, number, client, (client, in_server)))
                for kind, latencies in (("YOLO.predict", predict), ("adapter", adapter)):
                    worker = _worker(kind, number, checkpoint, cores, env, workdir, load)
                    runner = stack.enter_context(worker).runner(images)
                    ways.append(Way(kind, latencies, number, runner))

            warm = list(range(plan.warm_up))
            for way in ways:
                way.run(warm)
                found.setdefault(way.name, way.run([0])[1][0])
                if way.direct is not None:
                    client = way.direct[0]
                    for index in warm:
                        client.direct(index)
                    found.setdefault("YOLO.predict in the server", client.direct(0)[1])

            first_round = generation * plan.rounds
            for round_number in range(first_round, first_round + plan.rounds):
                blocks = _measure_round(round_number, ways, images, plan, load)
                print(
                    f"   round {round_number + 1}/{total_rounds} (generation {generation + 1}), "
                    f"{plan.per_round} images x {plan.processes} process(es), typical ms: "
                    f"server {server.typical(in_round=round_number):.1f} (its YOLO.predict "
                    f"{in_server.typical(in_round=round_number):.1f}), YOLO.predict "
                    f"{predict.typical(in_round=round_number):.1f}, adapter "
                    f"{adapter.typical(in_round=round_number):.1f}; others' cores up to "
                    f"{max(block.foreign_cores for block in blocks):.2f}"
                )
    agreement = ", ".join(f"{name} {count}" for name, count in found.items())
    print(
        f"   per process, typical ms: server {server.process_typicals()}, its YOLO.predict "
        f"{in_server.process_typicals()}, YOLO.predict {predict.process_typicals()}, adapter "
        f"{adapter.process_typicals()}"
    )
    for photo in server.photos:
        print(
            f"   {photo}, median ms: server {server.photo_median(photo):.1f}, its YOLO.predict "
            f"{in_server.photo_median(photo):.1f}, YOLO.predict "
            f"{predict.photo_median(photo):.1f}, adapter {adapter.photo_median(photo):.1f}"
        )
    return Part1(server, in_server, predict, adapter, agreement)


def _measure_round(
    round_number: int,
    ways: list[Way],
    images: list[Path],
    plan: Plan,
    load: HostLoad,
) -> list[Block]:
    """Every process in turn times the round's images, after one untimed call; the
    host's load during each turn. A server's turn pairs each upload with a direct call."""
    # Each round takes the next slice of the folder, wrapping around, and starts with the
    # next way, so no way always follows the same one.
    chosen = [
        (round_number * plan.per_round + offset) % len(images) for offset in range(plan.per_round)
    ]
    shift = round_number % len(ways)
    blocks = []
    for way in ways[shift:] + ways[:shift]:
        load.wait_for_quiet()
        way.run(chosen[:1])  # untimed: the turn's caches and connection
        with load.measure() as block:
            if way.direct is None:
                turns = [(way.latencies, way.run(chosen)[0])]
            else:
                client, in_server = way.direct
                uploads, direct = client.paired(chosen)
                turns = [(way.latencies, uploads), (in_server, direct)]
        for latencies, turn in turns:
            latencies.calls += [
                Call(round_number, way.number, _photo(images[index]), images[index].name, ms)
                for index, ms in zip(chosen, turn, strict=True)
            ]
            latencies.blocks.append(block)
        blocks.append(block)
    return blocks


@contextlib.contextmanager
def _serving(
    number: int,
    workdir: Path,
    env: dict[str, str],
    checkpoint: Path,
    images: list[Path],
    load: HostLoad,
    *,
    direct_calls: bool = False,
) -> Iterator[ServerClient]:
    """An ``imagetag serve`` of its own (data dir, key, port), as a way to run images; with
    ``direct_calls``, its ``YOLO.predict`` can be asked too (``direct_hooks.py``)."""
    server_env = _imagetag_env(env, workdir / f"server-data-{number}", checkpoint)
    key = _run(server_env, [str(BIN / "imagetag"), "keys", "create", "bench", "--role", "tagger"])[
        1
    ]
    key = key.strip().splitlines()[-1].strip()
    port = free_port()
    socket_path = workdir / f"direct-{number}.sock" if direct_calls else None
    if socket_path is not None:
        hooks = workdir / "direct-hooks"
        hooks.mkdir(exist_ok=True)
        shutil.copy(HERE / "direct_hooks.py", hooks / "sitecustomize.py")
        python_path = os.pathsep.join(
            filter(None, (str(hooks), str(HERE), server_env.get("PYTHONPATH")))
        )
        server_env |= {"PYTHONPATH": python_path, SOCKET_VARIABLE: str(socket_path)}
    command = [str(BIN / "imagetag"), "serve", "--host", HOST, "--port", str(port)]
    with _server(command, server_env, workdir / f"server-{number}.log", port, load):
        client = ServerClient(port, key, images, random.Random(number))
        if socket_path is not None:
            client.connect_direct(socket_path)
        try:
            yield client
        finally:
            client.close()


class ServerClient:
    """Uploads to one server, one request at a time over a keep-alive connection; and,
    once connected to it, direct ``YOLO.predict`` calls timed inside that server."""

    def __init__(self, port: int, key: str, images: list[Path], order: random.Random) -> None:
        self._port = port
        self._key = key
        self._images = images
        self._encoded = [path.read_bytes() for path in images]
        self._order = order
        self._direct: socket.socket | None = None
        self._direct_stream: Any = None

    def __call__(self, indices: list[int]) -> tuple[list[float], list[int]]:
        """``RunImages`` over HTTP."""
        timings, found = [], []
        with _connection(self._port) as connection:
            for index in indices:
                ms, detections = self._post(connection, index)
                timings.append(ms)
                found.append(detections)
        return timings, found

    def paired(self, indices: list[int]) -> tuple[list[float], list[float]]:
        """Each image uploaded and given to the server's own ``YOLO.predict``, the two in
        random order back to back: milliseconds of the uploads and of the direct calls."""
        uploads, direct = [], []
        with _connection(self._port) as connection:
            for index in indices:
                first_upload = self._order.random() < 0.5
                if first_upload:
                    uploads.append(self._post(connection, index)[0])
                direct.append(self.direct(index)[0])
                if not first_upload:
                    uploads.append(self._post(connection, index)[0])
        return uploads, direct

    def direct(self, index: int) -> tuple[float, int]:
        if self._direct_stream is None:
            raise RuntimeError("not connected to the server's direct calls")
        self._direct_stream.write(json.dumps({"path": str(self._images[index])}).encode() + b"\n")
        self._direct_stream.flush()
        line = self._direct_stream.readline()
        if not line:
            raise SystemExit("the server's direct calls stopped answering")
        answer = json.loads(line)
        return float(answer["ms"]), int(answer["detections"])

    def connect_direct(self, socket_path: Path) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            direct = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                direct.connect(str(socket_path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                direct.close()
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"the server's direct calls never opened {socket_path}"
                    ) from None
                time.sleep(0.1)
        direct.settimeout(REQUEST_TIMEOUT_SECONDS)
        self._direct, self._direct_stream = direct, direct.makefile("rwb")

    def close(self) -> None:
        if self._direct is not None:
            self._direct_stream.close()
            self._direct.close()

    def _post(self, connection: http.client.HTTPConnection, index: int) -> tuple[float, int]:
        # Unique bytes per request, same pixels: each upload is a new blob, as in use.
        upload = _with_comment(self._encoded[index], uuid.uuid4().hex)
        body, content_type = _multipart(upload, self._images[index].name)
        # From sending the request to the last byte of the answer: building the body and
        # parsing the answer are the client's work, not the latency.
        began = time.perf_counter()
        status, payload = _post_image(connection, self._key, body, content_type)
        ms = (time.perf_counter() - began) * 1000
        image = _detected_image(status, payload)
        return ms, sum(tag["source"] == "model" for tag in image["tags"])


class Worker:
    """A ``direct_worker.py`` process: one model, asked to time images over a pipe."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self._process = process
        self._log = log

    def runner(self, images: list[Path]) -> RunImages:
        return lambda indices: self.ask([images[index] for index in indices])

    def ask(self, paths: list[Path]) -> tuple[list[float], list[int]]:
        """Milliseconds and detections per image, timed inside the worker."""
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"paths": [str(path) for path in paths]}).encode())
        self._process.stdin.write(b"\n")
        self._process.stdin.flush()
        answer = self.read(REQUEST_TIMEOUT_SECONDS * max(len(paths), 1))
        return answer["ms"], answer["detections"]

    def read(self, timeout: float) -> dict[str, Any]:
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        line = self._process.stdout.readline() if ready else b""
        if not line:
            raise SystemExit(
                f"the direct worker did not answer (exit {self._process.poll()}):\n"
                f"{self._log.read_text()}"
            )
        answer: dict[str, Any] = json.loads(line)
        return answer


@contextlib.contextmanager
def _worker(
    name: str,
    number: int,
    checkpoint: Path,
    cores: int,
    env: dict[str, str],
    workdir: Path,
    load: HostLoad,
) -> Iterator[Worker]:
    """A direct worker (YOLO.predict or adapter), loaded and warm, stopped on the way out."""
    kind = "predict" if name == "YOLO.predict" else "adapter"
    config = workdir / f"ultralytics-{kind}-{number}"
    command = [sys.executable, str(HERE / "direct_worker.py"), kind, str(checkpoint)]
    log = workdir / f"{kind}-{number}.log"
    with log.open("wb") as errors:
        process = subprocess.Popen(
            [*command, str(cores), str(config)],
            env={**env, "YOLO_CONFIG_DIR": str(config)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            start_new_session=True,
        )
        load.own_pids.add(process.pid)
        try:
            worker = Worker(process, log)
            worker.read(STARTUP_SECONDS)
            yield worker
        finally:
            stop_process_group(process)
            load.own_pids.discard(process.pid)


@contextlib.contextmanager
def _connection(port: int) -> Iterator[http.client.HTTPConnection]:
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_SECONDS)
    try:
        yield connection
    finally:
        connection.close()


def _multipart(data: bytes, filename: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b"".join(
        [
            f"--{boundary}\r\n".encode(),
            b'Content-Disposition: form-data; name="detect"\r\n\r\ntrue\r\n',
            f"--{boundary}\r\n".encode(),
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'.encode(),
            b"Content-Type: image/jpeg\r\n\r\n",
            data,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _post_image(
    connection: http.client.HTTPConnection, key: str, body: bytes, content_type: str
) -> tuple[int, bytes]:
    connection.request(
        "POST",
        "/images",
        body=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": content_type},
    )
    response = connection.getresponse()
    return response.status, response.read()


def _detected_image(status: int, payload: bytes) -> dict[str, Any]:
    if status != 200:
        raise SystemExit(f"POST /images answered {status}: {payload[:500]!r}")
    image: dict[str, Any] = json.loads(payload)
    if image.get("detection_status") != "succeeded":
        raise SystemExit(f"detection did not succeed: {image}")
    return image


# --- part 2: the CLIs -----------------------------------------------------------------------


def _measure_cli(
    workdir: Path,
    env: dict[str, str],
    checkpoint: Path,
    images: list[Path],
    plan: Plan,
    load: HostLoad,
) -> dict[str, list[CliRun]]:
    folder = images[0].parent
    yolo_cwd = workdir / "yolo-cwd"
    yolo_cwd.mkdir()
    yolo = [
        str(BIN / "yolo"),
        "predict",
        f"model={checkpoint}",
        f"source={folder}",
        f"imgsz={IMAGE_SIZE}",
        f"conf={CONFIDENCE}",
        f"iou={IOU}",
        "save=False",
        "verbose=False",
    ]
    tag = [str(BIN / "imagetag"), "tag", str(folder)]
    runs: dict[str, list[CliRun]] = {TAG: [], YOLO_SQUARE: [], YOLO_DEFAULT: [], TAG_PLAIN: []}
    for run_number in range(plan.cli_runs):
        commands: list[tuple[str, list[str], dict[str, str], Path | None]] = [
            (TAG, [*tag, "--detect"], _fresh_tag_env(env, workdir, checkpoint), None),
            # The CLI's predict defaults to rect=True (minimal padding: less work on these
            # non-square photos), as imagetag's adapter does; rect=False is the square
            # letterbox a fixed-shape ONNX export needs, shown for reference.
            (YOLO_SQUARE, [*yolo, "rect=False"], env, yolo_cwd),
            (YOLO_DEFAULT, yolo, env, yolo_cwd),
            # Everything but the model: start-up, migrations, reading, sniffing, storing.
            (TAG_PLAIN, tag, _fresh_tag_env(env, workdir, checkpoint), None),
        ]
        for name, command, command_env, cwd in commands:
            load.wait_for_quiet()
            with load.measure() as block:
                seconds, output = _run(command_env, command, cwd=cwd)
            if name in (TAG, TAG_PLAIN) and f"stored {len(images)} image(s)" not in output:
                raise SystemExit(f"{name} did not store every image:\n{output}")
            runs[name].append(CliRun(seconds, len(images), block))
        print(
            f"   run {run_number + 1}/{plan.cli_runs}, seconds (others' cores): "
            + ", ".join(
                f"{name} {found[-1].seconds:.2f} ({found[-1].block.foreign_cores:.2f})"
                for name, found in runs.items()
            )
        )
    return runs


def _fresh_tag_env(env: dict[str, str], workdir: Path, checkpoint: Path) -> dict[str, str]:
    data_dir = Path(tempfile.mkdtemp(prefix="tag-data-", dir=workdir))
    return _imagetag_env(env, data_dir, checkpoint)


# --- processes ------------------------------------------------------------------------------


def _run(env: dict[str, str], command: list[str], cwd: Path | None = None) -> tuple[float, str]:
    """Run a command to completion in its own session; wall-clock seconds and stdout."""
    began = time.perf_counter()
    process = subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=CLI_TIMEOUT_SECONDS)
    finally:
        stop_process_group(process)
    seconds = time.perf_counter() - began
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{stdout}\n{stderr}")
    return seconds, stdout


@contextlib.contextmanager
def _server(
    command: list[str], env: dict[str, str], log: Path, port: int, load: HostLoad
) -> Iterator[None]:
    """A server process in its own session, stopped (with all it started) on the way out."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        load.own_pids.add(process.pid)
        try:
            wait_until_answering(process, port, log, STARTUP_SECONDS)
            yield
        finally:
            stop_process_group(process)
            load.own_pids.discard(process.pid)


def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _provenance() -> str:
    """Which imagetag is measured: its source folder and, in a git checkout, the commit."""
    import imagetag

    source = Path(imagetag.__file__).resolve().parent
    described = subprocess.run(
        ["git", "-C", str(source), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    commit = described.stdout.strip() if described.returncode == 0 else "not a git checkout"
    return f"imagetag from {source} ({commit})"


def _versions() -> str:
    names = ("ultralytics-opencv-headless", "torch", "onnxruntime", "pillow", "litestar")
    found = []
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)}")
    return ", ".join(found)


# --- report ---------------------------------------------------------------------------------


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _others(blocks: Sequence[Block]) -> str:
    loads = [block.foreign_cores for block in blocks]
    return f"{statistics.median(loads):.2f}/{max(loads):.2f}"


def _summary(
    plan: Plan,
    part1: Part1,
    cli: dict[str, list[CliRun]],
    model_paths: dict[str, Any],
    model_block: Block,
    cores: int,
    load: HostLoad,
) -> None:
    server, in_server = part1.server, part1.in_server
    predict, adapter = part1.predict, part1.adapter
    # Each server against its own direct calls, then the mean over servers. Pooling every
    # server's calls first would mix processes of different speeds (up to ~10% apart), whose
    # pooled median can fall between the slow ones and the fast ones.
    process_ratios = [
        server.typical(in_process=number) / in_server.typical(in_process=number)
        for number in sorted({call.process for call in server.calls})
    ]
    ratio = statistics.fmean(process_ratios)
    round_ratios = [
        server.typical(in_round=index) / in_server.typical(in_round=index)
        for index in range(server.rounds)
    ]
    rows: list[tuple[str, str, str, str, str]] = [
        ("1. POST /images detect=true, typical ms", f"{server.typical():.1f}", "", "",
         _others(server.blocks)),
        ("   YOLO.predict(path) in the server, typical ms", f"{in_server.typical():.1f}", "", "",
         _others(in_server.blocks)),
        ("   server / its own YOLO.predict, mean of servers", f"{ratio:.3f}",
         f"<= {SERVER_GOAL:.2f}", _verdict(ratio <= SERVER_GOAL), ""),
        ("   same, per server: lowest, highest",
         f"{min(process_ratios):.3f}, {max(process_ratios):.3f}", "", "", ""),
        ("   same, typical of all servers' calls pooled",
         f"{server.typical() / in_server.typical():.3f}", "", "", ""),
        ("   same, median of per-round ratios", f"{statistics.median(round_ratios):.3f}", "", "",
         ""),
        ("   same, median of all calls pooled",
         f"{server.pooled_median / in_server.pooled_median:.3f}", "", "", ""),
        ("   YOLO.predict(path) in lean processes, typical ms", f"{predict.typical():.1f}", "",
         "", _others(predict.blocks)),
        ("   adapter.detect(bytes) in lean processes, typical ms", f"{adapter.typical():.1f}", "",
         "", _others(adapter.blocks)),
        ("   server / YOLO.predict in lean processes",
         f"{server.typical() / predict.typical():.3f}", "", "", ""),
        ("   server / adapter (HTTP and ingest)", f"{server.typical() / adapter.typical():.2f}",
         "", "", ""),
        ("   adapter / YOLO.predict (decoding)", f"{adapter.typical() / predict.typical():.2f}",
         "", "", ""),
    ]  # fmt: skip

    best = {name: min(found, key=lambda run: run.seconds) for name, found in cli.items()}
    for name in (TAG, YOLO_SQUARE, YOLO_DEFAULT, TAG_PLAIN):
        prefix = "2. " if name == TAG else "   "
        rows.append(
            (
                f"{prefix}{name}, images/s ({best[name].seconds:.1f} s)",
                f"{best[name].rate:.2f}",
                "",
                "",
                _others([run.block for run in cli[name]]),
            )
        )
    for name in (YOLO_SQUARE, YOLO_DEFAULT):
        cli_ratio = best[TAG].rate / best[name].rate
        rows.append(
            (
                f"   imagetag / {name}",
                f"{cli_ratio:.3f}",
                f">= {CLI_GOAL:.2f}",
                _verdict(cli_ratio >= CLI_GOAL),
                "",
            )
        )

    others = f"{model_block.foreign_cores:.2f}"
    rows += [
        ("3. torch adapter, median ms per image", f"{model_paths['torch']['all']:.1f}", "", "",
         others),
        ("   onnx adapter, median ms per image", f"{model_paths['onnx']['all']:.1f}", "", "",
         others),
        ("   onnx / torch, both square input", f"{model_paths['onnx_over_torch']:.2f}",
         "", "", ""),
    ]  # fmt: skip

    width = max(len(row[0]) for row in rows)
    header = f"{'figure':<{width}}  {'value':>8}  {'goal':>7}  {'verdict':<7}  others' cores"
    print(f"\nsummary ({plan.name} run, {cores} cores)")
    print(header)
    print("-" * len(header))
    for name, value, goal, verdict, foreign in rows:
        print(f"{name:<{width}}  {value:>8}  {goal:>7}  {verdict:<7}  {foreign}".rstrip())
    print(
        f"\n1: {len(server.calls)} timed calls each ({plan.generations} generation(s) of "
        f"{plan.processes} process(es) per way, {plan.rounds} rounds of {plan.per_round} images "
        f"each), every process of a generation in turn, after "
        f"{plan.warm_up} warm-up calls each and one more per turn; one model per process, "
        f"torch at {cores} threads in all. Typical: each photo's median, averaged over the photos. "
        "The goal compares each server with YOLO.predict on its own model and inference thread, "
        "image by image (identical processes differ by up to ~10% in the model's speed), and "
        "averages the servers' ratios; the lean processes are a cross-check."
    )
    print(
        f"2: best (shortest wall-clock) of {plan.cli_runs} interleaved run(s) of each command over "
        f"{best[TAG].images} images, process start and model load included; '{YOLO_DEFAULT}' is "
        f"the CLI's default (rect=True, as imagetag's adapter), '{YOLO_SQUARE}' the square "
        "letterbox of ONNX."
    )
    print(
        f"3: {model_paths['repeats']} repeat(s) per image after one warm-up pass, "
        f"{model_paths['threads']} threads each."
    )
    noisy = [
        block
        for block in [
            *server.blocks,
            *predict.blocks,
            *adapter.blocks,
            *(run.block for runs in cli.values() for run in runs),
            model_block,
        ]
        if block.foreign_cores >= NOISY_CORES
    ]
    print(
        f"others' cores: CPU other processes on the host used during the measured blocks, "
        f"median/max (1) or per block; {len(noisy)} block(s) at >= {NOISY_CORES} cores; "
        f"{load.waited_seconds:.0f} s of {load.budget_seconds:.0f} s spent waiting for quiet."
    )
    if noisy:
        print("the host was busy during some blocks: compare like rounds, or rerun when quiet.")


if __name__ == "__main__":
    sys.exit(main())
