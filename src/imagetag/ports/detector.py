"""Object detection."""

from __future__ import annotations

from typing import Protocol

from imagetag.domain.detections import Detection, DetectorInfo, Thresholds


class Detector(Protocol):
    @property
    def info(self) -> DetectorInfo:
        """Which detector and model this is, for provenance and /health."""
        ...

    async def detect(self, image: bytes, thresholds: Thresholds | None = None) -> list[Detection]:
        """Find objects in encoded image bytes, with ``thresholds`` overriding the
        configured ones for this call; each detection's ``detector`` is
        ``info.with_thresholds(thresholds)``.

        Raises ``DetectionFailed`` when the model cannot run, ``InvalidInput`` for a
        threshold this detector does not have; never blocks the event loop.
        """
        ...
