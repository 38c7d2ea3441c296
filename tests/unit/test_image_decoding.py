"""How the detectors decode image bytes: the size a JPEG declares, the scale it is read at,
the upright turn its EXIF orientation asks for, and the error damaged data gives."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from imagetag.adapters.detectors._executor import decode_bgr
from imagetag.adapters.jpeg_header import frame_size
from imagetag.domain.errors import UnsupportedImage

# A frame header that declares 1280x720 and nothing after it: no scan, no pixels.
HEADER_ONLY_JPEG = (
    b"\xff\xd8\xff\xc0\x00\x11\x08\x02\xd0\x05\x00\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01\xff\xd9"
)


def encoded(width: int, height: int, image_format: str = "JPEG", **options: object) -> bytes:
    """A left-to-right gradient: its dark side shows which way the pixels were turned."""
    row = np.linspace(0, 255, width, dtype=np.uint8)
    pixels = np.repeat(np.repeat(row[np.newaxis, :, np.newaxis], height, 0), 3, 2)
    output = io.BytesIO()
    Image.fromarray(pixels).save(output, image_format, **options)
    return output.getvalue()


@pytest.mark.parametrize(
    "options",
    [{}, {"progressive": True}, {"comment": b"x" * 5000, "exif": Image.Exif().tobytes()}],
    ids=["baseline", "progressive", "comment-and-exif"],
)
def test_jpeg_size_reads_the_frame_header(options: dict[str, object]) -> None:
    assert frame_size(encoded(1280, 720, "JPEG", **options)) == (1280, 720)


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff\xd8", b"\xff\xd8\xff\xe0\x00", HEADER_ONLY_JPEG[:10], encoded(64, 48, "PNG")],
    ids=["empty", "start-only", "cut-in-a-segment", "cut-in-the-frame-header", "png"],
)
def test_jpeg_size_is_none_for_what_is_no_readable_jpeg_header(data: bytes) -> None:
    assert frame_size(data) is None


@pytest.mark.parametrize(
    ("width", "height", "min_long_side", "decoded"),
    [
        (1280, 720, 640, (360, 640)),  # halved: the long side is still 640
        (4000, 3000, 640, (750, 1000)),  # a quarter; an eighth would be 500 long
        (810, 1080, 640, (1080, 810)),  # halved it would be 540 long: read whole
        (1280, 720, None, (720, 1280)),  # no model size given: read whole
        (1279, 720, 640, (360, 640)),  # 639.5 long halved: libjpeg rounds up to 640
    ],
)
def test_a_jpeg_is_read_at_the_smallest_scale_that_keeps_the_long_side(
    width: int, height: int, min_long_side: int | None, decoded: tuple[int, int]
) -> None:
    assert decode_bgr(encoded(width, height), min_long_side=min_long_side).shape == (*decoded, 3)


def test_a_reduced_jpeg_is_still_turned_upright_by_its_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    sideways = encoded(1280, 720, exif=exif.tobytes())

    upright = decode_bgr(sideways, min_long_side=640)

    assert upright.shape == (640, 360, 3)
    # The gradient ran left to right as stored; turned clockwise, it runs top to bottom.
    assert upright[0].mean() < 20 < 235 < upright[-1].mean()


def test_other_formats_are_read_whole() -> None:
    assert decode_bgr(encoded(1280, 720, "PNG"), min_long_side=640).shape == (720, 1280, 3)


@pytest.mark.parametrize("min_long_side", [None, 640])
def test_a_jpeg_header_with_no_pixels_is_refused_with_a_one_line_message(
    min_long_side: int | None,
) -> None:
    with pytest.raises(UnsupportedImage) as failure:
        decode_bgr(HEADER_ONLY_JPEG, min_long_side=min_long_side)
    assert "\n" not in str(failure.value)
