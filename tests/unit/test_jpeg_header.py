"""Reading a JPEG's header in bounded steps: the same facts as Pillow, or none at all."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from imagetag.adapters.image_inspector_pillow import BOUNDED_JPEG_STEPS, PillowImageInspector
from imagetag.adapters.jpeg_header import FRAME_MARKERS, header_segments, read_frame
from imagetag.domain.errors import ImageTooLarge

MAX_PIXELS = 1_000_000
INSPECTOR = PillowImageInspector(max_pixels=MAX_PIXELS)


def jpeg(width: int = 96, height: int = 64, mode: str = "RGB", **options: object) -> bytes:
    pixels = np.random.default_rng(3).integers(0, 256, (height, width, 3), dtype=np.uint8)
    output = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(output, "JPEG", **options)
    return output.getvalue()


def with_segments_before_the_frame(data: bytes, count: int) -> bytes:
    """``data`` with ``count`` empty comment segments right after its start."""
    return data[:2] + b"\xff\xfe\x00\x02" * count + data[2:]


class CountingBytes(bytes):
    """Bytes that count each index or slice read from Python: the walk's steps."""

    reads = 0

    def __getitem__(self, key):  # type: ignore[no-untyped-def]
        CountingBytes.reads += 1
        return super().__getitem__(key)


@pytest.mark.parametrize(
    "data",
    [
        jpeg(),
        jpeg(progressive=True),
        jpeg(mode="L"),
        jpeg(mode="CMYK"),
        jpeg(comment=b"x" * 5000, exif=Image.Exif().tobytes()),
        jpeg(icc_profile=b"\0" * 200_000),  # split over four APP2 segments
        with_segments_before_the_frame(jpeg(), BOUNDED_JPEG_STEPS // 2),
    ],
    ids=["baseline", "progressive", "grey", "cmyk", "comment-exif", "icc", "some-segments"],
)
def test_the_bounded_read_finds_what_pillow_finds(data: bytes) -> None:
    facts = INSPECTOR.inspect(io.BytesIO(data))

    assert INSPECTOR.inspect_bounded(data) == facts


def multi_picture() -> bytes:
    output = io.BytesIO()
    first, second = (Image.new("RGB", (32, 24), colour) for colour in ("red", "blue"))
    first.save(output, "MPO", save_all=True, append_images=[second])
    return output.getvalue()


def with_precision(data: bytes, bits: int) -> bytes:
    frame = next(s for s in header_segments(data) if s.marker in FRAME_MARKERS)
    return data[: frame.start] + bytes([bits]) + data[frame.start + 1 :]


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n",
        jpeg()[:40],
        multi_picture(),
        with_precision(jpeg(), 12),
        with_segments_before_the_frame(jpeg(), BOUNDED_JPEG_STEPS),
        jpeg()[:2] + b"\xff" * 150_000 + jpeg()[2:],
    ],
    ids=["png", "cut-short", "mpo", "12-bit", "many-segments", "many-fill-bytes"],
)
def test_the_bounded_read_leaves_to_pillow_what_it_cannot_tell_in_few_steps(data: bytes) -> None:
    assert INSPECTOR.inspect_bounded(data) is None


def test_the_bounded_read_takes_a_bounded_number_of_steps_whatever_the_header() -> None:
    # Pillow took ~190 ms over this header; the bounded read gives up within its steps.
    hostile = CountingBytes(with_segments_before_the_frame(jpeg(), 150_000))
    CountingBytes.reads = 0

    assert read_frame(hostile, max_steps=BOUNDED_JPEG_STEPS) is None
    assert CountingBytes.reads <= 3 * BOUNDED_JPEG_STEPS


def test_the_bounded_read_refuses_too_many_pixels_as_pillow_does() -> None:
    data = jpeg(width=2000, height=600)

    with pytest.raises(ImageTooLarge) as by_pillow:
        INSPECTOR.inspect(io.BytesIO(data))
    with pytest.raises(ImageTooLarge) as bounded:
        INSPECTOR.inspect_bounded(data)

    assert str(bounded.value) == str(by_pillow.value)


def test_an_inspector_without_jpeg_reads_nothing_in_bounded_steps() -> None:
    assert (
        PillowImageInspector(max_pixels=MAX_PIXELS, formats=("PNG",)).inspect_bounded(jpeg())
        is None
    )


def with_size(data: bytes, width: int, height: int) -> bytes:
    frame = next(s for s in header_segments(data) if s.marker in FRAME_MARKERS)
    size = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return data[: frame.start + 1] + size + data[frame.start + 5 :]


def test_past_pillows_own_pixel_limit_the_bounded_read_leaves_the_refusal_to_pillow() -> None:
    # An operator may allow more pixels than Pillow reads safely; inspect refuses those.
    generous = PillowImageInspector(max_pixels=200_000_000)
    data = with_size(jpeg(), 12_000, 9_000)

    with pytest.raises(ImageTooLarge, match="too many pixels"):
        generous.inspect(io.BytesIO(data))
    assert generous.inspect_bounded(data) is None
    assert generous.inspect_bounded(with_size(jpeg(), 9_000, 9_000)) == generous.inspect(
        io.BytesIO(with_size(jpeg(), 9_000, 9_000))
    )
    # Past both limits, inspect's refusal is Pillow's; the bounded read leaves it to it.
    assert INSPECTOR.inspect_bounded(data) is None
