"""Requests/second of ``GET /images/{id}`` on the real server against a bare ASGI app.

    .venv/bin/python bench/read/run.py [--duration 10] [--warmup 2] [--connections 16]

Ingests ~50 images into a fresh data dir, starts ``imagetag serve`` and ``bare_app.py``
(uvicorn, the same loop and HTTP implementation, one worker, no access log) on free loopback
ports, checks that both answer with the same JSON, then loads each with ``wrk`` in turns
(real, bare, real, bare, ...) and prints the medians and the ratio real/bare. See README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sample_data import COPIES, bench_env, create_reader_key, ingest_sample_images

from processes import free_port, run_benchmark, stop_process_group, wait_until_answering

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
RATIO_GOAL = 0.5
STARTUP_SECONDS = 90.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int


@dataclass(frozen=True)
class Run:
    """One measured wrk run and the CPU that went where during it (in cores)."""

    wrk: WrkResult
    server_cores: float
    other_cores: float

    @property
    def server_us_per_request(self) -> float:
        """Server CPU per answered request: less moved by busy neighbours than req/s."""
        return self.server_cores * 1e6 / self.wrk.requests_per_second


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    pid: int


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    # Ctrl-C and SIGTERM both unwind, so the servers are stopped either way (a shell starts
    # background jobs with SIGINT ignored; take it back).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    loop, http = _uvicorn_auto()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-read-")))
        env = bench_env(workdir / "data")
        started = time.monotonic()
        ingest_sample_images(workdir, env)
        key = create_reader_key(env)
        print(f"ingested images and created a key in {time.monotonic() - started:.1f} s")

        port = free_port()
        real = stack.enter_context(
            _server(
                "real",
                [str(BIN / "imagetag"), "serve", "--host", HOST, "--port", str(port)],
                env,
                workdir / "real.log",
                port,
            )
        )
        port = free_port()
        bare = stack.enter_context(
            _server(
                "bare",
                _bare_command(port, loop=loop, http=http),
                {**env, "BARE_DB_PATH": str(workdir / "data" / "imagetag.db")},
                workdir / "bare.log",
                port,
            )
        )

        ids, detected = _image_ids(real.port, key)
        _verify_same_json(real.port, bare.port, key, ids)
        print(
            f"{len(ids)} images ({detected} with model tags, all with human tags); both servers "
            "return the same JSON for all of them, 404 for an unknown id and 401 without a key"
        )
        script = workdir / "rotate.lua"
        script.write_text(_lua_script(ids, key))

        print(f"load average before the runs: {os.getloadavg()[0]:.2f}")
        results: dict[str, list[Run]] = {real.name: [], bare.name: []}
        for round_number in range(1, args.rounds + 1):
            for server in (real, bare):
                wrk_command = [
                    wrk,
                    "--latency",
                    f"-t{args.threads}",
                    f"-c{args.connections}",
                    "-s",
                    str(script),
                    f"http://{HOST}:{server.port}/images/{ids[0]}",
                ]
                _run_wrk(wrk_command, args.warmup)
                run = _measure(wrk_command, args.duration, server.pid)
                results[server.name].append(run)
                print(
                    f"round {round_number} {server.name}: "
                    f"{run.wrk.requests_per_second:,.0f} req/s, p50 {run.wrk.p50_ms:.2f} ms, "
                    f"p99 {run.wrk.p99_ms:.2f} ms, non-2xx {run.wrk.non_2xx}, "
                    f"socket errors {run.wrk.socket_errors}; server used "
                    f"{run.server_cores:.2f} cores ({run.server_us_per_request:.0f} us CPU per "
                    f"request), other processes {run.other_cores:.2f}"
                )

    _report(results, args, loop=loop, http=http)
    return 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before each run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=2, help="runs per server, interleaved")
    return parser.parse_args(argv)


def _uvicorn_auto() -> tuple[str, str]:
    """What ``imagetag serve`` gets from uvicorn's ``auto``, named for the bare app's flags."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


def _bare_command(port: int, *, loop: str, http: str) -> list[str]:
    """uvicorn as ``imagetag serve`` runs it: no Server header, no proxy headers."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(HERE),
        "bare_app:app",
        "--host",
        HOST,
        "--port",
        str(port),
        "--loop",
        loop,
        "--http",
        http,
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
        "--no-server-header",
        "--no-proxy-headers",
    ]


@contextlib.contextmanager
def _server(
    name: str, command: list[str], env: dict[str, str], log: Path, port: int
) -> Iterator[Server]:
    """A server process in its own session, stopped (with all it started) on the way out."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_until_answering(process, port, log, STARTUP_SECONDS)
            yield Server(name, port, process.pid)
        finally:
            stop_process_group(process)


def _get(port: int, path: str, key: str | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _image_ids(port: int, key: str) -> tuple[list[int], int]:
    """The ids of every stored image, and how many of the images have model tags."""
    status, body = _get(port, "/images?limit=1000", key)
    if status != 200:
        raise SystemExit(f"GET /images answered {status}: {body[:500]!r}")
    images: list[dict[str, Any]] = json.loads(body)["images"]
    if len(images) < COPIES:
        raise SystemExit(f"expected at least {COPIES} images, the server lists {len(images)}")
    ids = sorted(image["id"] for image in images)
    if not all(_has_tag(image, "human") for image in images):
        raise SystemExit("every image should carry human tags (sample_data.HUMAN_TAGS)")
    detected = sum(1 for image in images if _has_tag(image, "model"))
    if not detected:
        raise SystemExit("no image has model tags: did detection fail? (see imagetag tag)")
    return ids, detected


def _has_tag(image: dict[str, Any], source: str) -> bool:
    return any(tag["source"] == source for tag in image["tags"])


def _verify_same_json(real_port: int, bare_port: int, key: str, ids: list[int]) -> None:
    for image_id in ids:
        path = f"/images/{image_id}"
        real_status, real_body = _get(real_port, path, key)
        bare_status, bare_body = _get(bare_port, path, key)
        if real_status != 200 or bare_status != 200:
            raise SystemExit(f"GET {path}: real answered {real_status}, bare {bare_status}")
        real_json, bare_json = json.loads(real_body), json.loads(bare_body)
        if real_json != bare_json:
            differing = sorted(
                field
                for field in real_json.keys() | bare_json.keys()
                if real_json.get(field) != bare_json.get(field)
            )
            raise SystemExit(
                f"GET {path}: the bodies differ in {differing}\n"
                f"real: {json.dumps(real_json, indent=1)}\nbare: {json.dumps(bare_json, indent=1)}"
            )
    for port in (real_port, bare_port):
        status, _ = _get(port, f"/images/{ids[0]}")
        if status != 401:
            raise SystemExit(f"GET /images/{ids[0]} without a key answered {status}, not 401")
        status, _ = _get(port, f"/images/{ids[-1] + 1000}", key)
        if status != 404:
            raise SystemExit(f"GET /images/{ids[-1] + 1000} answered {status}, not 404")


def _lua_script(ids: list[int], key: str) -> str:
    """A wrk script that sends each connection's requests round the ids, with the key."""
    return (
        f"local ids = {{{', '.join(str(image_id) for image_id in ids)}}}\n"
        "local i = 0\n"
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        "request = function()\n"
        "  i = i % #ids + 1\n"
        '  return wrk.format("GET", "/images/" .. ids[i])\n'
        "end\n"
    )


def _run_wrk(command: list[str], seconds: int) -> WrkResult:
    completed = subprocess.run(
        [*command[:1], f"-d{seconds}s", *command[1:]],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"wrk failed ({completed.returncode}):\n{completed.stderr}")
    return parse_wrk(completed.stdout)


def _measure(command: list[str], seconds: int, server_pid: int) -> Run:
    """A wrk run, with the CPU of the server and of everything else but wrk and us."""
    busy, server, ours = _busy_ticks(), _process_ticks(server_pid), _own_ticks()
    started = time.monotonic()
    result = _run_wrk(command, seconds)
    elapsed = time.monotonic() - started
    busy, server = _busy_ticks() - busy, _process_ticks(server_pid) - server
    ours = _own_ticks() - ours
    return Run(
        wrk=result,
        server_cores=server / CLOCK_TICKS / elapsed,
        other_cores=max(0, busy - server - ours) / CLOCK_TICKS / elapsed,
    )


def _busy_ticks() -> int:
    """Non-idle CPU ticks of the whole machine since boot."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal


def _process_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        # Fields after the ")" that ends the command name; utime and stime are 14 and 15.
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _own_ticks() -> int:
    """This process's ticks and those of its finished children (the wrk runs)."""
    seconds = sum(
        usage.ru_utime + usage.ru_stime
        for usage in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )
    return round(seconds * CLOCK_TICKS)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_wrk(output: str) -> WrkResult:
    """The figures of a ``wrk --latency`` report."""

    def latency(percentile: str) -> float:
        found = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M)
        if found is None:
            raise ValueError(f"no {percentile}% latency in wrk output:\n{output}")
        return float(found[1]) * _UNITS_MS[found[2]]

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in", output, re.M)
    if rps is None or total is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests_per_second=float(rps[1]),
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        requests=int(total[1]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(count) for count in sockets.groups()) if sockets else 0,
    )


def _report(
    results: dict[str, list[Run]], args: argparse.Namespace, *, loop: str, http: str
) -> None:
    print(
        f"\nGET /images/{{id}}: wrk -t{args.threads} -c{args.connections} -d{args.duration}s "
        f"after a {args.warmup}s warm-up, median of {args.rounds} interleaved runs; "
        f"uvicorn --loop {loop} --http {http}, 1 worker, no access log"
    )
    columns = ("req/s", "p50 ms", "p99 ms", "non-2xx", "sock err", "srv cores", "us/req")
    header = f"{'server':<6} {columns[0]:>9} " + " ".join(f"{column:>9}" for column in columns[1:])
    print(header)
    print("-" * len(header))
    medians: dict[str, float] = {}
    errors = 0
    for name, runs in results.items():
        medians[name] = statistics.median(run.wrk.requests_per_second for run in runs)
        non_2xx = sum(run.wrk.non_2xx for run in runs)
        socket_errors = sum(run.wrk.socket_errors for run in runs)
        errors += non_2xx + socket_errors
        print(
            f"{name:<6} {medians[name]:>9,.0f} "
            f"{statistics.median(run.wrk.p50_ms for run in runs):>9.2f} "
            f"{statistics.median(run.wrk.p99_ms for run in runs):>9.2f} "
            f"{non_2xx:>9} {socket_errors:>9} "
            f"{statistics.median(run.server_cores for run in runs):>9.2f} "
            f"{statistics.median(run.server_us_per_request for run in runs):>9.0f}"
        )
    ratio = medians["real"] / medians["bare"]
    print(f"\nratio real/bare: {ratio:.2f} (goal >= {RATIO_GOAL}: {_verdict(ratio >= RATIO_GOAL)})")
    cpu = {
        name: statistics.median(run.server_us_per_request for run in runs)
        for name, runs in results.items()
    }
    print(
        f"server CPU per request, bare/real: {cpu['bare'] / cpu['real']:.2f} (the same ratio "
        "measured in CPU rather than wall time; less moved by busy neighbours)"
    )
    print(f"errors (non-2xx + socket, all runs): {errors} (goal 0: {_verdict(not errors)})")
    noise = max(run.other_cores for runs in results.values() for run in runs)
    if noise > 0.2:
        print(
            f"warning: other processes used up to {noise:.2f} cores during a run; on this "
            f"{os.cpu_count()}-core machine that skews the figures (the ratio less so)"
        )
    print(
        "note: the bare app requires an 'Authorization: Bearer' header but does not look the "
        "key up; the real server checks it (against the database, then from memory for "
        "IMAGETAG_AUTH_CACHE_SECONDS)."
    )


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


if __name__ == "__main__":
    run_benchmark(main)
