"""A throwaway PostgreSQL cluster for the test session, started from the local binaries."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

ADMIN_USER = "postgres"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: run scripts/test (it installs them) or set "
        "IMAGETAG_TEST_POSTGRES_URL to a server the tests may create databases on"
    )


def _as_postgres_user(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


# How to stop and start again each cluster running_cluster started, by its admin URL.
_CLUSTERS: dict[str, tuple[Path, Path, str, Path]] = {}


def stop_cluster(url: str) -> None:
    """Stop a cluster of running_cluster's (fast shutdown: sessions are cut off)."""
    bin_dir, data, _, _ = _CLUSTERS[url]
    subprocess.run(
        _as_postgres_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
        check=True,
        capture_output=True,
    )


def start_cluster(url: str) -> None:
    """Start a stopped cluster of running_cluster's again, on the same port."""
    bin_dir, data, options, root = _CLUSTERS[url]
    _pg_ctl_start(bin_dir, data, options, root)


def _pg_ctl_start(bin_dir: Path, data: Path, options: str, root: Path) -> None:
    command = [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options]
    command += ["-l", str(root / "log"), "-w", "-t", "60", "start"]
    subprocess.run(_as_postgres_user(command), check=True, capture_output=True)


@contextlib.contextmanager
def running_cluster() -> Iterator[str]:
    """Start a cluster on a free loopback port; yield its admin URL (asyncpg driver)."""
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="imagetag-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
    port = free_port()
    run = _as_postgres_user
    subprocess.run(
        run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                ADMIN_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    _pg_ctl_start(bin_dir, data, options, root)
    url = f"postgresql+asyncpg://{ADMIN_USER}@127.0.0.1:{port}/postgres"
    _CLUSTERS[url] = (bin_dir, data, options, root)
    try:
        yield url
    finally:
        _CLUSTERS.pop(url, None)
        subprocess.run(
            run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
