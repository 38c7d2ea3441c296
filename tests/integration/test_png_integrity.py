"""The PNG check the Pillow inspector uses instead of decoding every pixel."""

from __future__ import annotations

import io
import random
import struct
import tracemalloc
import zlib

import pytest
from PIL import Image

from imagetag.adapters.image_inspector_pillow import PillowImageInspector
from imagetag.adapters.png_integrity import PngDefect, check_png
from imagetag.domain.errors import UnsupportedImage

MODES = ["RGB", "RGBA", "L", "LA", "P", "1", "I;16"]
SIZES = [(1, 1), (3, 5), (17, 9), (64, 33)]


def noise(mode: str, size: tuple[int, int], seed: int = 1) -> Image.Image:
    rng = random.Random(seed)
    rgb = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    return rgb.convert(mode)


def png_of(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def adam7_png(image: Image.Image) -> bytes:
    """An interlaced RGB PNG (Pillow writes none), filter 0 on every row."""
    width, height = image.size
    pixels = image.convert("RGB").tobytes()
    raw = bytearray()
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4)):
        raw += _pass(pixels, width, height, x0, y0, dx, dy)
    for x0, y0, dx, dy in ((0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        raw += _pass(pixels, width, height, x0, y0, dx, dy)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw)))
        + chunk(b"IEND", b"")
    )


def _pass(pixels: bytes, width: int, height: int, x0: int, y0: int, dx: int, dy: int) -> bytes:
    rows = bytearray()
    for y in range(y0, height, dy):
        if x0 >= width:
            break
        rows.append(0)
        for x in range(x0, width, dx):
            at = (y * width + x) * 3
            rows += pixels[at : at + 3]
    return bytes(rows)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", SIZES, ids=str)
def test_whole_pngs_of_every_mode_pass(mode: str, size: tuple[int, int]) -> None:
    check_png(io.BytesIO(png_of(noise(mode, size))))


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (9, 9), (17, 5), (33, 40)], ids=str)
def test_interlaced_pngs_pass_and_are_what_pillow_decodes(size: tuple[int, int]) -> None:
    image = noise("RGB", size)
    data = adam7_png(image)
    # The hand-made file is right: Pillow reads it as interlaced, with the same pixels.
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.info.get("interlace") == 1
        assert decoded.convert("RGB").tobytes() == image.tobytes()
    check_png(io.BytesIO(data))
    with pytest.raises(PngDefect):
        check_png(io.BytesIO(data[:-20]))


def test_every_truncation_is_refused() -> None:
    data = png_of(noise("RGB", (40, 20)))
    for end in range(len(data)):
        with pytest.raises(PngDefect):
            check_png(io.BytesIO(data[:end]))


def test_every_single_damaged_byte_is_refused() -> None:
    data = png_of(noise("RGBA", (24, 12)))
    for at in range(len(data)):
        damaged = bytearray(data)
        damaged[at] ^= 0x41
        with pytest.raises(PngDefect):
            check_png(io.BytesIO(bytes(damaged)))


def _png_with_rows(rows: bytes, width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_short_image_data_or_an_unknown_filter_is_refused_despite_good_crcs() -> None:
    width, height = 4, 3
    good = (b"\x00" + b"\x7f" * width) * height
    check_png(io.BytesIO(_png_with_rows(good, width, height)))
    cases = {
        "short": good[:-1],
        "unknown filter": b"\x05" + good[1:],
        "unknown filter, last row": good[: -width - 1] + b"\x09" + b"\x7f" * width,
    }
    for rows in cases.values():
        with pytest.raises(PngDefect):
            check_png(io.BytesIO(_png_with_rows(rows, width, height)))
        # Pillow agrees that these are broken: decoding them fails.
        image = Image.open(io.BytesIO(_png_with_rows(rows, width, height)))
        with image, pytest.raises((OSError, SyntaxError, ValueError)):
            image.load()


def test_image_data_longer_than_the_image_is_ignored_as_decoders_do() -> None:
    width, height = 4, 3
    rows = (b"\x00" + b"\x7f" * width) * height + b"\x09" * 10_000
    data = _png_with_rows(rows, width, height)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
    check_png(io.BytesIO(data))


def test_image_data_split_over_many_chunks_passes() -> None:
    image = noise("RGB", (50, 50))
    whole = png_of(image)
    rows = b"".join(b"\x00" + image.tobytes()[y * 150 : (y + 1) * 150] for y in range(50))
    stream = zlib.compress(rows)
    header = whole[16:29]
    pieces = [stream[i : i + 97] for i in range(0, len(stream), 97)]
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + b"".join(chunk(b"IDAT", piece) for piece in pieces)
        + chunk(b"IEND", b"")
    )
    check_png(io.BytesIO(data))
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.tobytes() == image.tobytes()


def test_a_large_png_is_checked_in_a_bounded_window() -> None:
    # 12 MiB of pixels in one IDAT chunk: the check holds a window, not the image.
    image = noise("RGB", (2048, 2048))
    data = png_of(image, compress_level=0)
    tracemalloc.start()
    try:
        check_png(io.BytesIO(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(data) > 12 * 1024 * 1024
    assert peak < 2 * 1024 * 1024


def test_the_inspector_refuses_a_damaged_png_with_a_reason() -> None:
    data = bytearray(png_of(noise("RGB", (30, 30))))
    data[len(data) // 2] ^= 0xFF
    inspector = PillowImageInspector(max_pixels=10_000)
    inspector.inspect(io.BytesIO(bytes(data)))  # the header is intact
    with pytest.raises(UnsupportedImage, match="corrupt or truncated"):
        inspector.verify(io.BytesIO(bytes(data)))
