"""Keep the memory of one image's arrays for the next, instead of returning it to the kernel.

With glibc's default malloc a process that allocates and frees megabyte-sized arrays on a
thread of its own (decoded pixels, a model's activations) may hand part of that memory
back to the kernel after every image and fault it in again on the next: 1,000-2,700 page
faults and 5-8 ms per image in some server processes and not in others, which ran
identical code (bench/detect). Fixing the thresholds ends glibc's adaptive behaviour: blocks
under 32 MiB stay in the heap, and up to 256 MiB of free memory stays with the process.

A thread's arena grows in heaps of 64 MiB, and glibc unmaps a heap beyond the first as soon
as it is wholly free, whatever the trim threshold: an inference thread whose arena happened
to span two heaps faulted ~2,300 pages back in per image (one server in a dozen). A top pad
of a whole heap makes glibc keep it. It only reserves address space: untouched pages cost
no memory.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import threading

logger = logging.getLogger(__name__)

# mallopt parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
"""glibc's largest allowed value on 64-bit: only bigger blocks get memory maps of their own."""
TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024
TOP_PAD_BYTES = 64 * 1024 * 1024
"""A thread arena's heap size on 64-bit: with this much pad no free heap is unmapped."""

# Set by the operator instead: glibc reads these at start-up, and they win.
_OVERRIDES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")

_lock = threading.Lock()
_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc malloc's thresholds and top pad as above, once per process; whether
    they are set.

    Does nothing on other C libraries, or when the environment tunes malloc itself
    (``MALLOC_*_`` variables or ``glibc.malloc`` in ``GLIBC_TUNABLES``).
    """
    global _applied
    with _lock:
        if _applied is None:
            _applied = _apply()
        return _applied


def _apply() -> bool:
    if platform.libc_ver()[0] != "glibc":
        return False
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc" in tunables or any(name in os.environ for name in _OVERRIDES):
        logger.info("malloc is tuned by the environment; leaving its thresholds as set")
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt answers 1 on success.
    done: bool = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    done = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and done
    done = mallopt(_M_TOP_PAD, TOP_PAD_BYTES) == 1 and done
    if not done:
        logger.warning("could not set malloc's thresholds; images may cost page faults")
    return done
