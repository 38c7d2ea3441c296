"""The JPEG check that lets a detector's OpenCV decode stand in for the inspector's.

``decode_bgr`` (OpenCV plus ``check_jpeg_structure``) must refuse what
``PillowImageInspector.verify`` refuses: the service skips that second decode when a
detector's decode has checked a JPEG (bench/detect). Both are libjpeg-turbo underneath.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from imagetag.adapters.detectors._executor import decode_bgr
from imagetag.adapters.image_inspector_pillow import PillowImageInspector
from imagetag.adapters.jpeg_integrity import JpegDefect, check_jpeg_structure
from imagetag.domain.errors import UnsupportedImage

INSPECTOR = PillowImageInspector(max_pixels=10**8)


def photo_like(width: int, height: int, **options: object) -> bytes:
    """Smooth noise, so the compressed data is dense with 0xFF bytes stuffed as FF 00."""
    rng = np.random.default_rng(7)
    small = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
    pixels = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    pixels.save(buffer, "JPEG", **{"quality": 90, **options})
    return buffer.getvalue()


BASELINE = photo_like(96, 64)
PROGRESSIVE = photo_like(96, 64, progressive=True)
RESTARTS = photo_like(96, 64, restart_marker_blocks=1)


def refuses(check: Callable[[bytes], object], data: bytes) -> bool:
    """Whether ``check`` refuses ``data`` as not an image (``UnsupportedImage``)."""
    try:
        check(data)
    except UnsupportedImage:
        return True
    return False


def header_accepted(data: bytes) -> bool:
    return not refuses(lambda data: INSPECTOR.inspect(io.BytesIO(data)), data)


def inspector_refuses(data: bytes) -> bool:
    return refuses(lambda data: INSPECTOR.verify(io.BytesIO(data)), data)


def detector_refuses(data: bytes) -> bool:
    return refuses(lambda data: decode_bgr(data, min_long_side=64), data)


@pytest.mark.parametrize(
    "jpeg", [BASELINE, PROGRESSIVE, RESTARTS], ids=["baseline", "progressive", "restarts"]
)
def test_a_whole_jpeg_passes(jpeg: bytes) -> None:
    check_jpeg_structure(jpeg)
    assert not detector_refuses(jpeg)


@pytest.mark.parametrize("jpeg", [BASELINE, PROGRESSIVE], ids=["baseline", "progressive"])
def test_every_cut_the_inspector_refuses_is_refused(jpeg: bytes) -> None:
    cuts = [jpeg[:length] for length in range(2, len(jpeg)) if header_accepted(jpeg[:length])]

    assert len(cuts) > len(jpeg) // 2
    assert [detector_refuses(cut) for cut in cuts] == [inspector_refuses(cut) for cut in cuts]
    # OpenCV alone decodes a cut JPEG, padding the missing part: the check is what refuses.
    assert all(inspector_refuses(cut) for cut in cuts)


@pytest.mark.parametrize("jpeg", [BASELINE, PROGRESSIVE], ids=["baseline", "progressive"])
def test_single_bit_flips_are_refused_as_the_inspector_refuses_them(jpeg: bytes) -> None:
    rng = random.Random(3)
    flipped = []
    for _ in range(1500):
        damaged = bytearray(jpeg)
        damaged[rng.randrange(len(jpeg))] ^= 1 << rng.randrange(8)
        if header_accepted(bytes(damaged)):
            flipped.append(bytes(damaged))

    refused_by_both = sum(inspector_refuses(data) and detector_refuses(data) for data in flipped)
    disagreements = sum(inspector_refuses(data) != detector_refuses(data) for data in flipped)

    assert refused_by_both > 20
    # Both are libjpeg underneath; they differ only in how far they read past a stray
    # marker: a handful in tens of thousands of flips in the trials behind this check.
    assert disagreements <= len(flipped) // 500


def test_a_false_marker_inside_the_compressed_data_is_refused() -> None:
    scan = BASELINE.index(b"\xff\xda")
    stuffed = BASELINE.index(b"\xff\x00", scan)
    damaged = BASELINE[: stuffed + 1] + b"\x5e" + BASELINE[stuffed + 2 :]

    with pytest.raises(JpegDefect, match="inside the compressed data"):
        check_jpeg_structure(damaged)
    assert inspector_refuses(damaged)


def test_stray_bytes_before_a_marker_are_skipped_as_libjpeg_skips_them() -> None:
    tables = BASELINE.index(b"\xff\xdb")
    padded = BASELINE[:tables] + b"\x00\x17" + BASELINE[tables:]

    check_jpeg_structure(padded)
    assert not inspector_refuses(padded)
    assert not detector_refuses(padded)


def test_bytes_after_the_end_marker_are_ignored() -> None:
    check_jpeg_structure(BASELINE + b"trailing bytes")


def test_an_end_marker_inside_an_exif_thumbnail_is_not_the_images_end() -> None:
    exif = Image.Exif()
    exif[0x010E] = "x"  # a description, so the segment is not empty
    with_thumbnail = photo_like(96, 64, exif=exif.tobytes() + photo_like(16, 16))
    scan = with_thumbnail.index(b"\xff\xda")

    with pytest.raises(JpegDefect, match="truncated"):
        check_jpeg_structure(with_thumbnail[: scan + 40])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n", "start-of-image"),
        (b"\xff\xd8\xff\xd9", "before any scan"),
        (b"\xff\xd8\xff\xe0\x00\x01", "impossible length"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "truncated"),
    ],
    ids=["not-jpeg", "no-scan", "bad-length", "cut-in-a-segment"],
)
def test_broken_structure_names_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(JpegDefect, match=message):
        check_jpeg_structure(data)
