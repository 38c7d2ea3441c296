"""What every local detector's base does with its inference thread: decoding that goes
straight on to detecting, and the errors it gives. A counting model stands in for a real
one; the real detectors on real photos are in test_detectors.py."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from imagetag.adapters.detectors._executor import ThreadedDetector
from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo, Thresholds
from imagetag.domain.errors import DetectionFailed, UnsupportedImage

JPEG = b"\xff\xd8"  # the start of a JPEG: the decode of one checks it whole
PHOTO = JPEG + b" photo"

INFO = DetectorInfo(
    detector="counting",
    model="counting-1",
    library_version="test",
    confidence_threshold=0.25,
    iou_threshold=0.7,
)


class CountingDetector(ThreadedDetector[str, bytes]):
    """Decodes by upper-casing; finds one "thing" per call; counts and records threads."""

    def __init__(self) -> None:
        super().__init__("counting")
        self.decoded: list[bytes] = []
        self.detected: list[tuple[bytes, DetectorInfo]] = []
        self.threads: set[str] = set()
        self.hold = threading.Event()
        self.hold.set()

    @property
    def info(self) -> DetectorInfo:
        return INFO

    def _load_model(self) -> str:
        return "model"

    def _decode_sync(self, model: str, image: bytes) -> bytes:
        self.threads.add(threading.current_thread().name)
        if b"bad" in image:
            raise UnsupportedImage("the image is corrupt or truncated: bad bytes")
        self.decoded.append(image)
        return image.upper()

    def _detect_sync(self, model: str, pixels: bytes, info: DetectorInfo) -> list[Detection]:
        self.threads.add(threading.current_thread().name)
        self.hold.wait(timeout=10)
        self.detected.append((pixels, info))
        box = BoundingBox(x_min=0.1, y_min=0.1, x_max=0.5, y_max=0.5)
        return [Detection(name="thing", confidence=0.9, box=box, detector=info)]


@pytest.fixture
def detector() -> Iterator[CountingDetector]:
    counting = CountingDetector()
    yield counting
    counting.hold.set()
    counting.close()


async def test_a_decode_that_starts_detecting_runs_the_model_once(
    detector: CountingDetector,
) -> None:
    decoded = await detector.decode(PHOTO, start_detecting=True)
    found = await detector.detect(decoded)

    assert [d.name for d in found] == ["thing"]
    assert detector.decoded == [PHOTO]
    assert detector.detected == [(PHOTO.upper(), INFO)]
    assert all(name.startswith("counting") for name in detector.threads)


async def test_the_decode_is_answered_while_the_model_still_runs(
    detector: CountingDetector,
) -> None:
    detector.hold.clear()

    decoded = await asyncio.wait_for(detector.decode(PHOTO, start_detecting=True), 5)
    detecting = asyncio.ensure_future(detector.detect(decoded))
    await asyncio.sleep(0.05)
    assert not detecting.done()

    detector.hold.set()
    assert [d.name for d in await asyncio.wait_for(detecting, 5)] == ["thing"]


async def test_other_thresholds_run_the_model_again_on_the_same_pixels(
    detector: CountingDetector,
) -> None:
    decoded = await detector.decode(PHOTO, start_detecting=True)
    found = await detector.detect(decoded, Thresholds(confidence=0.5, iou=0.5))

    assert detector.decoded == [PHOTO]
    assert [info for _, info in detector.detected] == [
        INFO,
        INFO.with_thresholds(Thresholds(confidence=0.5, iou=0.5)),
    ]
    assert found[0].detector.confidence_threshold == 0.5


@pytest.mark.parametrize(
    ("image", "start_detecting"),
    [(PHOTO, False), (b"\x89PNG photo", True)],
    ids=["not asked to", "bytes the decode does not check"],
)
async def test_a_decode_alone_runs_no_model(
    detector: CountingDetector, image: bytes, start_detecting: bool
) -> None:
    decoded = await detector.decode(image, start_detecting=start_detecting)
    await asyncio.sleep(0.05)
    assert detector.detected == []

    await detector.detect(decoded)
    assert detector.decoded == [image]
    assert len(detector.detected) == 1


async def test_bytes_that_do_not_decode_are_refused_and_never_detected(
    detector: CountingDetector,
) -> None:
    with pytest.raises(UnsupportedImage, match="bad bytes"):
        await detector.decode(JPEG + b"bad photo", start_detecting=True)

    await asyncio.sleep(0.05)
    assert detector.detected == []


async def test_a_closed_detector_refuses_to_start(detector: CountingDetector) -> None:
    detector.close()

    with pytest.raises(DetectionFailed, match="counting detection failed"):
        await detector.decode(PHOTO, start_detecting=True)


async def test_a_caller_who_gives_up_on_the_decode_leaves_the_thread_working(
    detector: CountingDetector,
) -> None:
    detector.hold.clear()
    starting = asyncio.ensure_future(detector.decode(PHOTO, start_detecting=True))
    await asyncio.sleep(0)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    detector.hold.set()

    # The model finishes the image in hand, then takes the next one as usual.
    decoded = await detector.decode(JPEG + b" next", start_detecting=True)
    assert [d.name for d in await detector.detect(decoded)] == ["thing"]
