"""Reading facts out of encoded image bytes."""

from __future__ import annotations

from typing import IO, Protocol

from imagetag.domain.images import ImageFacts


class ImageInspector(Protocol):
    """``inspect`` and ``verify`` read the whole of ``source``, a seekable binary file,
    from its start, and block: they are for a worker thread. ``inspect_bounded`` is for
    the event loop."""

    def inspect(self, source: IO[bytes]) -> ImageFacts:
        """Format and size from the header of the bytes themselves (never a file name or
        a Content-Type), cheaply. Raises ``UnsupportedImage`` for what is no image in an
        allowed format and ``ImageTooLarge`` beyond the pixel limit, before any pixel is
        decoded.
        """
        ...

    def inspect_bounded(self, data: bytes) -> ImageFacts | None:
        """What ``inspect`` would answer, when a read of a bounded number of steps, whatever
        the bytes, finds it (e.g. a JPEG's frame header among its first segments); None
        when only ``inspect`` can tell. Raises as ``inspect`` does. A header can hide
        unbounded work (thousands of empty segments, compressed text chunks): this never
        does it, so it may run on the event loop.
        """
        ...

    def verify(self, source: IO[bytes]) -> None:
        """Check that an image ``inspect`` accepted decodes whole, holding no more of it
        in memory than a bounded window where the format allows (JPEG, PNG). Raises
        ``UnsupportedImage`` for corrupt or truncated data.
        """
        ...
