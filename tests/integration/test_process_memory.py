"""glibc malloc keeps the memory of one image's arrays for the next (``process_memory``).

Each case runs in a fresh interpreter: malloc's thresholds are process-wide and this
test process has allocated all sorts before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

# Twenty "images" on a thread of their own: arrays of the sizes given in megabytes, every
# page touched, some (or all) held to the image's end, all freed by then; the page faults
# of each of the last fifteen.
ALLOCATION_PATTERN = textwrap.dedent(
    """
    import json, resource, sys, threading
    import numpy as np

    from imagetag.adapters.detectors.process_memory import keep_freed_memory

    applied = keep_freed_memory() if sys.argv[1] == "keep" else None
    megabytes, hold_all = json.loads(sys.argv[2]), sys.argv[3] == "hold-all"
    faults = []

    def images():
        for _ in range(20):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            held = []
            for index, size in enumerate(megabytes):
                array = np.empty(int(size * 2**20), np.uint8)
                array[::4096] = 1  # touch every page
                if hold_all or index % 3:
                    held.append(array)
            del held, array
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

    thread = threading.Thread(target=images)
    thread.start()
    thread.join()
    steady = faults[5:]
    print(json.dumps({"applied": applied, "faults_per_image": sum(steady) / len(steady)}))
    """
)


# Photo-sized: decoded pixels, a letterboxed copy, its tensor, activations of a few sizes.
PHOTO = (2.6, 0.9, 3.7, 4.9, 9.8, 2.4, 1.2, 4.9, 0.6, 12.0, 0.3)
# 90 MiB held at once: more than one of glibc's 64 MiB heaps of a thread's arena.
BEYOND_ONE_HEAP = (3.0,) * 30


def run_pattern(
    mode: str, megabytes: tuple[float, ...] = PHOTO, *, hold_all: bool = False, **env: str
) -> dict[str, object]:
    holding = "hold-all" if hold_all else "hold-some"
    result = subprocess.run(
        [sys.executable, "-c", ALLOCATION_PATTERN, mode, json.dumps(megabytes), holding],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def test_arrays_freed_on_a_thread_are_reused_instead_of_faulted_in_again() -> None:
    default = run_pattern("default")
    kept = run_pattern("keep")

    # The default thresholds give pages back and fault them in again on every image.
    assert isinstance(default["faults_per_image"], float)
    assert default["faults_per_image"] > 500
    assert kept == {"applied": True, "faults_per_image": 0.0}


def test_a_working_set_beyond_one_arena_heap_is_kept_too() -> None:
    # glibc unmaps a thread arena's extra heap whenever it is wholly free, whatever the
    # trim threshold: the lottery of a server whose inference thread's arena happened to
    # span two heaps (2,300 faults per image in one server of a dozen, bench/detect).
    default = run_pattern("default", BEYOND_ONE_HEAP, hold_all=True)
    kept = run_pattern("keep", BEYOND_ONE_HEAP, hold_all=True)

    assert isinstance(default["faults_per_image"], float)
    assert default["faults_per_image"] > 1000
    assert kept == {"applied": True, "faults_per_image": 0.0}


def test_malloc_tuned_by_the_environment_is_left_as_the_operator_set_it() -> None:
    by_variable = run_pattern("keep", MALLOC_TRIM_THRESHOLD_="1048576")
    by_tunables = run_pattern("keep", GLIBC_TUNABLES="glibc.malloc.trim_threshold=1048576")
    by_top_pad = run_pattern("keep", MALLOC_TOP_PAD_="0")

    assert by_variable["applied"] is False
    assert by_tunables["applied"] is False
    assert by_top_pad["applied"] is False


def test_loading_a_detector_keeps_freed_memory() -> None:
    script = textwrap.dedent(
        """
        from imagetag.adapters.detectors import process_memory
        from imagetag.adapters.detectors.opencv_cascade import OpenCvCascadeDetector

        before = process_memory._applied
        OpenCvCascadeDetector().load()
        print(before, process_memory._applied)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )

    assert result.stdout.split() == ["None", "True"]
