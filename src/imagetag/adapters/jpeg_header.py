"""Walking a JPEG's header segments, from its start to its first scan, without its pixels."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from imagetag.adapters.jpeg_integrity import BARE_MARKERS, SOI, SOS

FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""SOF0-SOF15: the segments that are a frame header (precision, size, components)."""
_APP2 = 0xE2
_MPF = b"MPF\x00"


@dataclass(frozen=True, slots=True)
class Segment:
    """One marker segment: its marker byte and where its payload (after the length) lies."""

    marker: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class JpegFrame:
    """What a JPEG's header says before its first scan."""

    width: int
    height: int
    precision: int
    components: int
    multi_picture: bool
    """An MPF segment (APP2 "MPF"): more pictures may follow the first (Pillow: MPO)."""


def header_segments(data: bytes, *, max_steps: int | None = None) -> Iterator[Segment]:
    """The segments of ``data`` from its start-of-image on, up to and including the first
    scan's (SOS): that one last tells the caller the header was read through. Stops
    early, silently, at anything that is no segment, where the data ends, or after
    ``max_steps`` steps (a segment or a fill byte each), so a caller on the event loop
    stays bounded whatever the bytes hold."""
    if not data.startswith(SOI):
        return
    offset, end, steps = 2, len(data), 0
    while offset + 4 <= end:
        steps += 1
        if max_steps is not None and steps > max_steps:
            return
        if data[offset] != 0xFF:
            return
        marker = data[offset + 1]
        if marker == 0xFF:  # a fill byte before a marker
            offset += 1
            continue
        if marker in BARE_MARKERS:
            offset += 2
            continue
        length = int.from_bytes(data[offset + 2 : offset + 4], "big")
        if length < 2 or offset + 2 + length > end:
            return
        yield Segment(marker, offset + 4, offset + 2 + length)
        if marker == SOS:
            return
        offset += 2 + length


def read_frame(data: bytes, *, max_steps: int | None = None) -> JpegFrame | None:
    """The frame header of a JPEG read through to its first scan; None when ``data`` is
    no JPEG, has no whole frame header before its first scan, declares no size (a DNL
    file), or needs more than ``max_steps`` steps to get there."""
    frame: tuple[int, int, int, int] | None = None
    multi_picture = False
    for segment in header_segments(data, max_steps=max_steps):
        if segment.marker == SOS:
            if frame is None:
                return None
            precision, height, width, components = frame
            return JpegFrame(width, height, precision, components, multi_picture)
        if segment.marker in FRAME_MARKERS and frame is None:
            frame = _frame_fields(data, segment)
            if frame is None:
                return None
        elif segment.marker == _APP2 and data.startswith(_MPF, segment.start):
            multi_picture = True
    return None


def frame_size(data: bytes) -> tuple[int, int] | None:
    """Width and height in a JPEG's first frame header (as stored, before EXIF
    orientation), read as far as that header; None when ``data`` is no JPEG or the
    header cannot be read. Unbounded: for a worker thread."""
    for segment in header_segments(data):
        if segment.marker in FRAME_MARKERS:
            fields = _frame_fields(data, segment)
            return None if fields is None else (fields[2], fields[1])
    return None


def _frame_fields(data: bytes, segment: Segment) -> tuple[int, int, int, int] | None:
    """Precision, height, width and component count of a frame header; None when it is
    too short or declares no size."""
    if segment.end - segment.start < 6:
        return None
    fields = data[segment.start : segment.start + 6]
    precision, components = fields[0], fields[5]
    height, width = int.from_bytes(fields[1:3], "big"), int.from_bytes(fields[3:5], "big")
    if not width or not height:
        return None
    return precision, height, width, components
