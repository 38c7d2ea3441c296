"""Object detection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from imagetag.domain.detections import Detection, DetectorInfo, Thresholds


@dataclass(frozen=True, slots=True, eq=False)
class DecodedImage:
    """Encoded image bytes and what one detector's ``decode`` made of them.

    Handed back to that detector's ``detect``, it spares a second decode; ``pixels`` are
    its own business. ``checked`` says whether decoding also checked that the bytes decode
    whole, the check ``ImageInspector.verify`` makes, so that the caller need not make it
    again.
    """

    data: bytes
    pixels: object
    checked: bool
    decoded_by: object


class Detector(Protocol):
    @property
    def info(self) -> DetectorInfo:
        """Which detector and model this is, for provenance and /health."""
        ...

    async def decode(self, image: bytes, *, start_detecting: bool = False) -> DecodedImage:
        """Decode encoded image bytes as the model will see them, before ``detect``.

        With ``start_detecting`` the detector may go straight on to detecting, with its
        configured thresholds, once the pixels are decoded and ``checked``: ``detect`` of
        the result then waits for that run rather than starting one (a caller that will
        detect anyway saves a round trip to the model's thread). Without it, or for bytes
        it could not check whole, nothing runs but the decode.

        Raises ``UnsupportedImage`` for data it finds corrupt or truncated, and
        ``DetectionFailed`` when it cannot decode anything now; never blocks the event loop.
        A detector that does not decode locally returns the bytes unchecked.
        """
        ...

    async def detect(
        self, image: bytes | DecodedImage, thresholds: Thresholds | None = None
    ) -> list[Detection]:
        """Find objects in encoded image bytes, or in what this detector's ``decode``
        made of them, with ``thresholds`` overriding the configured ones for this call;
        each detection's ``detector`` is ``info.with_thresholds(thresholds)``.

        Raises ``DetectionFailed`` when the model cannot run or the bytes do not decode,
        ``InvalidInput`` for a threshold this detector does not have; never blocks the
        event loop.
        """
        ...
