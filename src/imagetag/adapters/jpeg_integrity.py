"""Checking that a JPEG's marker structure is whole, without decoding its pixels.

A detector decodes every image with OpenCV anyway. OpenCV (libjpeg-turbo) refuses what
libjpeg cannot decode at all, but it hides two defects that Pillow's decode refuses: a file
cut short (libjpeg pads the missing part with grey) and a false marker inside the
compressed data (libjpeg stops the scan there). This walks the markers as libjpeg reads
them and finds both, so OpenCV's decode plus this check refuses what
``PillowImageInspector.verify`` refuses, without a second decode of every image
(bench/detect). The compressed data is searched for markers with numpy, a few passes at
C speed (0.15 ms for a 330 kB photo, against ~2.5 ms for a regular expression, which
stops at each of the photo's ten thousand stuffed 0xFF bytes).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SOI = b"\xff\xd8"
SOS = 0xDA
_EOI = 0xD9
# Markers with no length after them: TEM and the restart markers RST0-RST7.
_RESTARTS = range(0xD0, 0xD8)
BARE_MARKERS = frozenset((0x01, *_RESTARTS))
# What may come after a scan's compressed data: the next scan of a progressive or
# multi-scan file and the tables it needs (DHT, DAC, DQT, DRI, DNL, APPn, COM), or the end.
_BETWEEN_SCANS = frozenset((0xC4, 0xCC, 0xDB, 0xDD, 0xDC, SOS, *range(0xE0, 0xF0), 0xFE))
_FILL = 0xFF


class JpegDefect(ValueError):
    """The JPEG is truncated or its structure corrupt; the message says where."""


def check_jpeg_structure(data: bytes) -> None:
    """Raise ``JpegDefect`` unless ``data`` is a JPEG whose every scan ends in a marker
    that may follow it and whose last scan ends in EOI. Bytes after EOI are ignored, as
    decoders ignore them."""
    if not data.startswith(SOI):
        raise JpegDefect("not a JPEG start-of-image marker")
    offset, scans = 2, 0
    markers: npt.NDArray[np.intp] | None = None
    while True:
        marker, offset = _next_marker(data, offset)
        if marker == _EOI:
            if scans == 0:
                raise JpegDefect("the image ends before any scan")
            return
        if marker in BARE_MARKERS:
            continue
        if scans and marker not in _BETWEEN_SCANS:
            raise JpegDefect(f"marker 0x{marker:02X} inside the compressed data")
        offset = _skip_segment(data, offset, marker)
        if marker == SOS:
            scans += 1
            if markers is None:
                markers = _marker_positions(data)
            after = int(np.searchsorted(markers, offset))
            if after == len(markers):
                raise JpegDefect("the file ends inside the compressed data: truncated")
            offset = int(markers[after])


def _marker_positions(data: bytes) -> npt.NDArray[np.intp]:
    """Ascending offsets of every 0xFF that starts a marker. In compressed data 0xFF is
    stuffed as FF 00, FF D0-D7 are restart markers and FF FF is fill: any other byte after
    0xFF is a marker, which ends the scan."""
    octets = np.frombuffer(data, dtype=np.uint8)
    candidates = np.flatnonzero(octets[:-1] == 0xFF)
    following = octets[candidates + 1]
    starts = (
        (following != 0x00)
        & (following != _FILL)
        & ((following < _RESTARTS.start) | (following >= _RESTARTS.stop))
    )
    positions: npt.NDArray[np.intp] = candidates[starts]
    return positions


def _next_marker(data: bytes, offset: int) -> tuple[int, int]:
    """The marker at or after ``offset`` and the offset past it. Like libjpeg, stray
    bytes before a marker are skipped (it warns, and decodes on)."""
    start = data.find(b"\xff", offset)
    while start != -1 and start + 1 < len(data):
        marker = data[start + 1]
        if marker == 0xFF:  # fill byte
            start += 1
            continue
        if marker != 0x00:
            return marker, start + 2
        start = data.find(b"\xff", start + 2)
    raise JpegDefect("the file ends before its end-of-image marker: truncated")


def _skip_segment(data: bytes, offset: int, marker: int) -> int:
    """Past the segment whose length field is at ``offset``."""
    if offset + 2 > len(data):
        raise JpegDefect(f"the file ends inside marker 0x{marker:02X}: truncated")
    length = int.from_bytes(data[offset : offset + 2], "big")
    if length < 2:
        raise JpegDefect(f"marker 0x{marker:02X} has an impossible length {length}")
    end = offset + length
    if end > len(data):
        raise JpegDefect(f"the file ends inside marker 0x{marker:02X}: truncated")
    return end
