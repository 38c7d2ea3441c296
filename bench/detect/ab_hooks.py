"""Variant B inside a real server, for ``ab_in_process.py``; loaded as its ``sitecustomize``.

Once ``imagetag.entrypoints.http.app`` is imported, this wraps ``ImageService._ingest`` so
that an upload whose file name starts with ``B_`` runs with ``taking_b()`` true (a context
variable: it follows the request into its tasks and worker threads), then runs the
variant file named by ``IMAGETAG_AB_VARIANT_FILE``. That file patches imagetag where it
likes and asks ``taking_b()`` which way to go; nothing in ``src/`` changes. Without the
variable this module does nothing; with an empty one, both variants are the same code
(an A/A calibration).
"""

from __future__ import annotations

import contextvars
import os
import runpy
import sys
from typing import Any

from after_app_import import after_app_import

VARIANT_FILE = os.environ.get("IMAGETAG_AB_VARIANT_FILE")
B_PREFIX = "B_"

_taking_b: contextvars.ContextVar[bool] = contextvars.ContextVar("taking_b", default=False)


def taking_b() -> bool:
    """Whether the request being served takes variant B."""
    return _taking_b.get()


def _install() -> None:
    from imagetag.services.images import ImageService

    ingest = ImageService._ingest

    async def choosing_ingest(self: ImageService, request: Any, pending: Any, *args: Any) -> Any:
        source = getattr(pending, "source", None) or ""
        _taking_b.set(os.path.basename(source).startswith(B_PREFIX))
        return await ingest(self, request, pending, *args)

    setattr(ImageService, "_ingest", choosing_ingest)  # noqa: B010 (a patch mypy would refuse)
    if VARIANT_FILE:
        runpy.run_path(VARIANT_FILE, run_name="ab_variant")


if VARIANT_FILE is not None:
    # The variant file imports this module by name: the same one, not a second copy.
    sys.modules.setdefault("ab_hooks", sys.modules[__name__])
    after_app_import(_install)
