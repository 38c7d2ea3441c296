"""Mixed load, then faults, against the real server on SQLite and on PostgreSQL.

    .venv/bin/python bench/load/run.py [--quick] [--backends sqlite,postgresql]
                                       [--duration 60] [--clients 8]

Per backend: a fresh data dir (and, for PostgreSQL, a throwaway cluster), ``imagetag serve``
on a free loopback port, a seed of tagged images, then a timed mix of uploads (20 %),
searches (40 %) and ``GET /images/{id}`` (40 %) from concurrent asyncio clients. Then the
faults: ``kill -9`` of the server in the middle of uploads (and a restart), and for
PostgreSQL a restart of the database under load while the API keeps running. Every
acknowledged upload is then checked: present, with the bytes that were sent, never twice.
See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import glob
import hashlib
import io
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from processes import (
    HOST,
    free_port,
    run_benchmark,
    stop_process_group,
    wait_until_answering,
)
from read.sample_data import bench_env, imagetag_cli
from tests.support.postgres import running_cluster

BIN = Path(sys.executable).parent
STARTUP_SECONDS = 90.0
MIX = (("upload", 0.2), ("search", 0.4), ("get", 0.4))
SEED_IMAGES = 40
TAG_NAMES = ("street", "cat", "dog", "red", "blue", "night", "beach", "snow")
# Replaying every acknowledged upload would double the run; a sample, plus every upload that
# saw a fault, shows whether a retry with the same Idempotency-Key ever makes a second image.
REPLAY_SAMPLE = 200
REQUEST_TIMEOUT_SECONDS = 30.0


@dataclass
class Upload:
    """One upload as the client sent it, and what the server answered."""

    key: str
    data: bytes
    media_type: str
    sha256: str
    image_id: int | None = None
    saw_fault: bool = False


@dataclass
class Recorder:
    """Latencies of successes and errors per kind; errors during a fault counted apart."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    errors: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    fault_errors: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    error_times: list[float] = field(default_factory=list)
    # The first answer of each kind of error, to say what went wrong.
    examples: dict[tuple[str, str], str] = field(default_factory=dict)
    in_fault: bool = False

    def success(self, kind: str, seconds: float) -> None:
        self.latencies[kind].append(seconds * 1000)

    def error(self, kind: str, what: str, example: str = "") -> None:
        self.examples.setdefault((kind, what), example)
        if self.in_fault:
            self.fault_errors[(kind, what)] += 1
            self.error_times.append(time.monotonic())
        else:
            self.errors[(kind, what)] += 1


class Server:
    """``imagetag serve`` on one port, which can be killed and started again on it."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.port = env, log, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        command = [str(BIN / "imagetag"), "serve", "--host", HOST, "--port", str(self.port)]
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_answering(self.process, self.port, self.log, STARTUP_SECONDS)

    def kill9(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)


@dataclass
class Backend:
    name: str
    env: dict[str, str]
    # The PostgreSQL data directory when the backend is a cluster we may restart.
    pg_data: Path | None = None


@dataclass
class Report:
    backend: str
    mixed_seconds: float = 0.0
    recorder: Recorder = field(default_factory=Recorder)
    client_cores: float = 0.0
    other_cores: float = 0.0
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    duration = args.duration if args.duration is not None else (12 if args.quick else 60)
    print(
        f"load average before the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
        f"{args.clients} clients, {duration} s of mixed load per backend"
    )
    reports = []
    for name in args.backends.split(","):
        with _backend(name) as backend:
            reports.append(asyncio.run(_run_backend(backend, args, duration)))
    failed = _print_summary(reports)
    return 1 if failed else 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="about a minute in all")
    parser.add_argument("--duration", type=int, help="seconds of mixed load (default 60)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--backends", default="sqlite,postgresql")
    return parser.parse_args(argv)


@contextlib.contextmanager
def _backend(name: str) -> Iterator[Backend]:
    with tempfile.TemporaryDirectory(prefix=f"bench-load-{name}-") as workdir:
        env = bench_env(Path(workdir) / "data")
        if name == "sqlite":
            yield Backend(name, env)
            return
        if name != "postgresql":
            raise SystemExit(f"unknown backend {name!r}: sqlite or postgresql")
        with running_cluster() as url:
            env = {**env, "IMAGETAG_DATABASE_URL": url}
            imagetag_cli(env, "db", "upgrade")
            yield Backend(name, env, pg_data=asyncio.run(_pg_data_directory(url)))


async def _pg_data_directory(url: str) -> Path:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return Path(await connection.fetchval("SHOW data_directory"))
    finally:
        await connection.close()


async def _run_backend(backend: Backend, args: argparse.Namespace, duration: int) -> Report:
    report = Report(backend.name)
    print(f"\n== {backend.name} ==")
    key = imagetag_cli(backend.env, "keys", "create", "load", "--role", "tagger")
    key = key.strip().splitlines()[-1].strip()
    log = Path(backend.env["IMAGETAG_DATA_DIR"]).parent / "server.log"
    server = Server(backend.env, log)
    server.start()
    uploads: list[Upload] = []
    try:
        limits = httpx.Limits(max_connections=args.clients * 2)
        async with httpx.AsyncClient(
            headers={"Authorization": f"Bearer {key}"},
            timeout=REQUEST_TIMEOUT_SECONDS,
            limits=limits,
        ) as client:
            ids = await _seed(client, server.base, uploads)
            await _load(client, server.base, args.clients, 3.0, ids, uploads, Recorder())
            cpu = _cpu_snapshot()
            started = time.monotonic()
            await _load(client, server.base, args.clients, duration, ids, uploads, report.recorder)
            report.mixed_seconds = time.monotonic() - started
            report.client_cores, report.other_cores = _cpu_since(cpu, server, report.mixed_seconds)
            _print_mixed(report)

            await _kill9_fault(client, server, args.clients, ids, uploads, report)
            if backend.pg_data is not None:
                await _db_restart_fault(client, server, backend, args.clients, ids, uploads, report)
            await _reconcile(client, server.base, uploads, report)
    finally:
        server.stop()
    if report.failures:
        print(f"server log: {log}\n" + log.read_text()[-3000:])
    return report


def _new_image(rng: random.Random) -> tuple[bytes, str]:
    """Small noisy bytes, unique per call (noise), PNG or JPEG."""
    size = rng.randint(24, 64)
    image = Image.frombytes("RGB", (size, size), rng.randbytes(size * size * 3))
    buffer = io.BytesIO()
    if rng.random() < 0.5:
        image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue(), "image/png"
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue(), "image/jpeg"


def _new_upload(rng: random.Random) -> Upload:
    data, media_type = _new_image(rng)
    return Upload(str(uuid.uuid4()), data, media_type, hashlib.sha256(data).hexdigest())


async def _post_upload(client: httpx.AsyncClient, base: str, upload: Upload) -> httpx.Response:
    extension = "png" if upload.media_type == "image/png" else "jpg"
    return await client.post(
        f"{base}/images",
        headers={"Idempotency-Key": upload.key},
        files={"file": (f"load.{extension}", upload.data, upload.media_type)},
    )


async def _seed(client: httpx.AsyncClient, base: str, uploads: list[Upload]) -> list[int]:
    """Images with a few human tags each, so that searches find something."""
    rng = random.Random(1)
    ids = []
    for _ in range(SEED_IMAGES):
        upload = _new_upload(rng)
        response = await _post_upload(client, base, upload)
        response.raise_for_status()
        upload.image_id = response.json()["id"]
        uploads.append(upload)
        ids.append(upload.image_id)
        names = rng.sample(TAG_NAMES, rng.randint(1, 3))
        tagged = await client.post(f"{base}/images/{upload.image_id}/tags", json={"names": names})
        tagged.raise_for_status()
    return ids


def _search_params(rng: random.Random) -> dict[str, str]:
    """Varied search parameters: names, match, exclusion, source, time ranges, page sizes."""
    params: dict[str, str] = {"limit": str(rng.choice((5, 20, 50, 100)))}
    choice = rng.randrange(6)
    if choice == 0:
        params["tags"] = ",".join(rng.sample(TAG_NAMES, rng.randint(1, 3)))
        params["match"] = rng.choice(("any", "all"))
    elif choice == 1:
        wanted, unwanted = rng.sample(TAG_NAMES, 2)
        params["tags"], params["exclude"] = wanted, unwanted
        params["source"] = "human"
    elif choice == 2:
        params["untagged"] = rng.choice(("true", "false"))
    elif choice == 3:
        params["created_after"] = "2020-01-01"
        params["tagged_by"] = "load"
    elif choice == 4:
        params["objects"] = rng.choice(("person", "dog,cat"))
    return params


async def _load(
    client: httpx.AsyncClient,
    base: str,
    clients: int,
    seconds: float,
    ids: list[int],
    uploads: list[Upload],
    recorder: Recorder,
    mix: tuple[tuple[str, float], ...] = MIX,
) -> None:
    """``clients`` loops sending the mix until ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    kinds = [kind for kind, _ in mix]
    weights = [weight for _, weight in mix]

    async def one_client(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            upload = _new_upload(rng) if kind == "upload" else None
            if upload is not None:
                uploads.append(upload)
            started = time.monotonic()
            try:
                if upload is not None:
                    response = await _post_upload(client, base, upload)
                elif kind == "search":
                    response = await client.get(f"{base}/images", params=_search_params(rng))
                else:
                    response = await client.get(f"{base}/images/{rng.choice(ids)}")
            except httpx.HTTPError as error:
                if upload is not None:
                    upload.saw_fault = True
                recorder.error(kind, type(error).__name__)
                # A dead server refuses at once; do not spin on it.
                await asyncio.sleep(0.05)
                continue
            if response.status_code == 200:
                recorder.success(kind, time.monotonic() - started)
                if upload is not None:
                    upload.image_id = response.json()["id"]
                    ids.append(upload.image_id)
            else:
                if upload is not None:
                    upload.saw_fault = True
                recorder.error(kind, str(response.status_code), _example(response))
                await asyncio.sleep(0.05)

    await asyncio.gather(*(one_client(random.randrange(2**32)) for _ in range(clients)))


async def _kill9_fault(
    client: httpx.AsyncClient,
    server: Server,
    clients: int,
    ids: list[int],
    uploads: list[Upload],
    report: Report,
) -> None:
    """Uploads only; SIGKILL the server 2 s in, start it again, keep uploading."""
    recorder = Recorder(in_fault=True)
    before = len(uploads)
    load = asyncio.create_task(
        _load(client, server.base, clients, 1e9, ids, uploads, recorder, (("upload", 1.0),))
    )
    await asyncio.sleep(2.0)
    in_flight = sum(1 for upload in uploads[before:] if upload.image_id is None)
    killed = time.monotonic()
    server.kill9()
    await asyncio.to_thread(server.start)
    answering = time.monotonic() - killed
    await asyncio.sleep(3.0)
    load.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await load
    sent = uploads[before:]
    acked = sum(1 for upload in sent if upload.image_id is not None)
    unacked = [upload for upload in sent if upload.image_id is None]
    retried = await _retry_unacknowledged(client, server.base, unacked, report)
    for (kind, what), count in recorder.fault_errors.items():
        report.recorder.fault_errors[("kill -9 " + kind, what)] += count
        report.recorder.examples[("kill -9 " + kind, what)] = recorder.examples[(kind, what)]
    line = (
        f"kill -9 in the middle of uploads ({in_flight} unanswered when killed): {len(sent)} "
        f"uploads sent, {acked} acknowledged, {len(unacked)} not (connection errors: "
        f"{_describe(recorder.fault_errors)}); server answering again {answering:.1f} s after "
        f"the kill; the {len(unacked)} unacknowledged retried with their Idempotency-Key after "
        f"the restart: {retried}"
    )
    report.notes.append(line)
    print(line)


async def _retry_unacknowledged(
    client: httpx.AsyncClient, base: str, unacked: list[Upload], report: Report
) -> str:
    statuses: collections.Counter[int] = collections.Counter()
    for upload in unacked:
        upload.saw_fault = True
        response = await _post_upload(client, base, upload)
        statuses[response.status_code] += 1
        if response.status_code == 200:
            upload.image_id = response.json()["id"]
        else:
            report.failures.append(
                f"retry of an unacknowledged upload after the fault answered "
                f"{response.status_code}: {response.text[:300]}"
            )
    return ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items())) or "-"


async def _db_restart_fault(
    client: httpx.AsyncClient,
    server: Server,
    backend: Backend,
    clients: int,
    ids: list[int],
    uploads: list[Upload],
    report: Report,
) -> None:
    """The mix; ``pg_ctl restart -m fast`` 3 s in; the API process is left alone."""
    assert backend.pg_data is not None
    assert server.process is not None
    pid = server.process.pid
    recorder = Recorder(in_fault=True)
    before = len(uploads)
    load = asyncio.create_task(_load(client, server.base, clients, 1e9, ids, uploads, recorder))
    await asyncio.sleep(3.0)
    restart_started = time.monotonic()
    await asyncio.to_thread(_pg_restart, backend.pg_data)
    database_up = time.monotonic()
    await asyncio.sleep(8.0)
    load.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await load
    unacked = [upload for upload in uploads[before:] if upload.image_id is None]
    retried = await _retry_unacknowledged(client, server.base, unacked, report)
    # After the fault, the same mix must run clean on the same server process.
    after = Recorder()
    await _load(client, server.base, clients, 3.0, ids, uploads, after)
    if after.errors:
        report.failures.append(f"errors after the database restart: {_describe(after.errors)}")
    if not server.alive() or server.process.pid != pid:
        report.failures.append("the API process did not survive the database restart")
    for (kind, what), count in recorder.fault_errors.items():
        report.recorder.fault_errors[("db restart " + kind, what)] += count
        report.recorder.examples[("db restart " + kind, what)] = recorder.examples[(kind, what)]
    internal = sum(count for (_, what), count in recorder.fault_errors.items() if what == "500")
    if internal:
        report.failures.append(
            f"{internal} answers 500 while the database restarted (503 expected; the server "
            f"log's causes: {_log_causes(server.log)})"
        )
    last_error = max(recorder.error_times, default=restart_started)
    first_error = min(recorder.error_times, default=restart_started)
    line = (
        f"PostgreSQL restart (pg_ctl -m fast, {database_up - restart_started:.1f} s) under the "
        f"mix, API not restarted: {sum(recorder.fault_errors.values())} failed requests "
        f"({_describe(recorder.fault_errors)}), failures from "
        f"{first_error - restart_started:+.1f} s to {last_error - restart_started:+.1f} s after "
        f"the restart began; recovered {max(0.0, last_error - database_up):.1f} s after the "
        f"database was up; {sum(len(v) for v in after.latencies.values())} requests of the mix "
        f"afterwards, errors {sum(after.errors.values())}; {len(unacked)} unacknowledged uploads "
        f"retried with their key: {retried}"
    )
    report.notes.append(line)
    print(line)


def _pg_restart(data: Path) -> None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    pg_ctl = candidates[0] if candidates else shutil.which("pg_ctl")
    if pg_ctl is None:
        raise SystemExit("pg_ctl not found")
    command = [pg_ctl, "-D", str(data), "-m", "fast", "-w", "-t", "60"]
    # The log beside the data dir (the cluster's root, the postgres user's); without -l the
    # new postmaster would keep our pipe open.
    command += ["-l", str(data.parent / "restart.log"), "restart"]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=90
    )


async def _reconcile(
    client: httpx.AsyncClient, base: str, uploads: list[Upload], report: Report
) -> None:
    """Every acknowledged upload present with its bytes; no sha256 stored twice."""
    acked = [upload for upload in uploads if upload.image_id is not None]
    semaphore = asyncio.Semaphore(8)
    missing: list[str] = []

    async def check(upload: Upload) -> None:
        async with semaphore:
            meta = await client.get(f"{base}/images/{upload.image_id}")
            content = await client.get(f"{base}/images/{upload.image_id}/content")
        if meta.status_code != 200 or meta.json()["sha256"] != upload.sha256:
            missing.append(f"image {upload.image_id}: GET answered {meta.status_code}")
        elif content.status_code != 200 or hashlib.sha256(content.content).hexdigest() != (
            upload.sha256
        ):
            missing.append(f"image {upload.image_id}: content answered {content.status_code}")

    await asyncio.gather(*(check(upload) for upload in acked))
    # A replay with the same key and body must return the same image, not store another.
    rng = random.Random(7)
    replayed = [upload for upload in acked if upload.saw_fault]
    plain = [upload for upload in acked if not upload.saw_fault]
    replayed += rng.sample(plain, min(REPLAY_SAMPLE, len(plain)))
    other_id: list[str] = []

    async def replay(upload: Upload) -> None:
        async with semaphore:
            response = await _post_upload(client, base, upload)
        if response.status_code != 200 or response.json()["id"] != upload.image_id:
            other_id.append(f"{upload.image_id}: {response.status_code} {response.text[:200]}")

    await asyncio.gather(*(replay(upload) for upload in replayed))
    counts = collections.Counter(image["sha256"] for image in await _all_images(client, base))
    sent = {upload.sha256 for upload in uploads}
    twice = sorted(sha for sha, count in counts.items() if count > 1)
    unknown = [sha for sha in counts if sha not in sent]
    line = (
        f"reconciliation: {len(acked)} acknowledged uploads, {len(acked) - len(missing)} present "
        f"with matching sha256 bytes; {len(replayed)} replayed with their Idempotency-Key "
        f"({sum(1 for u in replayed if u.saw_fault)} that saw a fault), "
        f"{len(replayed) - len(other_id)} returned the same image; {len(counts)} images "
        f"stored for {len(uploads)} uploads sent, sha256 stored twice: {len(twice)}"
    )
    report.notes.append(line)
    print(line)
    report.failures += [f"lost acknowledged upload {item}" for item in missing[:20]]
    report.failures += [f"replay did not return the same image {item}" for item in other_id[:20]]
    report.failures += [f"sha256 {sha} stored {counts[sha]} times" for sha in twice[:20]]
    report.failures += [f"an image nobody sent: {sha}" for sha in unknown[:20]]


async def _all_images(client: httpx.AsyncClient, base: str) -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"{base}/images", params=params)
        response.raise_for_status()
        body = response.json()
        images += body["images"]
        cursor = body["next_cursor"]
        if not cursor:
            return images


def _cpu_snapshot() -> tuple[int, float]:
    return _busy_ticks(), _own_seconds()


def _cpu_since(snapshot: tuple[int, float], server: Server, elapsed: float) -> tuple[float, float]:
    """Cores used by this client, and by processes other than it and the server (roughly:
    the server's ticks are not subtracted per process, so 'other' includes the server)."""
    busy, own = snapshot
    ticks = os.sysconf("SC_CLK_TCK")
    own_cores = (_own_seconds() - own) / elapsed
    all_cores = (_busy_ticks() - busy) / ticks / elapsed
    return own_cores, max(0.0, all_cores - own_cores)


def _busy_ticks() -> int:
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal


def _own_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _log_causes(log: Path) -> str:
    """The unhandled errors the server logged, by exception type (the traceback's last line)."""
    causes: collections.Counter[str] = collections.Counter()
    lines = log.read_text(errors="replace").splitlines()
    for number, line in enumerate(lines):
        if " unhandled " in line:
            last = next(
                (
                    later
                    for later in lines[number + 1 :]
                    if later
                    and not later[0].isspace()
                    and not later.startswith(("Traceback", "The above", "(Background", "During"))
                ),
                "?",
            )
            causes[last[:160]] += 1
    return "; ".join(f"{count} x {cause}" for cause, count in causes.most_common(5)) or "none"


def _example(response: httpx.Response) -> str:
    request = response.request
    return f"{request.method} {request.url.raw_path.decode()}: {response.text[:200]}"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def _describe(errors: collections.Counter[tuple[str, str]]) -> str:
    return ", ".join(f"{kind} {what}: {count}" for (kind, what), count in errors.items()) or "none"


def _print_mixed(report: Report) -> None:
    recorder = report.recorder
    total = sum(len(values) for values in recorder.latencies.values())
    print(
        f"mixed load, {report.mixed_seconds:.0f} s: {total / report.mixed_seconds:,.0f} req/s; "
        f"this client used {report.client_cores:.2f} cores, the server and everything else "
        f"{report.other_cores:.2f}"
    )
    for kind, _ in MIX:
        values = recorder.latencies[kind]
        errors = sum(count for (k, _), count in recorder.errors.items() if k == kind)
        print(
            f"  {kind:<7} {len(values) / report.mixed_seconds:>7,.0f} req/s  "
            f"p50 {_percentile(values, 0.5):6.1f} ms  p99 {_percentile(values, 0.99):6.1f} ms  "
            f"errors {errors}"
        )


def _print_summary(reports: list[Report]) -> bool:
    print("\n== summary ==")
    failed = False
    for report in reports:
        recorder = report.recorder
        total = sum(len(values) for values in recorder.latencies.values())
        print(
            f"{report.backend}: {total / report.mixed_seconds:,.0f} req/s mixed; "
            + "; ".join(
                f"{kind} p50 {_percentile(recorder.latencies[kind], 0.5):.1f} / p99 "
                f"{_percentile(recorder.latencies[kind], 0.99):.1f} ms"
                for kind, _ in MIX
            )
            + f"; errors under load {sum(recorder.errors.values())} (goal 0)"
            + f"; deliberate-fault errors {sum(recorder.fault_errors.values())}"
        )
        if recorder.errors:
            print(f"  errors: {_describe(recorder.errors)}")
        for (kind, what), example in recorder.examples.items():
            if example:
                print(f"  first {kind} {what}: {example}")
        for failure in report.failures:
            print(f"  FAILED: {failure}")
        failed = failed or bool(report.failures) or bool(recorder.errors)
    print("verdict: " + ("FAILED (see above)" if failed else "every check passed"))
    return failed


if __name__ == "__main__":
    run_benchmark(main)
