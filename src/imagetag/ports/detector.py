"""Object detection."""

from __future__ import annotations

from typing import Protocol

from imagetag.domain.detections import Detection, DetectorInfo


class Detector(Protocol):
    @property
    def info(self) -> DetectorInfo:
        """Which detector and model this is, for provenance and /health."""
        ...

    async def detect(self, image: bytes) -> list[Detection]:
        """Find objects in encoded image bytes.

        Raises ``DetectionFailed`` when the model cannot run; never blocks the event loop.
        """
        ...
