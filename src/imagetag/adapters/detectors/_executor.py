"""What every detector adapter shares: its own inference thread, image decoding, error wording."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Generic, TypeVar, cast

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from imagetag.adapters.detectors.process_memory import keep_freed_memory
from imagetag.adapters.garbage_collection import collector_paused
from imagetag.adapters.jpeg_header import frame_size
from imagetag.adapters.jpeg_integrity import (
    SOI,
    JpegDefect,
    check_jpeg_structure,
)
from imagetag.domain.detections import Detection, DetectorInfo, Thresholds
from imagetag.domain.errors import DetectionFailed, DetectorUnavailable, UnsupportedImage
from imagetag.ports.detector import DecodedImage

ModelT = TypeVar("ModelT")
PixelsT = TypeVar("PixelsT")
ResultT = TypeVar("ResultT")

RgbImage = npt.NDArray[np.uint8]
"""Decoded pixels, height x width x 3, in RGB (or, where named so, OpenCV's BGR) order."""
GrayImage = npt.NDArray[np.uint8]
"""Decoded pixels, height x width, one brightness each."""

_MAX_MESSAGE = 300


@dataclass(frozen=True, slots=True, eq=False)
class _Detecting(Generic[PixelsT]):
    """Decoded pixels whose detection already runs, and the provenance it runs with."""

    pixels: PixelsT
    info: DetectorInfo
    detections: Future[list[Detection]]


class ThreadedDetector(ABC, Generic[ModelT, PixelsT]):
    """Base of the detectors: loads the model once and runs it on one dedicated thread.

    A single worker means one image at a time per model: the models are not safe to call
    concurrently (ultralytics keeps per-call state on its predictor), and one thread per
    model already uses every core through the libraries' own intra-op threads. Decoding
    runs there too, so at most one image's pixels wait in memory per model.
    Subclasses provide ``info``, ``_load_model``, ``_decode_sync`` and ``_detect_sync``.
    """

    def __init__(self, thread_name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._load_lock = threading.Lock()
        self._model: ModelT | None = None

    @property
    @abstractmethod
    def info(self) -> DetectorInfo:
        """Which detector and model this is, for provenance and /health."""

    @abstractmethod
    def _load_model(self) -> ModelT:
        """Load (and warm up) the model; blocking, called at most once at a time."""

    @abstractmethod
    def _decode_sync(self, model: ModelT, image: bytes) -> PixelsT:
        """Decode one image as the model takes it; raises ``UnsupportedImage`` for data
        that does not decode whole. Blocking, always on the inference thread."""

    @abstractmethod
    def _detect_sync(self, model: ModelT, pixels: PixelsT, info: DetectorInfo) -> list[Detection]:
        """Run the model on one decoded image with the thresholds of ``info`` (the
        provenance every detection carries); blocking, always on the inference thread."""

    def _check_thresholds(self, thresholds: Thresholds) -> None:
        """Refuse thresholds this detector has no use for (``InvalidInput``); the YOLO
        detectors use both."""

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory already."""
        return self._model is not None

    def load(self) -> None:
        """Load the model now rather than on the first image (blocking; idempotent).

        Raises ``DetectorUnavailable`` when the model cannot be loaded.
        """
        self._loaded_model()

    async def warm_up(self) -> None:
        """Load the model on the inference thread without blocking the event loop."""
        await self._run(self._loaded_model)

    async def decode(self, image: bytes, *, start_detecting: bool = False) -> DecodedImage:
        """Decode encoded image bytes for ``detect``, off the event loop (see the port).

        A JPEG comes back checked whole: libjpeg decoded it and its markers are intact
        (``check_jpeg_structure``), which refuses what ``ImageInspector.verify`` refuses
        without decoding it twice. Other formats are left to that check.

        With ``start_detecting`` the inference thread goes on from decoding a JPEG to
        detecting without handing the pixels back to the event loop in between: the decode
        is answered while the model already runs, and ``detect`` of the result waits for it.
        """
        checked = image.startswith(SOI)
        # Only bytes the decode checks whole go straight on: others are the caller's to
        # verify first, and the model must not run on what that check would refuse.
        if not start_detecting or not checked:
            pixels = await self._run(self._decode_with_model, image)
            return DecodedImage(image, pixels, checked=checked, decoded_by=self)
        loop = asyncio.get_running_loop()
        decoded: asyncio.Future[PixelsT] = loop.create_future()
        info = self.info

        def decode_then_detect() -> list[Detection]:
            try:
                pixels = self._decode_with_model(image)
            except BaseException as error:
                _settle_soon(loop, decoded, error=error)
                raise
            _settle_soon(loop, decoded, result=pixels)
            return self._detect_sync(self._loaded_model(), pixels, info)

        async def started() -> PixelsT:
            detections = self._executor.submit(decode_then_detect)
            pixels = await decoded
            return cast("PixelsT", _Detecting(pixels, info, detections))

        detecting = await self._translated(started)
        return DecodedImage(image, detecting, checked=checked, decoded_by=self)

    async def detect(
        self, image: bytes | DecodedImage, thresholds: Thresholds | None = None
    ) -> list[Detection]:
        """Find objects in encoded image bytes, or in what ``decode`` made of them, off
        the event loop; ``thresholds`` override the configured ones for this image.

        Raises ``DetectionFailed`` (``DetectorUnavailable`` if the model will not load).
        """
        if thresholds is not None:
            self._check_thresholds(thresholds)
        info = self.info.with_thresholds(thresholds)
        started = (
            image.pixels if isinstance(image, DecodedImage) and image.decoded_by is self else None
        )
        if isinstance(started, _Detecting) and started.info == info:
            # Started by this detector's decode: its pixels' detection is under way.
            return await self._translated(lambda: asyncio.wrap_future(started.detections))
        return await self._run(self._detect_with_model, image, info)

    def close(self) -> None:
        """Stop the inference thread once the image in hand (if any) is done."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _loaded_model(self) -> ModelT:
        with self._load_lock:
            if self._model is None:
                # Before the model allocates: each image's arrays then reuse the last one's
                # memory rather than faulting it in again.
                keep_freed_memory()
                try:
                    with collector_paused():
                        self._model = self._load_model()
                except DetectionFailed:
                    raise
                except Exception as error:
                    raise DetectorUnavailable(
                        f"could not load the {self.info.detector} model {self.info.model}: "
                        f"{describe_error(error)}"
                    ) from error
            return self._model

    def _decode_with_model(self, image: bytes) -> PixelsT:
        return self._decode_sync(self._loaded_model(), image)

    def _detect_with_model(
        self, image: bytes | DecodedImage, info: DetectorInfo
    ) -> list[Detection]:
        model = self._loaded_model()
        if isinstance(image, DecodedImage) and image.decoded_by is self:
            decoded = image.pixels
            pixels = cast("PixelsT", decoded.pixels if isinstance(decoded, _Detecting) else decoded)
        else:
            data = image.data if isinstance(image, DecodedImage) else image
            try:
                pixels = self._decode_sync(model, data)
            except UnsupportedImage as error:
                # Here the image was accepted before: the detector failed on it.
                raise DetectionFailed(str(error)) from None
        return self._detect_sync(model, pixels, info)

    async def _run(self, function: Callable[..., ResultT], *args: object) -> ResultT:
        loop = asyncio.get_running_loop()
        return await self._translated(lambda: loop.run_in_executor(self._executor, function, *args))

    async def _translated(self, start: Callable[[], Awaitable[ResultT]]) -> ResultT:
        """The result of the work ``start`` starts; an error other than the port's, in
        starting or in the work, comes out as ``DetectionFailed``."""
        try:
            return await start()
        except (DetectionFailed, UnsupportedImage):
            raise
        except Exception as error:
            # Also covers "cannot schedule new futures after shutdown" once closed.
            raise DetectionFailed(
                f"{self.info.detector} detection failed: {describe_error(error)}"
            ) from error


def _settle_soon(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[ResultT],
    *,
    result: ResultT | None = None,
    error: BaseException | None = None,
) -> None:
    """From another thread: give ``future`` its result or error, unless it is done by then
    (cancelled by a caller who gave up) or its loop has closed."""

    def settle() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(cast("ResultT", result))

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(settle)


def describe_error(error: BaseException) -> str:
    """One readable line for an exception: its first line of text, never a traceback."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 1] + "…"
    return text


def decode_rgb(data: bytes, *, max_side: int | None = None) -> RgbImage:
    """Decode image bytes to RGB pixels, turned upright by their EXIF orientation.

    ``max_side`` lets JPEG decoding skip detail it would throw away (libjpeg's DCT scaling):
    the result keeps at least that many pixels on its shorter side, so callers still resize.
    """
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if max_side is not None:
                opened.draft("RGB", (max_side, max_side))
            upright = ImageOps.exif_transpose(opened)
            rgb = upright.convert("RGB")
    except UnidentifiedImageError:
        raise UnsupportedImage("the data is not an image the detector can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UnsupportedImage(
            f"the image is corrupt or truncated: {describe_error(error)}"
        ) from None
    return np.asarray(rgb, dtype=np.uint8)


def decode_bgr(data: bytes, *, min_long_side: int | None = None) -> RgbImage:
    """Decode image bytes to BGR pixels (OpenCV's order), upright by their EXIF orientation.

    OpenCV decodes JPEG and PNG straight into one array and applies the orientation tag
    itself, several times cheaper than Pillow's decode, transpose and convert copies (see
    bench/detect). Formats OpenCV cannot read, and damaged data, go through Pillow, which
    also gives the clearer error.

    With ``min_long_side`` (a model's input size), a JPEG big enough decodes at 1/2, 1/4 or
    1/8 scale (libjpeg's DCT scaling: a fraction of the work) as long as its long side stays
    at least that long: the model's letterbox would shrink it that far or further anyway, so
    only detail it would throw away is skipped. The long side does not depend on the EXIF
    orientation, which OpenCV applies at every scale.

    Raises ``UnsupportedImage`` for data that does not decode whole. OpenCV refuses what
    libjpeg cannot decode; a JPEG cut short or with a false marker in its compressed data,
    which OpenCV decodes anyway, is refused by ``check_jpeg_structure``.
    """
    if data.startswith(SOI):
        try:
            check_jpeg_structure(data)
        except JpegDefect as error:
            raise UnsupportedImage(f"the image is corrupt or truncated: {error}") from None
    flags = cv2.IMREAD_COLOR
    if min_long_side is not None:
        flags = _reduced_jpeg_read(data, min_long_side)
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if pixels is not None:
        return pixels.astype(np.uint8, copy=False)
    return cv2.cvtColor(decode_rgb(data), cv2.COLOR_RGB2BGR).astype(np.uint8, copy=False)


# Largest first: the smallest decode that still covers the model's input.
_REDUCED_READS = (
    (8, cv2.IMREAD_REDUCED_COLOR_8),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (2, cv2.IMREAD_REDUCED_COLOR_2),
)


def _reduced_jpeg_read(data: bytes, min_long_side: int) -> int:
    """The ``cv2.imdecode`` flags that decode ``data`` as small as ``min_long_side`` allows."""
    size = frame_size(data)
    if size is not None:
        long_side = max(size)
        for factor, flags in _REDUCED_READS:
            # libjpeg rounds a scaled dimension up.
            if -(-long_side // factor) >= min_long_side:
                return flags
    return cv2.IMREAD_COLOR


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks (weights run to hundreds of megabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def distribution_version(*names: str) -> str:
    """Installed version of the first of these distributions present, without importing it.

    Several names because one module ships under several (``ultralytics`` and
    ``ultralytics-opencv-headless``, ``onnxruntime`` and ``onnxruntime-gpu``).
    """
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def check_thresholds(confidence: float, iou: float) -> None:
    """Refuse thresholds outside 0..1 at construction rather than on the first image."""
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"confidence must be within 0..1, got {confidence!r}")
    if not 0.0 < iou <= 1.0:
        raise ValueError(f"iou must be within 0..1 (exclusive of 0), got {iou!r}")


def unit_clip(value: float) -> float:
    """Scores computed in float16/float32 can land a hair outside 0..1."""
    return min(max(float(value), 0.0), 1.0)
