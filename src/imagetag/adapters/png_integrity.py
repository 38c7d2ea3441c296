"""Checking that a PNG is whole and decodes, without holding its pixels.

Decoding a PNG to check it (``PIL.Image.load``) costs width x height x channels bytes at
once: 48 MiB for a 4k x 4k RGB photo. This walks the file's chunks instead, a window at a
time: every chunk's CRC must match, the image data must inflate to at least the bytes the
header promises (more is ignored, as decoders do, and not inflated), every row must name a
known filter, and the file must end with IEND. Memory stays at one window whatever the
image's size.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import IO

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Bytes read, and at most inflated, at a time.
_WINDOW = 256 * 1024
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7's passes: first column, first row, column step, row step.
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
_MAX_FILTER = 4


class PngDefect(ValueError):
    """The PNG is truncated or corrupt; the message says where."""


def check_png(source: IO[bytes]) -> None:
    """Read the PNG in ``source`` from its current position to IEND; raise ``PngDefect``
    unless every chunk and the whole image stream are intact."""
    if source.read(len(SIGNATURE)) != SIGNATURE:
        raise PngDefect("not a PNG signature")
    stream: _ImageStream | None = None
    while True:
        length, kind = _chunk_header(source)
        crc = zlib.crc32(kind)
        if kind == b"IHDR":
            header = _read_exactly(source, length, kind)
            crc = zlib.crc32(header, crc)
            stream = _ImageStream(header)
        elif kind == b"IDAT":
            if stream is None:
                raise PngDefect("image data before the IHDR header")
            for piece in _pieces(source, length, kind):
                crc = zlib.crc32(piece, crc)
                stream.feed(piece)
        else:
            for piece in _pieces(source, length, kind):
                crc = zlib.crc32(piece, crc)
        if struct.unpack(">I", _read_exactly(source, 4, kind))[0] != crc:
            raise PngDefect(f"the CRC of a {kind.decode('latin-1')} chunk does not match")
        if kind == b"IEND":
            break
    if stream is None:
        raise PngDefect("no IHDR header")
    stream.finish()


class _ImageStream:
    """The zlib stream of the IDAT chunks, inflated a window at a time and counted."""

    def __init__(self, header: bytes) -> None:
        if len(header) != 13:
            raise PngDefect("the IHDR header has the wrong length")
        width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
        if color not in _CHANNELS or width == 0 or height == 0:
            raise PngDefect("the IHDR header is invalid")
        bits = depth * _CHANNELS[color]
        if interlace:
            passes = [
                (-(-(width - x0) // dx), -(-(height - y0) // dy))
                for x0, y0, dx, dy in _ADAM7
                if width > x0 and height > y0
            ]
            self._row_bytes = 0  # rows differ per pass; their filters go unchecked
        else:
            passes = [(width, height)]
            self._row_bytes = (width * bits + 7) // 8 + 1
        self._expected = sum(h * ((w * bits + 7) // 8 + 1) for w, h in passes)
        self._produced = 0
        self._inflater = zlib.decompressobj()

    def feed(self, data: bytes) -> None:
        pending = data
        while pending and not self._inflater.eof and self._produced < self._expected:
            try:
                self._count(self._inflater.decompress(pending, _WINDOW))
            except zlib.error as error:
                raise PngDefect(f"the image data is corrupt ({error})") from None
            pending = self._inflater.unconsumed_tail

    def finish(self) -> None:
        if self._produced < self._expected:
            try:
                self._count(self._inflater.flush())
            except zlib.error as error:
                raise PngDefect(f"the image data is corrupt ({error})") from None
        if self._produced < self._expected:
            raise PngDefect("the image data is truncated")

    def _count(self, rows: bytes) -> None:
        rows = rows[: self._expected - self._produced]
        if self._row_bytes:
            first = -self._produced % self._row_bytes
            if max(rows[first :: self._row_bytes], default=0) > _MAX_FILTER:
                raise PngDefect("the image data names an unknown row filter")
        self._produced += len(rows)


def _chunk_header(source: IO[bytes]) -> tuple[int, bytes]:
    header = source.read(8)
    if len(header) < 8:
        raise PngDefect("the file ends before its IEND chunk: truncated")
    length, kind = struct.unpack(">I4s", header)
    if length > 0x7FFFFFFF or not kind.isalpha():
        raise PngDefect("a chunk header is corrupt")
    return int(length), bytes(kind)


def _pieces(source: IO[bytes], length: int, kind: bytes) -> Iterator[bytes]:
    """A chunk's data in windows, so that one huge chunk is never read whole."""
    left = length
    while left:
        piece = _read_exactly(source, min(left, _WINDOW), kind)
        left -= len(piece)
        yield piece


def _read_exactly(source: IO[bytes], size: int, kind: bytes) -> bytes:
    data = source.read(size)
    if len(data) < size:
        name = kind.decode("latin-1")
        raise PngDefect(f"the file ends inside a {name} chunk: truncated")
    return data
