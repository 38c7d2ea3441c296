"""Where ``POST /images`` with detection spends its time inside a real ``imagetag serve``.

    .venv/bin/python bench/detect/trace_server.py [--requests 60] [--env NAME=VALUE ...]

Starts one server as ``run.py`` does (fresh data dir, a random YOLO11n checkpoint, the
same re-encoded photos, each upload made unique), with ``trace_hooks.py`` loaded as its
``sitecustomize``: it timestamps each stage of an ingest in the server process (nothing in
``src/`` changes). Uploads the images one at a time over one connection, stops the server
and prints, per stage, the median over the requests: from the ASGI call to the last byte
of the answer. ``overhead`` is that whole time less decoding and ``YOLO.predict``, the two
things a direct call of the model also does, so it does not move with the model's speed
(which differs by up to ~9% between identical processes). ``--env`` passes settings to the
server only, e.g. ``--env GOMP_SPINCOUNT=300000`` for libgomp's default spin-wait.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from host_load import HostLoad
from run import _serving, build_checkpoint, offline_env, prepare_images

from imagetag.adapters.detectors.ultralytics_env import configure_ultralytics_offline

HERE = Path(__file__).resolve().parent
WARM_UP = 5

# (label, from event, to event): consecutive stages of one request, then the totals.
SEGMENTS = (
    ("routing, auth, dependencies", "request", "form+"),
    ("multipart parse", "form+", "form-"),
    ("bounded header read (on the loop)", "form-", "bounded-"),
    ("sha256, then to detect", "bounded-", "decode+"),
    ("hop to the inspect thread", "form-", "inspect+"),
    ("Pillow header sniff", "inspect+", "inspect-"),
    ("sha256, hop back, to detect", "inspect-", "decode+"),
    ("  blob staged: folders, write, fsyncs (beside)", "stage+", "stage-"),
    ("decode (OpenCV)", "decode+", "decode-"),
    ("marker check, on to predict", "decode-", "predict+"),
    ("YOLO.predict", "predict+", "predict-"),
    ("  blob commit: rename (beside)", "blob+", "blob-"),
    # Without an Idempotency-Key the rows go in one call (add_image_and_commit), else in
    # three; only the stages of the path taken are printed.
    ("results, hop back to the loop", "predict-", "record+"),
    ("INSERT, audit events and COMMIT", "record+", "record-"),
    ("close, label, answer", "record-", "send"),
    ("results, hop back to the loop", "predict-", "add+"),
    ("INSERT image, run, tags", "add+", "add-"),
    ("audit events, idempotency key", "add-", "commit+"),
    ("COMMIT (with the audit events)", "commit+", "commit-"),
    ("close, label, answer", "commit-", "send"),
    ("whole request", "request", "send"),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--quiet-budget", type=float, default=120.0)
    arguments = parser.parse_args(argv)
    extra = dict(setting.split("=", 1) for setting in arguments.env)
    load = HostLoad(budget_seconds=arguments.quiet_budget)
    with tempfile.TemporaryDirectory(prefix="trace-server-") as scratch:
        workdir = Path(scratch)
        configure_ultralytics_offline(workdir / "ultralytics-bench")
        checkpoint = build_checkpoint(workdir / "model")
        images = prepare_images(workdir / "images", 20)
        hooks = workdir / "hooks"
        hooks.mkdir()
        shutil.copy(HERE / "trace_hooks.py", hooks / "sitecustomize.py")
        trace = workdir / "trace.json"
        env = offline_env(workdir) | extra
        # Hooks first, then whatever the caller had: a worktree's src/ stays what is served.
        python_path = os.pathsep.join(filter(None, (str(hooks), str(HERE), env.get("PYTHONPATH"))))
        env |= {"PYTHONPATH": python_path, "IMAGETAG_TRACE_FILE": str(trace)}
        with _serving(0, workdir, env, checkpoint, images, load) as run_images:
            run_images(list(range(WARM_UP)))
            load.wait_for_quiet()
            chosen = [index % len(images) for index in range(arguments.requests)]
            with load.measure() as block:
                client_ms = run_images(chosen)[0]
        requests = _requests(json.loads(trace.read_text()))[WARM_UP:]
    _report(requests, client_ms, extra, block.foreign_cores)
    return 0


def _requests(events: list[tuple[float, str]]) -> list[dict[str, float]]:
    """Each POST's first time of every event, in milliseconds from its start."""
    found: list[dict[str, float]] = []
    for at, name in events:
        if name == "request":
            found.append({})
        if found:
            found[-1].setdefault(name, at)
    return [
        {name: (at - request["request"]) * 1000 for name, at in request.items()}
        for request in found
        if "send" in request and "predict+" in request
    ]


def _report(
    requests: list[dict[str, float]], client_ms: list[float], extra: dict[str, str], foreign: float
) -> None:
    print(
        f"\n{len(requests)} requests, one at a time; server env {extra or 'as run.py'}; "
        f"others used {foreign:.2f} cores meanwhile"
    )
    print(f"{'stage':<36}{'median ms':>10}{'p90 ms':>9}")
    for label, start, end in SEGMENTS:
        spans = [r[end] - r[start] for r in requests if start in r and end in r]
        if spans:
            print(f"{label:<36}{statistics.median(spans):>10.2f}{_p90(spans):>9.2f}")
    overhead = [r["send"] - (r["decode-"] - r["decode+"]) - (r["predict-"] - r["predict+"])
                for r in requests]  # fmt: skip
    print(f"{'overhead (whole - decode - predict)':<36}{statistics.median(overhead):>10.2f}"
          f"{_p90(overhead):>9.2f}")  # fmt: skip
    print(f"{'client: request to answer':<36}{statistics.median(client_ms):>10.2f}"
          f"{_p90(client_ms):>9.2f}")  # fmt: skip


def _p90(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.9)]


if __name__ == "__main__":
    sys.exit(main())
