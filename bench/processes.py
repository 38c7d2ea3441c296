"""What the benchmarks share: free loopback ports, servers waited for and stopped."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_answering(
    process: subprocess.Popen[Any], port: int, log: Path, timeout_seconds: float
) -> None:
    """Wait until the server answers HTTP (any status); exit with its log if it dies."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError):
            connection = http.client.HTTPConnection(HOST, port, timeout=5)
            try:
                connection.request("GET", "/health")
                connection.getresponse()
                return
            finally:
                connection.close()
        time.sleep(0.2)
    raise SystemExit(f"server did not answer on port {port} in {timeout_seconds:g} s")


def stop_process_group(process: subprocess.Popen[Any]) -> None:
    """SIGTERM the process's group (it was started in a session of its own), then SIGKILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def run_benchmark(main: Callable[[], int], *, on_interrupt: str = "servers stopped") -> NoReturn:
    """Exit with ``main``'s code; Ctrl-C exits 130, saying what was cleaned up."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print(f"interrupted; {on_interrupt}", file=sys.stderr)
        sys.exit(130)
