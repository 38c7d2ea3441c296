"""Python's cyclic garbage collector, paused while a process builds what it keeps for life."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block, then freeze every object that
    exists (later collections skip them) and resume it, if it ran before.

    For imports and model loads: they make millions of objects and keep nearly all, so the
    collections they trigger find little to free. Importing torch and ultralytics and
    loading a YOLO model ran ~420 collections here (0.37 s of 1.7 s), the CLI's own imports
    ~250 (0.12 s of 0.8 s). Frozen objects that become garbage are still freed by reference
    counting; only reference cycles among them stay for the life of the process.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
