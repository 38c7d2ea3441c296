"""Sniffing image format and size with Pillow, from the bytes and never the file name."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

from PIL import Image, UnidentifiedImageError
from PIL.ImageFile import ImageFile

from imagetag.adapters.jpeg_header import read_frame
from imagetag.adapters.png_integrity import PngDefect, check_png
from imagetag.domain.errors import ImageTooLarge, UnsupportedImage
from imagetag.domain.images import ImageFacts

DEFAULT_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# Segments and fill bytes a JPEG's header may take before its first scan for the bounded
# read: cameras and phones write 5-15 (EXIF, XMP, ICC profile chunks, tables); past this
# the header is left to Pillow in a thread (~1 us a step, so at most ~0.1 ms on the loop).
BOUNDED_JPEG_STEPS = 64
# The frame headers Pillow opens: 8-bit samples in 1 (L), 3 (RGB, YCbCr) or 4 (CMYK) layers.
_PILLOW_JPEG_LAYERS = frozenset((1, 3, 4))


class PillowImageInspector:
    def __init__(self, *, max_pixels: int, formats: tuple[str, ...] = DEFAULT_FORMATS) -> None:
        self._max_pixels = max_pixels
        self._formats = tuple(name.upper() for name in formats)

    def inspect(self, source: IO[bytes]) -> ImageFacts:
        with self._opened(source) as image:
            width, height = image.size
            self._check_pixels(width, height)
            media_type = image.get_format_mimetype() or "application/octet-stream"
        return ImageFacts(media_type=media_type, width=width, height=height)

    def inspect_bounded(self, data: bytes) -> ImageFacts | None:
        # A JPEG's frame header, as Pillow would read it. Anything Pillow might read
        # otherwise (more than one picture: MPO; a precision or layer count it refuses)
        # is left to ``inspect``, as is every other format.
        if "JPEG" not in self._formats:
            return None
        frame = read_frame(data, max_steps=BOUNDED_JPEG_STEPS)
        if (
            frame is None
            or frame.multi_picture
            or frame.precision != 8
            or frame.components not in _PILLOW_JPEG_LAYERS
        ):
            return None
        if (
            Image.MAX_IMAGE_PIXELS is not None
            and frame.width * frame.height > Image.MAX_IMAGE_PIXELS
        ):
            # Past Pillow's own bomb limit, ``inspect`` refuses as soon as Pillow opens
            # the file, before the configured limit: its message, not ours.
            return None
        self._check_pixels(frame.width, frame.height)
        return ImageFacts(media_type="image/jpeg", width=frame.width, height=frame.height)

    def verify(self, source: IO[bytes]) -> None:
        # Decoding catches truncated and corrupt files that a header-only read would
        # accept. JPEG decodes at 1/8 scale: every byte is still read and checked, for half
        # the time (bench/detect) and 1/64 of the pixels. PNG is checked chunk by chunk
        # without its pixels (bench/memory).
        with self._opened(source) as image:
            if image.format == "PNG":
                source.seek(0)
                _reading(check_png, source)
                return
            if image.format == "JPEG":
                width, height = image.size
                image.draft(image.mode, (max(width // 8, 1), max(height // 8, 1)))
            _reading(image.load)

    def _check_pixels(self, width: int, height: int) -> None:
        if width * height > self._max_pixels:
            raise ImageTooLarge(
                f"image is {width}x{height} pixels; the limit is {self._max_pixels} pixels"
            )

    @contextmanager
    def _opened(self, source: IO[bytes]) -> Iterator[ImageFile]:
        """The image opened from its header, or the refusal as our own error."""
        allowed = ", ".join(self._formats)
        source.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(source, formats=list(self._formats))
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise ImageTooLarge("image has too many pixels to decode safely") from None
        except UnidentifiedImageError:
            raise UnsupportedImage(
                f"the data is not an image in a supported format ({allowed})"
            ) from None
        except (OSError, SyntaxError, ValueError) as error:
            raise UnsupportedImage(f"the image is corrupt or truncated: {error}") from None
        with image:
            yield image


def _reading(decode: Callable[..., object], *arguments: object) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            decode(*arguments)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageTooLarge("image has too many pixels to decode safely") from None
    except (OSError, SyntaxError, ValueError, PngDefect) as error:
        raise UnsupportedImage(f"the image is corrupt or truncated: {error}") from None
