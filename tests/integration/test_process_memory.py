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

# What one image costs a detector's thread, roughly: decoded pixels, a letterboxed copy,
# its float tensor and activations of a few sizes, some kept a while, all freed by the end.
ALLOCATION_PATTERN = textwrap.dedent(
    """
    import json, resource, sys, threading
    import numpy as np

    from imagetag.adapters.detectors.process_memory import keep_freed_memory

    applied = keep_freed_memory() if sys.argv[1] == "keep" else None
    megabytes = (2.6, 0.9, 3.7, 4.9, 9.8, 2.4, 1.2, 4.9, 0.6, 12.0, 0.3)
    faults = []

    def images():
        for _ in range(20):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            held = []
            for index, size in enumerate(megabytes):
                array = np.empty(int(size * 2**20), np.uint8)
                array[::4096] = 1  # touch every page
                if index % 3:
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


def run_pattern(mode: str, **env: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", ALLOCATION_PATTERN, mode],
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


def test_malloc_tuned_by_the_environment_is_left_as_the_operator_set_it() -> None:
    by_variable = run_pattern("keep", MALLOC_TRIM_THRESHOLD_="1048576")
    by_tunables = run_pattern("keep", GLIBC_TUNABLES="glibc.malloc.trim_threshold=1048576")

    assert by_variable["applied"] is False
    assert by_tunables["applied"] is False


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
